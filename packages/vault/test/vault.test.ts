/**
 * The logical layer without HTTP: a SealedStore over a MemoryBackend, the per-store services and
 * `handle` — tokens, policies, mounts and KV, with no server process and no HTTP request.
 */
import { SealedStore } from "@bulwark/core";
import { MemoryBackend } from "@bulwark/storage-memory";
import { afterEach, describe, expect, it } from "vitest";
import {
  createRootToken,
  GenerateRootError,
  KvError,
  mountKv,
  PermissionDeniedError,
  RouteError,
  type Services,
  servicesFor,
  type VaultError,
  VaultStateError,
} from "../src/index.js";

const stores: SealedStore[] = [];

afterEach(async () => {
  for (const s of stores.splice(0)) await s.close();
});

async function openVault(): Promise<{ store: SealedStore; vault: Services; root: string; key: string }> {
  const store = await SealedStore.open({ storage: new MemoryBackend(), autoRotateCheckMs: 0 });
  stores.push(store);
  const init = await store.initialize({ secretShares: 1, secretThreshold: 1 });
  const key = init.keys[0] as string;
  await store.unseal(key);
  const root = await createRootToken(store);
  return { store, vault: servicesFor(store), root, key };
}

/** The error `p` rejects with (fails the test when it resolves). */
async function failure(p: Promise<unknown>): Promise<VaultError> {
  try {
    await p;
  } catch (e) {
    return e as VaultError;
  }
  throw new Error("expected the request to fail");
}

describe("the logical layer without HTTP", () => {
  it("writes and reads KV v2 and KV v1 secrets with the root token", async () => {
    const { store, vault, root } = await openVault();
    await mountKv(store, "secret", { version: 2 });
    await mountKv(store, "kv1", { version: 1 });

    const written = await vault.handle({
      operation: "update",
      path: "secret/data/app/db",
      data: { data: { user: "app", port: 5432 } },
      token: root,
    });
    expect(written.mountType).toBe("kv");
    expect(written.data).toMatchObject({ version: 1 });
    const read = await vault.handle({ operation: "read", path: "secret/data/app/db", token: root });
    expect(JSON.parse(read.rawData ?? JSON.stringify(read.data))).toMatchObject({
      data: { user: "app", port: 5432 },
      metadata: { version: 1 },
    });
    const listed = await vault.handle({ operation: "list", path: "secret/metadata/app", token: root });
    expect(listed.data).toEqual({ keys: ["db"] });

    await vault.handle({ operation: "update", path: "kv1/plain", data: { a: "b" }, token: root });
    const v1 = await vault.handle({ operation: "read", path: "kv1/plain", token: root });
    expect(JSON.parse(v1.rawData ?? JSON.stringify(v1.data))).toEqual({ a: "b" });
    await vault.handle({ operation: "delete", path: "kv1/plain", token: root });
    const gone = await failure(vault.handle({ operation: "read", path: "kv1/plain", token: root }));
    expect(gone).toBeInstanceOf(KvError);
    expect(gone.code).toBe("not_found");
  });

  it("refuses a missing, unknown or revoked token, and answers sealed when the store is sealed", async () => {
    const { store, vault, root } = await openVault();
    await mountKv(store, "secret", { version: 2 });
    for (const token of [undefined, "hvs.nosuchtoken000000000000"]) {
      const e = await failure(vault.handle({ operation: "read", path: "secret/data/x", token }));
      expect(e).toBeInstanceOf(PermissionDeniedError);
      expect(e.message).toBe("permission denied");
    }
    const rootEntry = await vault.tokens.lookup(root);
    if (rootEntry === undefined) throw new Error("the root token was not stored");
    const child = await vault.tokens.create(rootEntry, { policies: ["default"] }, { sudo: true });
    expect((await vault.authenticate(child.token)).entry.policies).toContain("default");
    await vault.tokens.revoke(child.entry.hash);
    expect(await failure(vault.authenticate(child.token))).toBeInstanceOf(PermissionDeniedError);

    await store.seal();
    const sealed = await failure(vault.handle({ operation: "read", path: "secret/data/x", token: root }));
    expect(sealed).toBeInstanceOf(VaultStateError);
    expect(sealed.code).toBe("sealed");
    expect(sealed.message).toBe("Vault is sealed");
  });

  it("checks the ACL: create vs update by existence, LIST on the folder path", async () => {
    const { store, vault, root } = await openVault();
    await mountKv(store, "secret", { version: 2 });
    await vault.handle({
      operation: "update",
      path: "secret/data/old",
      data: { data: { v: 1 } },
      token: root,
    });
    await vault.policies.write(
      "creator",
      `path "secret/data/*" { capabilities = ["create", "read"] }
       path "secret/metadata/" { capabilities = ["list"] }`,
    );
    const rootEntry = await vault.tokens.lookup(root);
    if (rootEntry === undefined) throw new Error("the root token was not stored");
    const { token } = await vault.tokens.create(rootEntry, { policies: ["creator"] }, { sudo: true });

    // A write to a key that does not exist is `create`: allowed.
    await vault.handle({ operation: "update", path: "secret/data/new", data: { data: { v: 2 } }, token });
    // The same write to an existing key is `update`: refused.
    const upd = await failure(
      vault.handle({ operation: "update", path: "secret/data/old", data: { data: { v: 3 } }, token }),
    );
    expect(upd).toBeInstanceOf(PermissionDeniedError);
    // LIST is checked on `secret/metadata/` (the folder), which the policy grants.
    const listed = await vault.handle({ operation: "list", path: "secret/metadata", token });
    expect(listed.data).toEqual({ keys: ["new", "old"] });
    // Nothing else: no delete.
    expect(
      await failure(vault.handle({ operation: "delete", path: "secret/data/new", token })),
    ).toBeInstanceOf(PermissionDeniedError);
    // The root token's update went through; the refused one changed nothing.
    const old = await vault.handle({ operation: "read", path: "secret/data/old", token: root });
    expect(JSON.parse(old.rawData ?? JSON.stringify(old.data))).toMatchObject({ data: { v: 1 } });
  });

  it("routes: nothing mounted, sys/ paths and operations a kv mount does not take", async () => {
    const { store, vault, root } = await openVault();
    await mountKv(store, "secret", { version: 2 });
    const unmounted = await failure(vault.handle({ operation: "read", path: "nothing/here", token: root }));
    expect(unmounted).toBeInstanceOf(RouteError);
    expect(unmounted.code).toBe("not_found");
    expect(unmounted.message).toBe('no handler for route "nothing/here": nothing is mounted there');
    const sys = await failure(vault.handle({ operation: "read", path: "sys/unknown", token: root }));
    expect(sys.code).toBe("unsupported_path");
    // sys/ paths are refused only after authentication: an anonymous caller learns nothing.
    expect(await failure(vault.handle({ operation: "read", path: "sys/unknown" }))).toBeInstanceOf(
      PermissionDeniedError,
    );
    // KV v2 takes PATCH (OpenBao's JSON merge of the current version); KV v1 does not, as in Vault.
    await mountKv(store, "flat", { version: 1 });
    const patch = await failure(
      vault.handle({ operation: "patch", path: "flat/x", data: { a: 1 }, token: root }),
    );
    expect(patch.code).toBe("unsupported_operation");
    const missing = await failure(
      vault.handle({ operation: "patch", path: "secret/data/x", data: { data: { a: 1 } }, token: root }),
    );
    expect(missing.code).toBe("not_found");
  });

  it("mount table: mountKv is idempotent and unmounted paths route nowhere", async () => {
    const { store, vault, root } = await openVault();
    const first = await mountKv(store, "team/a", { version: 1 });
    const again = await mountKv(store, "team/a/", { version: 1 });
    expect(again.uuid).toBe(first.uuid);
    await vault.handle({ operation: "update", path: "team/a/k", data: { x: "y" }, token: root });
    await vault.mounts.unmount("team/a");
    const e = await failure(vault.handle({ operation: "read", path: "team/a/k", token: root }));
    expect(e.code).toBe("not_found");
  });

  it("generate-root refuses with domain errors, not HTTP ones", async () => {
    const { store, vault, key } = await openVault();
    const gen = vault.generateRoot;
    expect(await failure(gen.update(store, key, "no-attempt", 1, async () => "x"))).toMatchObject({
      code: "no_operation_in_progress",
    });
    const started = gen.start(1);
    expect(() => gen.start(1)).toThrow(GenerateRootError);
    const wrong = await failure(gen.update(store, key, "not-the-nonce", 1, async () => "x"));
    expect(wrong).toBeInstanceOf(GenerateRootError);
    expect(wrong.code).toBe("nonce_mismatch");
    const done = await gen.update(store, key, started.nonce, 1, () => createRootToken(store));
    expect(done.complete).toBe(true);
  });
});

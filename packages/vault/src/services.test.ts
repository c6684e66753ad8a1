import { SealedStore } from "@bulwark/core";
import { MemoryBackend } from "@bulwark/storage-memory";
import { afterEach, describe, expect, it } from "vitest";
import { VaultStateError } from "./errors.js";
import { rootTokenAfterInit, servicesFor, waitActive } from "./services.js";
import { sealStatusData } from "./system.js";

const stores: SealedStore[] = [];
afterEach(async () => {
  for (const s of stores.splice(0)) await s.close();
});

async function fresh(): Promise<SealedStore> {
  const store = await SealedStore.open({ storage: new MemoryBackend(), autoRotateCheckMs: 0 });
  stores.push(store);
  return store;
}

describe("waitActive", () => {
  it("refuses a sealed store with the sealed code (the HTTP layer's 503 'Vault is sealed'), not not_active", async () => {
    const store = await fresh();
    await store.initialize({ secretShares: 1, secretThreshold: 1 });
    const err = await waitActive(store, 1000).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(VaultStateError);
    expect(err).toMatchObject({ domain: "vault", code: "sealed", message: "the store is sealed" });
  });
});

describe("rootTokenAfterInit", () => {
  it("unseals a Shamir store with the threshold of new keys, stores a root token, and seals it again", async () => {
    const store = await fresh();
    const init = await store.initialize({ secretShares: 3, secretThreshold: 2 });
    const token = await rootTokenAfterInit(store, init.keys, 2);
    expect(store.sealed).toBe(true);
    for (const k of init.keys.slice(0, 2)) await store.unseal(k);
    const entry = await servicesFor(store).tokens.lookup(token);
    expect(entry?.policies).toEqual(["root"]);
  });

  it("creates the token directly, leaving the store unsealed, when it is already unsealed", async () => {
    const store = await fresh();
    const init = await store.initialize({ secretShares: 1, secretThreshold: 1 });
    for (const k of init.keys) await store.unseal(k);
    const token = await rootTokenAfterInit(store, [], 1);
    expect(store.sealed).toBe(false);
    expect((await servicesFor(store).tokens.lookup(token))?.policies).toEqual(["root"]);
  });

  it("seals again and fails when the keys do not unseal the store", async () => {
    const store = await fresh();
    const init = await store.initialize({ secretShares: 3, secretThreshold: 2 });
    const err = await rootTokenAfterInit(store, init.keys, 1).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(VaultStateError);
    expect(store.sealed).toBe(true);
    expect(store.status().progress).toBe(0);
  });
});

describe("sealStatusData", () => {
  it("answers Vault's seal-status fields, with the cluster's name and id only once unsealed", async () => {
    const store = await fresh();
    const services = servicesFor(store);
    const before = await sealStatusData(services, "");
    expect(before).toMatchObject({
      initialized: false,
      sealed: true,
      t: 0,
      n: 0,
      progress: 0,
      build_date: "",
    });
    expect(before).not.toHaveProperty("cluster_id");

    const init = await store.initialize({ secretShares: 3, secretThreshold: 2 });
    const [k1, k2] = init.keys;
    await store.unseal(k1);
    const partway = await sealStatusData(services, "");
    expect(partway).toMatchObject({
      type: "shamir",
      initialized: true,
      sealed: true,
      t: 2,
      n: 3,
      progress: 1,
    });
    expect(partway).not.toHaveProperty("cluster_name");
    expect(partway).not.toHaveProperty("bulwark_auto_unseal");

    await store.unseal(k2);
    const open = await sealStatusData(services, "");
    expect(open).toMatchObject({ sealed: false, progress: 0 });
    expect(open.cluster_id).toMatch(/^[0-9a-f-]{36}$/);
    expect(open.cluster_name).toMatch(/^bulwark-cluster-[0-9a-f]{8}$/);
    // A configured name wins over the stored one; the id stays.
    const named = await sealStatusData(services, "prod");
    expect(named).toMatchObject({ cluster_name: "prod", cluster_id: open.cluster_id });
  });
});

describe("Services.setup", () => {
  it("runs once per active term before the first request: OpenBao's init records, Vault's cluster record, the carried mounts logged once", async () => {
    const store = await fresh();
    const init = await store.initialize({ secretShares: 1, secretThreshold: 1 });
    const lines: { obj: Record<string, unknown>; msg: string }[] = [];
    const services = servicesFor(store, { logger: { info: (obj, msg) => lines.push({ obj, msg }) } });
    const token = await rootTokenAfterInit(store, init.keys, 1); // unseals, sets up, seals again
    for (const k of init.keys) await store.unseal(k);
    await waitActive(store);
    const storage = store.storage;
    for (const p of [
      "core/mounts",
      "core/local-mounts",
      "core/auth",
      "core/local-auth",
      "core/audit",
      "core/local-audit",
    ])
      expect(await storage.get(p)).toBeDefined();
    const info = JSON.parse(
      Buffer.from((await storage.get("core/cluster/local/info"))?.value ?? []).toString(),
    );
    expect(Object.keys(info)).toEqual(["name", "id"]);
    expect(info.name).toMatch(/^bulwark-cluster-[0-9a-f]{8}$/);
    expect(await services.cluster("")).toEqual({ cluster_name: info.name, cluster_id: info.id });
    expect((await services.mounts.all()).map((m) => m.path)).toEqual(["sys/", "identity/", "cubbyhole/"]);
    // The first request of the new term runs setup (and logs) once; later ones only check the term.
    await services.authenticate(token);
    await services.authenticate(token);
    const carried = lines.filter((l) => l.msg.includes("does not serve"));
    expect(carried.length).toBe(2); // once in rootTokenAfterInit's term, once in this one
    expect(carried[1]?.obj).toEqual({ carried: ["identity/ (identity)", "cubbyhole/ (cubbyhole)"] });
    // A table removed behind its back is not re-created within the term (setup is per term)…
    await storage.delete("core/audit");
    await services.authenticate(token);
    expect(await storage.get("core/audit")).toBeUndefined();
  });

  it("reads the cluster identity OpenBao stores (name and id) and never rewrites it", async () => {
    const store = await fresh();
    const init = await store.initialize({ secretShares: 1, secretThreshold: 1 });
    for (const k of init.keys) await store.unseal(k);
    await waitActive(store);
    const value = new TextEncoder().encode(
      '{"name":"vault-cluster-99ba575e","id":"6832fd4f-9502-5377-497b-85c6482a0ec2"}',
    );
    await store.storage.put({ key: "core/cluster/local/info", value });
    const services = servicesFor(store);
    await services.setup();
    expect(await services.cluster("")).toEqual({
      cluster_name: "vault-cluster-99ba575e",
      cluster_id: "6832fd4f-9502-5377-497b-85c6482a0ec2",
    });
    expect(await services.cluster("prod")).toMatchObject({ cluster_name: "prod" });
    expect((await store.storage.get("core/cluster/local/info"))?.value).toEqual(value);
  });

  it("does nothing on a sealed store", async () => {
    const store = await fresh();
    await store.initialize({ secretShares: 1, secretThreshold: 1 });
    await servicesFor(store).setup();
    const err = await servicesFor(store)
      .authenticate("s.x")
      .catch((e: unknown) => e);
    expect(err).toMatchObject({ code: "sealed" });
  });
});

describe("Services.handle", () => {
  it("passes PATCH to the kv engines: KV v2 merges into a new version, KV v1 answers 405 as Vault's passthrough", async () => {
    const store = await fresh();
    const init = await store.initialize({ secretShares: 1, secretThreshold: 1 });
    const root = await rootTokenAfterInit(store, init.keys, 1);
    for (const k of init.keys) await store.unseal(k);
    await waitActive(store);
    const s = servicesFor(store);
    await s.mounts.mount("kv2", { type: "kv", options: { version: "2" } });
    await s.mounts.mount("kv1", { type: "kv", options: { version: "1" } });
    await s.handle({
      operation: "update",
      path: "kv2/data/app",
      data: { data: { a: "1", b: "2" } },
      token: root,
    });
    const patched = await s.handle({
      operation: "patch",
      path: "kv2/data/app",
      data: { data: { b: null, c: "3" } },
      token: root,
    });
    expect(patched.mountType).toBe("kv");
    const read = await s.handle({ operation: "read", path: "kv2/data/app", token: root });
    const body = read.rawData !== undefined ? JSON.parse(read.rawData) : read.data;
    expect(body).toMatchObject({ data: { a: "1", c: "3" }, metadata: { version: 2 } });
    await s.handle({ operation: "update", path: "kv1/x", data: { a: "1" }, token: root });
    const err = await s
      .handle({ operation: "patch", path: "kv1/x", data: { a: "2" }, token: root })
      .catch((e: unknown) => e);
    expect(err).toMatchObject({ code: "unsupported_operation", status: 405 });
  });
});

describe("keepExpiring (the expiration manager)", () => {
  it("revokes a token whose lease ran out without anyone presenting it, and stops when the last holder releases", async () => {
    const store = await fresh();
    const init = await store.initialize({ secretShares: 1, secretThreshold: 1 });
    for (const k of init.keys) await store.unseal(k);
    const services = servicesFor(store);
    const root = await rootTokenAfterInit(store, [], 1);
    const rootEntry = await services.tokens.lookup(root);
    if (rootEntry === undefined) throw new Error("no root entry");
    const short = await services.tokens.create(rootEntry, { ttl: 1, policies: ["default"] }, { sudo: true });
    const kept = await services.tokens.create(
      rootEntry,
      { ttl: 3600, policies: ["default"] },
      { sudo: true },
    );
    const idKeys = async () => (await store.storage.list("sys/token/id/")).length;
    expect(await idKeys()).toBe(3); // root, short, kept
    const release = services.keepExpiring();
    const second = services.keepExpiring();
    try {
      const deadline = Date.now() + 15_000;
      while ((await idKeys()) > 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
      expect(await idKeys()).toBe(2);
      // Its lease, accessor and parent index went with it; the other token is untouched.
      const leases = await store.storage.list("sys/expire/id/auth/token/create/");
      expect(leases).toHaveLength(1);
      expect(await services.tokens.lookup(kept.token)).toBeDefined();
      expect(await services.tokens.lookupAccessor(short.entry.accessor)).toBeUndefined();
    } finally {
      await release();
      await second();
    }
    // Released by both holders: a token that expires now stays stored until it is presented.
    const later = await services.tokens.create(rootEntry, { ttl: 1, policies: ["default"] }, { sudo: true });
    await new Promise((r) => setTimeout(r, 2500));
    expect(await idKeys()).toBe(3);
    expect(await services.tokens.lookup(later.token)).toBeUndefined(); // refused (and removed) on use
    expect(await idKeys()).toBe(2);
  }, 30_000);
});

describe("Services.audit (the audit broker of the store)", () => {
  it("takes injected device types; setup() of a new term opens the table's devices before the first request, and a seal closes them", async () => {
    const store = await fresh();
    const init = await store.initialize({ secretShares: 1, secretThreshold: 1 });
    for (const k of init.keys) await store.unseal(k);
    await waitActive(store);
    const opened: { path: string; closed: boolean; lines: number }[] = [];
    const services = servicesFor(store, {
      auditFactories: {
        mem: (_options, ctx) => {
          const d = { path: ctx.path, closed: false, lines: 0 };
          opened.push(d);
          return {
            type: "mem",
            write: async () => {
              d.lines++;
            },
            reopen: async () => undefined,
            close: async () => {
              d.closed = true;
            },
          };
        },
      },
    });
    await services.audit.configure({
      devices: [{ path: "cfg/", type: "mem" }],
      unsafeAllowApiAuditCreation: false,
      allowAuditLogPrefixing: false,
    });
    expect(opened).toMatchObject([{ path: "cfg/", closed: false, lines: 1 }]); // Vault's test record
    expect(await services.audit.list()).toEqual([
      { path: "cfg/", type: "mem", description: "", options: {}, local: false },
    ]);
    await store.seal();
    for (const k of init.keys) await store.unseal(k);
    await waitActive(store);
    await services.setup();
    // The past term's device was closed; the new term's was opened by setup(), with no request yet.
    expect(opened.map((d) => d.closed)).toEqual([true, false]);
    await services.audit.close();
    expect(opened.map((d) => d.closed)).toEqual([true, true]);
  });
});

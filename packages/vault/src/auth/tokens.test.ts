import { MemoryBackend } from "@bulwark/storage-memory";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { GatedBackend } from "../../test/support/gated-backend.js";
import { randomBase62 } from "../ids.js";
import { hashSecret, TOKEN_LENGTH } from "./token-id.js";
import { SYSTEM_MAX_TTL_S, TokenError, TokenStore } from "./tokens.js";

async function allValues(storage: MemoryBackend): Promise<string> {
  const out: string[] = [];
  const walk = async (prefix: string) => {
    for (const n of await storage.list(prefix)) {
      if (n.endsWith("/")) await walk(prefix + n);
      else {
        out.push(prefix + n);
        out.push(new TextDecoder().decode((await storage.get(prefix + n))?.value));
      }
    }
  };
  await walk("");
  return out.join("\n");
}

function clock(start = 1_700_000_000_000) {
  let now = start;
  return { now: () => now, advance: (ms: number) => (now += ms) };
}

describe("token ids", () => {
  it("are hvs. + 24 base62 characters", () => {
    const store = new TokenStore(new MemoryBackend());
    return store.createRoot().then(({ token }) => {
      expect(token).toMatch(/^hvs\.[0-9A-Za-z]{24}$/);
      expect(token.length).toBe(TOKEN_LENGTH);
    });
  });

  it("randomBase62 gives only base62 characters of the asked length", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 64 }), (n) => {
        expect(randomBase62(n)).toMatch(new RegExp(`^[0-9A-Za-z]{${n}}$`));
      }),
    );
  });
});

describe("TokenStore", () => {
  it("stores tokens only as their SHA-256 hash", async () => {
    const storage = new MemoryBackend();
    const tokens = new TokenStore(storage);
    const { token, entry } = await tokens.createRoot();
    const child = await tokens.create(entry, { policies: ["app"] }, { sudo: false });
    const dump = await allValues(storage);
    expect(dump).not.toContain(token);
    expect(dump).not.toContain(child.token);
    expect(dump).toContain(hashSecret(token));
  });

  it("looks up, renews and revokes a token", async () => {
    const c = clock();
    const tokens = new TokenStore(new MemoryBackend(), { now: c.now, cacheMs: 0 });
    const root = await tokens.createRoot();
    const t = await tokens.create(root.entry, { policies: ["app"], ttl: 60 }, { sudo: false });
    expect(t.entry.policies).toEqual(["app", "default"]);
    expect((await tokens.lookup(t.token))?.accessor).toBe(t.entry.accessor);
    c.advance(30_000);
    const r = await tokens.renew(t.entry, 120);
    expect(r.entry.expire_time).toBe(c.now() + 120_000);
    await tokens.revoke(t.entry.hash);
    expect(await tokens.lookup(t.token)).toBeUndefined();
    expect(await tokens.lookupAccessor(t.entry.accessor)).toBeUndefined();
  });

  it("refuses an expired token and deletes it", async () => {
    const c = clock();
    const storage = new MemoryBackend();
    const tokens = new TokenStore(storage, { now: c.now, cacheMs: 0 });
    const root = await tokens.createRoot();
    const t = await tokens.create(root.entry, { ttl: 10 }, { sudo: false });
    c.advance(9_999);
    expect(await tokens.authenticate(t.token)).toBeDefined();
    c.advance(2);
    expect(await tokens.authenticate(t.token)).toBeUndefined();
    expect(await storage.get(`sys/token/id/${t.entry.hash}`)).toBeUndefined();
  });

  it("defaults the TTL to 768h and caps it with explicit_max_ttl", async () => {
    const tokens = new TokenStore(new MemoryBackend());
    const root = await tokens.createRoot();
    expect((await tokens.create(root.entry, { policies: ["a"] }, { sudo: false })).entry.creation_ttl).toBe(
      SYSTEM_MAX_TTL_S,
    );
    expect(
      (await tokens.create(root.entry, { ttl: 3600, explicitMaxTtl: 60 }, { sudo: false })).entry
        .creation_ttl,
    ).toBe(60);
  });

  it("a period above the system max TTL (768h) is capped to it, at creation and at each renewal", async () => {
    const c = clock();
    const tokens = new TokenStore(new MemoryBackend(), { now: c.now, cacheMs: 0 });
    const root = await tokens.createRoot();
    const t = await tokens.create(root.entry, { period: 1000 * 3600 }, { sudo: true });
    expect(t.entry.creation_ttl).toBe(SYSTEM_MAX_TTL_S);
    expect(t.entry.expire_time).toBe(c.now() + SYSTEM_MAX_TTL_S * 1000);
    expect(t.warnings.join(" ")).toMatch(/period/);
    c.advance(3600_000);
    const r = await tokens.renew(t.entry);
    expect(r.entry.expire_time).toBe(c.now() + SYSTEM_MAX_TTL_S * 1000);
    // Periodic tokens still have no overall maximum: renewing again later keeps going.
    c.advance(SYSTEM_MAX_TTL_S * 1000 - 1000);
    expect((await tokens.renew(t.entry)).entry.expire_time).toBe(c.now() + SYSTEM_MAX_TTL_S * 1000);
  });

  it("display names are sanitised as Vault does ('token-' + name, [^a-zA-Z0-9-] → '-', one trailing '-' dropped)", async () => {
    const tokens = new TokenStore(new MemoryBackend());
    const root = await tokens.createRoot();
    const dn = async (displayName: string) =>
      (await tokens.create(root.entry, { displayName }, { sudo: false })).entry.display_name;
    expect(await dn("ci")).toBe("token-ci");
    expect(await dn("my_app.v2")).toBe("token-my-app-v2");
    expect(await dn("deploy!")).toBe("token-deploy");
    expect(await dn("a b")).toBe("token-a-b");
    expect(await dn("")).toBe("token");
  });

  it("renew never passes explicit_max_ttl", async () => {
    const c = clock();
    const tokens = new TokenStore(new MemoryBackend(), { now: c.now, cacheMs: 0 });
    const root = await tokens.createRoot();
    const t = await tokens.create(root.entry, { ttl: 30, explicitMaxTtl: 50 }, { sudo: false });
    c.advance(20_000);
    const r = await tokens.renew(t.entry, 100);
    expect(r.entry.expire_time).toBe(t.entry.creation_time * 1000 + 50_000);
    expect(r.warnings.length).toBeGreaterThan(0);
  });

  it("revoking a parent revokes its children; revoke-orphan keeps them", async () => {
    const tokens = new TokenStore(new MemoryBackend(), { cacheMs: 0 });
    const root = await tokens.createRoot();
    const parent = await tokens.create(root.entry, { policies: ["a"] }, { sudo: false });
    const child = await tokens.create(parent.entry, { policies: ["a"] }, { sudo: false });
    const grandchild = await tokens.create(child.entry, {}, { sudo: false });
    await tokens.revoke(parent.entry.hash);
    for (const t of [parent, child, grandchild]) expect(await tokens.lookup(t.token)).toBeUndefined();

    const p2 = await tokens.create(root.entry, { policies: ["a"] }, { sudo: false });
    const c2 = await tokens.create(p2.entry, {}, { sudo: false });
    await tokens.revokeOrphan(p2.entry.hash);
    expect(await tokens.lookup(p2.token)).toBeUndefined();
    expect((await tokens.lookup(c2.token))?.parent).toBe("");
  });

  it("enforces Vault's creation rules", async () => {
    const tokens = new TokenStore(new MemoryBackend());
    const root = await tokens.createRoot();
    const app = await tokens.create(root.entry, { policies: ["app"] }, { sudo: false });
    await expect(tokens.create(app.entry, { policies: ["admin"] }, { sudo: false })).rejects.toThrow(
      /subset of parent/,
    );
    await expect(tokens.create(app.entry, { policies: ["root"] }, { sudo: true })).rejects.toThrow(
      /root token/,
    );
    await expect(tokens.create(app.entry, { noParent: true }, { sudo: false })).rejects.toThrow(TokenError);
    await expect(tokens.create(app.entry, { id: "custom" }, { sudo: false })).rejects.toThrow(/sudo/);
    expect(
      (await tokens.create(app.entry, { noParent: true }, { sudo: false, orphanPath: true })).entry.parent,
    ).toBe("");
    const custom = await tokens.create(root.entry, { id: "my-custom-id" }, { sudo: false });
    expect(custom.token).toBe("my-custom-id");
    await expect(tokens.create(root.entry, { id: "my-custom-id" }, { sudo: false })).rejects.toThrow(
      /duplicate/,
    );
    const noDefault = await tokens.create(
      root.entry,
      { policies: ["a"], noDefaultPolicy: true },
      { sudo: false },
    );
    expect(noDefault.entry.policies).toEqual(["a"]);
  });

  it("two callers creating the same custom id at once: one token, the other a duplicate error", async () => {
    const storage = new MemoryBackend();
    const tokens = new TokenStore(storage);
    const root = await tokens.createRoot();
    const results = await Promise.allSettled([
      tokens.create(root.entry, { id: "same-id", policies: ["a"] }, { sudo: false }),
      tokens.create(root.entry, { id: "same-id", policies: ["b"], noParent: true }, { sudo: false }),
    ]);
    expect(results.filter((r) => r.status === "fulfilled")).toHaveLength(1);
    const failed = results.find((r) => r.status === "rejected") as PromiseRejectedResult;
    expect(String(failed.reason)).toMatch(/duplicate ID/);
    const winner = (
      results.find((r) => r.status === "fulfilled") as PromiseFulfilledResult<{ entry: { accessor: string } }>
    ).value;
    // The stored token and its accessor index belong to the same (winning) creation.
    expect((await tokens.lookup("same-id"))?.accessor).toBe(winner.entry.accessor);
    expect((await storage.list("sys/token/accessor/")).length).toBe(2); // root's and the winner's
  });

  it("a child gets the default policy only as Vault gives it (never from a parent without it)", async () => {
    const tokens = new TokenStore(new MemoryBackend());
    const root = await tokens.createRoot();
    const pols = async (parent: { policies: string[] } & object, req: object, sudo = false) =>
      (await tokens.create(parent as never, req, { sudo })).entry.policies;
    const bare = (
      await tokens.create(root.entry, { policies: ["a"], noDefaultPolicy: true }, { sudo: false })
    ).entry;
    // Inherited policies are the parent's, nothing added.
    expect(await pols(bare, {})).toEqual(["a"]);
    expect(await pols(bare, { policies: [] })).toEqual(["a"]);
    expect(await pols(bare, {}, true)).toEqual(["a"]);
    // Named policies: default is added only when the parent has it (or the caller has sudo).
    expect(await pols(bare, { policies: ["a"] })).toEqual(["a"]);
    expect(await pols(bare, { policies: ["b"] }, true)).toEqual(["b", "default"]);
    // Asking for default explicitly is a policy the parent must hold.
    await expect(tokens.create(bare, { policies: ["default"] }, { sudo: false })).rejects.toThrow(
      /subset of parent/,
    );
    await expect(tokens.create(bare, { policies: ["a", "default"] }, { sudo: false })).rejects.toThrow(
      /subset of parent/,
    );
    const withDefault = (await tokens.create(root.entry, { policies: ["a"] }, { sudo: false })).entry;
    expect(withDefault.policies).toEqual(["a", "default"]);
    expect(await pols(withDefault, { policies: ["a"] })).toEqual(["a", "default"]);
    expect(await pols(withDefault, { policies: ["a"], noDefaultPolicy: true })).toEqual(["a"]);
    expect(await pols(withDefault, { noDefaultPolicy: true })).toEqual(["a"]);
    expect(await pols(root.entry, {})).toEqual(["root"]);
  });

  it("a child never outlives its parent's current expiry", async () => {
    const c = clock();
    const tokens = new TokenStore(new MemoryBackend(), { now: c.now });
    const root = await tokens.createRoot();
    const parent = await tokens.create(root.entry, { ttl: 100 }, { sudo: false });
    const child = await tokens.create(parent.entry, { ttl: 1000 }, { sudo: false });
    expect(child.entry.expire_time).toBe(parent.entry.expire_time);
  });

  it("limited-use tokens are revoked after their last use", async () => {
    const tokens = new TokenStore(new MemoryBackend());
    const root = await tokens.createRoot();
    const t = await tokens.create(root.entry, { numUses: 2 }, { sudo: false });
    expect((await tokens.authenticate(t.token))?.num_uses).toBe(2);
    expect((await tokens.authenticate(t.token))?.num_uses).toBe(1);
    expect(await tokens.authenticate(t.token)).toBeUndefined();
  });

  it("root tokens are not renewable", async () => {
    const tokens = new TokenStore(new MemoryBackend());
    const root = await tokens.createRoot();
    await expect(tokens.renew(root.entry)).rejects.toThrow(/not renewable/);
  });

  it("junk token strings are refused without a lookup", async () => {
    const tokens = new TokenStore(new MemoryBackend());
    expect(await tokens.lookup("")).toBeUndefined();
    expect(await tokens.lookup("x".repeat(300))).toBeUndefined();
    expect(await tokens.lookup("bad token")).toBeUndefined();
  });
});

describe("TokenStore security", () => {
  it("concurrent requests never use a limited-use token more times than allowed", async () => {
    const tokens = new TokenStore(new MemoryBackend());
    const root = await tokens.createRoot();
    for (const uses of [1, 3]) {
      const t = await tokens.create(root.entry, { numUses: uses }, { sudo: false });
      const results = await Promise.all(Array.from({ length: 10 }, () => tokens.authenticate(t.token)));
      expect(results.filter((r) => r !== undefined)).toHaveLength(uses);
      expect(await tokens.lookup(t.token)).toBeUndefined();
    }
  });

  it("a limited-use token cannot create child tokens (Vault's rule)", async () => {
    const tokens = new TokenStore(new MemoryBackend());
    const root = await tokens.createRoot();
    const t = await tokens.create(root.entry, { numUses: 1, policies: ["app"] }, { sudo: false });
    const entry = await tokens.authenticate(t.token);
    expect(entry).toBeDefined();
    await expect(
      tokens.create(entry as NonNullable<typeof entry>, { policies: ["app"] }, { sudo: false }),
    ).rejects.toThrow(/restricted use token cannot generate child tokens/);
  });

  it("a lookup in flight during a revoke does not put the revoked token back in the cache", async () => {
    const storage = new GatedBackend();
    const tokens = new TokenStore(storage, { cacheMs: 60_000 });
    const root = await tokens.createRoot();
    const t = await tokens.create(root.entry, { policies: ["app"] }, { sudo: false });
    const release = storage.hold(`sys/token/id/${hashSecret(t.token)}`);
    const inFlight = tokens.lookup(t.token);
    await new Promise((r) => setTimeout(r, 10));
    await tokens.revoke(t.entry.hash);
    release();
    await inFlight;
    expect(await tokens.lookup(t.token)).toBeUndefined();
    expect(await tokens.authenticate(t.token)).toBeUndefined();
  });

  it("renew works on the stored entry: it neither refills spent uses nor revives a revoked token", async () => {
    const tokens = new TokenStore(new MemoryBackend(), { cacheMs: 0 });
    const root = await tokens.createRoot();
    const limited = await tokens.create(root.entry, { numUses: 3, policies: ["app"] }, { sudo: false });
    const seen = await tokens.authenticate(limited.token);
    await tokens.renew(seen as NonNullable<typeof seen>);
    expect((await tokens.lookup(limited.token))?.num_uses).toBe(2);

    const t = await tokens.create(root.entry, { policies: ["app"] }, { sudo: false });
    const stale = (await tokens.lookup(t.token)) as NonNullable<Awaited<ReturnType<typeof tokens.lookup>>>;
    await tokens.revoke(t.entry.hash);
    await expect(tokens.renew(stale)).rejects.toThrow(TokenError);
    expect(await tokens.lookup(t.token)).toBeUndefined();
  });

  it("renewing a child never takes it past its parent's expiry", async () => {
    const c = clock();
    const tokens = new TokenStore(new MemoryBackend(), { now: c.now, cacheMs: 0 });
    const root = await tokens.createRoot();
    const parent = await tokens.create(root.entry, { ttl: 100, policies: ["app"] }, { sudo: false });
    const child = await tokens.create(parent.entry, { ttl: 100 }, { sudo: false });
    c.advance(90_000);
    const renewed = await tokens.renew(child.entry, 3600);
    expect(renewed.entry.expire_time).toBeLessThanOrEqual(parent.entry.expire_time);
    c.advance(20_000);
    expect(await tokens.lookup(child.token)).toBeUndefined();
  });

  it("a child created while its parent is being revoked does not survive the parent", async () => {
    const tokens = new TokenStore(new MemoryBackend(), { cacheMs: 0 });
    const root = await tokens.createRoot();
    for (let i = 0; i < 20; i++) {
      const parent = await tokens.create(root.entry, { policies: ["app"] }, { sudo: false });
      const [, child] = await Promise.allSettled([
        tokens.revoke(parent.entry.hash),
        tokens.create(parent.entry, { policies: ["app"] }, { sudo: false }),
      ]);
      if (child.status === "fulfilled") expect(await tokens.lookup(child.value.token)).toBeUndefined();
    }
  });
});

import { MemoryBackend } from "@bulwark/storage-memory";
import { describe, expect, it } from "vitest";
import { PolicyStore } from "./policy-store.js";
import { TokenStore } from "./tokens.js";

// Two nodes on one storage: `a` caches; `b` (the active node while `a` was away) writes.
describe("token and policy caches follow the store's active term", () => {
  it("a policy replaced by another node applies at once when this node's term changes", async () => {
    const storage = new MemoryBackend();
    let term: number | undefined = 1;
    const a = new PolicyStore(storage, { activeTerm: () => term, cacheTtlMs: 60_000 });
    const b = new PolicyStore(storage);
    await b.write("app", 'path "secret/*" { capabilities = ["read"] }');
    expect((await a.acl(["app"])).allows("secret/x", "read")).toBe(true);
    await b.write("app", 'path "secret/*" { capabilities = ["deny"] }');
    // Same term: the cached policy may still be used (within the cache bound).
    expect((await a.acl(["app"])).allows("secret/x", "read")).toBe(true);
    term = undefined; // a steps down …
    expect((await a.acl(["app"])).allows("secret/x", "read")).toBe(false);
    await b.write("app", 'path "secret/*" { capabilities = ["list"] }');
    term = 2; // … and is active again: nothing from before is reused
    expect((await a.acl(["app"])).allows("secret/x", "read")).toBe(false);
    expect((await a.acl(["app"])).allows("secret/x", "list")).toBe(true);
  });

  it("a token revoked by another node is refused at once when this node's term changes", async () => {
    const storage = new MemoryBackend();
    let term: number | undefined = 1;
    const a = new TokenStore(storage, { activeTerm: () => term, cacheMs: 60_000 });
    const b = new TokenStore(storage);
    const { token, entry } = await b.createRoot();
    expect(await a.authenticate(token)).toBeDefined();
    await b.revoke(entry.hash);
    expect(await a.authenticate(token)).toBeDefined(); // cached in this term
    term = 2;
    expect(await a.authenticate(token)).toBeUndefined();
  });
});

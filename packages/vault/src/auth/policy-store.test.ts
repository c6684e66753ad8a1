import { describe, expect, it } from "vitest";
import { GatedBackend } from "../../test/support/gated-backend.js";
import { PolicyStore } from "./policy-store.js";

describe("PolicyStore caches", () => {
  it("a policy read in flight during a write does not put the old document back in the caches", async () => {
    const storage = new GatedBackend();
    const policies = new PolicyStore(storage, { cacheTtlMs: 60_000 });
    await policies.write("app", 'path "secret/*" { capabilities = ["read"] }');
    policies.invalidate();
    const release = storage.hold("sys/policy/app");
    const inFlight = policies.acl(["app"]); // reads the old document, answers later
    await new Promise((r) => setTimeout(r, 5));
    await policies.write("app", 'path "secret/*" { capabilities = ["deny"] }');
    release();
    // The request that started before the write may see the old document …
    await inFlight;
    // … but every later one sees the new one at once, on this node.
    expect((await policies.acl(["app"])).allows("secret/x", "read")).toBe(false);
    expect((await policies.acl(["app", "default"])).allows("secret/x", "read")).toBe(false);
  });
});

import { MemoryBackend } from "@bulwark/storage-memory";
import { describe, expect, it } from "vitest";
import { PolicyStore } from "./policy-store.js";

/** A backend whose next `get` of `key` reads at once but answers only after `release()`. */
class GatedBackend extends MemoryBackend {
  #gate: { key: string; opened: Promise<void> } | undefined;
  hold(key: string): () => void {
    let release = () => {};
    const opened = new Promise<void>((r) => {
      release = r;
    });
    this.#gate = { key, opened };
    return release;
  }
  override async get(key: string) {
    const value = await super.get(key);
    const gate = this.#gate;
    if (gate !== undefined && gate.key === key) {
      this.#gate = undefined;
      await gate.opened;
    }
    return value;
  }
}

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

import { readFileSync } from "node:fs";
import { MemoryBackend } from "@bulwark/storage-memory";
import { describe, expect, it } from "vitest";
import { GatedBackend } from "../../test/support/gated-backend.js";
import { DEFAULT_POLICY, decodePolicyRecord, PolicyStore, RESPONSE_WRAPPING_POLICY } from "./policy-store.js";

const enc = new TextEncoder();
const dec = new TextDecoder();
/** The records a fresh OpenBao 2.6.2 stored (sys/raw), keyed by storage path. */
const OPENBAO_BUILTINS = (
  JSON.parse(readFileSync(new URL("./fixtures/policies-builtin.json", import.meta.url), "utf8")) as {
    records: Record<string, string>;
  }
).records;

async function stored(storage: MemoryBackend, key: string): Promise<Record<string, unknown> | undefined> {
  const e = await storage.get(key);
  return e === undefined ? undefined : (JSON.parse(dec.decode(e.value)) as Record<string, unknown>);
}

describe("PolicyStore.setup (OpenBao's LoadDefaultPolicies)", () => {
  it("the built-in texts are OpenBao 2.6.2's byte for byte", () => {
    const def = JSON.parse(OPENBAO_BUILTINS["sys/policy/default"] as string) as { Raw: string };
    const rw = JSON.parse(OPENBAO_BUILTINS["sys/policy/response-wrapping"] as string) as { Raw: string };
    expect(DEFAULT_POLICY).toBe(def.Raw);
    expect(RESPONSE_WRAPPING_POLICY).toBe(rw.Raw);
  });

  it("on empty storage writes default and response-wrapping as OpenBao does (same fields, same order), never root", async () => {
    const storage = new MemoryBackend();
    await new PolicyStore(storage).setup();
    expect(await storage.list("sys/policy/")).toEqual(["default", "response-wrapping"]);
    for (const name of ["default", "response-wrapping"]) {
      const ours = (await stored(storage, `sys/policy/${name}`)) as Record<string, unknown>;
      const theirs = JSON.parse(OPENBAO_BUILTINS[`sys/policy/${name}`] as string) as Record<string, unknown>;
      expect(Object.keys(ours)).toEqual(Object.keys(theirs));
      // Everything but the write time is what OpenBao stored.
      expect({ ...ours, Modified: "" }).toEqual({ ...theirs, Modified: "" });
      expect(Date.now() - Date.parse(ours.Modified as string)).toBeLessThan(60_000);
    }
  });

  it("leaves OpenBao's own built-in records byte for byte as they are", async () => {
    const storage = new MemoryBackend();
    for (const [key, value] of Object.entries(OPENBAO_BUILTINS))
      await storage.put({ key, value: enc.encode(value) });
    await new PolicyStore(storage).setup();
    for (const [key, value] of Object.entries(OPENBAO_BUILTINS))
      expect(dec.decode((await storage.get(key))?.value)).toBe(value);
  });

  it("never overwrites an edited default; puts back a changed response-wrapping with DataVersion + 1", async () => {
    const storage = new MemoryBackend();
    const policies = new PolicyStore(storage);
    await policies.setup();
    await policies.write("default", 'path "mine/*" { capabilities = ["read"] }');
    const rw = JSON.parse(OPENBAO_BUILTINS["sys/policy/response-wrapping"] as string) as Record<
      string,
      unknown
    >;
    await storage.put({
      key: "sys/policy/response-wrapping",
      value: enc.encode(
        JSON.stringify({ ...rw, DataVersion: 3, Raw: 'path "x" { capabilities = ["read"] }' }),
      ),
    });
    await new PolicyStore(storage).setup();
    const def = await stored(storage, "sys/policy/default");
    expect(def?.Raw).toBe('path "mine/*" { capabilities = ["read"] }');
    expect(def?.DataVersion).toBe(2);
    const back = decodePolicyRecord(
      "response-wrapping",
      (await storage.get("sys/policy/response-wrapping"))?.value as Uint8Array,
    );
    expect(back.raw).toBe(RESPONSE_WRAPPING_POLICY);
    expect(back.dataVersion).toBe(4);
  });
});

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

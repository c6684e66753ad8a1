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
    const policies = new PolicyStore(storage);
    // Nothing is synthesised: before setup() there is no default, as in storage OpenBao never set up.
    expect(await policies.info("default")).toBeUndefined();
    expect(await policies.list()).toEqual(["root"]);
    await policies.setup();
    expect(await storage.list("sys/policy/")).toEqual(["default", "response-wrapping"]);
    // response-wrapping is stored but not listed (OpenBao's non-assignable policies).
    expect(await policies.list()).toEqual(["default", "root"]);
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

interface OpenBaoVector {
  name: string;
  record: string;
  read: Record<string, unknown>;
  capabilities: Record<string, string[]> | null;
}
const fixture = <T>(name: string): T =>
  JSON.parse(readFileSync(new URL(`./fixtures/${name}`, import.meta.url), "utf8")) as T;
const OPENBAO = fixture<{ records: OpenBaoVector[] }>("policies-openbao.json").records;
const LEGACY = fixture<{ records: Record<string, string> }>("policies-legacy-shapes.json").records;

async function storeWith(
  records: Record<string, string>,
): Promise<{ storage: MemoryBackend; policies: PolicyStore }> {
  const storage = new MemoryBackend();
  for (const [name, value] of Object.entries(records))
    await storage.put({ key: `sys/policy/${name}`, value: enc.encode(value) });
  return { storage, policies: new PolicyStore(storage) };
}

describe("policy records OpenBao 2.6.2 wrote", () => {
  it("read as OpenBao reads them (sys/policies/acl fields) and list as OpenBao lists them", async () => {
    expect(OPENBAO.length).toBeGreaterThan(10);
    const { policies } = await storeWith(Object.fromEntries(OPENBAO.map((v) => [v.name, v.record])));
    for (const v of OPENBAO) {
      const p = await policies.info(v.name);
      expect(p, v.name).toBeDefined();
      const answer: Record<string, unknown> = {
        allow_slashes_in_identity_templates: p?.allowSlashesInIdentityTemplates,
        allow_wildcards_in_identity_templates: p?.allowWildcardsInIdentityTemplates,
        cas_required: p?.casRequired,
        modified: p?.modified,
        name: p?.name,
        policy: p?.raw,
        version: p?.version,
      };
      if (p?.expirationText !== undefined) answer.expiration = p.expirationText;
      expect(answer, v.name).toEqual(v.read);
    }
    // Stored names level by level (team/app after the top level), response-wrapping left out, root last.
    expect(await policies.list()).toEqual([
      "default",
      "v-cas",
      "v-deny",
      "v-expiring-path",
      "v-json",
      "v-legacy",
      "v-params",
      "v-reader",
      "v-templated",
      "v-ttl",
      "v-upper",
      "team/app",
      "root",
    ]);
  });

  it("are enforced as OpenBao enforced them, but a policy with allowed_parameters grants nothing", async () => {
    const { policies } = await storeWith(Object.fromEntries(OPENBAO.map((v) => [v.name, v.record])));
    let compared = 0;
    for (const v of OPENBAO) {
      if (v.capabilities === null) continue;
      const acl = await policies.acl([v.name]);
      for (const [path, want] of Object.entries(v.capabilities)) {
        // Bulwark cannot enforce parameter constraints: the whole policy grants nothing (not an error).
        const expected = v.name === "v-params" ? ["deny"] : want;
        expect(acl.describe(path), `${v.name} on ${path}`).toEqual(expected);
        compared++;
      }
    }
    expect(compared).toBeGreaterThan(250);
    // OpenBao did grant through v-params: the difference is Bulwark's refusal, not a misreading.
    expect(OPENBAO.find((v) => v.name === "v-params")?.capabilities?.["kv2/data/q"]).toEqual(["read"]);
  });

  it("a Bulwark write continues OpenBao's DataVersion and honours its CASRequired", async () => {
    const { storage, policies } = await storeWith(Object.fromEntries(OPENBAO.map((v) => [v.name, v.record])));
    const text = 'path "kv2/data/a" { capabilities = ["read"] }';
    await expect(policies.write("v-cas", text)).rejects.toThrow(
      "check-and-set parameter required for this call",
    );
    await expect(policies.write("v-cas", text, { cas: 1 })).rejects.toThrow(
      "check-and-set parameter did not match the current version",
    );
    await expect(policies.write("v-cas", text, { cas: -1 })).rejects.toThrow(
      "check-and-set parameter set to -1 on existing entry",
    );
    await policies.write("v-cas", text, { cas: 2 });
    const back = await stored(storage, "sys/policy/v-cas");
    expect(back).toMatchObject({ DataVersion: 3, CASRequired: false, Raw: text, Templated: false });
    await policies.write("brand-new", text, { cas: -1, casRequired: true });
    expect((await policies.info("brand-new"))?.version).toBe(1);
    await expect(policies.write("brand-new", text)).rejects.toThrow("check-and-set parameter required");
  });
});

describe("policy records of Vault and older OpenBao", () => {
  it("read with DataVersion 0 when they have none, Templated as stored", async () => {
    const { policies } = await storeWith(LEGACY);
    const v = await policies.info("vault-or-openbao-2.0");
    expect(v).toMatchObject({ version: 0, casRequired: false, modified: undefined, expiration: undefined });
    expect((await policies.acl(["vault-or-openbao-2.0"])).describe("kv2/data/x")).toEqual(["list", "read"]);
    const t = await policies.acl(["vault-templated"]);
    expect(t.describe("kv2/data/common")).toEqual(["read"]);
    expect(t.describe("kv2/data/abc/x")).toEqual(["deny"]);
    expect(await policies.info("openbao-2.5")).toMatchObject({
      version: 3,
      casRequired: true,
      modified: "2025-11-25T10:00:00.123456789Z",
    });
  });

  it("a rewrite keeps the fields this version does not know (Vault's Version) and counts on from 0", async () => {
    const { storage, policies } = await storeWith(LEGACY);
    await policies.write("vault-or-openbao-2.0", 'path "kv2/data/*" { capabilities = ["read"] }', { cas: 0 });
    const back = (await stored(storage, "sys/policy/vault-or-openbao-2.0")) as Record<string, unknown>;
    expect(Object.keys(back)).toEqual([
      "DataVersion",
      "CASRequired",
      "Raw",
      "Type",
      "Templated",
      "Expiration",
      "Modified",
      "AllowWildcardsInIdentityTemplates",
      "AllowSlashesInIdentityTemplates",
      "Version",
    ]);
    expect(back).toMatchObject({ DataVersion: 1, Version: 2, Expiration: "0001-01-01T00:00:00Z" });
  });
});

describe("policy records Bulwark writes", () => {
  it("carry Templated, the identity template flags and an expiration in OpenBao's shape", async () => {
    const storage = new MemoryBackend();
    const policies = new PolicyStore(storage);
    await policies.write("t", 'path "kv/{{identity.entity.name}}/*" { capabilities = ["read"] }', {
      allowWildcardsInIdentityTemplates: true,
      expiration: new Date("2099-01-02T03:04:05.600Z"),
    });
    expect(await stored(storage, "sys/policy/t")).toMatchObject({
      DataVersion: 1,
      Templated: true,
      Expiration: "2099-01-02T03:04:05.6Z",
      AllowWildcardsInIdentityTemplates: true,
      AllowSlashesInIdentityTemplates: false,
    });
  });

  it("keeps OpenBao's ns Expiration text while the time is unchanged, and writes Go's form for a new one", async () => {
    const storage = new MemoryBackend();
    const rec = {
      ...JSON.parse(OPENBAO_BUILTINS["sys/policy/response-wrapping"] as string),
      Expiration: "2099-01-01T00:00:00.123456789Z",
    };
    await storage.put({ key: "sys/policy/exp", value: enc.encode(JSON.stringify(rec)) });
    const policies = new PolicyStore(storage);
    const info = await policies.info("exp");
    expect(info?.expirationText).toBe("2099-01-01T00:00:00.123456789Z");
    await policies.write("exp", 'path "a" {}', { expiration: info?.expiration as Date });
    expect((await stored(storage, "sys/policy/exp"))?.Expiration).toBe("2099-01-01T00:00:00.123456789Z");
    await policies.write("exp", 'path "a" {}', { expiration: new Date("2099-01-01T00:00:01Z") });
    expect((await stored(storage, "sys/policy/exp"))?.Expiration).toBe("2099-01-01T00:00:01Z");
  });

  it("an expired policy is gone (read, ACL) while its record stays until rewritten, as in OpenBao", async () => {
    const storage = new MemoryBackend();
    const policies = new PolicyStore(storage, { cacheTtlMs: 60_000 });
    await policies.write("short", 'path "kv/*" { capabilities = ["read"] }', {
      expiration: new Date(Date.now() + 150),
    });
    expect((await policies.acl(["short"])).allows("kv/x", "read")).toBe(true);
    await new Promise((r) => setTimeout(r, 200));
    // The caches do not outlive the expiration.
    expect((await policies.acl(["short"])).allows("kv/x", "read")).toBe(false);
    expect(await policies.info("short")).toBeUndefined();
    // A later write counts on from the expired record's version, as OpenBao's CAS check does.
    await policies.write("short", 'path "kv/*" { capabilities = ["read"] }');
    expect((await policies.info("short"))?.version).toBe(2);
  });

  it("refuses what OpenBao refuses for the built-ins", async () => {
    const policies = new PolicyStore(new MemoryBackend());
    await expect(policies.write("root", 'path "a" {}')).rejects.toThrow('cannot update "root" policy');
    await expect(policies.write("Response-Wrapping", 'path "a" {}')).rejects.toThrow(
      'cannot update "response-wrapping" policy',
    );
    await expect(policies.delete("root")).rejects.toThrow('cannot delete "root" policy');
    await expect(policies.delete("default")).rejects.toThrow("cannot delete default policy");
    await expect(policies.delete("response-wrapping")).rejects.toThrow(
      'cannot delete "response-wrapping" policy',
    );
    await expect(policies.write("a..b", 'path "a" {}')).rejects.toThrow(/must not contain '\.\.'/);
  });

  it("a stored record that is not a policy record is refused naming the field", () => {
    expect(() => decodePolicyRecord("x", enc.encode('{"Raw":1}'))).toThrow(
      "sys/policy/x: field Raw must be a string, got 1",
    );
    expect(() => decodePolicyRecord("x", enc.encode('{"Raw":"","Type":1}'))).toThrow(
      /only ACL policies exist/,
    );
    expect(() => decodePolicyRecord("x", enc.encode("nope"))).toThrow(/invalid JSON/);
  });
});

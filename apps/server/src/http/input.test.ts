/**
 * The bad-input matrix: every route that takes a body, fed malformed JSON, an oversized body, a
 * body of the wrong type, fields of the wrong type and unknown fields. Each must answer with the
 * right status and Vault's error shape, and the raw storage must be byte-for-byte unchanged.
 */
import type { MemoryBackend } from "@bulwark/storage-memory";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { initAndUnseal, type TestApp, testApp } from "../../test/helpers/app.js";

const LIMIT = 64 * 1024;
let t: TestApp;
let root: string;

async function snapshot(storage: MemoryBackend): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const walk = async (prefix: string) => {
    for (const n of await storage.list(prefix)) {
      if (n.endsWith("/")) await walk(prefix + n);
      else out.set(prefix + n, Buffer.from((await storage.get(prefix + n))?.value ?? []).toString("hex"));
    }
  };
  await walk("");
  return out;
}

/** [method, url, a body with a field of the wrong type (or null when the route has no fields)]. */
const ROUTES: Array<[string, string, Record<string, unknown> | null, { unknownOk?: boolean }?]> = [
  ["PUT", "/v1/sys/init", { secret_shares: "five" }],
  ["PUT", "/v1/sys/unseal", { key: 5 }],
  ["PUT", "/v1/sys/seal", null],
  ["PUT", "/v1/sys/rotate", null],
  ["POST", "/v1/sys/rotate/config", { max_operations: "many" }],
  ["PUT", "/v1/sys/rekey/init", { secret_shares: [1] }],
  ["PUT", "/v1/sys/rekey/update", { key: true, nonce: "n" }],
  ["PUT", "/v1/sys/rekey-recovery-key/init", { secret_threshold: {} }],
  ["PUT", "/v1/sys/rekey-recovery-key/update", { key: 1, nonce: 2 }],
  ["PUT", "/v1/sys/generate-root/attempt", { otp: 42 }],
  ["PUT", "/v1/sys/generate-root/update", { key: [], nonce: "n" }],
  ["POST", "/v1/sys/mounts/newmount", { type: "kv", seal_wrap: "sometimes" }],
  ["POST", "/v1/sys/mounts/secret/tune", { default_lease_ttl: "forever" }],
  ["PUT", "/v1/sys/policy/newpol", { policy: 7 }],
  ["PUT", "/v1/sys/policies/acl/newpol", { policy: ["x"] }],
  ["POST", "/v1/sys/capabilities-self", { paths: 3 }],
  ["POST", "/v1/sys/capabilities", { token: 3, paths: ["a"] }],
  ["POST", "/v1/auth/token/create", { ttl: "soon" }],
  ["POST", "/v1/auth/token/create-orphan", { policies: 9 }],
  ["POST", "/v1/auth/token/lookup", { token: 1 }],
  ["POST", "/v1/auth/token/lookup-accessor", { accessor: false }],
  ["POST", "/v1/auth/token/renew", { token: "t", increment: "later" }],
  ["POST", "/v1/auth/token/renew-self", { increment: [] }],
  ["POST", "/v1/auth/token/renew-accessor", { accessor: 1 }],
  ["POST", "/v1/auth/token/revoke", { token: {} }],
  ["POST", "/v1/auth/token/revoke-self", { token: 1 }],
  ["POST", "/v1/auth/token/revoke-accessor", { accessor: [] }],
  ["POST", "/v1/auth/token/revoke-orphan", { token: 2 }],
  ["PUT", "/v1/kv/item", null, { unknownOk: true }],
  ["POST", "/v1/secret/data/item", { data: "not an object" }],
  ["POST", "/v1/secret/metadata/item", { max_versions: "ten" }],
  ["POST", "/v1/secret/delete/item", { versions: ["one"] }],
  ["POST", "/v1/secret/undelete/item", { versions: "x" }],
  ["POST", "/v1/secret/destroy/item", { versions: [true] }],
  ["POST", "/v1/secret/config", { cas_required: "perhaps" }],
];

beforeAll(async () => {
  t = await testApp({ maxRequestSize: LIMIT });
  root = (await initAndUnseal(t, 1, 1)).root;
  await t.call("POST", "/v1/sys/mounts/secret", {
    token: root,
    body: { type: "kv", options: { version: "2" } },
  });
  await t.call("POST", "/v1/sys/mounts/kv", { token: root, body: { type: "kv" } });
  await t.call("POST", "/v1/secret/data/item", { token: root, body: { data: { a: "1" } } });
  await t.call("PUT", "/v1/kv/item", { token: root, body: { a: "1" } });
});
afterAll(async () => {
  await t.close();
});

describe("bad input on every route: right status, Vault error shape, nothing written", () => {
  it.each(ROUTES)("%s %s", async (method, url, wrongType, opts) => {
    const before = await snapshot(t.storage);
    const expectError = (r: { statusCode: number; json(): unknown }, status: number) => {
      expect(r.statusCode, `${method} ${url}`).toBe(status);
      const body = r.json() as { errors: unknown };
      expect(Array.isArray(body.errors)).toBe(true);
    };
    expectError(await t.call(method, url, { token: root, raw: '{"a": ' }), 400);
    expectError(await t.call(method, url, { token: root, raw: "{'single': 'quotes'}" }), 400);
    expectError(await t.call(method, url, { token: root, body: { huge: "x".repeat(LIMIT + 1) } }), 413);
    expectError(await t.call(method, url, { token: root, body: ["an", "array"] }), 400);
    expectError(await t.call(method, url, { token: root, body: "a string" }), 400);
    expectError(await t.call(method, url, { token: root, raw: '{"__proto__": {"polluted": true}}' }), 400);
    // The same key spelled with JSON escapes is the same key.
    expectError(
      await t.call(method, url, { token: root, raw: '{"\\u005f_proto__": {"polluted": true}}' }),
      400,
    );
    expectError(
      await t.call(method, url, { token: root, raw: '{"data": {"__pro\\u0074o__": {"polluted": true}}}' }),
      400,
    );
    if (wrongType !== null) expectError(await t.call(method, url, { token: root, body: wrongType }), 400);
    if (opts?.unknownOk !== true) {
      const unknown = await t.call(method, url, { token: root, body: { surely_not_a_field: 1 } });
      expectError(unknown, 400);
      expect((unknown.json() as { errors: string[] }).errors[0]).toMatch(
        /unknown field|no data provided|missing/,
      );
    }
    expect(await snapshot(t.storage)).toEqual(before);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it("the store is still unsealed and the root token still works", async () => {
    expect((await t.call("GET", "/v1/sys/seal-status")).json().sealed).toBe(false);
    expect((await t.call("GET", "/v1/secret/data/item", { token: root })).json().data.data).toEqual({
      a: "1",
    });
  });

  it("a body just under the limit is accepted", async () => {
    const r = await t.call("PUT", "/v1/kv/big", { token: root, body: { v: "y".repeat(LIMIT - 100) } });
    expect(r.statusCode).toBe(204);
  });

  it("an empty body counts as no fields; any content type is parsed as JSON (curl -d)", async () => {
    expect((await t.call("PUT", "/v1/sys/rotate", { token: root, raw: "" })).statusCode).toBe(204);
    const r = await t.call("PUT", "/v1/kv/form", {
      token: root,
      raw: '{"a":"b"}',
      headers: { "content-type": "application/x-www-form-urlencoded" },
    });
    expect(r.statusCode).toBe(204);
    expect((await t.call("GET", "/v1/kv/form", { token: root })).json().data).toEqual({ a: "b" });
  });

  it("keys with empty segments and URLs with bad percent-encoding are refused", async () => {
    expect((await t.call("PUT", "/v1/kv/a//b", { token: root, body: { a: "1" } })).statusCode).toBe(400);
    const bad = await t.call("PUT", "/v1/kv/%E0%A4%A", { token: root, body: { a: "1" } });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().errors).toHaveLength(1);
  });

  it("a body nested too deeply is a 400 naming the limit, for kv v1 and v2 alike, and nothing is written", async () => {
    const before = await snapshot(t.storage);
    const deep = `${"[".repeat(10_000)}${"]".repeat(10_000)}`;
    for (const [url, raw] of [
      ["/v1/secret/data/deep", `{"data":{"a":${deep}}}`],
      ["/v1/kv/deep", `{"a":${deep}}`],
    ] as const) {
      const r = await t.call("PUT", url, { token: root, raw });
      expect(r.statusCode, url).toBe(400);
      expect(r.json().errors[0]).toMatch(/nested more than \d+ levels deep/);
    }
    expect(await snapshot(t.storage)).toEqual(before);
    // Nesting well inside the limit still round-trips.
    const ok = `${"[".repeat(100)}1${"]".repeat(100)}`;
    expect((await t.call("PUT", "/v1/kv/nested", { token: root, raw: `{"a":${ok}}` })).statusCode).toBe(204);
    expect(JSON.stringify((await t.call("GET", "/v1/kv/nested", { token: root })).json().data.a)).toBe(ok);
  });

  it("a malformed body is not quoted back in the error (the message is also logged at debug)", async () => {
    for (const raw of [
      '{"key": s3cretUnsealShareXYZ}',
      "s3cretUnsealShareXYZ",
      '{"key": "s3cretUnsealShareXYZ"',
    ]) {
      const r = await t.call("PUT", "/v1/sys/unseal", { raw });
      expect(r.statusCode).toBe(400);
      expect(r.body).not.toContain("s3cret");
      expect(r.json().errors[0]).toMatch(/failed to parse JSON input/);
    }
  });
});

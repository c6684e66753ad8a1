/**
 * Error bodies across a bad-input matrix (malformed JSON, wrong types, unknown fields, `..` paths,
 * keys that collide in the file layout, oversized bodies, bad cas, bad version lists, unknown
 * mounts, bad policy HCL, bad tokens) against `bulwark server` on file storage: every answer is an
 * error status (Vault's exact one where Vault's is known) and no body names the data directory, a
 * mount's UUID or a stack frame.
 */
import { readdirSync } from "node:fs";
import http from "node:http";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { cliMissing, type ServerProcess, startServerProcess, tempDir } from "./helpers/server-process.js";

vi.setConfig({ testTimeout: 120_000, hookTimeout: 120_000 });

const missing = cliMissing();
if (missing !== undefined && process.env.CI === "true") throw new Error(missing);
if (missing !== undefined) console.warn(`skipping error scan: ${missing}`);

const dir = tempDir("error-scan");
const dataDir = join(dir, "data");
// A small body limit so the oversized-body case stays cheap.
const MAX = 1024 * 1024;
const config = `
storage "file" { path = "${dataDir}" }
listener "tcp" {
  address          = "127.0.0.1:{{PORT}}"
  tls_disable      = true
  max_request_size = ${MAX}
}
disable_mlock = true
`;

let server: ServerProcess;
let root = "";

interface Case {
  name: string;
  method: string;
  path: string;
  body?: string;
  token?: string | null;
  /** Vault's status where known; otherwise any 4xx. */
  status?: number;
  /** Requests sent first (setup), expected to succeed. */
  before?: { method: string; path: string; body?: string }[];
}

interface Answer {
  status: number;
  body: string;
  json<T = Record<string, unknown>>(): T;
}

/**
 * One request with the path sent byte for byte (a WHATWG URL would resolve `..` segments on the
 * client side, and the server would never see them).
 */
function call(method: string, path: string, body?: string, token: string | null = root): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: "127.0.0.1",
        port: new URL(server.address).port,
        method,
        path: `/v1/${path}`,
        headers: {
          ...(token === null ? {} : { "X-Vault-Token": token }),
          ...(body === undefined ? {} : { "content-type": "application/json" }),
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => {
          const text = Buffer.concat(chunks).toString("utf8");
          resolve({ status: res.statusCode ?? 0, body: text, json: () => JSON.parse(text) });
        });
        res.on("error", reject);
      },
    );
    // The server may answer 413 and close before the whole body is sent.
    req.on("error", reject);
    req.end(body);
  });
}

const cases: Case[] = [
  { name: "malformed JSON (KV v2)", method: "POST", path: "secret/data/a", body: '{"data":', status: 400 },
  { name: "malformed JSON (KV v1)", method: "POST", path: "kv1/a", body: "{not json", status: 400 },
  { name: "malformed JSON (sys/mounts)", method: "POST", path: "sys/mounts/x", body: "[", status: 400 },
  { name: "data not an object", method: "POST", path: "secret/data/a", body: '{"data":"str"}', status: 400 },
  { name: "body an array", method: "POST", path: "secret/data/a", body: "[1,2]", status: 400 },
  {
    name: "options.cas a string",
    method: "POST",
    path: "secret/data/a",
    body: '{"options":{"cas":"x"},"data":{"a":1}}',
    status: 400,
  },
  {
    name: "wrong type: max_versions",
    method: "POST",
    path: "secret/metadata/a",
    body: '{"max_versions":"many"}',
    status: 400,
  },
  { name: "unknown field on a mount", method: "POST", path: "sys/mounts/y", body: '{"type":"kv","bogus":1}' },
  { name: "unknown mount type", method: "POST", path: "sys/mounts/z", body: '{"type":"nope"}', status: 400 },
  { name: "`..` in a KV v2 path", method: "POST", path: "secret/data/../../etc/x", body: '{"data":{"a":1}}' },
  { name: "`..` segment in a KV v1 path", method: "PUT", path: "kv1/a/../../b", body: '{"a":1}' },
  { name: "encoded `..` in a path", method: "GET", path: "secret/data/%2e%2e/%2e%2e/x" },
  // (KV v2 keys cannot collide any more: their storage paths are OpenBao's encrypted base62
  // segments, which never start with `_`; OpenBao accepts `secret/data/_coll/b` beside `coll` too.)
  {
    name: "KV v1 key colliding in the file layout",
    method: "PUT",
    path: "kv1/_coll/b",
    body: '{"a":1}',
    before: [{ method: "PUT", path: "kv1/coll", body: '{"a":1}' }],
  },
  {
    name: "body over max_request_size",
    method: "POST",
    path: "secret/data/big",
    body: JSON.stringify({ data: { v: "x".repeat(MAX + 10) } }),
    status: 413,
  },
  {
    name: "cas mismatch",
    method: "POST",
    path: "secret/data/c",
    body: '{"options":{"cas":5},"data":{"a":1}}',
    status: 400,
    before: [{ method: "POST", path: "secret/data/c", body: '{"data":{"a":1}}' }],
  },
  {
    name: "cas 0 on an existing key",
    method: "POST",
    path: "secret/data/c",
    body: '{"options":{"cas":0},"data":{"a":1}}',
    status: 400,
  },
  {
    name: "delete: versions not a list",
    method: "POST",
    path: "secret/delete/c",
    body: '{"versions":"x"}',
    status: 400,
  },
  {
    name: "delete: versions empty",
    method: "POST",
    path: "secret/delete/c",
    body: '{"versions":[]}',
    status: 400,
  },
  {
    name: "destroy: versions of strings",
    method: "PUT",
    path: "secret/destroy/c",
    body: '{"versions":["a"]}',
    status: 400,
  },
  { name: "undelete: versions missing", method: "POST", path: "secret/undelete/c", body: "{}", status: 400 },
  { name: "read version not a number", method: "GET", path: "secret/data/c?version=abc", status: 400 },
  { name: "unknown mount: read", method: "GET", path: "nomount/x", status: 404 },
  { name: "unknown mount: write", method: "POST", path: "nomount/x", body: '{"a":1}', status: 404 },
  {
    name: "policy: bad HCL",
    method: "PUT",
    path: "sys/policies/acl/bad",
    body: JSON.stringify({ policy: 'path "x" { capabilities = [' }),
    status: 400,
  },
  {
    name: "policy: unknown capability",
    method: "PUT",
    path: "sys/policies/acl/bad2",
    body: JSON.stringify({ policy: 'path "x" { capabilities = ["fly"] }' }),
    status: 400,
  },
  { name: "policy: missing body", method: "PUT", path: "sys/policies/acl/bad3", body: "{}", status: 400 },
  {
    name: "bad token on a read",
    method: "GET",
    path: "secret/data/c",
    token: "hvs.not-a-token",
    status: 403,
  },
  { name: "no token", method: "GET", path: "secret/data/c", token: null, status: 403 },
  {
    name: "bad token on sys/mounts",
    method: "GET",
    path: "sys/mounts",
    token: "../../etc/passwd",
    status: 403,
  },
  {
    name: "token lookup of an unknown token",
    method: "POST",
    path: "auth/token/lookup",
    body: '{"token":"hvs.nope"}',
    status: 403,
  },
  {
    name: "token revoke: token a number",
    method: "POST",
    path: "auth/token/revoke",
    body: '{"token":5}',
    status: 400,
  },
];

describe.skipIf(missing !== undefined)("error bodies over a bad-input matrix (file storage)", () => {
  beforeAll(async () => {
    server = await startServerProcess({ config, dir });
    const init = await call("PUT", "sys/init", '{"secret_shares":1,"secret_threshold":1}', null);
    expect(init.status).toBe(200);
    const j = init.json<{ keys_base64: string[]; root_token: string }>();
    root = j.root_token;
    expect((await call("PUT", "sys/unseal", JSON.stringify({ key: j.keys_base64[0] }), null)).status).toBe(
      200,
    );
    for (const [path, body] of [
      ["sys/mounts/secret", '{"type":"kv","options":{"version":"2"}}'],
      ["sys/mounts/kv1", '{"type":"kv"}'],
    ] as const) {
      expect((await call("POST", path, body)).status).toBe(204);
    }
  });
  afterAll(async () => {
    await server?.stop();
  });

  it("every bad input gets an error status and a body without paths, mount UUIDs or stack frames", async () => {
    const mounts = (await call("GET", "sys/mounts")).json<Record<string, { uuid?: string } | unknown>>();
    const uuids = Object.values(mounts)
      .map((m) => (m !== null && typeof m === "object" ? (m as { uuid?: string }).uuid : undefined))
      .filter((u): u is string => typeof u === "string" && u !== "" && !/^0+(-0+)*$/.test(u));
    expect(uuids.length).toBeGreaterThanOrEqual(2);
    const problems: string[] = [];
    for (const c of cases) {
      for (const b of c.before ?? []) {
        const r = await call(b.method, b.path, b.body);
        if (r.status >= 300)
          problems.push(`${c.name}: setup ${b.method} ${b.path} answered ${r.status} ${r.body}`);
      }
      const r = await call(c.method, c.path, c.body, c.token === undefined ? root : c.token);
      const what = `${c.name} (${c.method} ${c.path.slice(0, 40)}) → ${r.status} ${r.body.slice(0, 300)}`;
      if (c.status !== undefined ? r.status !== c.status : r.status < 400 || r.status >= 500) {
        problems.push(`status: ${what}`);
      }
      if (r.body.includes(dir) || r.body.includes(dataDir)) problems.push(`data directory: ${what}`);
      for (const u of uuids) if (r.body.includes(u)) problems.push(`mount UUID: ${what}`);
      if (/\bat .*\.[cm]?js:\d+|node:internal|\/node_modules\//.test(r.body))
        problems.push(`stack frame: ${what}`);
      if (r.status >= 400) {
        let errors: unknown;
        try {
          errors = r.json().errors;
        } catch {
          errors = undefined;
        }
        if (!Array.isArray(errors) || errors.length === 0) problems.push(`not Vault's error shape: ${what}`);
      }
    }
    expect(problems).toEqual([]);
  });

  it("the refused colliding write left nothing in storage", () => {
    // Vault's file layout stores key `coll` as the file `_coll`; `_coll/b` would need a folder of
    // the same name. The refused KV v1 write above must leave no such folder.
    const entries = readdirSync(dataDir, { recursive: true, encoding: "utf8" });
    expect(entries.filter((e) => /(^|\/)_coll\//.test(e))).toEqual([]);
    // The accepted `coll` write is there (so the scan looks at the right place).
    expect(entries.filter((e) => /(^|\/)_coll$/.test(e)).length).toBe(1);
  });
});

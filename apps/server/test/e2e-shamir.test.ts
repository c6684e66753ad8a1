/**
 * End to end with a Vault client nobody here wrote (`node-vault`) against `bulwark server` as a
 * child process (file storage, Shamir seal, debug logging): init 5/3 → unseal with 3 → KV v1 and
 * v2 → seal → unseal → rotate → rekey → restart → ACL'd tokens → bad input on the wire → the
 * debug log holds none of the secrets used.
 */
import nodeVault from "node-vault";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { request } from "./helpers/http.js";
import { cliMissing, type ServerProcess, startServerProcess, tempDir } from "./helpers/server-process.js";

// Starts `bulwark server` processes: generous limits for a loaded 2-core machine (every test's
// servers are stopped after it however it ends: packages/core/test/support/vitest-setup.ts).
vi.setConfig({ testTimeout: 120_000, hookTimeout: 120_000 });

const missing = cliMissing();
if (missing !== undefined && process.env.CI === "true") throw new Error(missing);
if (missing !== undefined) console.warn(`skipping e2e: ${missing}`);

const dir = tempDir("e2e-shamir");
const config = `
storage "file" { path = "${dir}/data" }
listener "tcp" {
  address          = "127.0.0.1:{{PORT}}"
  tls_disable      = true
  max_request_size = 1048576
  # The rekey test drives Vault's unauthenticated sys/rekey/* (off by default, as in OpenBao 2.6).
  disable_unauthed_rekey_endpoints = false
}
log_level    = "debug"
cluster_name = "e2e"
disable_mlock = true
`;

/** Everything that must never show up in a log line. */
const secrets = new Set<string>();
const logs: string[] = [];
let server: ServerProcess & { port: number };
let vault: nodeVault.client;
let keys: string[] = [];
let root = "";

async function status(p: Promise<unknown>): Promise<number> {
  try {
    await p;
    return 200;
  } catch (e) {
    const code = (e as nodeVault.ApiResponseError).response?.statusCode;
    if (code === undefined) throw e;
    return code;
  }
}

async function restart(): Promise<void> {
  await server.stop();
  logs.push(server.output());
  // Later tests use the restarted server: it lives until the file ends.
  server = await startServerProcess({ config, dir, port: server.port, scope: "file" });
}

/** node-vault's tokenCreate switches the client to the new token (tokenSource); keep root. */
async function createToken(args: Record<string, unknown>): Promise<string> {
  const created = await vault.tokenCreate(args);
  vault.token = root;
  return created.auth.client_token as string;
}

async function unsealWith(ks: string[]): Promise<void> {
  for (const key of ks) await vault.unseal({ key });
}

describe.skipIf(missing !== undefined)("e2e: node-vault against bulwark server (file + Shamir)", () => {
  beforeAll(async () => {
    server = await startServerProcess({ config, dir });
    vault = nodeVault({ endpoint: server.address, apiVersion: "v1" });
  }, 60_000);
  afterAll(async () => {
    await server?.stop();
  });

  it("initialises with 5 shares, threshold 3", async () => {
    expect(await vault.initialized()).toEqual({ initialized: false });
    const init = await vault.init({ secret_shares: 5, secret_threshold: 3 });
    expect(init.keys).toHaveLength(5);
    keys = init.keys;
    root = init.root_token;
    for (const k of [...init.keys, ...init.keys_base64, root]) secrets.add(k);
    expect((await vault.status()).sealed).toBe(true);
  });

  it("unseals with 3 of the 5 keys", async () => {
    const s1 = await vault.unseal({ key: keys[4] });
    expect(s1).toMatchObject({ sealed: true, progress: 1, t: 3, n: 5 });
    await vault.unseal({ key: keys[0] });
    const s3 = await vault.unseal({ key: keys[2] });
    expect(s3.sealed).toBe(false);
    expect(s3.cluster_name).toBe("e2e");
    vault.token = root;
    const health = await vault.health();
    expect(health).toMatchObject({ initialized: true, sealed: false, standby: false });
  });

  it("KV v1: write, read, list (LIST method), delete", async () => {
    await vault.mount({ mount_point: "kv", type: "kv", options: { version: "1" } });
    secrets.add("v1-secret-value-0xC0FFEE");
    await vault.write("kv/app/db", { password: "v1-secret-value-0xC0FFEE" });
    await vault.write("kv/app/api", { key: "k" });
    expect((await vault.read("kv/app/db")).data).toEqual({ password: "v1-secret-value-0xC0FFEE" });
    expect((await vault.list("kv/app")).data.keys).toEqual(["api", "db"]);
    await vault.delete("kv/app/api");
    expect(await status(vault.read("kv/app/api"))).toBe(404);
  });

  it("KV v2: versions, read by version, metadata, list", async () => {
    await vault.mount({ mount_point: "secret", type: "kv", options: { version: "2" } });
    secrets.add("v2-first-0xBEEF");
    secrets.add("v2-second-0xFEED");
    const w1 = await vault.write("secret/data/app/db", { data: { password: "v2-first-0xBEEF" } });
    expect(w1.data.version).toBe(1);
    await vault.write("secret/data/app/db", { data: { password: "v2-second-0xFEED" }, options: { cas: 1 } });
    expect(
      await status(vault.write("secret/data/app/db", { data: { password: "x" }, options: { cas: 1 } })),
    ).toBe(400);
    await vault.write("secret/data/other", { data: { x: "1" } });
    const latest = await vault.read("secret/data/app/db");
    expect(latest.data).toMatchObject({ data: { password: "v2-second-0xFEED" }, metadata: { version: 2 } });
    const v1 = await vault.read("secret/data/app/db?version=1");
    expect(v1.data.data).toEqual({ password: "v2-first-0xBEEF" });
    const meta = await vault.read("secret/metadata/app/db");
    expect(meta.data.current_version).toBe(2);
    expect(Object.keys(meta.data.versions)).toEqual(["1", "2"]);
    expect((await vault.list("secret/metadata")).data.keys).toEqual(["app/", "other"]);
    expect((await vault.list("secret/metadata/app")).data.keys).toEqual(["db"]);
  });

  it("seal → unseal: the data is intact", async () => {
    await vault.seal();
    expect((await vault.status()).sealed).toBe(true);
    expect(await status(vault.read("secret/data/app/db"))).toBe(503);
    await unsealWith([keys[1] as string, keys[3] as string, keys[4] as string]);
    expect((await vault.read("secret/data/app/db")).data.data).toEqual({ password: "v2-second-0xFEED" });
    expect((await vault.read("kv/app/db")).data).toEqual({ password: "v1-secret-value-0xC0FFEE" });
  });

  it("rotate: a new key term, old data still readable", async () => {
    const before = await vault.read("sys/key-status");
    await vault.rotate();
    const after = await vault.read("sys/key-status");
    expect(after.data.term).toBe(before.data.term + 1);
    expect((await vault.read("secret/data/app/db?version=1")).data.data).toEqual({
      password: "v2-first-0xBEEF",
    });
  });

  it("rekey: new shares unseal, the old ones no longer do", async () => {
    const init = await vault.write("sys/rekey/init", { secret_shares: 4, secret_threshold: 2 });
    expect(init).toMatchObject({ started: true, t: 2, n: 4, required: 3 });
    let done: { complete?: boolean; keys: string[]; keys_base64: string[] } = { keys: [], keys_base64: [] };
    for (const key of keys.slice(0, 3))
      done = await vault.write("sys/rekey/update", { key, nonce: init.nonce });
    expect(done.complete).toBe(true);
    expect(done.keys).toHaveLength(4);
    for (const k of [...done.keys, ...done.keys_base64]) secrets.add(k);
    const old = keys;
    keys = done.keys;
    await vault.seal();
    // The threshold is now 2: two old shares combine into the old key, which no longer unseals.
    await vault.unseal({ key: old[0] });
    expect(await status(vault.unseal({ key: old[1] }))).toBe(400);
    expect((await vault.status()).sealed).toBe(true);
    await unsealWith(keys.slice(2, 4));
    expect((await vault.status()).sealed).toBe(false);
  });

  it("a restarted server comes back sealed; the new shares unseal it with everything intact", async () => {
    await restart();
    vault = nodeVault({ endpoint: server.address, apiVersion: "v1", token: root });
    expect((await vault.status()).sealed).toBe(true);
    await unsealWith(keys.slice(0, 2));
    expect((await vault.read("secret/data/app/db")).data.data).toEqual({ password: "v2-second-0xFEED" });
    expect((await vault.read("kv/app/db")).data).toEqual({ password: "v1-secret-value-0xC0FFEE" });
    expect((await vault.read("sys/key-status")).data.term).toBe(2);
  });

  it("a token with a read-only policy on secret/data/app/* reads there, gets 403 elsewhere and on writes", async () => {
    await vault.addPolicy({
      name: "app-read",
      rules: 'path "secret/data/app/*" { capabilities = ["read"] }',
    });
    const token = await createToken({ policies: ["app-read"], ttl: "1h" });
    secrets.add(token);
    const reader = nodeVault({ endpoint: server.address, apiVersion: "v1", token });
    expect((await reader.read("secret/data/app/db")).data.data).toEqual({ password: "v2-second-0xFEED" });
    expect(await status(reader.read("secret/data/other"))).toBe(403);
    expect(await status(reader.read("kv/app/db"))).toBe(403);
    expect(await status(reader.write("secret/data/app/db", { data: { password: "nope" } }))).toBe(403);
    expect(await status(reader.write("secret/data/app/new", { data: { password: "nope" } }))).toBe(403);
    expect(await status(reader.delete("secret/data/app/db"))).toBe(403);
    expect(await status(reader.mounts())).toBe(403);
    expect((await reader.tokenLookupSelf()).data.policies).toEqual(["app-read", "default"]);
    expect((await vault.read("secret/metadata/app/db")).data.current_version).toBe(2);
  });

  it("a revoked token and an expired token are refused", async () => {
    const t1 = await createToken({ policies: ["app-read"] });
    secrets.add(t1);
    const c1 = nodeVault({ endpoint: server.address, apiVersion: "v1", token: t1 });
    expect(await status(c1.read("secret/data/app/db"))).toBe(200);
    await vault.tokenRevoke({ token: t1 });
    expect(await status(c1.read("secret/data/app/db"))).toBe(403);

    const t2 = await createToken({ policies: ["app-read"], ttl: "1s" });
    secrets.add(t2);
    const c2 = nodeVault({ endpoint: server.address, apiVersion: "v1", token: t2 });
    expect(await status(c2.read("secret/data/app/db"))).toBe(200);
    await new Promise((r) => setTimeout(r, 1300));
    expect(await status(c2.read("secret/data/app/db"))).toBe(403);
    expect(await status(c2.tokenLookupSelf())).toBe(403);
  });

  it("bad input on the wire: right status, Vault's error shape, nothing written", async () => {
    const h = { "x-vault-token": root };
    const cases: Array<[string, string, string, number]> = [
      ["PUT", "/v1/kv/bad", '{"password": ', 400],
      ["POST", "/v1/secret/data/bad", JSON.stringify({ data: "not-an-object" }), 400],
      ["POST", "/v1/secret/data/bad", JSON.stringify({ data: { a: 1 }, unexpected: true }), 400],
      ["POST", "/v1/sys/mounts/bad", JSON.stringify({ type: "kv", seal_wrap: "yes please" }), 400],
      ["POST", "/v1/sys/mounts/bad", JSON.stringify({ type: "kv", colour: "blue" }), 400],
      ["PUT", "/v1/sys/policy/bad", JSON.stringify({ policy: ["x"] }), 400],
      ["POST", "/v1/auth/token/create", JSON.stringify({ ttl: "whenever" }), 400],
      ["PUT", "/v1/kv/bad", JSON.stringify({ v: "x".repeat(1_100_000) }), 413],
      ["PUT", "/v1/sys/rotate", JSON.stringify({ now: true }), 400],
    ];
    for (const [method, path, body, want] of cases) {
      const r = await request(`${server.address}${path}`, { method, headers: h, body });
      expect(r.status, `${method} ${path}`).toBe(want);
      expect(Array.isArray(r.json().errors), `${method} ${path}`).toBe(true);
    }
    expect(await status(vault.read("kv/bad"))).toBe(404);
    expect(await status(vault.read("secret/data/bad"))).toBe(404);
    expect(Object.keys((await vault.mounts()).data)).not.toContain("bad/");
    expect(await status(vault.getPolicy({ name: "bad" }))).toBe(404);
    expect((await vault.read("sys/key-status")).data.term).toBe(2);
  });

  it("debug logs contain none of the secrets, shares or tokens", async () => {
    await server.stop();
    logs.push(server.output());
    const text = logs.join("\n");
    expect(text).toMatch(/"level":20/);
    expect(text).toContain("/v1/secret/data/app/db");
    for (const s of secrets) expect(text.includes(s), `log contains ${s.slice(0, 6)}…`).toBe(false);
  });
});

/**
 * The HTTP pipeline's audit records (audit.ts): which requests get which records, what the
 * records carry, and fail-closed — on the in-process app with a real file device.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync, unlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { servicesFor } from "@bulwark/vault";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { initAndUnseal, type TestApp, testApp } from "../../test/helpers/app.js";

// biome-ignore lint/suspicious/noExplicitAny: audit records, checked field by field
type Rec = any;

let t: TestApp | undefined;
let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "bulwark-audit-http-"));
});
afterEach(async () => {
  await t?.close();
  t = undefined;
  rmSync(dir, { recursive: true, force: true });
});

function records(file: string): Rec[] {
  if (!existsSync(file)) return [];
  return readFileSync(file, "utf8")
    .split("\n")
    .filter((l) => l !== "")
    .map((l) => JSON.parse(l));
}

/** An unsealed app with a KV v2 mount at secret/ and one file device at file/ (enabled through the API). */
async function auditedApp(
  options: Record<string, string> = {},
): Promise<{ root: string; keys: string[]; log: string }> {
  t = await testApp();
  const { root, keys } = await initAndUnseal(t, 3, 2);
  await servicesFor(t.store).audit.configure({
    devices: [],
    unsafeAllowApiAuditCreation: true,
    allowAuditLogPrefixing: false,
  });
  const m = await t.call("POST", "/v1/sys/mounts/secret", {
    token: root,
    body: { type: "kv", options: { version: "2" } },
  });
  expect(m.statusCode).toBe(204);
  const log = join(dir, "audit.log");
  const e = await t.call("PUT", "/v1/sys/audit/file", {
    token: root,
    body: { type: "file", options: { file_path: log, ...options } },
  });
  expect(e.statusCode, e.body).toBe(204);
  return { root, keys, log };
}

describe("audit records of the HTTP API", () => {
  it("enabling writes the test record and the enabling request's response record, as OpenBao", async () => {
    const { log } = await auditedApp();
    const r = records(log);
    expect(r.map((x) => [x.type, x.request.path])).toEqual([
      ["request", "sys/audit/test"],
      ["response", "sys/audit/file"],
    ]);
    expect(r[0].auth).toEqual({ token_type: "default" });
    expect(r[1].request.mount_point).toBe("sys/");
    expect(r[1].request.mount_type).toBe("system");
    expect(r[1].request.data.type).toMatch(/^hmac-sha256:[0-9a-f]{64}$/);
  });

  it("a KV write and read: one request and one response record each, secrets and tokens hashed", async () => {
    const { root, log } = await auditedApp();
    const w = await t!.call("POST", "/v1/secret/data/db", {
      token: root,
      body: { data: { password: "hunter2-plaintext", n: 5, ok: true } },
    });
    expect(w.statusCode).toBe(200);
    const rd = await t!.call("GET", "/v1/secret/data/db", { token: root });
    expect(rd.json().data.data.password).toBe("hunter2-plaintext");
    const r = records(log).slice(2);
    expect(r.map((x) => [x.type, x.request.operation, x.request.path])).toEqual([
      ["request", "create", "secret/data/db"],
      ["response", "create", "secret/data/db"],
      ["request", "read", "secret/data/db"],
      ["response", "read", "secret/data/db"],
    ]);
    const [wreq, , rreq, rresp] = r;
    expect(wreq.request.data.data.password).toMatch(/^hmac-sha256:/);
    expect(wreq.request.data.data.n).toBe(5);
    expect(wreq.request.data.data.ok).toBe(true);
    // The request record names the mount accessor for a write only (OpenBao's), the response always.
    expect(wreq.request.mount_accessor).toMatch(/^kv_[0-9a-f]{8}$/);
    expect(rreq.request.mount_accessor).toBeUndefined();
    expect(rresp.request.mount_accessor).toBe(wreq.request.mount_accessor);
    expect(rresp.response.data.data.password).toMatch(/^hmac-sha256:/);
    expect(rresp.auth.policy_results).toEqual({
      allowed: true,
      granting_policies: [{ name: "root", namespace_id: "root", type: "acl" }],
    });
    expect(rresp.auth.client_token).toMatch(/^hmac-sha256:/);
    expect(rresp.request.client_id).toBe("0DHqvq2D77kL2/JTPSZkTMJbkFVmUu0TzMi0jiXcFy8=");
    const text = readFileSync(log, "utf8");
    expect(text).not.toContain("hunter2-plaintext");
    expect(text).not.toContain(root);
    // sys/audit-hash of the secret is the HMAC in the log.
    const h = await t!.call("PUT", "/v1/sys/audit-hash/file", {
      token: root,
      body: { input: "hunter2-plaintext" },
    });
    expect(h.json().data.hash).toBe(wreq.request.data.data.password);
  });

  it("a request without a valid token: both records name the refusal; the token only hashed", async () => {
    const { log } = await auditedApp();
    const bad = "s.notARealTokenAtAll12345";
    const r1 = await t!.call("GET", "/v1/secret/data/db", { token: bad });
    expect(r1.statusCode).toBe(403);
    const [req, resp] = records(log).slice(2);
    expect(req.error).toBe("permission denied");
    expect(req.auth).toEqual({ token_type: "default" });
    expect(req.request.client_token).toMatch(/^hmac-sha256:/);
    expect(req.request.mount_point).toBe("secret/");
    expect(req.request.mount_accessor).toBeUndefined();
    expect(resp.error).toBe("1 error occurred:\n\t* permission denied\n\n");
    expect(resp.response.data.error).toMatch(/^hmac-sha256:/);
    expect(readFileSync(log, "utf8")).not.toContain(bad);
  });

  it("every answer carries Cache-Control: no-store and HSTS, as OpenBao 2.6.2's do (checked against the binary)", async () => {
    const { root } = await auditedApp();
    for (const r of [
      await t!.call("GET", "/v1/sys/health"),
      await t!.call("GET", "/v1/secret/data/none", { token: root }),
      await t!.call("GET", "/v1/sys/mounts", { token: "s.nope" }),
    ]) {
      expect(r.headers["cache-control"]).toBe("no-store");
      expect(r.headers["strict-transport-security"]).toBe("max-age=31536000; includeSubDomains");
    }
  });

  it("forwarding headers a client sends itself are not believed (no forged forwarded_from or address)", async () => {
    const { root, log } = await auditedApp();
    const r = await t!.call("GET", "/v1/sys/mounts", {
      token: root,
      headers: {
        "x-bulwark-forwarded-by": "spoofed-standby",
        "x-bulwark-forwarded-for": "10.9.9.9:4444",
        "x-bulwark-forwarded-at": String(Date.now()),
        "x-bulwark-forwarded-signature": "00".repeat(32),
      },
    });
    expect(r.statusCode).toBe(200);
    const [req, resp] = records(log).slice(2);
    expect(req.forwarded_from).toBeUndefined();
    expect(resp.forwarded).toBeUndefined();
    expect(req.request.remote_address).toBe("127.0.0.1");
  });

  it("unaudited endpoints stay unaudited; share-holder ones hash the shares", async () => {
    const { keys, log } = await auditedApp();
    const before = records(log).length;
    await t!.call("GET", "/v1/sys/seal-status");
    await t!.call("GET", "/v1/sys/health");
    await t!.call("GET", "/v1/sys/leader");
    expect(records(log)).toHaveLength(before);
    const start = await t!.call("PUT", "/v1/sys/generate-root/attempt", { body: {} });
    expect(start.statusCode).toBe(200);
    const nonce = start.json().nonce as string;
    const otp = start.json().otp as string;
    await t!.call("PUT", "/v1/sys/generate-root/update", { body: { key: keys[0], nonce } });
    const upd = await t!.call("PUT", "/v1/sys/generate-root/update", { body: { key: keys[1], nonce } });
    expect(upd.json().complete).toBe(true);
    const recs = records(log).slice(before);
    expect(recs.map((x) => [x.type, x.request.path])).toEqual([
      ["request", "sys/generate-root/attempt"],
      ["response", "sys/generate-root/attempt"],
      ["request", "sys/generate-root/update"],
      ["response", "sys/generate-root/update"],
      ["request", "sys/generate-root/update"],
      ["response", "sys/generate-root/update"],
    ]);
    const text = readFileSync(log, "utf8");
    for (const secret of [keys[0], keys[1], otp, upd.json().encoded_token])
      expect(text).not.toContain(secret);
  });

  it("fail-closed: the only device cannot write → 500, nothing changed; writable again → served", async () => {
    t = await testApp();
    const { root } = await initAndUnseal(t, 1, 1);
    await servicesFor(t.store).audit.configure({
      devices: [],
      unsafeAllowApiAuditCreation: true,
      allowAuditLogPrefixing: false,
    });
    await t.call("POST", "/v1/sys/mounts/secret", {
      token: root,
      body: { type: "kv", options: { version: "2" } },
    });
    // The device's file is a link to /dev/full: every write fails with ENOSPC.
    const log = join(dir, "audit.log");
    symlinkSync("/dev/full", log);
    const e = await t.call("PUT", "/v1/sys/audit/file", {
      token: root,
      body: { type: "file", options: { file_path: log, skip_test: "true" } },
    });
    // As OpenBao: the device is enabled, but the enabling request's own response record goes to
    // it and cannot be written, so that request answers 500.
    expect(e.statusCode, e.body).toBe(500);
    expect((await t.call("GET", "/v1/sys/audit", { token: root })).statusCode).toBe(500);
    const w = await t.call("POST", "/v1/secret/data/x", { token: root, body: { data: { a: "b" } } });
    expect(w.statusCode).toBe(500);
    expect(w.json()).toEqual({ errors: ["internal error"] });
    // Fixed: the link becomes a plain file; the device reopens it on its next write.
    unlinkSync(log);
    const r = await t.call("GET", "/v1/secret/data/x", { token: root });
    expect(r.statusCode).toBe(404); // the refused write changed nothing
    const w2 = await t.call("POST", "/v1/secret/data/x", { token: root, body: { data: { a: "b" } } });
    expect(w2.statusCode).toBe(200);
    expect(records(log).map((x) => [x.type, x.request.path])).toEqual([
      ["request", "secret/data/x"],
      ["response", "secret/data/x"],
      ["request", "secret/data/x"],
      ["response", "secret/data/x"],
    ]);
  });
});

import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { runGroup } from "../../../packages/core/test/support/processes.js";
import { request } from "./helpers/http.js";
import {
  SERVER_DIR,
  type ServerProcess,
  serviceGate,
  startServerProcess,
  tempDir,
} from "./helpers/server-process.js";

// Starts `bulwark server` and a Python process: generous limits for a loaded 2-core machine.
vi.setConfig({ testTimeout: 120_000, hookTimeout: 120_000 });

const PYTHON = resolve(SERVER_DIR, "../../tooling/services/.venv/bin/python");
const SUITE = resolve(SERVER_DIR, "test/hvac/suite.py");
const missing = serviceGate("hvac e2e", PYTHON, "the hvac venv");

/** Every check suite.py runs; each must report ok. */
const CHECKS = [
  "sys.read_seal_status",
  "sys.list_mounted_secrets_engines",
  "sys.list_auth_methods",
  "sys.read_health_status, sys.is_initialized, sys.is_sealed",
  "sys.enable_secrets_engine, read/tune_mount_configuration, disable_secrets_engine",
  "sys.rotate_encryption_key, get_encryption_key_status",
  "kv.v2 create_or_update_secret, read_secret_version",
  "kv.v2 list_secrets, read_secret_metadata",
  "kv.v2 bad cas: InvalidRequest with the error body in e.errors",
  "kv.v2 read of a missing secret: InvalidPath",
  "kv.v2 delete_latest_version_of_secret, deleted version read",
  "kv.v2 undelete_secret_versions",
  "kv.v2 destroy_secret_versions",
  "kv.v2 delete_metadata_and_all_versions",
  "kv.v1 create_or_update_secret, read_secret, list_secrets, delete_secret",
  "sys acl policies: create_or_update, read, list (root included)",
  "auth.token create (policies, ttl), lookup_self, 403 Forbidden, revoke",
  "numbers: kv.v1 round trip, exact text (as OpenBao)",
  "numbers: kv.v2 read back as OpenBao 2.6.2 returns them",
  "numbers: text Python cannot send, through hvac's adapter: 1e400 refused, 1e-400 and 1E+2 as OpenBao",
  "sys audit: enable_audit_device, list_enabled_audit_devices, calculate_hash, disable_audit_device",
  "sys.seal, 503 while sealed, sys.submit_unseal_key (last: the data is back)",
];

const dir = tempDir("hvac");
const config = `
storage "file" { path = "${join(dir, "data")}" }
listener "tcp" {
  address     = "127.0.0.1:{{PORT}}"
  tls_disable = true
}
disable_mlock = true
unsafe_allow_api_audit_creation = true
`;

let server: ServerProcess;
let root = "";
let unsealKey = "";

async function call(method: string, path: string, body?: unknown): Promise<Record<string, unknown>> {
  const r = await request(`${server.address}/v1/${path}`, {
    method,
    headers: root === "" ? {} : { "x-vault-token": root },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  if (r.status >= 300) throw new Error(`${method} ${path}: ${r.status} ${r.body}`);
  return r.body === "" ? {} : r.json();
}

describe.skipIf(missing !== undefined)("e2e: hvac (Python) against bulwark server (file + Shamir)", () => {
  beforeAll(async () => {
    server = await startServerProcess({ config, dir, scope: "file" });
    const init = await call("PUT", "sys/init", { secret_shares: 1, secret_threshold: 1 });
    const keys = init.keys as string[];
    unsealKey = keys[0] as string;
    await call("PUT", "sys/unseal", { key: unsealKey });
    root = init.root_token as string;
    await call("POST", "sys/mounts/secret", { type: "kv", options: { version: "2" } });
    await call("POST", "sys/mounts/kv1", { type: "kv", options: { version: "1" } });
  }, 90_000);
  afterAll(async () => {
    await server?.stop();
  });

  it("every check of hvac/suite.py passes", async () => {
    const r = await runGroup(PYTHON, [SUITE], {
      env: {
        PATH: process.env.PATH ?? "/usr/bin:/bin",
        HOME: dir,
        BULWARK_ADDR: server.address,
        BULWARK_TOKEN: root,
        BULWARK_UNSEAL_KEY: unsealKey,
        PYTHONDONTWRITEBYTECODE: "1",
      },
      timeoutMs: 90_000,
      description: "hvac suite.py",
    });
    const lines = r.stdout.split("\n").filter((l) => l.startsWith("{"));
    const results = new Map<string, { ok: boolean; error?: string }>();
    for (const l of lines) {
      const j = JSON.parse(l) as { check: string; ok: boolean; error?: string };
      results.set(j.check, j);
    }
    const report = `exit ${r.code}${r.timedOut ? " (timed out)" : ""}\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}\nserver:\n${server.output().slice(-4000)}`;
    for (const name of CHECKS) {
      expect(results.get(name), `${name}\n${report}`).toMatchObject({ ok: true });
    }
    expect([...results.keys()].sort(), "suite.py runs exactly the checks listed here").toEqual(
      [...CHECKS].sort(),
    );
    expect(r.code, report).toBe(0);
  });
});

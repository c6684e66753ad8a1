/**
 * End to end with the stock OpenBao CLI (`bao` 2.6.2, unchanged) against `bulwark server` as a
 * child process (file storage, Shamir): the command sequence an operator types — status at every
 * stage, init 5/3, unseal ×3, secrets enable/tune/list, kv put/get, auth list/tune, policy list,
 * rotate, generate-root (OpenBao's authenticated sys/generate-root-token flow), rekey, path-help,
 * seal and unseal with the new shares — checked
 * for the exit codes and output the CLI gives against OpenBao itself.
 *
 * The binary is installed by tooling/services/install.sh at tooling/services/.bin/bao; without
 * it the suite is skipped locally and fails under CI=true, like the other service suites.
 */
import { readFileSync, statSync } from "node:fs";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { runGroup } from "../../../packages/core/test/support/processes.js";
import {
  SERVER_DIR,
  type ServerProcess,
  serviceGate,
  startServerProcess,
  tempDir,
} from "./helpers/server-process.js";

// Starts `bulwark server` and runs the Go CLI many times: generous limits for a loaded 2-core
// machine (the server is stopped after the file however it ends: vitest-setup.ts).
vi.setConfig({ testTimeout: 120_000, hookTimeout: 120_000 });

const BAO = resolve(SERVER_DIR, "../../tooling/services/.bin/bao");
const missing = serviceGate("bao CLI e2e", BAO, "the bao CLI");

const dir = tempDir("bao-cli");
const dataDir = join(dir, "data");
const config = `
storage "file" { path = "${dataDir}" }
listener "tcp" {
  address     = "127.0.0.1:{{PORT}}"
  tls_disable = true
  # bao 2.6's \`operator rekey\` calls the unauthenticated sys/rekey/* even with a token; they are off
  # by default (as in OpenBao 2.6), so this listener turns them on for the rekey test.
  disable_unauthed_rekey_endpoints = false
}
disable_mlock = true
# \`bao audit enable\` below: OpenBao 2.6 refuses API-created devices unless this is set.
unsafe_allow_api_audit_creation = true
`;

let server: ServerProcess & { port: number };
let keys: string[] = [];
let root = "";

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `bao <args>` against the server; no token unless given (VAULT_TOKEN), no token helper. */
async function bao(args: string[], token?: string): Promise<Run> {
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? "/usr/bin:/bin",
    HOME: dir,
    VAULT_ADDR: server.address,
    BAO_ADDR: server.address,
  };
  if (token !== undefined) {
    env.VAULT_TOKEN = token;
    env.BAO_TOKEN = token;
  }
  const r = await runGroup(BAO, args, { env, timeoutMs: 60_000, description: `bao ${args.join(" ")}` });
  return { code: r.code, stdout: r.stdout, stderr: r.timedOut ? `${r.stderr}\n[test] timed out` : r.stderr };
}

/** The status table's `Key   Value` rows as a map. */
function table(out: string): Record<string, string> {
  const rows: Record<string, string> = {};
  for (const line of out.split("\n")) {
    const m = /^(\S.*?)\s{2,}(.*)$/.exec(line);
    if (m !== null) rows[m[1] as string] = (m[2] as string).trim();
  }
  return rows;
}

describe.skipIf(missing !== undefined)(
  "e2e: the stock bao CLI against bulwark server (file + Shamir)",
  () => {
    beforeAll(async () => {
      server = await startServerProcess({ config, dir });
    }, 90_000);
    afterAll(async () => {
      await server?.stop();
    });

    it("status before init: the table, exit 2 (sealed)", async () => {
      const r = await bao(["status"]);
      expect(r.stderr).toBe("");
      expect(r.code).toBe(2);
      // File storage has no HA: OpenBao's status says so while sealed too.
      expect(table(r.stdout)).toMatchObject({
        "Seal Type": "shamir",
        Initialized: "false",
        Sealed: "true",
        "HA Enabled": "false",
      });
    });

    it("operator init -key-shares=5 -key-threshold=3 (the CLI sends recovery_shares: 0 and null pgp keys)", async () => {
      const r = await bao(["operator", "init", "-key-shares=5", "-key-threshold=3"]);
      expect(r.stderr).toBe("");
      expect(r.code).toBe(0);
      keys = [...r.stdout.matchAll(/^Unseal Key \d: (\S+)$/gm)].map((m) => m[1] as string);
      expect(keys).toHaveLength(5);
      root = /^Initial Root Token: (\S+)$/m.exec(r.stdout)?.[1] ?? "";
      expect(root).not.toBe("");
    });

    it("status and unseal at every stage: the table each time, exit 2 while sealed, unseal exits 0", async () => {
      const before = await bao(["status"]);
      expect(before.stderr).toBe("");
      expect(before.code).toBe(2);
      expect(table(before.stdout)).toMatchObject({
        Initialized: "true",
        Sealed: "true",
        "Total Shares": "5",
        Threshold: "3",
        "Unseal Progress": "0/3",
      });
      for (const [i, key] of keys.slice(0, 3).entries()) {
        const u = await bao(["operator", "unseal", key]);
        expect(u.stderr, `share ${i + 1}`).toBe("");
        expect(u.code, `share ${i + 1}`).toBe(0);
        const s = await bao(["status"]);
        expect(s.stderr).toBe("");
        if (i < 2) {
          expect(table(u.stdout)).toMatchObject({ Sealed: "true", "Unseal Progress": `${i + 1}/3` });
          expect(s.code).toBe(2);
          expect(table(s.stdout)).toMatchObject({ Sealed: "true", "Unseal Progress": `${i + 1}/3` });
        } else {
          expect(table(u.stdout)).toMatchObject({ Sealed: "false" });
          expect(s.code).toBe(0);
          expect(table(s.stdout)).toMatchObject({ Sealed: "false", "Total Shares": "5", Threshold: "3" });
        }
      }
    });

    it("secrets enable -version=2 -path=secret kv (the CLI sends config.options: null), secrets list", async () => {
      const e = await bao(["secrets", "enable", "-version=2", "-path=secret", "kv"], root);
      expect(e.stderr).toBe("");
      expect(e.code).toBe(0);
      expect(e.stdout).toContain("Success! Enabled the kv secrets engine at: secret/");
      const tune = await bao(["secrets", "tune", "-default-lease-ttl=1h", "secret"], root);
      expect(tune.stderr).toBe("");
      expect(tune.code).toBe(0);
      const l = await bao(["secrets", "list"], root);
      expect(l.code).toBe(0);
      expect(l.stdout).toMatch(/^secret\/\s+kv\s/m);
      expect(l.stdout).toMatch(/^sys\/\s+system\s/m);
    });

    it("kv put / kv get", async () => {
      const p = await bao(["kv", "put", "secret/app", "user=alice", "port=5432"], root);
      expect(p.stderr).toBe("");
      expect(p.code).toBe(0);
      const g = await bao(["kv", "get", "-field=user", "secret/app"], root);
      expect(g.code).toBe(0);
      expect(g.stdout).toBe("alice");
    });

    it("auth list shows the token/ method; policy list includes root", async () => {
      const a = await bao(["auth", "list"], root);
      expect(a.stderr).toBe("");
      expect(a.code).toBe(0);
      expect(a.stdout).toMatch(/^token\/\s+token\s+auth_token_\S+\s+token based credentials/m);
      const t = await bao(["read", "-format=json", "sys/auth/token/tune"], root);
      expect(t.code).toBe(0);
      expect(JSON.parse(t.stdout).data).toMatchObject({ default_lease_ttl: 2764800, max_lease_ttl: 2764800 });
      const at = await bao(["auth", "tune", "-default-lease-ttl=768h", "token/"], root);
      expect(at.stderr).toBe("");
      expect(at.code).toBe(0);
      const p = await bao(["policy", "list"], root);
      expect(p.code).toBe(0);
      expect(p.stdout.split("\n").filter((x) => x !== "")).toEqual(["default", "root"]);
    });

    it("audit enable / list / disable (file device): bao's own output, the records in the file, the secret hashed", async () => {
      const log = join(dir, "audit.log");
      const e = await bao(["audit", "enable", "file", `file_path=${log}`], root);
      expect(e.stderr).toBe("");
      expect(e.code).toBe(0);
      expect(e.stdout).toBe("Success! Enabled the file audit device at: file/\n");
      const l = await bao(["audit", "list", "-format=json"], root);
      expect(l.code).toBe(0);
      expect(JSON.parse(l.stdout)).toMatchObject({ "file/": { type: "file", options: { file_path: log } } });
      const p = await bao(["kv", "put", "secret/audited", "pin=4711-plaintext"], root);
      expect(p.code).toBe(0);
      const text = readFileSync(log, "utf8");
      const records = text
        .split("\n")
        .filter((x) => x !== "")
        .map((x) => JSON.parse(x));
      const put = records.filter((r) => r.request?.path === "secret/data/audited");
      expect(put.map((r) => r.type)).toEqual(["request", "response"]);
      expect(put[0].request.data.data.pin).toMatch(/^hmac-sha256:[0-9a-f]{64}$/);
      expect(text).not.toContain("4711-plaintext");
      expect(text).not.toContain(root);
      const d = await bao(["audit", "disable", "file"], root);
      expect(d.code).toBe(0);
      expect(d.stdout).toBe("Success! Disabled audit device (if it was enabled) at: file/\n");
      expect((await bao(["audit", "list"], root)).stdout).toBe("No audit devices are enabled.\n");
    });

    it("operator rotate (sys/rotate/keyring) and its config path", async () => {
      const r = await bao(["operator", "rotate"], root);
      expect(r.stderr).toBe("");
      expect(r.code).toBe(0);
      expect(r.stdout).toContain("Success! Rotated key");
      expect(table(r.stdout)["Key Term"]).toBe("2");
      const c = await bao(["read", "-format=json", "sys/rotate/keyring/config"], root);
      expect(c.code).toBe(0);
      expect(JSON.parse(c.stdout).data).toMatchObject({ enabled: true });
    });

    it("operator generate-root: status, init, three shares, decode → a working root token; cancel", async () => {
      const s = await bao(["operator", "generate-root", "-status"], root);
      expect(s.stderr).toBe("");
      expect(s.code).toBe(0);
      expect(table(s.stdout)).toMatchObject({ Started: "false", Progress: "0/3" });
      const init = await bao(["operator", "generate-root", "-init", "-format=json"], root);
      expect(init.stderr).toBe("");
      expect(init.code).toBe(0);
      const { otp, nonce } = JSON.parse(init.stdout) as { otp: string; nonce: string };
      expect(otp).not.toBe("");
      let encoded = "";
      for (const key of keys.slice(0, 3)) {
        const u = await bao(["operator", "generate-root", "-format=json", `-nonce=${nonce}`, key], root);
        expect(u.stderr).toBe("");
        expect(u.code).toBe(0);
        encoded =
          (JSON.parse(u.stdout) as { encoded_root_token?: string; encoded_token?: string }).encoded_token ??
          "";
      }
      expect(encoded).not.toBe("");
      // -decode reads the attempt status (the OTP length) first: a token is needed, as with OpenBao.
      const d = await bao(
        ["operator", "generate-root", "-decode", encoded, "-otp", otp, "-format=json"],
        root,
      );
      expect(d.code).toBe(0);
      const newRoot = (JSON.parse(d.stdout) as { token: string }).token;
      const who = await bao(["token", "lookup", "-format=json"], newRoot);
      expect(who.code).toBe(0);
      expect(JSON.parse(who.stdout).data.policies).toEqual(["root"]);
      await bao(["operator", "generate-root", "-init"], root);
      const c = await bao(["operator", "generate-root", "-cancel"], root);
      expect(c.code).toBe(0);
      expect((await bao(["operator", "generate-root", "-status"], root)).stdout).toMatch(
        /^Started\s+false$/m,
      );
    });

    it("operator rekey -init / three shares → new shares (Vault's sys/rekey/*; OpenBao 2.6 disables these by default)", async () => {
      const init = await bao([
        "operator",
        "rekey",
        "-init",
        "-key-shares=5",
        "-key-threshold=3",
        "-format=json",
      ]);
      expect(init.stderr).toBe("");
      expect(init.code).toBe(0);
      const { nonce } = JSON.parse(init.stdout) as { nonce: string };
      let done: { complete?: boolean; keys_base64?: string[] } = {};
      for (const key of keys.slice(0, 3)) {
        const u = await bao(["operator", "rekey", "-format=json", `-nonce=${nonce}`, key]);
        expect(u.stderr).toBe("");
        expect(u.code).toBe(0);
        done = JSON.parse(u.stdout);
      }
      expect(done.complete).toBe(true);
      expect(done.keys_base64).toHaveLength(5);
      keys = done.keys_base64 as string[];
    });

    it("path-help answers with help text", async () => {
      for (const p of ["sys/mounts", "secret/", "secret/data/app", "auth/token/create"]) {
        const h = await bao(["path-help", p], root);
        expect(h.stderr, p).toBe("");
        expect(h.code, p).toBe(0);
        expect(h.stdout.trim().length, p).toBeGreaterThan(20);
      }
    });

    it("an error from storage names neither the data directory nor the mount's UUID", async () => {
      // KV v1 stores a key at its own path under the mount's view (Vault's layout), so the file
      // backend's `coll` (file `_coll`) and `_coll/b` (directory `_coll`) collide: a storage error.
      // (KV v2 keys are salted hashes and encrypted segments: they cannot collide.)
      expect((await bao(["secrets", "enable", "-path=kv1", "-version=1", "kv"], root)).code).toBe(0);
      expect((await bao(["kv", "put", "kv1/coll", "a=1"], root)).code).toBe(0);
      const r = await bao(["kv", "put", "kv1/_coll/b", "a=1"], root);
      expect(r.code).not.toBe(0);
      const mounts = JSON.parse((await bao(["secrets", "list", "-format=json"], root)).stdout) as Record<
        string,
        { uuid: string }
      >;
      const uuid = mounts["kv1/"]?.uuid as string;
      expect(uuid).toMatch(/^[0-9a-f-]{36}$/);
      const out = r.stdout + r.stderr;
      expect(out).not.toContain(dir);
      expect(out).not.toContain(uuid);
      expect(out).not.toMatch(/\bat .*\.js:\d+/);
      // The client is told the request id; the server log has the same id with the full text.
      const id = /\(request id ([^:)\s]+): details in the server log\)/.exec(out)?.[1];
      expect(id, out).toBeDefined();
      const line = server
        .output()
        .split("\n")
        .find((l) => l.includes(`"reqId":"${id}"`) && l.includes('"detail"'));
      expect(line, server.output()).toBeDefined();
      expect(line).toContain(uuid);
      // The refused write left nothing: `_coll` under the mount's view is still coll's file.
      const stored = join(dataDir, "logical", uuid, "_coll");
      expect(statSync(stored).isFile()).toBe(true);
    });

    it("operator seal: status shows the sealed table with exit 2 again", async () => {
      const s = await bao(["operator", "seal"], root);
      expect(s.code).toBe(0);
      const st = await bao(["status"]);
      expect(st.stderr).toBe("");
      expect(st.code).toBe(2);
      expect(table(st.stdout)).toMatchObject({ Sealed: "true", "Unseal Progress": "0/3" });
      const k = await bao(["kv", "get", "secret/app"], root);
      expect(k.code).toBe(2);
      expect(k.stderr).toContain("Vault is sealed");
      // The rekeyed shares unseal it.
      for (const key of keys.slice(0, 3)) expect((await bao(["operator", "unseal", key])).code).toBe(0);
      expect((await bao(["status"])).code).toBe(0);
    });
  },
);

/**
 * The operator's path with real processes: `bulwark server -config` (file storage, Shamir) as a
 * child process, driven by the built `bulwark` binary — init, unseal 3 of 5, kv, seal, status
 * exit codes, restart, storage migration, and SIGTERM shutdown with exit code 0.
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { loadConfig } from "../src/config/load.js";
import { requireBuild, runBin, SERVER_DIR, type ServerProcess, startServerProcess } from "./cli-helpers.js";

// Starts `bulwark server` processes: generous limits for a loaded 2-core machine (every test's
// servers are stopped after it however it ends: packages/core/test/support/vitest-setup.ts).
vi.setConfig({ testTimeout: 120_000, hookTimeout: 120_000 });

let dir: string;
const running: ServerProcess[] = [];

function fileConfig(dataDir: string): string {
  return `storage "file" {\n  path = "${dataDir}"\n}\nlistener "tcp" {\n  address = "127.0.0.1:0"\n  tls_disable = true\n}\ndisable_mlock = true\n`;
}

async function start(config: string): Promise<ServerProcess> {
  const p = await startServerProcess([`-config=${config}`], { BULWARK_LOG_LEVEL: "info" });
  running.push(p);
  return p;
}

beforeAll(async () => {
  requireBuild();
  dir = await mkdtemp(join(tmpdir(), "bulwark-cli-e2e-"));
  await writeFile(join(dir, "server.hcl"), fileConfig(join(dir, "data")));
  await writeFile(join(dir, "copy.hcl"), fileConfig(join(dir, "copy")));
  await writeFile(
    join(dir, "migrate.hcl"),
    `storage_source "file" {\n  path = "${join(dir, "data")}"\n}\nstorage_destination "file" {\n  path = "${join(dir, "copy")}"\n}\n`,
  );
});

afterAll(async () => {
  for (const p of running) await p.stop("SIGKILL");
  await rm(dir, { recursive: true, force: true });
});

describe("bulwark server -config (file storage, Shamir) driven by the bulwark CLI", () => {
  let keys: string[] = [];
  let rootToken = "";

  it("init → unseal 3 of 5 → kv put/get → seal → status exit 2 → SIGTERM exits 0", async () => {
    const server = await start(join(dir, "server.hcl"));
    expect(server.output()).toMatch(/The store is not initialised yet\. Initialise it with the CLI:/);
    expect(server.output()).toContain("bulwark operator init");
    const env = { BULWARK_ADDR: server.address };

    expect((await runBin(["operator", "init", "-status"], env)).code).toBe(2);
    const init = await runBin(["operator", "init", "-format=json"], env);
    expect(init.code).toBe(0);
    const out = JSON.parse(init.stdout);
    keys = out.unseal_keys_b64;
    rootToken = out.root_token;
    expect(keys).toHaveLength(5);
    expect(out).toMatchObject({ unseal_shares: 5, unseal_threshold: 3 });

    const sealed = await runBin(["status"], env);
    expect(sealed.code).toBe(2);
    expect(sealed.stdout).toMatch(/Sealed\s+true/);
    for (const [i, key] of [keys[4], keys[0], keys[2]].entries()) {
      const res = await runBin(["operator", "unseal", key as string], env);
      expect(res.code).toBe(0);
      expect(res.stdout).toMatch(i < 2 ? new RegExp(`Unseal Progress\\s+${i + 1}/3`) : /Sealed\s+false/);
    }
    expect((await runBin(["status"], env)).code).toBe(0);

    const authed = { ...env, BULWARK_TOKEN: rootToken };
    expect((await runBin(["secrets", "enable", "-path=secret", "-version=2", "kv"], authed)).code).toBe(0);
    expect((await runBin(["kv", "put", "secret/app/db", "password=hunter2"], authed)).code).toBe(0);
    expect((await runBin(["kv", "get", "-field=password", "secret/app/db"], authed)).stdout).toBe(
      "hunter2\n",
    );

    expect((await runBin(["operator", "seal"], authed)).stdout).toBe("Success! Bulwark is sealed.\n");
    const after = await runBin(["status", "-format=json"], env);
    expect(after.code).toBe(2);
    expect(JSON.parse(after.stdout)).toMatchObject({ sealed: true, initialized: true, t: 3, n: 5 });
    expect(await server.stop("SIGTERM")).toBe(0);
    expect(server.output()).toMatch(/sealed and stopped/);
  });

  it("a restart comes up sealed; 3 keys unseal it and the data is intact", async () => {
    const server = await start(join(dir, "server.hcl"));
    expect(server.output()).toMatch(/The store is sealed\. Unseal it with 3 of its 5 keys:/);
    const env = { BULWARK_ADDR: server.address, BULWARK_TOKEN: rootToken };
    expect((await runBin(["status"], env)).code).toBe(2);
    for (const key of keys.slice(0, 3)) {
      const r = await runBin(["operator", "unseal", key], env);
      expect(r.code, r.stderr).toBe(0);
    }
    expect((await runBin(["kv", "get", "-field=password", "secret/app/db"], env)).stdout).toBe("hunter2\n");
    expect(await server.stop("SIGINT")).toBe(0);
  });

  it("operator migrate copies the stopped server's storage; a server on the copy unseals with the same keys", async () => {
    const migrate = await runBin(["operator", "migrate", `-config=${join(dir, "migrate.hcl")}`]);
    expect(migrate.code, migrate.stderr).toBe(0);
    expect(migrate.stdout).toMatch(/^Success! All of the keys have been migrated\./);
    expect(migrate.stderr).toMatch(/copied \d+ entries/);
    const again = await runBin([
      "operator",
      "migrate",
      `-config=${join(dir, "migrate.hcl")}`,
      "-format=json",
    ]);
    expect(JSON.parse(again.stdout)).toMatchObject({ source: "file", destination: "file" });

    const server = await start(join(dir, "copy.hcl"));
    const env = { BULWARK_ADDR: server.address, BULWARK_TOKEN: rootToken };
    for (const key of keys.slice(2, 5)) {
      const r = await runBin(["operator", "unseal", key], env);
      expect(r.code, r.stderr).toBe(0);
    }
    expect((await runBin(["kv", "get", "-field=password", "secret/app/db"], env)).stdout).toBe("hunter2\n");
    expect(await server.stop()).toBe(0);
  });

  it("a config error stops the server with exit 1 and the file position", async () => {
    await writeFile(join(dir, "bad.hcl"), 'storage "file" {\n  path = "/x"\n}\nlistner "tcp" {}\n');
    const res = await runBin(["server", `-config=${join(dir, "bad.hcl")}`]);
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(/bad\.hcl:4:1: unknown setting `listner` — did you mean `listener`\?/);
  });
});

describe("the shipped default config", () => {
  it("config/default.hcl: file storage in ./data, Shamir, plain HTTP on 127.0.0.1:8200", async () => {
    const config = await loadConfig([join(SERVER_DIR, "config", "default.hcl")], { env: {} });
    expect(config.storage).toEqual({ type: "file", options: { path: "./data" } });
    expect(config.seals).toEqual([]);
    expect(config.listeners).toEqual([
      {
        address: "127.0.0.1:8200",
        tlsDisable: true,
        maxRequestSize: 32 * 1024 * 1024,
        // OpenBao 2.6's default: the unauthenticated rekey and generate-root endpoints are off.
        disableUnauthedRekeyEndpoints: true,
        disableUnauthedGenerateRootEndpoints: true,
      },
    ]);
    expect(config.warnings).toEqual([]);
  });
});

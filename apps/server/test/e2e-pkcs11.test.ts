/**
 * HSM end to end with SoftHSM2: (1) `bulwark server` with `seal "pkcs11"` auto-unseals after a
 * restart without operator action and reports the seal type and recovery seal; (2) a Shamir
 * store is migrated to the HSM seal through the CLI (`bulwark operator unseal -migrate`): after
 * the migration it auto-unseals, the data is intact and the old unseal keys are the recovery keys.
 * SoftHSM is started with the seal-pkcs11 package's own test helper (a private token directory,
 * SOFTHSM2_CONF passed to the server process).
 */
import nodeVault from "node-vault";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import {
  type SoftHsm,
  type SoftHsmToken,
  softHsmAvailable,
  startSoftHsm,
} from "../../../packages/seal-pkcs11/test/softhsm.js";
import {
  cliMissing,
  runCli,
  type ServerProcess,
  startServerProcess,
  tempDir,
} from "./helpers/server-process.js";

// Starts `bulwark server` processes: generous limits for a loaded 2-core machine (every test's
// servers are stopped after it however it ends: packages/core/test/support/vitest-setup.ts).
vi.setConfig({ testTimeout: 120_000, hookTimeout: 120_000 });

const missing = cliMissing();
if (missing !== undefined && process.env.CI === "true") throw new Error(missing);
if (missing !== undefined) console.warn(`skipping e2e: ${missing}`);
const available = missing === undefined && softHsmAvailable();

function pkcs11Block(hsm: SoftHsm, token: SoftHsmToken, keyLabel: string, disabled = false): string {
  return `
seal "pkcs11" {
  lib           = "${hsm.lib}"
  token_label   = "${token.label}"
  pin           = "${token.pin}"
  key_label     = "${keyLabel}"
  generate_key  = "true"
  ${disabled ? 'disabled = "true"' : ""}
}`;
}

function serverConfig(dataDir: string, seal: string): string {
  return `
storage "file" { path = "${dataDir}" }
${seal}
listener "tcp" {
  address     = "127.0.0.1:{{PORT}}"
  tls_disable = true
  # The recovery-key test drives Vault's unauthenticated sys/generate-root/* (off by default, as
  # in OpenBao 2.6).
  disable_unauthed_generate_root_endpoints = false
}
log_level = "debug"
`;
}

describe.skipIf(!available)("e2e: PKCS#11 (SoftHSM) auto-unseal and Shamir → pkcs11 migration", () => {
  let hsm: SoftHsm;
  let token: SoftHsmToken;
  const running: ServerProcess[] = [];
  const start = async (opts: Parameters<typeof startServerProcess>[0]) => {
    const s = await startServerProcess({ ...opts, env: { SOFTHSM2_CONF: hsm.conf, ...opts.env } });
    running.push(s);
    return s;
  };

  beforeAll(() => {
    hsm = startSoftHsm();
    token = hsm.createToken("bulwark-e2e");
  });
  afterAll(async () => {
    for (const s of running) await s.stop();
    hsm?.stop();
  });

  it("auto-unseals through the HSM after a restart, no operator action", async () => {
    const dir = tempDir("e2e-pkcs11");
    const config = serverConfig(`${dir}/data`, pkcs11Block(hsm, token, "bulwark-auto"));
    let server = await start({ config, dir });
    const vault = nodeVault({ endpoint: server.address, apiVersion: "v1" });
    const init = await vault.write("sys/init", { recovery_shares: 3, recovery_threshold: 2 });
    expect(init.recovery_keys).toHaveLength(3);
    vault.token = init.root_token;
    await vault.mount({ mount_point: "secret", type: "kv", options: { version: "2" } });
    await vault.write("secret/data/hsm", { data: { v: "through-the-hsm" } });
    await server.stop();

    const t0 = Date.now();
    server = await start({ config, dir, port: server.port });
    vault.endpoint = server.address;
    const st = await vault.status();
    expect(st).toMatchObject({
      type: "pkcs11",
      initialized: true,
      sealed: false,
      recovery_seal: true,
      recovery_seal_type: "shamir",
    });
    expect(Date.now() - t0).toBeLessThan(30_000);
    expect((await vault.read("secret/data/hsm")).data.data).toEqual({ v: "through-the-hsm" });
    await server.stop();
    expect(server.output()).not.toContain(token.pin);
    expect(server.output()).not.toContain(init.root_token);
  });

  it("migrates a Shamir store to pkcs11 with `bulwark operator unseal -migrate`", async () => {
    const dir = tempDir("e2e-migrate");
    const data = `${dir}/data`;
    // 1. A Shamir store with data.
    let server = await start({ config: serverConfig(data, ""), dir });
    const vault = nodeVault({ endpoint: server.address, apiVersion: "v1" });
    const init = await vault.init({ secret_shares: 3, secret_threshold: 2 });
    for (const key of init.keys.slice(0, 2)) await vault.unseal({ key });
    vault.token = init.root_token;
    await vault.mount({ mount_point: "secret", type: "kv", options: { version: "2" } });
    await vault.write("secret/data/before", { data: { v: "written-under-shamir" } });
    await server.stop();

    // 2. The config names the HSM seal: the server starts in migration mode.
    const migrateConfig = serverConfig(data, pkcs11Block(hsm, token, "bulwark-migrated"));
    server = await start({ config: migrateConfig, dir, port: server.port });
    vault.endpoint = server.address;
    expect(await vault.status()).toMatchObject({ sealed: true, migration: true });
    const env = { BULWARK_ADDR: server.address };
    // Without -migrate the unseal is refused.
    const refused = await runCli(["operator", "unseal", init.keys[0] as string], env);
    expect(refused.code).not.toBe(0);
    const notes: boolean[] = [];
    for (const key of init.keys.slice(0, 2)) {
      const r = await runCli(["operator", "unseal", "-migrate", key as string], env);
      expect(r.code, r.stderr).toBe(0);
      notes.push(r.stderr.includes("this share starts the migration"));
    }
    // The "this may take a while" note comes with the share that completes the threshold only.
    expect(notes).toEqual([false, true]);
    const after = await vault.status();
    expect(after).toMatchObject({ type: "pkcs11", sealed: false, migration: false, recovery_seal: true });
    expect((await vault.read("secret/data/before")).data.data).toEqual({ v: "written-under-shamir" });
    await server.stop();

    // 3. From now on the HSM unseals it; the old unseal keys are the recovery keys.
    server = await start({ config: migrateConfig, dir, port: server.port });
    vault.endpoint = server.address;
    expect(await vault.status()).toMatchObject({ type: "pkcs11", sealed: false, t: 2, n: 3 });
    expect((await vault.read("secret/data/before")).data.data).toEqual({ v: "written-under-shamir" });
    const gen = await vault.write("sys/generate-root/attempt", {});
    let done: { complete?: boolean } = {};
    for (const key of init.keys.slice(1, 3))
      done = await vault.write("sys/generate-root/update", { key, nonce: gen.nonce });
    expect(done.complete).toBe(true);
    await server.stop();
  });
});

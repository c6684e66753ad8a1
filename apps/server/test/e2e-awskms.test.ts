/**
 * AWS KMS end to end with local-kms (started by the seal-awskms package's own test helper):
 * `bulwark server` with `seal "awskms"` initialises with recovery keys, and after a restart is
 * unsealed by KMS without operator action, reporting the seal type and recovery seal.
 */
import nodeVault from "node-vault";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import {
  LOCAL_CREDENTIALS,
  type LocalKms,
  localKmsAvailability,
  startLocalKms,
} from "../../../packages/seal-awskms/test/local-kms.js";
import { cliMissing, type ServerProcess, startServerProcess, tempDir } from "./helpers/server-process.js";

// Starts `bulwark server` processes: generous limits for a loaded 2-core machine (every test's
// servers are stopped after it however it ends: packages/core/test/support/vitest-setup.ts).
vi.setConfig({ testTimeout: 120_000, hookTimeout: 120_000 });

const missing = cliMissing();
if (missing !== undefined && process.env.CI === "true") throw new Error(missing);
if (missing !== undefined) console.warn(`skipping e2e: ${missing}`);
const available = missing === undefined && localKmsAvailability().available;

describe.skipIf(!available)("e2e: AWS KMS (local-kms) auto-unseal", () => {
  let kms: LocalKms;
  let server: ServerProcess & { port: number };

  beforeAll(async () => {
    kms = await startLocalKms();
  }, 60_000);
  afterAll(async () => {
    await server?.stop();
    await kms?.stop();
  });

  it("initialises, restarts and is unsealed by KMS", async () => {
    const dir = tempDir("e2e-awskms");
    const config = `
storage "file" { path = "${dir}/data" }
seal "awskms" {
  region     = "${kms.region}"
  kms_key_id = "${kms.alias}"
  endpoint   = "${kms.endpoint}"
  access_key = "${LOCAL_CREDENTIALS.accessKeyId}"
  secret_key = "${LOCAL_CREDENTIALS.secretAccessKey}"
}
listener "tcp" {
  address     = "127.0.0.1:{{PORT}}"
  tls_disable = true
}
log_level = "debug"
`;
    const env = { AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true" };
    server = await startServerProcess({ config, dir, env });
    const vault = nodeVault({ endpoint: server.address, apiVersion: "v1" });
    const init = await vault.write("sys/init", { recovery_shares: 5, recovery_threshold: 3 });
    expect(init.recovery_keys).toHaveLength(5);
    vault.token = init.root_token;
    await vault.mount({ mount_point: "secret", type: "kv", options: { version: "2" } });
    await vault.write("secret/data/kms", { data: { v: "under-kms" } });
    await server.stop();
    const firstRun = server.output();

    server = await startServerProcess({ config, dir, env, port: server.port });
    vault.endpoint = server.address;
    expect(await vault.status()).toMatchObject({
      type: "awskms",
      initialized: true,
      sealed: false,
      recovery_seal: true,
      recovery_seal_type: "shamir",
      t: 3,
      n: 5,
    });
    expect((await vault.read("secret/data/kms")).data.data).toEqual({ v: "under-kms" });
    await server.stop();
    const logs = firstRun + server.output();
    expect(logs).not.toContain(LOCAL_CREDENTIALS.secretAccessKey);
    expect(logs).not.toContain(init.root_token);
    for (const k of init.recovery_keys as string[]) expect(logs).not.toContain(k);
  });
});

/**
 * Auto-unseal with the KMS down at boot, against a real local-kms: the server starts sealed,
 * `sys/seal-status` and the banner say it waits for the awskms seal (no recovery keys offered),
 * and once local-kms is back on the same port the server unseals by itself, within the backoff cap.
 */
import { randomBytes, randomUUID } from "node:crypto";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { type ProcessGroup, spawnGroup } from "../../../packages/core/test/support/processes.js";
import {
  LOCAL_CREDENTIALS,
  LOCAL_KMS_ACCOUNT,
  LOCAL_KMS_BIN,
  LOCAL_KMS_REGION,
  localKmsAvailability,
} from "../../../packages/seal-awskms/test/local-kms.js";
import { cliMissing, freePort, runCli, startServerGroup, tempDir } from "./helpers/server-process.js";

const missing = cliMissing();
if (missing !== undefined && process.env.CI === "true") throw new Error(missing);
if (missing !== undefined) console.warn(`skipping auto-unseal retry e2e: ${missing}`);
const available = missing === undefined && localKmsAvailability().available;

/** The default backoff cap of the store's auto-unseal retries. */
const RETRY_CAP_MS = 10_000;

/** local-kms on a fixed port, with a seed and a data directory that survive a restart. */
async function startKms(dir: string, port: number): Promise<ProcessGroup> {
  const group = spawnGroup(LOCAL_KMS_BIN, [], {
    env: {
      PATH: process.env.PATH ?? "",
      PORT: String(port),
      KMS_REGION: LOCAL_KMS_REGION,
      KMS_ACCOUNT_ID: LOCAL_KMS_ACCOUNT,
      KMS_SEED_PATH: join(dir, "seed.yaml"),
      KMS_DATA_PATH: join(dir, "data"),
    },
    stdio: ["ignore", "pipe", "pipe"],
    description: "local-kms",
  });
  let out = "";
  const started = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`local-kms did not start within 15 s:\n${out}`)), 15_000);
    const onData = (d: Buffer) => {
      out += d.toString("utf8");
      if (/started on/.test(out)) {
        clearTimeout(timer);
        resolve();
      }
    };
    group.child.stdout?.on("data", onData);
    group.child.stderr?.on("data", onData);
    void group.exited.then(() => {
      clearTimeout(timer);
      reject(new Error(`local-kms exited early:\n${out}`));
    });
  });
  await started;
  return group;
}

function writeSeed(dir: string, keyId: string): void {
  mkdirSync(join(dir, "data"), { recursive: true });
  writeFileSync(
    join(dir, "seed.yaml"),
    [
      "Keys:",
      "  Symmetric:",
      "    Aes:",
      "      - Metadata:",
      `          KeyId: ${keyId}`,
      "        BackingKeys:",
      `          - ${randomBytes(32).toString("hex")}`,
      "Aliases:",
      "  - AliasName: alias/bulwark-retry",
      `    TargetKeyId: ${keyId}`,
      "",
    ].join("\n"),
    { mode: 0o600 },
  );
}

function startBulwark(configFile: string, port: number) {
  return startServerGroup(configFile, port, {
    ...process.env,
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true",
  });
}

async function sealStatus(address: string): Promise<Record<string, unknown>> {
  return (await (await fetch(`${address}/v1/sys/seal-status`)).json()) as Record<string, unknown>;
}

describe.skipIf(!available)("e2e: auto-unseal retries while local-kms is down", () => {
  it("starts sealed and waiting, then unseals by itself once local-kms is back on the same port", {
    timeout: 180_000,
  }, async () => {
    const dir = tempDir("e2e-kms-retry");
    const kmsDir = join(dir, "kms");
    writeSeed(kmsDir, randomUUID());
    const [kmsPort, port] = [await freePort(), await freePort()];
    const config = join(dir, "server.hcl");
    writeFileSync(
      config,
      `storage "file" { path = "${dir}/data" }
seal "awskms" {
  region     = "${LOCAL_KMS_REGION}"
  kms_key_id = "alias/bulwark-retry"
  endpoint   = "http://127.0.0.1:${kmsPort}"
  access_key = "${LOCAL_CREDENTIALS.accessKeyId}"
  secret_key = "${LOCAL_CREDENTIALS.secretAccessKey}"
}
listener "tcp" {
  address     = "127.0.0.1:${port}"
  tls_disable = true
}
`,
    );

    // Initialise while KMS is up.
    let kms = await startKms(kmsDir, kmsPort);
    let server = await startBulwark(config, port);
    const init = await fetch(`${server.address}/v1/sys/init`, {
      method: "PUT",
      body: JSON.stringify({ recovery_shares: 1, recovery_threshold: 1 }),
    });
    expect(init.status).toBe(200);
    expect(await sealStatus(server.address)).toMatchObject({ initialized: true, sealed: false });
    expect((await server.group.stop(15_000)).code).toBe(0);

    // KMS down, server up: sealed, and it says what it waits for.
    await kms.stop(5_000);
    server = await startBulwark(config, port);
    const waiting = await sealStatus(server.address);
    expect(waiting).toMatchObject({ type: "awskms", initialized: true, sealed: true, recovery_seal: true });
    expect(waiting.bulwark_auto_unseal).toMatchObject({ waiting_for: "awskms", max_retry_interval: "10s" });
    const wait = waiting.bulwark_auto_unseal as Record<string, unknown>;
    expect(wait.attempts).toBeGreaterThanOrEqual(1);
    expect(String(wait.last_error)).toMatch(/ECONNREFUSED|unreachable|connect/i);
    expect(Date.parse(String(wait.next_attempt))).toBeGreaterThan(Date.parse(String(wait.last_attempt)) - 1);
    expect(String((waiting.warnings as string[])[0])).toMatch(/waiting for the awskms seal/);
    const banner = server.output();
    expect(banner).toMatch(/The store is sealed, waiting for the awskms seal \(/);
    expect(banner).toMatch(
      /retrying every 10 s at most; the server unseals by itself when it is reachable\./,
    );
    expect(banner).not.toMatch(/Unseal it with|recovery keys?:/i);
    // The CLI's status table says it too (a sealed status exits 2, as Vault's).
    const cli = await runCli(["status"], { BULWARK_ADDR: server.address });
    expect(cli.code, cli.stderr).toBe(2);
    expect(cli.stdout).toMatch(/Waiting For Seal\s+awskms \(attempt \d+, next /);
    expect(cli.stdout).toMatch(/Last Seal Error\s+.*(ECONNREFUSED|unreachable|connect)/i);

    // KMS back on the same port: the server unseals by itself, within the backoff cap.
    await new Promise((r) => setTimeout(r, 2_000));
    kms = await startKms(kmsDir, kmsPort);
    const back = Date.now();
    let status = await sealStatus(server.address);
    while (status.sealed === true && Date.now() - back < RETRY_CAP_MS + 20_000) {
      await new Promise((r) => setTimeout(r, 200));
      status = await sealStatus(server.address);
    }
    const tookMs = Date.now() - back;
    expect(status, server.output()).toMatchObject({ sealed: false });
    expect(status.bulwark_auto_unseal).toBeUndefined();
    // One backoff interval at most, plus the attempt itself on a loaded machine.
    expect(tookMs).toBeLessThan(RETRY_CAP_MS + 10_000);
    const logs = server.output();
    expect(logs).toContain("auto-unseal: the awskms seal is unreachable; retrying");
    expect(logs).toContain('"msg":"auto-unsealed"');
    expect(logs).not.toContain(LOCAL_CREDENTIALS.secretAccessKey);
    console.info(`auto-unsealed ${tookMs} ms after local-kms came back`);

    expect((await server.group.stop(15_000)).code).toBe(0);
    await kms.stop(5_000);
  });
});

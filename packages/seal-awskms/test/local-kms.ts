/**
 * Starts nsmithuk/local-kms (installed by tooling/services/install.sh) for tests: an ephemeral
 * port (PORT=0, read back from its log), a temp data directory, a seed file with two symmetric
 * keys, an alias and a third key that is disabled after start (local-kms seeds every key enabled,
 * so DisableKey goes through the SDK). `stop()` kills the process and removes the directory. The
 * emulator runs in its own process group (packages/core/test/support/processes.ts), stopped — SIGKILL
 * after a grace — when the test or file that started it ends, however it ends.
 */
import { randomBytes, randomUUID } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { DisableKeyCommand, KMSClient } from "@aws-sdk/client-kms";
import { spawnGroup } from "../../core/test/support/processes.js";
import type { AwsKmsSealOptions } from "../src/index.js";

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = "true";

const here = dirname(fileURLToPath(import.meta.url));
/** tooling/services/install.sh puts it here; BULWARK_LOCAL_KMS_BIN points elsewhere. */
export const LOCAL_KMS_BIN =
  process.env.BULWARK_LOCAL_KMS_BIN ?? resolve(here, "../../../tooling/services/.bin/local-kms");
export const LOCAL_KMS_REGION = "eu-west-2";
export const LOCAL_KMS_ACCOUNT = "111122223333";
/** local-kms does not check signatures; any static pair will do (and must never show up in output). */
export const LOCAL_CREDENTIALS = {
  accessKeyId: "AKIDBULWARKLOCALKMS0",
  secretAccessKey: "bulwark-local-kms-secret-NEVER-PRINTED",
} as const;

/**
 * Whether local-kms can run here. A missing binary skips the suite locally (with the reason), but
 * fails it in CI, where a skipped service test would hide a broken install.
 */
export function localKmsAvailability(): { available: boolean; reason: string } {
  if (existsSync(LOCAL_KMS_BIN)) return { available: true, reason: "" };
  const reason = `local-kms not found at ${LOCAL_KMS_BIN}: run tooling/services/install.sh`;
  if (process.env.CI === "true") throw new Error(`${reason} (CI requires it)`);
  console.warn(`skipping AWS KMS emulator tests: ${reason}`);
  return { available: false, reason };
}

export interface LocalKey {
  id: string;
  arn: string;
}

export interface LocalKms {
  endpoint: string;
  region: string;
  /** Alias initially pointing at `primary`. */
  alias: string;
  primary: LocalKey;
  secondary: LocalKey;
  /** Disabled after start. */
  disabled: LocalKey;
  /** An SDK client for admin calls (UpdateAlias, DisableKey, …) and raw baselines. */
  admin: KMSClient;
  /** A new SDK client for `endpoint` (or another endpoint, e.g. a fault proxy). */
  client(endpoint?: string): KMSClient;
  /** The process's log so far (for failure messages). */
  log(): string;
  stop(): Promise<void>;
}

/**
 * Options for an AwsKmsSeal on `kms`: its alias, region and endpoint, the test credentials, and no
 * periodic health checks; `extra` overrides any of them.
 */
export function localSealOptions(kms: LocalKms, extra: Partial<AwsKmsSealOptions> = {}): AwsKmsSealOptions {
  return {
    kmsKeyId: kms.alias,
    region: kms.region,
    endpoint: kms.endpoint,
    ...LOCAL_CREDENTIALS,
    healthCheckIntervalMs: 0,
    ...extra,
  };
}

function key(id: string): LocalKey {
  return { id, arn: `arn:aws:kms:${LOCAL_KMS_REGION}:${LOCAL_KMS_ACCOUNT}:key/${id}` };
}

export async function startLocalKms(): Promise<LocalKms> {
  const dir = await mkdtemp(join(tmpdir(), "bulwark-local-kms-"));
  const primary = key(randomUUID());
  const secondary = key(randomUUID());
  const disabled = key(randomUUID());
  const alias = "alias/bulwark-seal";
  const backing = () => randomBytes(32).toString("hex");
  const seed = [
    "Keys:",
    "  Symmetric:",
    "    Aes:",
    ...[primary, secondary, disabled].flatMap((k) => [
      "      - Metadata:",
      `          KeyId: ${k.id}`,
      "        BackingKeys:",
      `          - ${backing()}`,
    ]),
    "Aliases:",
    `  - AliasName: ${alias}`,
    `    TargetKeyId: ${primary.id}`,
    "",
  ].join("\n");
  const seedPath = join(dir, "seed.yaml");
  await writeFile(seedPath, seed, { mode: 0o600 });

  const group = spawnGroup(LOCAL_KMS_BIN, [], {
    description: "local-kms",
    env: {
      PATH: process.env.PATH ?? "",
      PORT: "0",
      KMS_REGION: LOCAL_KMS_REGION,
      KMS_ACCOUNT_ID: LOCAL_KMS_ACCOUNT,
      KMS_SEED_PATH: seedPath,
      KMS_DATA_PATH: join(dir, "data"),
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const { child } = group;
  let output = "";
  const port = await new Promise<number>((resolvePort, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`local-kms did not start within 30 s:\n${output}`)),
      30_000,
    );
    const onData = (chunk: Buffer) => {
      output += chunk.toString("utf8");
      // "Local KMS started on 0.0.0.0:40123" (logrus, with colour codes)
      const m = /started on [^\s:]*:(\d+)/.exec(output);
      if (m !== null) {
        clearTimeout(timer);
        resolvePort(Number(m[1]));
      }
    };
    child.stdout?.on("data", onData);
    child.stderr?.on("data", onData);
    child.once("exit", (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`local-kms exited early (code ${code}, signal ${signal}):\n${output}`));
    });
    child.once("error", (err) => {
      clearTimeout(timer);
      reject(err);
    });
  }).catch(async (err) => {
    await group.stop(0);
    await rm(dir, { recursive: true, force: true });
    throw err;
  });
  // Keep draining output so the pipe never fills; keep only the tail for diagnostics.
  const keep = (chunk: Buffer) => {
    output = (output + chunk.toString("utf8")).slice(-20_000);
  };
  child.stdout?.removeAllListeners("data").on("data", keep);
  child.stderr?.removeAllListeners("data").on("data", keep);

  const endpoint = `http://127.0.0.1:${port}`;
  const client = (ep = endpoint) =>
    new KMSClient({ region: LOCAL_KMS_REGION, endpoint: ep, credentials: LOCAL_CREDENTIALS, maxAttempts: 1 });
  const admin = client();
  await admin.send(new DisableKeyCommand({ KeyId: disabled.id }));

  let stopped = false;
  return {
    endpoint,
    region: LOCAL_KMS_REGION,
    alias,
    primary,
    secondary,
    disabled,
    admin,
    client,
    log: () => output,
    async stop() {
      if (stopped) return;
      stopped = true;
      admin.destroy();
      await group.stop(3_000);
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/**
 * The full lifecycle with @bulwark/core on file storage: initialise in this process, then auto-unseal
 * in new processes (built dist, seal built from a Vault-style block and the environment), through an
 * alias re-point (stored keys upgraded) and a disabled key (store stays sealed, says why).
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { DisableKeyCommand, EnableKeyCommand, UpdateAliasCommand } from "@aws-sdk/client-kms";
import { SealedStore, type SealStatus } from "@bulwark/core";
import { parseSealWrapped } from "@bulwark/seal";
import { FileBackend } from "@bulwark/storage-file";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { execGroup } from "../../core/test/support/processes.js";
import { AwsKmsSeal } from "../src/index.js";
import {
  LOCAL_CREDENTIALS,
  type LocalKms,
  localKmsAvailability,
  localSealOptions,
  startLocalKms,
} from "./local-kms.js";

const { available } = localKmsAvailability();
const CHILD = join(dirname(fileURLToPath(import.meta.url)), "fixtures", "open-store.mjs");
const utf8 = (s: string) => new TextEncoder().encode(s);
const text = (b: Uint8Array | undefined) => (b === undefined ? undefined : new TextDecoder().decode(b));

interface ChildReport {
  status: SealStatus;
  openMs: number;
  keyId: string;
  values: Record<string, string | null>;
  rawKeyIds: Record<string, string | null>;
}

const STORED_KEYS = "core/hsm/barrier-unseal-keys";
const RECOVERY_KEY = "core/recovery-key";

describe.skipIf(!available)("SealedStore + file storage + AwsKmsSeal across processes", () => {
  let kms: LocalKms;
  let dir: string;

  /** Opens the store in a new Node process with the built packages; returns what it saw. */
  async function child(
    opts: { reads?: string[]; writes?: Array<[string, string, boolean]> } = {},
  ): Promise<ChildReport> {
    const { stdout } = await execGroup(process.execPath, [CHILD], {
      env: {
        PATH: process.env.PATH ?? "",
        AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true",
        // As an operator would run it: key id, region and credentials from the environment.
        VAULT_AWSKMS_SEAL_KEY_ID: kms.alias,
        AWS_REGION: kms.region,
        AWS_ACCESS_KEY_ID: LOCAL_CREDENTIALS.accessKeyId,
        AWS_SECRET_ACCESS_KEY: LOCAL_CREDENTIALS.secretAccessKey,
        AWS_CONFIG_FILE: "/nonexistent/bulwark-aws-config",
        AWS_SHARED_CREDENTIALS_FILE: "/nonexistent/bulwark-aws-credentials",
        STORE_DIR: dir,
        SEAL_CONFIG: JSON.stringify({
          endpoint: kms.endpoint,
          request_timeout: "5s",
          health_check_enabled: "false",
        }),
        READ_PATHS: JSON.stringify(opts.reads ?? []),
        WRITE_ENTRIES: JSON.stringify(opts.writes ?? []),
      },
      timeoutMs: 60_000,
    });
    return JSON.parse(stdout.trim().split("\n").at(-1) ?? "{}") as ChildReport;
  }

  beforeAll(async () => {
    kms = await startLocalKms();
    dir = await mkdtemp(join(tmpdir(), "bulwark-awskms-lifecycle-"));
  }, 30_000);
  afterAll(async () => {
    await kms?.stop();
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  it("init here → a new process auto-unseals → plain and seal-wrapped data readable", async () => {
    const seal = new AwsKmsSeal(localSealOptions(kms));
    const store = await SealedStore.open({ storage: new FileBackend({ path: dir }), seal });
    expect(store.status()).toMatchObject({ initialized: false, sealed: true, type: "awskms" });
    const init = await store.initialize({ recoveryShares: 3, recoveryThreshold: 2 });
    expect(init.keys).toEqual([]);
    expect(init.recoveryKeys).toHaveLength(3);
    expect(store.status()).toMatchObject({ initialized: true, sealed: false, recoverySeal: true });
    await store.put("secret/plain", utf8("plain value"));
    await store.put("secret/wrapped", utf8("wrapped value"), { sealWrap: true });
    await store.close();

    const report = await child({ reads: ["secret/plain", "secret/wrapped"] });
    expect(report.status).toMatchObject({ type: "awskms", initialized: true, sealed: false });
    expect(report.status.sealedReason).toBeUndefined();
    expect(report.values).toEqual({ "secret/plain": "plain value", "secret/wrapped": "wrapped value" });
    expect(report.keyId).toBe(kms.primary.arn);
    expect(report.rawKeyIds).toMatchObject({
      [STORED_KEYS]: kms.primary.arn,
      [RECOVERY_KEY]: kms.primary.arn,
      "secret/wrapped": kms.primary.arn,
    });
    // The plain entry is barrier-encrypted only; the wrapped one carries the seal's BlobInfo.
    expect(report.rawKeyIds["secret/plain"]).toBeNull();
    console.log(`auto-unseal in a new process: SealedStore.open ${report.openMs.toFixed(1)} ms`);
  });

  it("alias re-pointed → stored keys upgraded to the new ARN at unseal; old wrapped data still readable; rewrap moves it", async () => {
    await kms.admin.send(new UpdateAliasCommand({ AliasName: kms.alias, TargetKeyId: kms.secondary.id }));
    const report = await child({
      reads: ["secret/plain", "secret/wrapped"],
      writes: [["secret/new-wrapped", "new wrapped value", true]],
    });
    expect(report.status.sealed).toBe(false);
    expect(report.keyId).toBe(kms.secondary.arn);
    expect(report.values).toEqual({ "secret/plain": "plain value", "secret/wrapped": "wrapped value" });
    expect(report.rawKeyIds).toMatchObject({
      [STORED_KEYS]: kms.secondary.arn,
      [RECOVERY_KEY]: kms.secondary.arn,
      "secret/wrapped": kms.primary.arn,
      "secret/new-wrapped": kms.secondary.arn,
    });

    // Rewrap (Vault Enterprise's sys/sealwrap/rewrap) moves the old entry to the new key.
    const seal = new AwsKmsSeal(localSealOptions(kms));
    const storage = new FileBackend({ path: dir });
    const store = await SealedStore.open({ storage, seal });
    expect(store.status().sealed).toBe(false);
    const result = await store.rewrap();
    expect(result.failed).toBe(0);
    expect(result.rewrapped).toBeGreaterThanOrEqual(2);
    const raw = await storage.get("secret/wrapped");
    expect(raw && parseSealWrapped(raw.value)?.keyInfo?.keyId).toBe(kms.secondary.arn);
    expect(text(await store.get("secret/wrapped"))).toBe("wrapped value");
    await store.close();
  });

  it("key disabled → the store stays sealed and says the key is disabled; enabled again → unseals", async () => {
    await kms.admin.send(new DisableKeyCommand({ KeyId: kms.secondary.id }));
    let enabled = false;
    try {
      const sealed = await child({ reads: [] });
      expect(sealed.status).toMatchObject({ initialized: true, sealed: true });
      expect(sealed.status.sealedReason).toContain(
        `KMS key ${kms.secondary.arn} (kms_key_id ${kms.alias}) is disabled`,
      );
      expect(sealed.status.sealedReason).toContain("aws kms enable-key");

      await kms.admin.send(new EnableKeyCommand({ KeyId: kms.secondary.id }));
      enabled = true;
      const open = await child({ reads: ["secret/plain", "secret/wrapped", "secret/new-wrapped"] });
      expect(open.status.sealed).toBe(false);
      expect(open.values).toEqual({
        "secret/plain": "plain value",
        "secret/wrapped": "wrapped value",
        "secret/new-wrapped": "new wrapped value",
      });
    } finally {
      if (!enabled) await kms.admin.send(new EnableKeyCommand({ KeyId: kms.secondary.id }));
    }
  });

  it("the same seal object unseals once the key is enabled (init is retried)", async () => {
    await kms.admin.send(new DisableKeyCommand({ KeyId: kms.secondary.id }));
    const seal = new AwsKmsSeal(localSealOptions(kms));
    const first = await SealedStore.open({ storage: new FileBackend({ path: dir }), seal });
    expect(first.status().sealed).toBe(true);
    expect(first.status().sealedReason).toMatch(/is disabled/);
    await expect(first.get("secret/plain")).rejects.toThrow(/is disabled/);
    await kms.admin.send(new EnableKeyCommand({ KeyId: kms.secondary.id }));
    const second = await SealedStore.open({ storage: new FileBackend({ path: dir }), seal });
    expect(second.status().sealed).toBe(false);
    expect(text(await second.get("secret/plain"))).toBe("plain value");
    await second.close();
    await first.close();
  });
});

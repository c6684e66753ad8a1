import { KMSClient } from "@aws-sdk/client-kms";
import { AES_256_KEY_BYTES, randomBytes } from "@bulwark/crypto";
import { BaseSeal, type BlobInfo, type SealEncryptOptions, SealError, type SealHealth } from "@bulwark/seal";
import { HealthMonitor, sameBytes } from "./health.js";
import { type KmsApi, kmsApiFromClient, kmsClientConfig, sdkDefaultRegion } from "./kms-api.js";
import { KmsSession } from "./kms-session.js";
import {
  type AwsKmsSealOptions,
  DEFAULT_REGION,
  type EnvLike,
  parseAwsKmsSealConfig,
  type ResolvedAwsKmsSealOptions,
  resolveOptions,
} from "./options.js";

export { healthCheckCallsPerDay, KMS_CALLS_PER_HEALTH_CHECK } from "./health.js";
export { AWSKMS_MECHANISM_DIRECT, AWSKMS_MECHANISM_ENVELOPE } from "./kms-session.js";

/** Non-sensitive facts about the seal (Vault's wrapper metadata). */
export interface AwsKmsSealMetadata {
  type: "awskms";
  /** The configured key reference (id, ARN or alias). */
  configuredKeyId: string;
  /** The key ARN KMS last reported, once initialised. */
  keyArn: string | undefined;
  region: string | undefined;
  endpoint: string | undefined;
  encryptionContextKeys: string[];
}

// Options objects produced by createAwsKmsSeal/resolveOptions, so the constructor does not re-check them.
const resolved = new WeakSet<object>();

/**
 * The AWS KMS seal (`seal "awskms"`): envelope encryption with a fresh AES-256-GCM data key per
 * blob, the data key wrapped by a KMS key. Wire-compatible with Vault's awskms seal (BlobInfo
 * mechanism 1, `keyInfo.keyId` = the key ARN KMS reports, `wrappedKey` = KMS ciphertext).
 *
 * - `init()`: `DescribeKey` (resolves an alias to the key ARN; the key must be Enabled, symmetric,
 *   ENCRYPT_DECRYPT), then an encrypt/decrypt self-test. Fails fast with what to fix.
 * - `keyId()` is the ARN KMS last reported (DescribeKey at init, then every Encrypt), so re-pointing
 *   an alias or changing `kms_key_id` makes the core re-wrap its stored keys after unseal.
 * - Decrypt names the blob's key in KMS Decrypt (so a blob never decrypts under a key other than
 *   the one it records) and sends the configured encryption context.
 * - Transient failures (throttling, KMS internal errors, timeouts, connection errors) are retried
 *   with capped exponential backoff and jitter; others become typed errors at once.
 * - `encrypt`/`decrypt` take an optional abort `signal`: an aborted one sends nothing to KMS; an
 *   abort cancels the KMS request in flight (the SDK's `abortSignal`) and any retry backoff, and the
 *   call rejects with `signal.reason` at once.
 * - A background health check (encrypt+decrypt, 2 KMS calls) runs every 10 min, every 1 min while
 *   unhealthy; `health()` reports its last result.
 */
export class AwsKmsSeal extends BaseSeal {
  readonly type = "awskms";
  readonly autoUnseal = true;
  readonly supportsSealWrap = true;

  readonly #opts: ResolvedAwsKmsSealOptions;
  /** The KMS client, region, key ARN and envelope calls. */
  readonly #kms: KmsSession;
  readonly #health: HealthMonitor;

  constructor(options: AwsKmsSealOptions) {
    super();
    this.#opts = resolved.has(options)
      ? (options as unknown as ResolvedAwsKmsSealOptions)
      : resolveOptions(options);
    this.#kms = new KmsSession(this.#opts);
    this.#health = new HealthMonitor(this.#opts, {
      roundTrip: async (data) => this.decrypt(await this.encrypt(data)),
      initialized: () => this.initialized,
      keyId: () => this.keyId(),
      region: () => this.#kms.region,
    });
  }

  /** The key ARN KMS last reported; before `init()`, the configured key reference. */
  keyId(): string {
    return this.#kms.keyId();
  }

  /** Region, key and endpoint: safe to log and show (never credentials). */
  metadata(): AwsKmsSealMetadata {
    return {
      type: "awskms",
      configuredKeyId: this.#opts.kmsKeyId,
      keyArn: this.#kms.keyArn,
      region: this.#kms.region,
      endpoint: this.#opts.endpoint,
      encryptionContextKeys: Object.keys(this.#opts.encryptionContext ?? {}),
    };
  }

  /**
   * Runs a health check now (2 KMS calls) and returns its result; `health()` returns the last
   * periodic result instead. Never throws.
   */
  async checkHealth(): Promise<SealHealth> {
    if (!this.initialized) return this.health();
    return this.#health.run();
  }

  // ------------------------------------------------------------------------------------- hooks

  protected override async doInit(signal: AbortSignal | undefined): Promise<void> {
    const opts = this.#opts;
    const kms = this.#kms;
    this.#health.resume();
    let owned: KmsApi | undefined;
    try {
      if (opts.client !== undefined) {
        kms.api = opts.client;
      } else {
        kms.region = opts.region ?? (await sdkDefaultRegion(opts.sharedCredsProfile)) ?? DEFAULT_REGION;
        owned = kmsApiFromClient(new KMSClient(kmsClientConfig(opts, kms.region)));
        kms.api = owned;
      }
      await kms.describe(signal);
      await this.#selfTest(signal);
      opts.logger?.info("AWS KMS seal ready", {
        keyId: kms.keyArn,
        region: kms.region,
        ...(opts.endpoint !== undefined ? { endpoint: opts.endpoint } : {}),
      });
    } catch (err) {
      kms.keyArn = undefined;
      kms.api = undefined;
      owned?.destroy?.();
      throw err;
    }
    this.#health.schedule();
  }

  /** A full round trip through KMS proves kms:Encrypt and kms:Decrypt, not only DescribeKey. */
  async #selfTest(signal: AbortSignal | undefined): Promise<void> {
    const started = performance.now();
    const probe = randomBytes(AES_256_KEY_BYTES);
    const blob = await this.#kms.encrypt(probe, undefined, signal);
    const back = await this.#kms.decrypt(blob, undefined, signal);
    const ok = sameBytes(probe, back);
    probe.fill(0);
    back.fill(0);
    if (!ok) {
      throw new SealError(
        "provider_failed",
        `awskms seal self-test with ${this.keyId()} returned a different value`,
      );
    }
    this.#health.record(true, undefined, performance.now() - started);
  }

  protected override async doFinalize(): Promise<void> {
    await this.#health.stop();
    const kms = this.#kms;
    if (kms.api !== undefined && kms.api !== this.#opts.client) kms.api.destroy?.();
    kms.api = undefined;
  }

  protected override async doEncrypt(plaintext: Uint8Array, opts: SealEncryptOptions): Promise<BlobInfo> {
    // The caller's signal stops the KMS request (the SDK gets it as `abortSignal`) and any retry
    // backoff; the rejection is then the signal's reason (callKms passes it through).
    return this.#kms.encrypt(plaintext, opts.aad, opts.signal);
  }

  protected override async doDecrypt(
    blob: BlobInfo & { keyInfo: NonNullable<BlobInfo["keyInfo"]> },
    opts: SealEncryptOptions,
  ): Promise<Uint8Array> {
    return this.#kms.decrypt(blob, opts.aad, opts.signal);
  }

  protected override async doHealth(): Promise<SealHealth> {
    const state = this.#health.state;
    // Checks off (or none yet): a health request is a check, and costs its two KMS calls.
    if (state === undefined || this.#opts.healthCheckIntervalMs === 0) return this.#health.run();
    return this.#health.report(state);
  }

  /**
   * While an alias is re-pointed, KMS answers with the old and the new key in turn, so `keyId()`
   * can move on between a concurrent encrypt's answer and the template's check of its blob. Any key
   * KMS reported for an Encrypt of this seal is one it encrypts with.
   */
  protected override isCurrentKeyId(recorded: string, keyIdBefore: string): boolean {
    return super.isCurrentKeyId(recorded, keyIdBefore) || this.#kms.reported(recorded);
  }
}

/**
 * Builds an {@link AwsKmsSeal} from a parsed `seal "awskms" { … }` block (Vault's key names; string
 * values as Vault's config map carries them are converted) or from {@link AwsKmsSealOptions}, with
 * the environment applied (see `parseAwsKmsSealConfig`). Throws `SealConfigError` naming the field.
 * Makes no network call: `init()` does.
 */
export function createAwsKmsSeal(
  config: Record<string, unknown> | AwsKmsSealOptions,
  env: EnvLike = process.env,
): AwsKmsSeal {
  const opts = parseAwsKmsSealConfig(config, env);
  resolved.add(opts);
  return new AwsKmsSeal(opts as unknown as AwsKmsSealOptions);
}

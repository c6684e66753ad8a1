import { KMSClient } from "@aws-sdk/client-kms";
import {
  AES_256_KEY_BYTES,
  CryptoError,
  constantTimeEqual,
  GCM_NONCE_BYTES,
  randomBytes,
} from "@bulwark/crypto";
import {
  BaseSeal,
  type BlobInfo,
  createBlobInfo,
  SealDecryptError,
  type SealEncryptOptions,
  SealError,
  type SealHealth,
} from "@bulwark/seal";
import { openEnvelope, sealEnvelope } from "./envelope.js";
import {
  AwsKmsAccessDeniedError,
  AwsKmsError,
  type AwsKmsErrorDetails,
  AwsKmsKeyStateError,
  type KmsOperation,
} from "./errors.js";
import {
  type KmsApi,
  type KmsKeyMetadata,
  kmsApiFromClient,
  kmsClientConfig,
  sdkDefaultRegion,
} from "./kms-api.js";
import {
  type AwsKmsSealOptions,
  DEFAULT_REGION,
  type EnvLike,
  parseAwsKmsSealConfig,
  type ResolvedAwsKmsSealOptions,
  resolveOptions,
} from "./options.js";
import { callKms, type RetryPolicy } from "./retry.js";

/** `KeyInfo.mechanism` of a blob whose plaintext went to KMS Encrypt directly (read-only here; Vault's `AwsKmsEncrypt`). */
export const AWSKMS_MECHANISM_DIRECT = 0;
/** `KeyInfo.mechanism` of an envelope blob: local AES-256-GCM, data key wrapped by KMS (Vault's `AwsKmsEnvelopeAesGcmEncrypt`). */
export const AWSKMS_MECHANISM_ENVELOPE = 1;

/** KMS calls one health check makes (one Encrypt for the data key, one Decrypt). */
export const KMS_CALLS_PER_HEALTH_CHECK = 2;

/** KMS calls per day per node that periodic health checks cost at `intervalMs` (0 = off). */
export function healthCheckCallsPerDay(intervalMs: number): number {
  return intervalMs <= 0 ? 0 : Math.round((86_400_000 / intervalMs) * KMS_CALLS_PER_HEALTH_CHECK);
}

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

interface HealthState {
  healthy: boolean;
  checkedAt: number;
  lastHealthyAt: number | undefined;
  message: string | undefined;
  roundTripMs: number | undefined;
}

// Options objects produced by createAwsKmsSeal/resolveOptions, so the constructor does not re-check them.
const resolved = new WeakSet<object>();

const HEARTBEAT = new TextEncoder();

/** Error details for a KMS answer the seal cannot use (the call itself succeeded, first time). */
function invalidResponse(operation: KmsOperation): AwsKmsErrorDetails {
  return {
    operation,
    awsErrorName: "InvalidResponse",
    requestId: undefined,
    httpStatusCode: undefined,
    attempts: 1,
  };
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && constantTimeEqual(a, b);
}

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
  readonly #policy: RetryPolicy;
  #api: KmsApi | undefined;
  #region: string | undefined;
  #keyArn: string | undefined;
  #health: HealthState | undefined;
  #timer: NodeJS.Timeout | undefined;
  #checking: Promise<SealHealth> | undefined;
  #stopped = false;
  /** Key ARNs KMS reported for this seal's Encrypt calls, most recent last (a few at most). */
  readonly #reported = new Set<string>();

  constructor(options: AwsKmsSealOptions) {
    super();
    this.#opts = resolved.has(options)
      ? (options as unknown as ResolvedAwsKmsSealOptions)
      : resolveOptions(options);
    this.#region = this.#opts.region;
    this.#policy = {
      // The SDK client enforces the request timeout itself; an injected client may not.
      backstop: this.#opts.client !== undefined,
      maxRetries: this.#opts.maxRetries,
      requestTimeoutMs: this.#opts.requestTimeoutMs,
      baseDelayMs: this.#opts.retryBaseDelayMs,
      maxDelayMs: this.#opts.retryMaxDelayMs,
    };
  }

  /** The key ARN KMS last reported; before `init()`, the configured key reference. */
  keyId(): string {
    return this.#keyArn ?? this.#opts.kmsKeyId;
  }

  /** Region, key and endpoint: safe to log and show (never credentials). */
  metadata(): AwsKmsSealMetadata {
    return {
      type: "awskms",
      configuredKeyId: this.#opts.kmsKeyId,
      keyArn: this.#keyArn,
      region: this.#region,
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
    return this.#runCheck();
  }

  // ------------------------------------------------------------------------------------- hooks

  protected override async doInit(signal: AbortSignal | undefined): Promise<void> {
    const opts = this.#opts;
    this.#stopped = false;
    let owned: KmsApi | undefined;
    try {
      if (opts.client !== undefined) {
        this.#api = opts.client;
      } else {
        this.#region = opts.region ?? (await sdkDefaultRegion(opts.sharedCredsProfile)) ?? DEFAULT_REGION;
        owned = kmsApiFromClient(new KMSClient(kmsClientConfig(opts, this.#region)));
        this.#api = owned;
      }
      const described = await callKms(
        (abortSignal) => this.#client().describeKey({ KeyId: opts.kmsKeyId }, { abortSignal }),
        this.#policy,
        this.#ctx("DescribeKey", opts.kmsKeyId, signal),
      );
      this.#keyArn = this.#checkKeyMetadata(described.KeyMetadata);
      // Self-test: a full round trip through KMS proves kms:Encrypt and kms:Decrypt, not only DescribeKey.
      const started = performance.now();
      const probe = randomBytes(AES_256_KEY_BYTES);
      const blob = await this.#envelopeEncrypt(probe, undefined, signal);
      const back = await this.#decryptBlob(blob, undefined, signal);
      const ok = sameBytes(probe, back);
      probe.fill(0);
      back.fill(0);
      if (!ok) {
        throw new SealError(
          "provider_failed",
          `awskms seal self-test with ${this.keyId()} returned a different value`,
        );
      }
      this.#recordHealth(true, undefined, performance.now() - started);
      opts.logger?.info("AWS KMS seal ready", {
        keyId: this.#keyArn,
        region: this.#region,
        ...(opts.endpoint !== undefined ? { endpoint: opts.endpoint } : {}),
      });
    } catch (err) {
      this.#keyArn = undefined;
      this.#api = undefined;
      owned?.destroy?.();
      throw err;
    }
    this.#schedule();
  }

  protected override async doFinalize(): Promise<void> {
    this.#stopped = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    await this.#checking?.catch(() => undefined);
    if (this.#api !== undefined && this.#api !== this.#opts.client) this.#api.destroy?.();
    this.#api = undefined;
  }

  protected override async doEncrypt(plaintext: Uint8Array, opts: SealEncryptOptions): Promise<BlobInfo> {
    // The caller's signal stops the KMS request (the SDK gets it as `abortSignal`) and any retry
    // backoff; the rejection is then the signal's reason (callKms passes it through).
    return this.#envelopeEncrypt(plaintext, opts.aad, opts.signal);
  }

  protected override async doDecrypt(
    blob: BlobInfo & { keyInfo: NonNullable<BlobInfo["keyInfo"]> },
    opts: SealEncryptOptions,
  ): Promise<Uint8Array> {
    return this.#decryptBlob(blob, opts.aad, opts.signal);
  }

  protected override async doHealth(): Promise<SealHealth> {
    const state = this.#health;
    // Checks off (or none yet): a health request is a check, and costs its two KMS calls.
    if (state === undefined || this.#opts.healthCheckIntervalMs === 0) return this.#runCheck();
    return this.#report(state);
  }

  /**
   * While an alias is re-pointed, KMS answers with the old and the new key in turn, so `keyId()`
   * can move on between a concurrent encrypt's answer and the template's check of its blob. Any key
   * KMS reported for an Encrypt of this seal is one it encrypts with.
   */
  protected override isCurrentKeyId(recorded: string, keyIdBefore: string): boolean {
    return super.isCurrentKeyId(recorded, keyIdBefore) || this.#reported.has(recorded);
  }

  // ---------------------------------------------------------------------------------- internals

  #remember(keyArn: string): void {
    this.#reported.delete(keyArn);
    this.#reported.add(keyArn);
    // A handful is plenty: ARNs change only when an alias or kms_key_id is re-pointed.
    if (this.#reported.size > 8) this.#reported.delete(this.#reported.values().next().value as string);
  }

  #client(): KmsApi {
    const api = this.#api;
    // The template guarantees hooks run only between init and finalize; this guards the self-test paths.
    if (api === undefined)
      throw new SealError("not_initialized", "the awskms seal has no KMS client: await seal.init()");
    return api;
  }

  // Built only when an error message needs it (never on the hot path).
  readonly #whereFn = (): string => this.#where();

  #where(): string {
    const region = this.#region === undefined ? "" : `region ${this.#region}`;
    const endpoint = this.#opts.endpoint === undefined ? "" : `endpoint ${this.#opts.endpoint}`;
    return [endpoint, region].filter((s) => s !== "").join(", ") || "default endpoint";
  }

  #ctx(operation: KmsOperation, keyId: string | undefined, signal: AbortSignal | undefined) {
    return { operation, keyId, where: this.#whereFn, signal, logger: this.#opts.logger };
  }

  #context(): { EncryptionContext?: Record<string, string> } {
    const ctx = this.#opts.encryptionContext;
    return ctx === undefined ? {} : { EncryptionContext: { ...ctx } };
  }

  #checkKeyMetadata(md: KmsKeyMetadata | undefined): string {
    const configured = this.#opts.kmsKeyId;
    if (md === undefined || typeof md.Arn !== "string" || md.Arn === "") {
      throw new AwsKmsError(
        "provider_failed",
        `KMS DescribeKey for ${configured} returned no key ARN; is the endpoint (${this.#where()}) a KMS service?`,
        { kms: invalidResponse("DescribeKey") },
      );
    }
    const arn = md.Arn;
    const state = md.KeyState ?? (md.Enabled === false ? "Disabled" : "Enabled");
    if (state !== "Enabled" || md.Enabled === false) {
      const s = state === "Enabled" ? "Disabled" : state;
      throw new AwsKmsKeyStateError(arn, keyStateMessage(arn, configured, s, md.DeletionDate), {
        keyState: s,
      });
    }
    const spec = md.KeySpec ?? md.CustomerMasterKeySpec;
    if (spec !== undefined && spec !== "SYMMETRIC_DEFAULT") {
      throw new AwsKmsKeyStateError(
        arn,
        `KMS key ${arn} is a ${spec} key: the awskms seal needs a symmetric encryption key (key spec SYMMETRIC_DEFAULT); create one with aws kms create-key and point kms_key_id at it`,
        { keyState: state },
      );
    }
    if (md.KeyUsage !== undefined && md.KeyUsage !== "ENCRYPT_DECRYPT") {
      throw new AwsKmsKeyStateError(
        arn,
        `KMS key ${arn} has key usage ${md.KeyUsage}: the awskms seal needs ENCRYPT_DECRYPT`,
        { keyState: state },
      );
    }
    return arn;
  }

  async #envelopeEncrypt(
    plaintext: Uint8Array,
    aad: Uint8Array | undefined,
    signal: AbortSignal | undefined,
  ): Promise<BlobInfo> {
    const configured = this.#opts.kmsKeyId;
    let keyArn = "";
    // sealEnvelope makes the random 32-byte data key, encrypts locally, and zeroes the data key
    // once the wrap call returns or fails.
    const envelope = await sealEnvelope(plaintext, aad, async (dataKey) => {
      const out = await callKms(
        (abortSignal) =>
          this.#client().encrypt(
            { KeyId: configured, Plaintext: dataKey, ...this.#context() },
            { abortSignal },
          ),
        this.#policy,
        this.#ctx("Encrypt", this.keyId(), signal),
      );
      if (
        !(out.CiphertextBlob instanceof Uint8Array) ||
        out.CiphertextBlob.length === 0 ||
        typeof out.KeyId !== "string" ||
        out.KeyId === ""
      ) {
        throw new AwsKmsError(
          "encrypt_failed",
          `KMS Encrypt with ${configured} returned no ciphertext or key id`,
          { kms: invalidResponse("Encrypt") },
        );
      }
      keyArn = out.KeyId;
      return out.CiphertextBlob;
    });
    this.#remember(keyArn);
    // Follow the key KMS actually used: an alias may have been re-pointed since the last call.
    if (keyArn !== this.#keyArn) {
      if (this.#keyArn !== undefined) {
        this.#opts.logger?.info("AWS KMS seal key changed", { from: this.#keyArn, to: keyArn });
      }
      this.#keyArn = keyArn;
    }
    return createBlobInfo({
      ciphertext: envelope.ciphertext,
      iv: envelope.iv,
      keyInfo: { mechanism: AWSKMS_MECHANISM_ENVELOPE, keyId: keyArn, wrappedKey: envelope.wrappedKey },
    });
  }

  /**
   * KMS Decrypt without a KeyId, as Vault does: KMS finds the key from the ciphertext's own header.
   * The key KMS reports must then be the one the blob records, so a blob whose key info was
   * changed (or swapped with another blob's) never decrypts.
   */
  async #kmsDecrypt(
    ciphertext: Uint8Array,
    keyId: string,
    signal: AbortSignal | undefined,
  ): Promise<Uint8Array> {
    let out: Awaited<ReturnType<KmsApi["decrypt"]>>;
    try {
      out = await callKms(
        (abortSignal) =>
          this.#client().decrypt({ CiphertextBlob: ciphertext, ...this.#context() }, { abortSignal }),
        this.#policy,
        this.#ctx("Decrypt", keyId, signal),
      );
    } catch (err) {
      throw await this.#diagnoseDenied(err, keyId, signal);
    }
    if (!(out.Plaintext instanceof Uint8Array)) {
      throw new AwsKmsError(
        "decrypt_failed",
        `KMS Decrypt with ${keyId || "the blob's key"} returned no plaintext`,
        { kms: invalidResponse("Decrypt") },
      );
    }
    if (!sameKey(keyId, out.KeyId)) {
      out.Plaintext.fill(0);
      throw new SealDecryptError(
        `the blob records KMS key ${JSON.stringify(keyId)} but its ciphertext belongs to ${JSON.stringify(out.KeyId ?? "")}: the blob's key info was changed, or the blob is not from this seal`,
        { keyId },
      );
    }
    return out.Plaintext;
  }

  /**
   * An AccessDenied on Decrypt can hide a key state (KMS answers so for a key the caller may not
   * see; local-kms answers so for a disabled key). One DescribeKey of the blob's key, without
   * retries, tells the operator which it is; if that fails too, the original error stands.
   */
  async #diagnoseDenied(err: unknown, keyId: string, signal: AbortSignal | undefined): Promise<unknown> {
    if (!(err instanceof AwsKmsAccessDeniedError) || keyId === "") return err;
    try {
      // One attempt, with a deadline of our own even for the SDK client (it may be a custom KmsApi).
      const out = await callKms(
        (abortSignal) => this.#client().describeKey({ KeyId: keyId }, { abortSignal }),
        { ...this.#policy, maxRetries: 0, backstop: true },
        this.#ctx("DescribeKey", keyId, signal),
      );
      const md = out.KeyMetadata;
      const state = md?.KeyState ?? (md?.Enabled === false ? "Disabled" : undefined);
      if (md !== undefined && state !== undefined && (state !== "Enabled" || md.Enabled === false)) {
        const s = state === "Enabled" ? "Disabled" : state;
        return new AwsKmsKeyStateError(keyId, keyStateMessage(keyId, keyId, s, md.DeletionDate), {
          kms: err.kms,
          keyState: s,
          cause: err,
        });
      }
    } catch {
      // DescribeKey denied as well, or unreachable: the Decrypt error is the best account.
    }
    return err;
  }

  async #decryptBlob(
    blob: BlobInfo,
    aad: Uint8Array | undefined,
    signal: AbortSignal | undefined,
  ): Promise<Uint8Array> {
    const info = blob.keyInfo;
    const keyId = info?.keyId ?? "";
    switch (info?.mechanism) {
      case AWSKMS_MECHANISM_ENVELOPE: {
        if (blob.iv.length !== GCM_NONCE_BYTES) {
          throw new SealDecryptError(
            `awskms envelope blob has a ${blob.iv.length}-byte IV, expected ${GCM_NONCE_BYTES}: the blob is damaged`,
            { keyId },
          );
        }
        if (info.wrappedKey.length === 0) {
          throw new SealDecryptError("awskms envelope blob has no wrapped data key: the blob is damaged", {
            keyId,
          });
        }
        try {
          return await openEnvelope(blob.ciphertext, blob.iv, aad, async () => {
            const dataKey = await this.#kmsDecrypt(info.wrappedKey, keyId, signal);
            if (dataKey.length !== AES_256_KEY_BYTES) {
              dataKey.fill(0);
              throw new SealDecryptError(
                `KMS returned a ${dataKey.length}-byte data key, expected ${AES_256_KEY_BYTES}: the blob was not written by an awskms seal`,
                { keyId },
              );
            }
            return dataKey;
          });
        } catch (err) {
          if (err instanceof CryptoError) {
            throw new SealDecryptError(
              `awskms seal decrypt with ${keyId}: authentication failed (wrong AAD, or the blob was changed)`,
              { keyId, cause: err },
            );
          }
          throw err;
        }
      }
      case AWSKMS_MECHANISM_DIRECT: {
        // KMS Encrypt of the value itself binds no AAD of ours: refuse rather than ignore it.
        if (aad !== undefined && aad.length > 0) {
          throw new SealDecryptError(
            "awskms blob uses mechanism 0 (direct KMS encryption), which carries no AAD binding; it cannot be checked against the AAD given",
            { keyId },
          );
        }
        return this.#kmsDecrypt(blob.ciphertext, keyId, signal);
      }
      default:
        throw new SealDecryptError(
          `invalid mechanism ${String(info?.mechanism)} for the awskms seal (0 = direct, 1 = envelope): the blob was written by another seal type`,
          { keyId },
        );
    }
  }

  // ------------------------------------------------------------------------------ health checks

  #runCheck(): Promise<SealHealth> {
    // One check at a time: a health() call during the periodic check shares it.
    if (this.#checking !== undefined) return this.#checking;
    const run = this.#check().finally(() => {
      this.#checking = undefined;
    });
    this.#checking = run;
    return run;
  }

  async #check(): Promise<SealHealth> {
    const started = performance.now();
    const heartbeat = HEARTBEAT.encode(`Heartbeat ${Math.floor(Math.random() * 1000)}`);
    let timer: NodeJS.Timeout | undefined;
    try {
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(
          () =>
            reject(
              new SealError(
                "unavailable",
                `health check took longer than ${this.#opts.healthCheckTimeoutMs} ms`,
              ),
            ),
          this.#opts.healthCheckTimeoutMs,
        );
      });
      const roundTrip = (async () => this.decrypt(await this.encrypt(heartbeat)))();
      roundTrip.catch(() => undefined);
      const back = await Promise.race([roundTrip, timeout]);
      if (!sameBytes(back, heartbeat))
        throw new SealError("provider_failed", "the heartbeat round trip returned a different value");
      this.#recordHealth(true, undefined, performance.now() - started);
    } catch (err) {
      // finalize() started during the check: KMS did not fail, the seal is closing.
      if (!this.initialized && this.#health !== undefined) return this.#report(this.#health);
      this.#recordHealth(
        false,
        err instanceof Error ? err.message : String(err),
        performance.now() - started,
      );
    } finally {
      if (timer !== undefined) clearTimeout(timer);
    }
    return this.#report(this.#health as HealthState);
  }

  #recordHealth(healthy: boolean, message: string | undefined, roundTripMs: number): void {
    const now = Date.now();
    const before = this.#health;
    this.#health = {
      healthy,
      checkedAt: now,
      lastHealthyAt: healthy ? now : before?.lastHealthyAt,
      message,
      roundTripMs: Math.round(roundTripMs * 100) / 100,
    };
    const log = this.#opts.logger;
    if (!healthy && (before === undefined || before.healthy)) {
      log?.warn("AWS KMS seal health check failed; the seal may be unreachable", {
        keyId: this.keyId(),
        error: message,
      });
    } else if (healthy && before !== undefined && !before.healthy) {
      log?.info("AWS KMS seal is healthy again", {
        keyId: this.keyId(),
        unhealthyForMs: now - before.checkedAt,
      });
    }
  }

  #report(state: HealthState): SealHealth {
    const interval = this.#opts.healthCheckIntervalMs;
    const current = state.healthy ? interval : this.#opts.healthCheckUnhealthyIntervalMs;
    const details: Record<string, unknown> = {
      region: this.#region,
      endpoint: this.#opts.endpoint,
      lastCheckAt: new Date(state.checkedAt).toISOString(),
      lastHealthyAt:
        state.lastHealthyAt === undefined ? undefined : new Date(state.lastHealthyAt).toISOString(),
      unreachableMs:
        state.healthy || state.lastHealthyAt === undefined ? 0 : Date.now() - state.lastHealthyAt,
      roundTripMs: state.roundTripMs,
      checkIntervalMs: interval === 0 ? 0 : current,
      kmsCallsPerCheck: KMS_CALLS_PER_HEALTH_CHECK,
      kmsCallsPerDay: interval === 0 ? 0 : healthCheckCallsPerDay(current),
    };
    return {
      healthy: state.healthy,
      keyId: this.keyId(),
      message: state.healthy
        ? "KMS encrypt/decrypt round trip succeeded"
        : `KMS health check failed: ${state.message ?? "unknown error"}`,
      details,
    };
  }

  #schedule(): void {
    const opts = this.#opts;
    if (this.#stopped || opts.healthCheckIntervalMs === 0) return;
    const delay =
      this.#health?.healthy === false ? opts.healthCheckUnhealthyIntervalMs : opts.healthCheckIntervalMs;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      // The check records its result before it logs; a logger that throws must not stop the
      // checks or surface as an unhandled rejection.
      this.#runCheck()
        .catch(() => undefined)
        .finally(() => this.#schedule());
    }, delay);
    // A seal must not keep the process alive on its own.
    this.#timer.unref();
  }
}

/** A multi-Region key ARN: partition, account, `mrk-` key id (the Region may differ between copies). */
const MRK_ARN = /^arn:(aws[a-z-]*):kms:[a-z0-9-]+:(\d{12}):key\/(mrk-[0-9a-fA-F]{32})$/;

/**
 * Whether the key a blob records and the key KMS reports are the same key. Blobs record the ARN;
 * a bare key id (or an alias, which names no fixed key) is accepted when it cannot be compared.
 */
function sameKey(recorded: string, reported: string | undefined): boolean {
  if (recorded === "" || reported === undefined || reported === "") return true;
  if (recorded === reported) return true;
  // A multi-Region key and its replicas share key id and key material: a replica in this Region
  // decrypts what another Region's copy wrapped (a DR restore), and KMS reports the replica's ARN.
  const r = MRK_ARN.exec(recorded);
  const p = MRK_ARN.exec(reported);
  if (r !== null && p !== null) return r[1] === p[1] && r[2] === p[2] && r[3] === p[3];
  if (recorded.startsWith("arn:")) return recorded.includes(":alias/");
  if (recorded.startsWith("alias/")) return true;
  return reported.endsWith(`:key/${recorded}`);
}

function keyStateMessage(
  arn: string,
  configured: string,
  state: string,
  deletionDate: Date | undefined,
): string {
  const via = configured === arn ? "" : ` (kms_key_id ${configured})`;
  switch (state) {
    case "Disabled":
      return `KMS key ${arn}${via} is disabled: enable it (aws kms enable-key --key-id ${arn}); the store stays sealed until then`;
    case "PendingDeletion":
    case "PendingReplicaDeletion":
      return `KMS key ${arn}${via} is scheduled for deletion${deletionDate instanceof Date ? ` on ${deletionDate.toISOString()}` : ""}: cancel it now (aws kms cancel-key-deletion --key-id ${arn}, then aws kms enable-key); once deleted, everything sealed with it is lost for good`;
    case "PendingImport":
      return `KMS key ${arn}${via} has no key material yet: import it (aws kms import-key-material) before using it as a seal key`;
    case "Unavailable":
      return `KMS key ${arn}${via} is unavailable (its custom key store is disconnected): reconnect the key store`;
    case "Creating":
    case "Updating":
      return `KMS key ${arn}${via} is ${state === "Creating" ? "being created" : "being updated"}: retry in a moment`;
    default:
      return `KMS key ${arn}${via} is in state ${state}; the seal needs an Enabled key`;
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

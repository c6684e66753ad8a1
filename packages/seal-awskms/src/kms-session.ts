/**
 * The seal's side of KMS between `init()` and `finalize()`: the client and region, the key ARN
 * KMS reports (followed as an alias is re-pointed), and the envelope calls — a fresh AES-256-GCM
 * data key per blob wrapped by KMS Encrypt, unwrapped by KMS Decrypt.
 */
import { AES_256_KEY_BYTES, CryptoError, GCM_NONCE_BYTES } from "@bulwark/crypto";
import { type BlobInfo, createBlobInfo, SealDecryptError, SealError } from "@bulwark/seal";
import { openEnvelope, sealEnvelope } from "./envelope.js";
import { AwsKmsAccessDeniedError, AwsKmsError, AwsKmsKeyStateError, type KmsOperation } from "./errors.js";
import type { KmsApi } from "./kms-api.js";
import { checkKeyMetadata, invalidResponse, keyStateMessage, sameKey, unusableKeyState } from "./kms-key.js";
import type { ResolvedAwsKmsSealOptions } from "./options.js";
import { type CallContext, callKms, type RetryPolicy } from "./retry.js";

/** `KeyInfo.mechanism` of a blob whose plaintext went to KMS Encrypt directly (read-only here; Vault's `AwsKmsEncrypt`). */
export const AWSKMS_MECHANISM_DIRECT = 0;
/** `KeyInfo.mechanism` of an envelope blob: local AES-256-GCM, data key wrapped by KMS (Vault's `AwsKmsEnvelopeAesGcmEncrypt`). */
export const AWSKMS_MECHANISM_ENVELOPE = 1;

export class KmsSession {
  /** The KMS client, set by the seal's init and cleared by its finalize. */
  api: KmsApi | undefined;
  /** The region in use: the configured one, or (once init resolved it) the SDK's default. */
  region: string | undefined;
  /** The key ARN KMS last reported (DescribeKey at init, then every Encrypt). */
  keyArn: string | undefined;
  readonly #opts: ResolvedAwsKmsSealOptions;
  readonly #policy: RetryPolicy;
  /** Key ARNs KMS reported for this seal's Encrypt calls, most recent last (a few at most). */
  readonly #reported = new Set<string>();

  constructor(opts: ResolvedAwsKmsSealOptions) {
    this.#opts = opts;
    this.region = opts.region;
    this.#policy = {
      // The SDK client enforces the request timeout itself; an injected client may not.
      backstop: opts.client !== undefined,
      maxRetries: opts.maxRetries,
      requestTimeoutMs: opts.requestTimeoutMs,
      baseDelayMs: opts.retryBaseDelayMs,
      maxDelayMs: opts.retryMaxDelayMs,
    };
  }

  /** The key ARN KMS last reported; before `init()`, the configured key reference. */
  keyId(): string {
    return this.keyArn ?? this.#opts.kmsKeyId;
  }

  /** Whether KMS reported `keyArn` for an Encrypt of this seal. */
  reported(keyArn: string): boolean {
    return this.#reported.has(keyArn);
  }

  /** DescribeKey of the configured key: its ARN once it is a key the seal can use. */
  async describe(signal: AbortSignal | undefined): Promise<string> {
    const configured = this.#opts.kmsKeyId;
    const described = await callKms(
      (abortSignal) => this.#client().describeKey({ KeyId: configured }, { abortSignal }),
      this.#policy,
      this.#ctx("DescribeKey", configured, signal),
    );
    this.keyArn = checkKeyMetadata(described.KeyMetadata, configured, this.#whereFn);
    return this.keyArn;
  }

  /** Endpoint and region, for messages. */
  where(): string {
    const region = this.region === undefined ? "" : `region ${this.region}`;
    const endpoint = this.#opts.endpoint === undefined ? "" : `endpoint ${this.#opts.endpoint}`;
    return [endpoint, region].filter((s) => s !== "").join(", ") || "default endpoint";
  }

  // Built only when an error message needs it (never on the hot path).
  readonly #whereFn = (): string => this.where();

  #client(): KmsApi {
    const api = this.api;
    // The template guarantees hooks run only between init and finalize; this guards the self-test paths.
    if (api === undefined)
      throw new SealError("not_initialized", "the awskms seal has no KMS client: await seal.init()");
    return api;
  }

  #ctx(operation: KmsOperation, keyId: string | undefined, signal: AbortSignal | undefined): CallContext {
    return { operation, keyId, where: this.#whereFn, signal, logger: this.#opts.logger };
  }

  #context(): { EncryptionContext?: Record<string, string> } {
    const ctx = this.#opts.encryptionContext;
    return ctx === undefined ? {} : { EncryptionContext: { ...ctx } };
  }

  #remember(keyArn: string): void {
    this.#reported.delete(keyArn);
    this.#reported.add(keyArn);
    // A handful is plenty: ARNs change only when an alias or kms_key_id is re-pointed.
    if (this.#reported.size > 8) {
      const [oldest] = this.#reported;
      if (oldest !== undefined) this.#reported.delete(oldest);
    }
  }

  /** Follows the key KMS actually used: an alias may have been re-pointed since the last call. */
  #follow(keyArn: string): void {
    this.#remember(keyArn);
    if (keyArn !== this.keyArn) {
      if (this.keyArn !== undefined) {
        this.#opts.logger?.info("AWS KMS seal key changed", { from: this.keyArn, to: keyArn });
      }
      this.keyArn = keyArn;
    }
  }

  async encrypt(
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
    this.#follow(keyArn);
    return createBlobInfo({
      ciphertext: envelope.ciphertext,
      iv: envelope.iv,
      keyInfo: { mechanism: AWSKMS_MECHANISM_ENVELOPE, keyId: keyArn, wrappedKey: envelope.wrappedKey },
    });
  }

  async decrypt(
    blob: BlobInfo,
    aad: Uint8Array | undefined,
    signal: AbortSignal | undefined,
  ): Promise<Uint8Array> {
    const info = blob.keyInfo;
    const keyId = info?.keyId ?? "";
    switch (info?.mechanism) {
      case AWSKMS_MECHANISM_ENVELOPE:
        return this.#openEnvelope(blob, info.wrappedKey, keyId, aad, signal);
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

  async #openEnvelope(
    blob: BlobInfo,
    wrappedKey: Uint8Array,
    keyId: string,
    aad: Uint8Array | undefined,
    signal: AbortSignal | undefined,
  ): Promise<Uint8Array> {
    if (blob.iv.length !== GCM_NONCE_BYTES) {
      throw new SealDecryptError(
        `awskms envelope blob has a ${blob.iv.length}-byte IV, expected ${GCM_NONCE_BYTES}: the blob is damaged`,
        { keyId },
      );
    }
    if (wrappedKey.length === 0) {
      throw new SealDecryptError("awskms envelope blob has no wrapped data key: the blob is damaged", {
        keyId,
      });
    }
    try {
      return await openEnvelope(blob.ciphertext, blob.iv, aad, async () => {
        const dataKey = await this.#kmsDecrypt(wrappedKey, keyId, signal);
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
      const state = unusableKeyState(out.KeyMetadata);
      if (state !== undefined) {
        return new AwsKmsKeyStateError(
          keyId,
          keyStateMessage(keyId, keyId, state, out.KeyMetadata?.DeletionDate),
          { kms: err.kms, keyState: state, cause: err },
        );
      }
    } catch {
      // DescribeKey denied as well, or unreachable: the Decrypt error is the best account.
    }
    return err;
  }
}

import { AES_256_KEY_BYTES, AesGcmKey, randomBytes, SecretBytes } from "@bulwark/crypto";
import { aeadDecryptBlob, aeadEncryptBlob } from "./aead.js";
import type { BlobInfo } from "./blob-info.js";
import { SealConfigError, SealKeyNotFoundError, SealUnavailableError } from "./errors.js";
import { BaseSeal, type SealEncryptOptions, type SealHealth } from "./seal.js";

const NO_KEY = "the Shamir seal has no key yet: provide unseal key shares";

/**
 * Vault's Shamir seal: AES-256-GCM keyed by the key-encryption key (KEK) that the unseal key
 * shares combine into. The KEK only exists in memory between unseal and seal, so this seal cannot
 * unseal on its own (`autoUnseal: false`) and does not seal-wrap (Vault only seal-wraps with auto
 * seals).
 *
 * Blob format (go-kms-wrapping `aead` wrapper): `ciphertext = IV(12) || ct || tag(16)`, `iv`
 * empty, `keyInfo.keyId = ""`.
 */
export class ShamirSeal extends BaseSeal {
  readonly type = "shamir";
  readonly autoUnseal = false;
  readonly supportsSealWrap = false;

  #secret: SecretBytes | undefined;
  #key: AesGcmKey | undefined;

  /** A fresh random 32-byte KEK (to split into shares). The caller owns and should zero it. */
  static generateKey(): Uint8Array {
    return randomBytes(AES_256_KEY_BYTES);
  }

  /** The Shamir seal has one key and no id: Vault writes its blobs with an empty key id. */
  keyId(): string {
    return "";
  }

  /** True once a KEK is loaded. */
  get hasKey(): boolean {
    return this.#secret !== undefined;
  }

  /**
   * Loads the KEK (the combined unseal shares). The bytes are copied into a `SecretBytes`; the
   * caller should zero its own copy. Replacing a key zeroes the previous one.
   */
  setKey(kek: Uint8Array): void {
    if (!(kek instanceof Uint8Array) || kek.length !== AES_256_KEY_BYTES) {
      const got = kek instanceof Uint8Array ? `${kek.length} bytes` : typeof kek;
      throw new SealConfigError(
        "kek",
        `the Shamir key-encryption key must be ${AES_256_KEY_BYTES} bytes, got ${got}; combine the unseal key shares into the full key first`,
      );
    }
    const secret = SecretBytes.from(kek);
    const key = new AesGcmKey(secret);
    this.clearKey();
    this.#secret = secret;
    this.#key = key;
  }

  /** Zeroes and forgets the KEK (on seal). Idempotent. */
  clearKey(): void {
    this.#secret?.zero();
    this.#secret = undefined;
    this.#key = undefined;
  }

  protected override async doFinalize(): Promise<void> {
    this.clearKey();
  }

  /** `setKey` works before `init()`: a key loaded by a seal that never initialised is zeroed too. */
  override async finalize(): Promise<void> {
    try {
      await super.finalize();
    } finally {
      this.clearKey();
    }
  }

  protected override async doHealth(): Promise<SealHealth> {
    if (this.#key === undefined) return { healthy: false, keyId: "", message: NO_KEY };
    return super.doHealth();
  }

  // In-process and synchronous: BaseSeal's check of `opts.signal` on entry is all the abort
  // handling there is room for (nothing here waits).
  protected async doEncrypt(plaintext: Uint8Array, opts: SealEncryptOptions): Promise<BlobInfo> {
    const key = this.#requireKey();
    return aeadEncryptBlob(key, "", plaintext, opts.aad);
  }

  protected async doDecrypt(
    blob: BlobInfo & { keyInfo: NonNullable<BlobInfo["keyInfo"]> },
    opts: SealEncryptOptions,
  ): Promise<Uint8Array> {
    const key = this.#requireKey();
    // Stricter than go-kms-wrapping (which ignores the key id): a blob naming a key is not ours.
    if (blob.keyInfo.keyId !== "") {
      throw new SealKeyNotFoundError(
        blob.keyInfo.keyId,
        `the blob names key ${JSON.stringify(blob.keyInfo.keyId)}, but Shamir seal blobs carry no key id: it was written by another seal — configure that seal to read it`,
      );
    }
    return aeadDecryptBlob(key, blob, opts.aad, "Shamir seal decrypt failed");
  }

  #requireKey(): AesGcmKey {
    // Rule: no key → SealUnavailableError (the operator must provide unseal key shares).
    if (this.#key === undefined) throw new SealUnavailableError(NO_KEY);
    return this.#key;
  }
}

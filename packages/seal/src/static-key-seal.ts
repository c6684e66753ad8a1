import {
  AES_256_KEY_BYTES,
  AesGcmKey,
  aesGcmDecrypt,
  aesGcmEncryptInto,
  constantTimeEqual,
  GCM_NONCE_BYTES,
  GCM_TAG_BYTES,
  randomBytes,
  SecretBytes,
} from "@bulwark/crypto";
import { aeadDecryptBlob } from "./aead.js";
import { type BlobInfo, createBlobInfo } from "./blob-info.js";
import { SealConfigError, SealDecryptError, SealError, SealKeyNotFoundError } from "./errors.js";
import { BaseSeal, type SealEncryptOptions } from "./seal.js";

/** A 32-byte key as raw bytes, 64 hex characters, or base64 (standard or URL-safe, padding optional). */
export type StaticKeyInput = Uint8Array | string;

export interface StaticKeySealOptions {
  /** The current key: encrypts everything new. */
  key: StaticKeyInput;
  /** Recorded in every blob; decrypt picks the key by it. Change it whenever the key changes. */
  keyId: string;
  /** Older keys, still accepted for decrypt (rotation: add the new key, move the old one here). */
  previousKeys?: ReadonlyArray<{ keyId: string; key: StaticKeyInput }>;
}

/** Environment variables read by {@link StaticKeySeal.fromEnv}. */
export const STATIC_SEAL_KEY_ENV = "BULWARK_STATIC_SEAL_KEY";
export const STATIC_SEAL_KEY_ID_ENV = "BULWARK_STATIC_SEAL_KEY_ID";

const HEX_KEY = /^[0-9a-fA-F]{64}$/;
// 32 bytes = 43 base64 characters plus one '=' of padding.
const BASE64_KEY = /^[A-Za-z0-9+/]{43}=?$/;
const BASE64URL_KEY = /^[A-Za-z0-9_-]{43}=?$/;

interface LoadedKey {
  secret: SecretBytes;
  aes: AesGcmKey;
}

function parseKey(field: string, input: unknown): SecretBytes {
  if (input instanceof Uint8Array) {
    if (input.length !== AES_256_KEY_BYTES) {
      throw new SealConfigError(
        field,
        `must be ${AES_256_KEY_BYTES} bytes, got ${input.length}; generate one with StaticKeySeal.generateKey()`,
      );
    }
    return SecretBytes.from(input);
  }
  if (typeof input !== "string") {
    throw new SealConfigError(field, `must be a Uint8Array or a hex/base64 string, got ${typeof input}`);
  }
  const text = input.trim();
  let decoded: Buffer;
  if (HEX_KEY.test(text)) decoded = Buffer.from(text, "hex");
  else if (BASE64_KEY.test(text)) decoded = Buffer.from(text, "base64");
  else if (BASE64URL_KEY.test(text)) decoded = Buffer.from(text, "base64url");
  else {
    // The message never echoes the value: it may be a (mistyped) key.
    throw new SealConfigError(
      field,
      `must be ${AES_256_KEY_BYTES} bytes as 64 hex characters or 44 base64 characters (got a ${text.length}-character string); generate one with \`openssl rand -hex 32\``,
    );
  }
  try {
    return SecretBytes.from(decoded);
  } finally {
    // Buffer.from may return a slice of Node's shared pool: wipe our bytes before they are reused.
    decoded.fill(0);
  }
}

function checkKeyId(field: string, keyId: unknown): string {
  if (typeof keyId !== "string" || keyId.length === 0) {
    throw new SealConfigError(
      field,
      "must be a non-empty string that names the key (for example `static-2024-06`)",
    );
  }
  return keyId;
}

/**
 * An auto seal with a fixed AES-256-GCM key held in process memory.
 *
 * **Development and tests only.** The key sits next to the data it protects (in the config or the
 * environment of the same process), so it adds no protection against anyone who can read the
 * server. Use it to exercise auto-unseal and seal wrap without an HSM or KMS.
 *
 * Blobs are OpenBao's `static` seal's (go-kms-wrapping `wrappers/static`): AES-256-GCM with a random
 * 12-byte nonce in `iv`, `ciphertext = ct || tag`, `keyInfo.keyId` set — so a data set moves
 * between OpenBao and Bulwark with the same key and id. Blobs in the go-kms-wrapping `aead` layout
 * (nonce at the front of `ciphertext`, `iv` empty) are read as well. Decrypt picks the key by its
 * id, so rotating means: new key + new id as `key`/`keyId`, the old pair in `previousKeys`, then
 * `SealWrapBackend.rewrap()` (from @bulwark/core).
 */
export class StaticKeySeal extends BaseSeal {
  readonly type = "static";
  readonly autoUnseal = true;
  readonly supportsSealWrap = true;

  readonly #currentId: string;
  #keys = new Map<string, LoadedKey>();

  constructor(options: StaticKeySealOptions) {
    super();
    if (typeof options !== "object" || options === null) {
      throw new SealConfigError("options", "pass { key, keyId, previousKeys? }");
    }
    this.#currentId = checkKeyId("keyId", options.keyId);
    const pending: Array<[string, SecretBytes]> = [[this.#currentId, parseKey("key", options.key)]];
    const previous = options.previousKeys ?? [];
    if (!Array.isArray(previous)) {
      throw new SealConfigError("previousKeys", "must be an array of { keyId, key }");
    }
    try {
      previous.forEach((p: { keyId: string; key: StaticKeyInput }, i) => {
        const id = checkKeyId(`previousKeys[${i}].keyId`, p?.keyId);
        // A key id must name exactly one key, or decrypt could pick the wrong one.
        if (pending.some(([known]) => known === id)) {
          throw new SealConfigError(
            `previousKeys[${i}].keyId`,
            `key id ${JSON.stringify(id)} is used twice; every key needs its own id`,
          );
        }
        pending.push([id, parseKey(`previousKeys[${i}].key`, p.key)]);
      });
    } catch (err) {
      for (const [, secret] of pending) secret.zero();
      throw err;
    }
    for (const [id, secret] of pending) this.#keys.set(id, { secret, aes: new AesGcmKey(secret) });
  }

  /**
   * Builds a seal from `BULWARK_STATIC_SEAL_KEY` (hex or base64, 32 bytes) and
   * `BULWARK_STATIC_SEAL_KEY_ID`. Both are required.
   */
  static fromEnv(env: Record<string, string | undefined> = process.env): StaticKeySeal {
    const key = env[STATIC_SEAL_KEY_ENV];
    if (key === undefined || key.trim() === "") {
      throw new SealConfigError(
        STATIC_SEAL_KEY_ENV,
        "is not set; export a 32-byte key as hex (`openssl rand -hex 32`) — development and tests only",
      );
    }
    const keyId = env[STATIC_SEAL_KEY_ID_ENV];
    if (keyId === undefined || keyId.trim() === "") {
      throw new SealConfigError(
        STATIC_SEAL_KEY_ID_ENV,
        "is not set; export a name for the key (change it whenever the key changes)",
      );
    }
    return new StaticKeySeal({ key, keyId: keyId.trim() });
  }

  /** A fresh random 32-byte key. The caller owns and should zero it. */
  static generateKey(): Uint8Array {
    return randomBytes(AES_256_KEY_BYTES);
  }

  keyId(): string {
    return this.#currentId;
  }

  /** Ids of every key this seal can decrypt with, current first. */
  keyIds(): string[] {
    return [...this.#keys.keys()];
  }

  /** Fail fast: prove the current key with an encrypt/decrypt round trip. */
  protected override async doInit(): Promise<void> {
    const current = this.#key(this.#currentId);
    const probe = randomBytes(32);
    const blob = staticEncryptBlob(current.aes, this.#currentId, probe, undefined);
    const back = staticDecryptBlob(current.aes, blob, undefined, "static seal self-test");
    if (!constantTimeEqual(probe, back)) {
      throw new SealError("provider_failed", "static seal self-test returned a different value");
    }
  }

  protected override async doFinalize(): Promise<void> {
    this.#wipe();
  }

  /**
   * The keys are loaded by the constructor, so they are zeroed here too: the template calls
   * `doFinalize` only after a successful init, and a seal that never got that far holds them all the same.
   */
  override async finalize(): Promise<void> {
    try {
      await super.finalize();
    } finally {
      this.#wipe();
    }
  }

  #wipe(): void {
    for (const { secret } of this.#keys.values()) secret.zero();
    this.#keys.clear();
  }

  // In-process and synchronous: BaseSeal's check of `opts.signal` on entry is all the abort
  // handling there is room for (nothing here waits).
  protected async doEncrypt(plaintext: Uint8Array, opts: SealEncryptOptions): Promise<BlobInfo> {
    return staticEncryptBlob(this.#key(this.#currentId).aes, this.#currentId, plaintext, opts.aad);
  }

  protected async doDecrypt(
    blob: BlobInfo & { keyInfo: NonNullable<BlobInfo["keyInfo"]> },
    opts: SealEncryptOptions,
  ): Promise<Uint8Array> {
    const id = blob.keyInfo.keyId;
    return staticDecryptBlob(
      this.#key(id).aes,
      blob,
      opts.aad,
      `static seal decrypt with key ${JSON.stringify(id)}`,
    );
  }

  #key(id: string): LoadedKey {
    const key = this.#keys.get(id);
    if (key === undefined) {
      throw new SealKeyNotFoundError(
        id,
        `the static seal has no key ${JSON.stringify(id)} (known: ${this.keyIds()
          .map((k) => JSON.stringify(k))
          .join(", ")}); add it to previousKeys to read data written with it`,
      );
    }
    return key;
  }
}

/** OpenBao's static wrapper: the nonce in `iv`, `ciphertext = ct || tag`. */
function staticEncryptBlob(
  key: AesGcmKey,
  keyId: string,
  plaintext: Uint8Array,
  aad: Uint8Array | undefined,
): BlobInfo {
  const iv = randomBytes(GCM_NONCE_BYTES);
  const out = new Uint8Array(plaintext.length + GCM_TAG_BYTES);
  aesGcmEncryptInto(key, iv, plaintext, aad, out, 0);
  return createBlobInfo({ ciphertext: out, iv, keyInfo: { keyId } });
}

/** Opens OpenBao's static layout (nonce in `iv`) or, with `iv` empty, the `aead` layout. */
function staticDecryptBlob(
  key: AesGcmKey,
  blob: BlobInfo,
  aad: Uint8Array | undefined,
  what: string,
): Uint8Array {
  if (blob.iv.length === 0) return aeadDecryptBlob(key, blob, aad, what);
  const keyId = blob.keyInfo?.keyId;
  if (blob.iv.length !== GCM_NONCE_BYTES || blob.ciphertext.length < GCM_TAG_BYTES) {
    throw new SealDecryptError(
      `${what}: a ${blob.iv.length}-byte nonce and ${blob.ciphertext.length} bytes of ciphertext are not AES-GCM (12-byte nonce, 16-byte tag); the blob is damaged or not from this seal`,
      { keyId },
    );
  }
  try {
    return aesGcmDecrypt(key, blob.iv, blob.ciphertext, aad);
  } catch (cause) {
    throw new SealDecryptError(
      `${what}: authentication failed (wrong key, wrong AAD, or the blob was changed)`,
      {
        cause,
        keyId,
      },
    );
  }
}

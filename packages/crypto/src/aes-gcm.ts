import {
  createCipheriv,
  createDecipheriv,
  createSecretKey,
  type KeyObject,
  randomFillSync,
} from "node:crypto";
import { CryptoError } from "./errors.js";
import { SecretBytes } from "./secret-bytes.js";

export const AES_256_KEY_BYTES = 32;
export const GCM_NONCE_BYTES = 12;
export const GCM_TAG_BYTES = 16;

/** Cryptographically secure random bytes in a buffer of their own. */
export function randomBytes(length: number): Uint8Array {
  if (!Number.isInteger(length) || length < 0) {
    throw new CryptoError(
      "invalid_argument",
      `randomBytes: length must be a non-negative integer, got ${length}`,
    );
  }
  const out = new Uint8Array(new ArrayBuffer(length));
  randomFillSync(out);
  return out;
}

/** Key input accepted by the AES-GCM helpers. */
export type AesKey = Uint8Array | SecretBytes | AesGcmKey;

/**
 * A prepared AES-256 key. Creating the KeyObject once and reusing it avoids re-importing the key
 * on every operation (the barrier keeps one per keyring term).
 */
export class AesGcmKey {
  readonly keyObject: KeyObject;

  constructor(key: Uint8Array | SecretBytes) {
    const raw = key instanceof SecretBytes ? key.bytes : key;
    // AES-256 only: Vault's barrier and seals use 32-byte keys.
    if (raw.length !== AES_256_KEY_BYTES) {
      throw new CryptoError(
        "invalid_key",
        `AES-256-GCM key must be ${AES_256_KEY_BYTES} bytes, got ${raw.length}`,
      );
    }
    this.keyObject = createSecretKey(raw);
  }
}

/**
 * What the cipher is keyed with: a prepared KeyObject, or the raw bytes after a length check (a
 * one-off key such as an envelope's data key gains nothing from a KeyObject of its own).
 */
function cipherKey(key: AesKey): KeyObject | Uint8Array {
  if (key instanceof AesGcmKey) return key.keyObject;
  const raw = key instanceof SecretBytes ? key.bytes : key;
  if (raw.length !== AES_256_KEY_BYTES) {
    throw new CryptoError(
      "invalid_key",
      `AES-256-GCM key must be ${AES_256_KEY_BYTES} bytes, got ${raw.length}`,
    );
  }
  return raw;
}

/** Nonce must be exactly 96 bits of bytes: other sizes change GCM's security bounds. */
function checkNonce(nonce: unknown): asserts nonce is Uint8Array {
  if (!(nonce instanceof Uint8Array)) {
    throw new CryptoError(
      "invalid_nonce",
      `AES-GCM nonce must be ${GCM_NONCE_BYTES} bytes (a Uint8Array), got ${nonce === null ? "null" : typeof nonce}`,
    );
  }
  if (nonce.length !== GCM_NONCE_BYTES) {
    throw new CryptoError(
      "invalid_nonce",
      `AES-GCM nonce must be ${GCM_NONCE_BYTES} bytes, got ${nonce.length}`,
    );
  }
}

/** `ciphertext || tag` must be bytes and at least as long as the tag to be a GCM message. */
function checkCiphertext(ciphertextWithTag: unknown): asserts ciphertextWithTag is Uint8Array {
  if (!(ciphertextWithTag instanceof Uint8Array)) {
    throw new CryptoError(
      "authentication_failed",
      `AES-GCM ciphertext must be a Uint8Array, got ${ciphertextWithTag === null ? "null" : typeof ciphertextWithTag}: the data is damaged`,
    );
  }
  if (ciphertextWithTag.length < GCM_TAG_BYTES) {
    throw new CryptoError("authentication_failed", "AES-GCM ciphertext shorter than its 16-byte tag");
  }
}

/**
 * Encrypts `plaintext` with AES-256-GCM and writes `ciphertext || tag` into `out` at `offset`
 * (used by the barrier to build its framed format with one allocation). Returns bytes written.
 */
export function aesGcmEncryptInto(
  key: AesKey,
  nonce: Uint8Array,
  plaintext: Uint8Array,
  aad: Uint8Array | undefined,
  out: Uint8Array,
  offset: number,
): number {
  checkNonce(nonce);
  if (!Number.isSafeInteger(offset) || offset < 0 || offset > out.length) {
    throw new CryptoError(
      "invalid_argument",
      `output offset must be a whole number from 0 to ${out.length} (the output length), got ${offset}`,
    );
  }
  if (out.length - offset < plaintext.length + GCM_TAG_BYTES) {
    throw new CryptoError("invalid_argument", "output buffer too small for ciphertext and tag");
  }
  const cipher = createCipheriv("aes-256-gcm", cipherKey(key), nonce, { authTagLength: GCM_TAG_BYTES });
  if (aad !== undefined && aad.length > 0) cipher.setAAD(aad);
  let n = 0;
  if (plaintext.length > 0) {
    const body = cipher.update(plaintext);
    out.set(body, offset);
    n = body.length;
  }
  const tail = cipher.final();
  out.set(tail, offset + n);
  n += tail.length;
  out.set(cipher.getAuthTag(), offset + n);
  return n + GCM_TAG_BYTES;
}

/** AES-256-GCM encrypt: returns `ciphertext || 16-byte tag`. */
export function aesGcmEncrypt(
  key: AesKey,
  nonce: Uint8Array,
  plaintext: Uint8Array,
  aad?: Uint8Array,
): Uint8Array {
  const out = new Uint8Array(plaintext.length + GCM_TAG_BYTES);
  aesGcmEncryptInto(key, nonce, plaintext, aad, out, 0);
  return out;
}

/**
 * AES-256-GCM decrypt of `ciphertext || tag`. A wrong key, nonce, AAD or any changed byte throws
 * `CryptoError("authentication_failed")`; no partial plaintext is ever returned.
 */
export function aesGcmDecrypt(
  key: AesKey,
  nonce: Uint8Array,
  ciphertextWithTag: Uint8Array,
  aad?: Uint8Array,
): Uint8Array {
  checkNonce(nonce);
  checkCiphertext(ciphertextWithTag);
  const split = ciphertextWithTag.length - GCM_TAG_BYTES;
  const decipher = createDecipheriv("aes-256-gcm", cipherKey(key), nonce, { authTagLength: GCM_TAG_BYTES });
  decipher.setAuthTag(ciphertextWithTag.subarray(split));
  if (aad !== undefined && aad.length > 0) decipher.setAAD(aad);
  let body: Buffer | undefined;
  try {
    body = split > 0 ? decipher.update(ciphertextWithTag.subarray(0, split)) : undefined;
    const tail = decipher.final();
    if (body === undefined) return new Uint8Array(tail);
    if (tail.length === 0) return new Uint8Array(body.buffer, body.byteOffset, body.byteLength);
    const out = new Uint8Array(body.length + tail.length);
    out.set(body);
    out.set(tail, body.length);
    return out;
  } catch (cause) {
    // Unauthenticated plaintext never stays around, not even in memory.
    body?.fill(0);
    throw new CryptoError(
      "authentication_failed",
      "AES-GCM authentication failed: wrong key, AAD or tampered data",
      {
        cause,
      },
    );
  }
}

/** Encrypted output of {@link envelopeEncrypt}. */
export interface Envelope<W> {
  /** The data key as returned by the caller's wrap function. */
  wrappedKey: W;
  nonce: Uint8Array;
  /** `ciphertext || tag` */
  ciphertext: Uint8Array;
}

/**
 * Envelope encryption: a fresh random 32-byte data key encrypts the value locally with
 * AES-256-GCM, and only the data key goes to `wrap` (an HSM or KMS call). The plaintext data key
 * is zeroed before this returns, whether `wrap` succeeds or not.
 */
export async function envelopeEncrypt<W>(
  plaintext: Uint8Array,
  wrap: (dataKey: Uint8Array) => Promise<W>,
  aad?: Uint8Array,
): Promise<Envelope<W>> {
  // One random draw for data key and nonce (a seal's hot path: one per wrapped value).
  const material = randomBytes(AES_256_KEY_BYTES + GCM_NONCE_BYTES);
  const dataKey = material.subarray(0, AES_256_KEY_BYTES);
  try {
    const nonce = material.slice(AES_256_KEY_BYTES);
    const ciphertext = aesGcmEncrypt(dataKey, nonce, plaintext, aad);
    const wrappedKey = await wrap(dataKey);
    return { wrappedKey, nonce, ciphertext };
  } finally {
    material.fill(0);
  }
}

/** Reverses {@link envelopeEncrypt}; the unwrapped data key is zeroed after use. */
export async function envelopeDecrypt<W>(
  envelope: Envelope<W>,
  unwrap: (wrappedKey: W) => Promise<Uint8Array>,
  aad?: Uint8Array,
): Promise<Uint8Array> {
  // A malformed envelope is refused before an (HSM/KMS) unwrap call is spent on it.
  checkNonce(envelope.nonce);
  checkCiphertext(envelope.ciphertext);
  const dataKey = await unwrap(envelope.wrappedKey);
  try {
    return aesGcmDecrypt(dataKey, envelope.nonce, envelope.ciphertext, aad);
  } finally {
    dataKey.fill(0);
  }
}

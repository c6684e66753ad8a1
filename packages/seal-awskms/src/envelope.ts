import { createCipheriv, createDecipheriv, randomFillSync } from "node:crypto";
import { AES_256_KEY_BYTES, CryptoError, GCM_NONCE_BYTES, GCM_TAG_BYTES } from "@bulwark/crypto";

/**
 * go-kms-wrapping's envelope (`wrapping.EnvelopeEncrypt`), as the awskms seal writes it: a fresh
 * random 32-byte data key and 12-byte IV, AES-256-GCM over the plaintext (with optional AAD),
 * `ciphertext = ct || tag`, the IV kept apart, and only the data key handed to `wrap` (KMS).
 *
 * Same construction as `envelopeEncrypt` from @bulwark/crypto, tuned for the seal's hot path: one
 * random draw for key and IV, and the raw key straight into the cipher (no KeyObject per call).
 * The data key is zeroed once `wrap` returns or fails.
 */
export async function sealEnvelope<W>(
  plaintext: Uint8Array,
  aad: Uint8Array | undefined,
  wrap: (dataKey: Uint8Array) => Promise<W>,
): Promise<{ ciphertext: Uint8Array; iv: Uint8Array; wrappedKey: W }> {
  const material = new Uint8Array(AES_256_KEY_BYTES + GCM_NONCE_BYTES);
  randomFillSync(material);
  try {
    const dataKey = material.subarray(0, AES_256_KEY_BYTES);
    const iv = material.slice(AES_256_KEY_BYTES);
    const cipher = createCipheriv("aes-256-gcm", dataKey, iv, { authTagLength: GCM_TAG_BYTES });
    if (aad !== undefined && aad.length > 0) cipher.setAAD(aad);
    const body = cipher.update(plaintext);
    cipher.final();
    const ciphertext = new Uint8Array(body.length + GCM_TAG_BYTES);
    ciphertext.set(body, 0);
    ciphertext.set(cipher.getAuthTag(), body.length);
    body.fill(0);
    const wrappedKey = await wrap(dataKey);
    return { ciphertext, iv, wrappedKey };
  } finally {
    material.fill(0);
  }
}

/**
 * Reverses {@link sealEnvelope}: `unwrap` returns the data key (KMS Decrypt), which is zeroed
 * after use. A wrong key, IV or AAD, or any changed byte, throws `CryptoError("authentication_failed")`.
 */
export async function openEnvelope(
  ciphertext: Uint8Array,
  iv: Uint8Array,
  aad: Uint8Array | undefined,
  unwrap: () => Promise<Uint8Array>,
): Promise<Uint8Array> {
  if (iv.length !== GCM_NONCE_BYTES) {
    throw new CryptoError(
      "invalid_nonce",
      `AES-GCM nonce must be ${GCM_NONCE_BYTES} bytes, got ${iv.length}`,
    );
  }
  if (ciphertext.length < GCM_TAG_BYTES) {
    throw new CryptoError("authentication_failed", "AES-GCM ciphertext shorter than its 16-byte tag");
  }
  const dataKey = await unwrap();
  try {
    const split = ciphertext.length - GCM_TAG_BYTES;
    const decipher = createDecipheriv("aes-256-gcm", dataKey, iv, { authTagLength: GCM_TAG_BYTES });
    decipher.setAuthTag(ciphertext.subarray(split));
    if (aad !== undefined && aad.length > 0) decipher.setAAD(aad);
    const body = decipher.update(ciphertext.subarray(0, split));
    try {
      decipher.final();
    } catch (cause) {
      body.fill(0);
      throw new CryptoError(
        "authentication_failed",
        "AES-GCM authentication failed: wrong key, AAD or tampered data",
        {
          cause,
        },
      );
    }
    return new Uint8Array(body.buffer, body.byteOffset, body.length);
  } finally {
    dataKey.fill(0);
  }
}

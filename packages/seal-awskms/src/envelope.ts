import { envelopeDecrypt, envelopeEncrypt } from "@bulwark/crypto";

/**
 * go-kms-wrapping's envelope (`wrapping.EnvelopeEncrypt`) in the shape the awskms seal stores it:
 * a fresh random 32-byte data key and 12-byte IV, AES-256-GCM over the plaintext (with optional
 * AAD), `ciphertext = ct || tag`, the IV kept apart, and only the data key handed to `wrap` (KMS).
 * The construction is @bulwark/crypto's `envelopeEncrypt`; the data key is zeroed once `wrap`
 * returns or fails.
 */
export async function sealEnvelope<W>(
  plaintext: Uint8Array,
  aad: Uint8Array | undefined,
  wrap: (dataKey: Uint8Array) => Promise<W>,
): Promise<{ ciphertext: Uint8Array; iv: Uint8Array; wrappedKey: W }> {
  const env = await envelopeEncrypt(plaintext, wrap, aad);
  return { ciphertext: env.ciphertext, iv: env.nonce, wrappedKey: env.wrappedKey };
}

/**
 * Reverses {@link sealEnvelope}: `unwrap` returns the data key (KMS Decrypt), which is zeroed
 * after use; a malformed IV or ciphertext is refused before KMS is called. A wrong key, IV or
 * AAD, or any changed byte, throws `CryptoError("authentication_failed")`.
 */
export function openEnvelope(
  ciphertext: Uint8Array,
  iv: Uint8Array,
  aad: Uint8Array | undefined,
  unwrap: () => Promise<Uint8Array>,
): Promise<Uint8Array> {
  return envelopeDecrypt({ wrappedKey: undefined, nonce: iv, ciphertext }, unwrap, aad);
}

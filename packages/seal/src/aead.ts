import {
  type AesGcmKey,
  aesGcmDecrypt,
  aesGcmEncryptInto,
  GCM_NONCE_BYTES,
  GCM_TAG_BYTES,
  randomBytes,
} from "@bulwark/crypto";
import { type BlobInfo, createBlobInfo } from "./blob-info.js";
import { SealDecryptError } from "./errors.js";

/**
 * The go-kms-wrapping `aead` wrapper format, used by Vault's Shamir seal: AES-256-GCM with a random
 * 12-byte IV, `ciphertext = IV || ct || tag`, the `iv` field left empty, `keyInfo.keyId` set to the
 * wrapper's key id.
 */
export function aeadEncryptBlob(
  key: AesGcmKey,
  keyId: string,
  plaintext: Uint8Array,
  aad: Uint8Array | undefined,
): BlobInfo {
  const iv = randomBytes(GCM_NONCE_BYTES);
  const out = new Uint8Array(GCM_NONCE_BYTES + plaintext.length + GCM_TAG_BYTES);
  out.set(iv, 0);
  aesGcmEncryptInto(key, iv, plaintext, aad, out, GCM_NONCE_BYTES);
  return createBlobInfo({ ciphertext: out, keyInfo: { keyId } });
}

/** Reverses {@link aeadEncryptBlob}; any failure is a `SealDecryptError` naming `what`. */
export function aeadDecryptBlob(
  key: AesGcmKey,
  blob: BlobInfo,
  aad: Uint8Array | undefined,
  what: string,
): Uint8Array {
  const data = blob.ciphertext;
  const keyId = blob.keyInfo?.keyId;
  // Shorter than IV + tag cannot be this format.
  if (data.length < GCM_NONCE_BYTES + GCM_TAG_BYTES) {
    throw new SealDecryptError(
      `${what}: ciphertext is ${data.length} bytes, shorter than IV + tag (${GCM_NONCE_BYTES + GCM_TAG_BYTES}); the blob is damaged or not from this seal`,
      { keyId },
    );
  }
  try {
    return aesGcmDecrypt(key, data.subarray(0, GCM_NONCE_BYTES), data.subarray(GCM_NONCE_BYTES), aad);
  } catch (cause) {
    throw new SealDecryptError(
      `${what}: authentication failed (wrong key, wrong AAD, or the blob was changed)`,
      { cause, keyId },
    );
  }
}

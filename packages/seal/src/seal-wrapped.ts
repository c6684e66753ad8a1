import { type BlobInfo, createBlobInfo, decodeBlobInfo, encodeBlobInfo } from "./blob-info.js";

/*
 * The seal-wrapped value format (Vault's `sealWrapBackend` layout) on its own: the byte layout
 * belongs to the seal, the Backend that applies it (`SealWrapBackend`) to @bulwark/core, so this
 * package needs no storage types.
 */

/** The byte Vault appends to every seal-wrapped value ('s'). */
export const SEAL_WRAP_CANARY = 0x73;

/**
 * If `value` is a seal-wrapped storage value (`protobuf(BlobInfo) || 's'` with `keyInfo` or
 * `wrapped` set), its BlobInfo; otherwise `undefined`.
 *
 * A barrier ciphertext never qualifies: it starts with the big-endian term (0x00 0x00 … for every
 * term below 2^24), and a protobuf tag byte of 0x00 means field number 0, which is invalid.
 */
export function parseSealWrapped(value: Uint8Array): BlobInfo | undefined {
  if (value.length === 0 || value[value.length - 1] !== SEAL_WRAP_CANARY) return undefined;
  let blob: BlobInfo;
  try {
    blob = decodeBlobInfo(value.subarray(0, value.length - 1));
  } catch {
    return undefined;
  }
  return blob.keyInfo !== undefined || blob.wrapped ? blob : undefined;
}

/** `protobuf(BlobInfo{wrapped: true, ciphertext, iv, hmac, keyInfo}) || 's'`, as Vault writes it. */
export function encodeSealWrapped(blob: BlobInfo): Uint8Array {
  const body = encodeBlobInfo(
    createBlobInfo({
      ciphertext: blob.ciphertext,
      iv: blob.iv,
      hmac: blob.hmac,
      wrapped: true,
      keyInfo: blob.keyInfo,
    }),
  );
  const out = new Uint8Array(body.length + 1);
  out.set(body);
  out[body.length] = SEAL_WRAP_CANARY;
  return out;
}

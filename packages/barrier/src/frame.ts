import { randomFillSync } from "node:crypto";
import {
  type AesGcmKey,
  aesGcmDecrypt,
  aesGcmEncryptInto,
  CryptoError,
  GCM_NONCE_BYTES,
} from "@bulwark/crypto";
import {
  AES_GCM_VERSION_1,
  AES_GCM_VERSION_2,
  BODY_OFFSET,
  CIPHERTEXT_OVERHEAD,
  NONCE_OFFSET,
  VERSION_OFFSET,
} from "./constants.js";
import { BarrierCiphertextError, BarrierError } from "./errors.js";

/** Anything that maps a term to its prepared key (a `Map` does). */
export interface TermKeys {
  get(term: number): AesGcmKey | undefined;
}

// Nonces come from a batch of CSPRNG output instead of one randomFillSync call per encryption:
// the call itself costs about as much as encrypting 1 KiB. Same bytes, same source; each nonce is
// handed out once and its pool bytes are zeroed (Node's crypto.randomUUID caches the same way).
const NONCE_BATCH = 256;
const noncePool = new Uint8Array(GCM_NONCE_BYTES * NONCE_BATCH);
let nonceOffset = noncePool.length;

function writeNonce(out: Uint8Array, at: number): void {
  if (nonceOffset === noncePool.length) {
    randomFillSync(noncePool);
    nonceOffset = 0;
  }
  const pool = noncePool;
  const from = nonceOffset;
  for (let i = 0; i < GCM_NONCE_BYTES; i++) {
    out[at + i] = pool[from + i] as number;
    pool[from + i] = 0;
  }
  nonceOffset = from + GCM_NONCE_BYTES;
}

/** The AAD of version 2: the UTF-8 storage path; an empty path means no AAD (as in Vault). */
function aadOf(path: string): Uint8Array | undefined {
  return path === "" ? undefined : Buffer.from(path, "utf8");
}

/** The term in the first four bytes (big-endian). The caller checks the length first. */
export function frameTerm(ciphertext: Uint8Array): number {
  return (
    (((ciphertext[0] as number) << 24) |
      ((ciphertext[1] as number) << 16) |
      ((ciphertext[2] as number) << 8) |
      (ciphertext[3] as number)) >>>
    0
  );
}

/**
 * Encrypts into Vault's barrier format: `term (u32 BE) | 0x02 | nonce (12) | ct || tag (16)`,
 * AAD = `path`. One output allocation: the nonce is drawn straight into the output and GCM
 * writes behind it.
 */
export function encryptFrame(key: AesGcmKey, term: number, path: string, plaintext: Uint8Array): Uint8Array {
  return frame(key, term, path, plaintext, undefined);
}

/**
 * {@link encryptFrame} with a caller-chosen nonce, for known-answer tests only (not exported from
 * the package): reusing a nonce under one key breaks AES-GCM.
 */
export function encryptFrameWithNonce(
  key: AesGcmKey,
  term: number,
  path: string,
  plaintext: Uint8Array,
  nonce: Uint8Array,
): Uint8Array {
  return frame(key, term, path, plaintext, nonce);
}

function frame(
  key: AesGcmKey,
  term: number,
  path: string,
  plaintext: Uint8Array,
  nonce: Uint8Array | undefined,
): Uint8Array {
  const length = plaintext.length + CIPHERTEXT_OVERHEAD;
  // Every byte is overwritten below, so skip zero-filling; a buffer of its own (not the shared
  // Buffer pool) so a backend that keeps the value does not pin a pool slab.
  const buf = Buffer.allocUnsafeSlow(length);
  const out = new Uint8Array(buf.buffer, buf.byteOffset, length);
  out[0] = term >>> 24;
  out[1] = (term >>> 16) & 0xff;
  out[2] = (term >>> 8) & 0xff;
  out[3] = term & 0xff;
  out[VERSION_OFFSET] = AES_GCM_VERSION_2;
  if (nonce === undefined) {
    writeNonce(out, NONCE_OFFSET);
  } else {
    if (nonce.length !== GCM_NONCE_BYTES) {
      throw new BarrierError(
        "invalid_argument",
        `nonce must be ${GCM_NONCE_BYTES} bytes, got ${nonce.length}`,
      );
    }
    out.set(nonce, NONCE_OFFSET);
  }
  aesGcmEncryptInto(key, out.subarray(NONCE_OFFSET, BODY_OFFSET), plaintext, aadOf(path), out, BODY_OFFSET);
  return out;
}

/**
 * Opens a barrier ciphertext written for `path`. Each failure has its own code: shorter than the
 * 33-byte overhead, a version other than 0x01/0x02, a term with no key, or a GCM authentication
 * failure (tampered, moved to another path, wrong key). No plaintext is returned on failure.
 */
export function decryptFrame(keys: TermKeys, path: string, ciphertext: Uint8Array): Uint8Array {
  if (ciphertext.length < CIPHERTEXT_OVERHEAD) {
    throw new BarrierCiphertextError(
      "ciphertext_too_short",
      `barrier ciphertext at ${JSON.stringify(path)} is ${ciphertext.length} bytes, less than the ${CIPHERTEXT_OVERHEAD}-byte overhead: the stored value is truncated or not a barrier ciphertext`,
      path,
    );
  }
  const term = frameTerm(ciphertext);
  const version = ciphertext[VERSION_OFFSET] as number;
  if (version !== AES_GCM_VERSION_2 && version !== AES_GCM_VERSION_1) {
    throw new BarrierCiphertextError(
      "unknown_version",
      `barrier ciphertext at ${JSON.stringify(path)} has version byte 0x${version.toString(16).padStart(2, "0")}, expected 0x01 or 0x02: the value is corrupt or not a barrier ciphertext`,
      path,
      term,
    );
  }
  const key = keys.get(term);
  if (key === undefined) {
    throw new BarrierCiphertextError(
      "unknown_term",
      `no decryption key available for term ${term} (reading ${JSON.stringify(path)}): the keyring lacks this term; a standby should run checkUpgrade() or reloadKeyring(), otherwise the value is corrupt`,
      path,
      term,
    );
  }
  try {
    return aesGcmDecrypt(
      key,
      ciphertext.subarray(NONCE_OFFSET, BODY_OFFSET),
      ciphertext.subarray(BODY_OFFSET),
      version === AES_GCM_VERSION_2 ? aadOf(path) : undefined,
    );
  } catch (cause) {
    if (cause instanceof CryptoError && cause.code === "authentication_failed") {
      throw new BarrierCiphertextError(
        "authentication_failed",
        `barrier ciphertext at ${JSON.stringify(path)} failed authentication: it was modified, copied from another path, or encrypted with another key`,
        path,
        term,
        { cause },
      );
    }
    throw cause;
  }
}

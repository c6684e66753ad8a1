/**
 * Token strings. Bulwark issues Vault-style service tokens: `hvs.` followed by 24 base62
 * characters (about 143 bits of randomness), 28 characters in all — the shape of a Vault ≥ 1.10
 * service/root token, so tools that recognise `hvs.` tokens keep working. Storage only ever sees
 * `sha256(token)` (hex); the token itself exists in the client's hands and in responses.
 */
import * as nodeCrypto from "node:crypto";
import { constantTimeEqual, randomBytes } from "@bulwark/crypto";

export const TOKEN_PREFIX = "hvs.";
/** Random characters after the prefix (Vault's `TokenLength`). */
export const TOKEN_RANDOM_LENGTH = 24;
/** Length of a whole token, and so of a generate-root OTP (Vault: TokenLength + TokenPrefixLength). */
export const TOKEN_LENGTH = TOKEN_PREFIX.length + TOKEN_RANDOM_LENGTH;

const BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/** `n` uniformly random base62 characters (rejection sampling: no modulo bias). */
export function randomBase62(n: number): string {
  let out = "";
  while (out.length < n) {
    const buf = randomBytes(n * 2);
    for (const b of buf) {
      // 248 = 4 × 62: bytes at or above it would bias the first characters.
      if (b >= 248) continue;
      out += BASE62[b % 62];
      if (out.length === n) break;
    }
    buf.fill(0);
  }
  return out;
}

export function generateToken(): string {
  return TOKEN_PREFIX + randomBase62(TOKEN_RANDOM_LENGTH);
}

/** Accessors: 24 base62 characters, like Vault's. */
export function generateAccessor(): string {
  return randomBase62(24);
}

type OneShotHash = (algorithm: string, data: string, encoding: "hex") => string;
/** Node ≥ 20.12 has a one-shot `crypto.hash` (about 3× faster than createHash for short input). */
const oneShot = (nodeCrypto as { hash?: OneShotHash }).hash;

/** Hex SHA-256 of a UTF-8 string. */
export function sha256Hex(s: string): string {
  return oneShot !== undefined
    ? oneShot("sha256", s, "hex")
    : nodeCrypto.createHash("sha256").update(s, "utf8").digest("hex");
}

/** Hex SHA-256: the storage name of a token or accessor. */
export function hashSecret(secret: string): string {
  return sha256Hex(secret);
}

/** Constant-time equality of two hex digests of the same length. */
export function digestsEqual(a: string, b: string): boolean {
  const x = Buffer.from(a, "utf8");
  const y = Buffer.from(b, "utf8");
  return x.length === y.length && constantTimeEqual(x, y);
}

/**
 * Whether `s` could be a token at all. Anything else is refused before it is hashed or looked up
 * (bounded work for junk headers). Accepts Bulwark's `hvs.` tokens and custom ids set by root.
 */
export function plausibleToken(s: string): boolean {
  return s.length > 0 && s.length <= 256 && /^[\x21-\x7e]+$/.test(s);
}

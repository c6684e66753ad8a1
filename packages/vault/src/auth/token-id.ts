/**
 * Token strings. Bulwark issues Vault-style service tokens: `hvs.` followed by 24 base62
 * characters (about 143 bits of randomness), 28 characters in all — the shape of a Vault ≥ 1.10
 * service/root token, so tools that recognise `hvs.` tokens keep working. Storage only ever sees
 * `sha256(token)` (hex); the token itself exists in the client's hands and in responses.
 */
import { constantTimeEqual } from "@bulwark/crypto";
import { randomBase62, sha256Hex } from "../ids.js";

export const TOKEN_PREFIX = "hvs.";
/** Random characters after the prefix (Vault's `TokenLength`). */
export const TOKEN_RANDOM_LENGTH = 24;
/** Length of a whole token, and so of a generate-root OTP (Vault: TokenLength + TokenPrefixLength). */
export const TOKEN_LENGTH = TOKEN_PREFIX.length + TOKEN_RANDOM_LENGTH;

export function generateToken(): string {
  return TOKEN_PREFIX + randomBase62(TOKEN_RANDOM_LENGTH);
}

/** Accessors: 24 base62 characters, like Vault's. */
export function generateAccessor(): string {
  return randomBase62(24);
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

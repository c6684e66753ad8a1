/**
 * Token strings. Bulwark issues service tokens as OpenBao 2.6.2 does by default (server-side
 * consistent tokens off): `s.` followed by 24 base62 characters (about 143 bits of randomness), 26
 * characters in all. It accepts every root-namespace token format Vault and OpenBao issue: `s.`,
 * `hvs.` (Vault ≥ 1.10 style), legacy dot-less ids (Vault < 1.0, and custom ids). Storage sees a
 * token only inside its own (barrier-encrypted) entry, as Vault keeps it; every storage name is
 * salted (token-records.ts `saltId`).
 */
import { constantTimeEqual } from "@bulwark/crypto";
import { randomBase62 } from "../ids.js";

export const TOKEN_PREFIX = "s.";
/** Random characters after the prefix (Vault's `TokenLength`). */
export const TOKEN_RANDOM_LENGTH = 24;
/**
 * Length of a whole token, and so of a generate-root OTP: OpenBao 2.6.2 answers `otp_length: 26`
 * (`TokenLength + len("s.")`, the prefix of the tokens it issues).
 */
export const TOKEN_LENGTH = TOKEN_PREFIX.length + TOKEN_RANDOM_LENGTH;

export function generateToken(): string {
  return TOKEN_PREFIX + randomBase62(TOKEN_RANDOM_LENGTH);
}

/** Accessors and cubbyhole ids: 24 base62 characters, like Vault's. */
export function generateAccessor(): string {
  return randomBase62(24);
}

/** A service token id as Vault/OpenBao issue them (`s.…`, `hvs.…`): it has a cubbyhole_id. */
export function isServiceTokenId(id: string): boolean {
  return id.startsWith("s.") || id.startsWith("hvs.");
}

/** Batch tokens (`b.…`, `hvb.…`) are barrier-encrypted entries carried by the token itself. */
export function isBatchTokenId(id: string): boolean {
  return id.startsWith("b.") || id.startsWith("hvb.");
}

/** Constant-time equality of two strings (digests, salted ids, accessors). */
export function digestsEqual(a: string, b: string): boolean {
  const x = Buffer.from(a, "utf8");
  const y = Buffer.from(b, "utf8");
  return x.length === y.length && constantTimeEqual(x, y);
}

/**
 * Whether `s` could be a token at all. Anything else is refused before it is salted or looked up
 * (bounded work for junk headers).
 */
export function plausibleToken(s: string): boolean {
  return s.length > 0 && s.length <= 256 && /^[\x21-\x7e]+$/.test(s);
}

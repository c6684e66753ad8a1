import { combine, split } from "shamir-secret-sharing";
import { CryptoError } from "./errors.js";

/** Vault's limits: at most 255 shares (one byte of x coordinate, x = 0 is the secret). */
export const SHAMIR_MAX_SHARES = 255;

/**
 * Checks share parameters with Vault's rules and messages: 1 ≤ threshold ≤ shares ≤ 255, and
 * threshold 1 only with a single share (which is then the key itself).
 */
export function validateShamirParameters(
  shares: number,
  threshold: number,
  names = { shares: "secret_shares", threshold: "secret_threshold" },
): void {
  if (!Number.isInteger(shares) || shares < 1) {
    throw new CryptoError(
      "shamir_invalid_parameters",
      `${names.shares} must be a whole number of at least 1, got ${shares}`,
    );
  }
  if (shares > SHAMIR_MAX_SHARES) {
    throw new CryptoError(
      "shamir_invalid_parameters",
      `${names.shares} must be at most ${SHAMIR_MAX_SHARES}, got ${shares}`,
    );
  }
  if (!Number.isInteger(threshold) || threshold < 1) {
    throw new CryptoError(
      "shamir_invalid_parameters",
      `${names.threshold} must be a whole number of at least 1, got ${threshold}`,
    );
  }
  if (threshold > shares) {
    throw new CryptoError(
      "shamir_invalid_parameters",
      `${names.threshold} (${threshold}) cannot be larger than ${names.shares} (${shares})`,
    );
  }
  if (shares > 1 && threshold === 1) {
    throw new CryptoError(
      "shamir_invalid_parameters",
      `${names.threshold} must be at least 2 when ${names.shares} is more than 1 (a threshold of 1 would make every share the whole key)`,
    );
  }
}

/**
 * Splits `secret` into `shares` shares, any `threshold` of which recover it. Share format is
 * Vault's: `y-bytes || x-byte` over GF(2^8). With one share, the share is the secret itself.
 */
export async function shamirSplit(
  secret: Uint8Array,
  shares: number,
  threshold: number,
): Promise<Uint8Array[]> {
  validateShamirParameters(shares, threshold);
  if (secret.length === 0) throw new CryptoError("invalid_argument", "cannot split an empty secret");
  if (shares === 1) return [new Uint8Array(secret)];
  // shamir-secret-sharing accepts only plain Uint8Arrays (it checks `constructor === Uint8Array`),
  // so a Buffer or other subclass is copied; the copy is wiped once the shares exist.
  const plain = new Uint8Array(secret);
  try {
    return await split(plain, shares, threshold);
  } finally {
    plain.fill(0);
  }
}

/**
 * Recombines shares produced by {@link shamirSplit} (or by Vault). A single share is returned as
 * the key itself. Malformed sets (different lengths, duplicate x) throw `shamir_invalid_shares`.
 * Note: combining too few or wrong shares yields a wrong secret, not an error — callers verify the
 * result by decrypting with it.
 */
export async function shamirCombine(shares: readonly Uint8Array[]): Promise<Uint8Array> {
  if (shares.length === 0) throw new CryptoError("shamir_invalid_shares", "no key shares given");
  if (shares.length === 1) return new Uint8Array(shares[0] as Uint8Array);
  const len = (shares[0] as Uint8Array).length;
  // A share carries at least one byte of secret plus its x coordinate.
  if (len < 2) throw new CryptoError("shamir_invalid_shares", "key share too short");
  const xs = new Set<number>();
  for (const s of shares) {
    if (s.length !== len)
      throw new CryptoError(
        "shamir_invalid_shares",
        "key shares have different lengths: they come from different keys",
      );
    const x = s[len - 1] as number;
    if (x === 0)
      throw new CryptoError("shamir_invalid_shares", "key share has x coordinate 0: not a valid share");
    if (xs.has(x)) throw new CryptoError("shamir_invalid_shares", "the same key share was given twice");
    xs.add(x);
  }
  // Plain Uint8Array copies: the library refuses Buffers and other subclasses (it checks
  // `constructor === Uint8Array`), and shares decoded from hex/base64 are usually Buffers.
  const plain = shares.map((s) => new Uint8Array(s));
  try {
    return await combine(plain);
  } catch (cause) {
    throw new CryptoError(
      "shamir_invalid_shares",
      `key shares could not be combined: ${(cause as Error).message}`,
      { cause },
    );
  } finally {
    for (const p of plain) p.fill(0);
  }
}

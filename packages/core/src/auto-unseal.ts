/**
 * Auto-unseal retries: which failures are worth retrying, and how long to wait between attempts.
 *
 * An auto-sealed store whose HSM/KMS is unreachable at boot would otherwise stay sealed after the
 * service comes back (Vault retries too). Only outages are retried: a key that cannot decrypt the
 * stored keys, a rejected PIN or a bad config will not heal by waiting, and retrying a PIN can
 * lock the token.
 */

import { SealError } from "@bulwark/seal";

/** How a store retries auto-unseal while its seal (or storage) is unreachable. */
export interface AutoUnsealRetryOptions {
  /** Delay after the first failed attempt, in ms. Default 1000. */
  initialDelayMs?: number;
  /** Longest delay between attempts, in ms (the doubling stops here). Default 10 000. */
  maxDelayMs?: number;
  /** Random source in [0, 1) for the jitter (tests pass a fixed one). Default `Math.random`. */
  random?: () => number;
}

export const DEFAULT_AUTO_UNSEAL_INITIAL_DELAY_MS = 1000;
export const DEFAULT_AUTO_UNSEAL_MAX_DELAY_MS = 10_000;

/** What an auto-sealed store waits for while it retries (reported by `status().autoUnseal`). */
export interface AutoUnsealWait {
  /** The seal type it waits for (`awskms`, `pkcs11`, …). */
  seal: string;
  /** Failed attempts so far (the one at open or after init included). */
  attempts: number;
  /** Why the last attempt failed. */
  lastError: string;
  lastAttemptAt: Date;
  nextAttemptAt: Date;
  /** The longest delay between attempts (the backoff cap), in ms. */
  maxDelayMs: number;
}

export interface ResolvedRetry {
  initialDelayMs: number;
  maxDelayMs: number;
  random: () => number;
}

export function resolveRetry(opts: AutoUnsealRetryOptions | undefined): ResolvedRetry {
  const initialDelayMs = opts?.initialDelayMs ?? DEFAULT_AUTO_UNSEAL_INITIAL_DELAY_MS;
  const maxDelayMs = opts?.maxDelayMs ?? DEFAULT_AUTO_UNSEAL_MAX_DELAY_MS;
  if (!Number.isFinite(initialDelayMs) || initialDelayMs <= 0) {
    throw new RangeError(
      `autoUnsealRetry.initialDelayMs must be a number of milliseconds > 0, got ${String(initialDelayMs)}`,
    );
  }
  if (!Number.isFinite(maxDelayMs) || maxDelayMs < initialDelayMs) {
    throw new RangeError(
      `autoUnsealRetry.maxDelayMs must be a number of milliseconds >= initialDelayMs (${initialDelayMs}), got ${String(maxDelayMs)}`,
    );
  }
  return { initialDelayMs, maxDelayMs, random: opts?.random ?? Math.random };
}

/**
 * Delay before the attempt that follows failure number `failures` (1-based): doubling from
 * `initialDelayMs` up to `maxDelayMs`, with "equal jitter" (half fixed, half random) so nodes that
 * lost the same KMS spread out, yet never retry with zero delay.
 */
export function autoUnsealDelayMs(failures: number, r: ResolvedRetry): number {
  const ceiling = Math.min(r.maxDelayMs, r.initialDelayMs * 2 ** Math.min(30, Math.max(0, failures - 1)));
  return Math.round(ceiling / 2 + r.random() * (ceiling / 2));
}

/** Node network errors after which the other side may well answer later. */
const NETWORK_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ECONNABORTED",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "EHOSTDOWN",
  "ENETUNREACH",
  "ENETDOWN",
  "EPIPE",
  "EAI_AGAIN",
  "UND_ERR_SOCKET",
  "UND_ERR_CONNECT_TIMEOUT",
]);

/**
 * The (domain, code) pairs that mean "unreachable for now": the seal's and the storage's
 * `unavailable`. The code alone is not enough: another domain's `unavailable` (an HTTP client's
 * 503, say) says nothing about the HSM/KMS or the storage.
 */
const TRANSIENT = new Set(["seal/unavailable", "storage/unavailable"]);

function isTransientOne(e: object): boolean {
  const code: unknown = Reflect.get(e, "code");
  if (typeof code !== "string") return false;
  if (NETWORK_CODES.has(code)) return true;
  const domain: unknown = Reflect.get(e, "domain");
  if (typeof domain === "string") return TRANSIENT.has(`${domain}/${code}`);
  // A seal error from a copy of @bulwark/seal older than the domains (recognised by its legacy kinds).
  return code === "unavailable" && e instanceof SealError;
}

/**
 * True when `err` (or an error in its `cause` chain) says the seal or the storage is unreachable
 * for now: (domain, code) seal/unavailable or storage/unavailable (`SealUnavailableError`,
 * `StorageUnavailableError`, provider errors built on them, and the same errors from another copy
 * of their package), or a Node network error code.
 */
export function isTransientUnsealError(err: unknown): boolean {
  let e: unknown = err;
  for (let depth = 0; depth < 10 && typeof e === "object" && e !== null; depth++) {
    if (isTransientOne(e)) return true;
    e = Reflect.get(e, "cause");
  }
  return false;
}

/** "10 s", "500 ms", "2 min" — how banners and messages state a delay. */
export function formatDelay(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 120_000) return `${Math.round(ms / 100) / 10} s`;
  return `${Math.round(ms / 6000) / 10} min`;
}

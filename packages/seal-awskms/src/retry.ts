import { classifyKmsError, type KmsOperation, toSealError } from "./errors.js";
import type { AwsKmsSealLogger } from "./options.js";

export interface RetryPolicy {
  /** Attempts after the first. */
  maxRetries: number;
  /** Time limit of one attempt. */
  requestTimeoutMs: number;
  baseDelayMs: number;
  maxDelayMs: number;
  /**
   * Enforce `requestTimeoutMs` with a timer of our own. Needed for clients that may ignore it (an
   * injected KmsApi); the SDK client enforces it itself.
   */
  backstop: boolean;
}

/**
 * Delay before retry number `retry` (1-based): exponential, capped, with "equal jitter" — half
 * fixed, half random — so many nodes retrying after one outage spread out but never hammer KMS
 * with zero delay.
 */
export function backoffDelayMs(
  retry: number,
  policy: RetryPolicy,
  random: () => number = Math.random,
): number {
  const ceiling = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** Math.max(0, retry - 1));
  return Math.round(ceiling / 2 + random() * (ceiling / 2));
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

export interface CallContext {
  operation: KmsOperation;
  /** The key the call names, for messages. */
  keyId: string | undefined;
  /** Endpoint/region, for messages (called only when a message is built). */
  where: () => string;
  /** The caller's own signal (init's): aborting it stops retries and rethrows its reason. */
  signal?: AbortSignal | undefined;
  logger?: AwsKmsSealLogger | undefined;
}

/**
 * Runs one KMS call with a per-attempt timeout and bounded retries on transient failures
 * (throttling, KMS internal errors, timeouts, connection errors). Anything else, or the last
 * failure, becomes a typed seal error that names the AWS error and request id.
 */
export async function callKms<T>(
  call: (abortSignal: AbortSignal | undefined) => Promise<T>,
  policy: RetryPolicy,
  ctx: CallContext,
): Promise<T> {
  const attemptsAllowed = policy.maxRetries + 1;
  for (let attempt = 1; ; attempt++) {
    if (ctx.signal?.aborted) throw ctx.signal.reason;
    let timedOut = false;
    let error: unknown;
    if (!policy.backstop && ctx.signal === undefined) {
      // The SDK client enforces the deadline itself (requestTimeout with throwOnRequestTimeout,
      // see kmsClientConfig): no controller or timer of ours on the hot path.
      try {
        return await call(undefined);
      } catch (err) {
        error = err;
      }
    } else {
      // A client that may not honour a deadline (an injected KmsApi), or a caller's signal to
      // follow (init): one controller per attempt, its timer cleared when the call settles.
      const controller = new AbortController();
      const timer = policy.backstop
        ? setTimeout(() => {
            timedOut = true;
            controller.abort(
              new Error(`KMS ${ctx.operation} attempt timed out after ${policy.requestTimeoutMs} ms`),
            );
          }, policy.requestTimeoutMs)
        : undefined;
      const onAbort = () => controller.abort(ctx.signal?.reason);
      ctx.signal?.addEventListener("abort", onAbort, { once: true });
      // The attempt ends when the controller aborts even if the client ignores the signal (a
      // KmsApi that does not honour it would otherwise hang the call, and finalize(), for good).
      let onGiveUp: (() => void) | undefined;
      const givenUp = new Promise<never>((_, reject) => {
        onGiveUp = () => reject(controller.signal.reason);
        controller.signal.addEventListener("abort", onGiveUp, { once: true });
      });
      try {
        const attempt = Promise.resolve(call(controller.signal));
        // A late rejection of an abandoned attempt must not surface as an unhandled rejection.
        attempt.catch(() => undefined);
        return await Promise.race([attempt, givenUp]);
      } catch (err) {
        error = err;
      } finally {
        if (timer !== undefined) clearTimeout(timer);
        ctx.signal?.removeEventListener("abort", onAbort);
        if (onGiveUp !== undefined) controller.signal.removeEventListener("abort", onGiveUp);
      }
    }
    // The caller's abort is not a KMS failure: pass its reason through untouched.
    if (ctx.signal?.aborted) throw ctx.signal.reason;
    const classified = classifyKmsError(error, timedOut);
    if (!classified.retryable || attempt >= attemptsAllowed) {
      throw toSealError(ctx.operation, ctx.keyId, error, classified, attempt, ctx.where());
    }
    const delay = backoffDelayMs(attempt, policy);
    ctx.logger?.debug("KMS call failed transiently; retrying", {
      operation: ctx.operation,
      error: classified.name,
      requestId: classified.requestId,
      attempt,
      of: attemptsAllowed,
      delayMs: delay,
    });
    await sleep(delay, ctx.signal);
  }
}

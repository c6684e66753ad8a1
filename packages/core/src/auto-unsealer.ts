import {
  type AutoUnsealWait,
  autoUnsealDelayMs,
  formatDelay,
  isTransientUnsealError,
  type ResolvedRetry,
} from "./auto-unseal.js";
import type { Logger } from "./types.js";
import { errText } from "./util.js";

/** What auto-unseal needs from the store. */
export interface AutoUnsealContext {
  /** The configured seal's type (for messages). */
  readonly sealType: string;
  readonly retry: ResolvedRetry;
  readonly log: Logger;
  readonly sealed: () => boolean;
  readonly closed: () => boolean;
  /** Why the store stays sealed; an attempt is not made while one is set. */
  readonly sealedReason: () => string | undefined;
  setSealedReason(reason: string): void;
  /** One unseal through the seal (read and unwrap the stored root key, unseal, become active). */
  unsealThroughSeal(signal: AbortSignal): Promise<void>;
  /** Back to sealed and not active after a failed attempt. */
  stepDown(): void;
  /** Runs `fn` in turn with the other lifecycle steps. */
  serial(fn: () => Promise<void>): Promise<void>;
}

type Wait = AutoUnsealWait & { timer: NodeJS.Timeout; afterInit: boolean };

/**
 * Auto-unseal with retries: while the HSM/KMS (or the storage) is unreachable, attempts repeat
 * with capped exponential backoff and jitter until one succeeds, a failure that waiting cannot fix
 * happens, or the store is sealed or closed.
 */
export class AutoUnsealer {
  /** Waiting for the seal: the next attempt's timer and what to report. */
  #wait: Wait | undefined;
  /** Aborted by seal() and close(): stops retries and an attempt in flight. */
  #abort = new AbortController();

  constructor(private readonly ctx: AutoUnsealContext) {}

  /** What status() reports while waiting for the seal. */
  get waiting(): Readonly<Wait> | undefined {
    return this.#wait;
  }

  /** Stops retries and an attempt in flight (seal, close). */
  abort(): void {
    this.#abort.abort();
  }

  /** An operator's init: retries resume even after an earlier seal() stopped them. */
  rearm(): void {
    if (this.#abort.signal.aborted) this.#abort = new AbortController();
  }

  /**
   * One attempt (at open, or a retry). An unreachable seal or storage schedules the next attempt;
   * any other failure leaves the store sealed with the reason. `afterInit`: the attempt continues
   * the unseal that init does (for the reason's wording).
   */
  async attempt(afterInit: boolean): Promise<void> {
    const ctx = this.ctx;
    if (ctx.sealedReason() !== undefined) return;
    const signal = this.#abort.signal;
    const waited = this.#wait;
    try {
      await ctx.unsealThroughSeal(signal);
      this.stop();
      ctx.log.info("auto-unsealed", {
        seal: ctx.sealType,
        ...(waited === undefined ? {} : { attempts: waited.attempts + 1 }),
      });
    } catch (e) {
      ctx.stepDown();
      // Stopped on purpose (seal, close): no retry, and no reason — nothing is wrong.
      if (signal.aborted || ctx.closed()) {
        this.stop();
        return;
      }
      if (isTransientUnsealError(e)) {
        this.schedule(e, afterInit);
        return;
      }
      this.stop();
      // Recovery keys are no way out: they are verified through the same seal.
      ctx.setSealedReason(
        `stored unseal keys are present but the seal could not decrypt them: ${errText(e)}; fix the seal (its key, credentials or configuration) and reopen the store (restart the server)`,
      );
      ctx.log.warn("auto-unseal failed; the store stays sealed", { reason: ctx.sealedReason() });
    }
  }

  /** Whether `e`, from an unseal right after init, is worth waiting for (and schedules it). */
  retryAfterInit(e: unknown): boolean {
    if (!isTransientUnsealError(e) || this.ctx.closed()) return false;
    this.schedule(e, true);
    return true;
  }

  /** Records a failed attempt and schedules the next one (through the lifecycle queue). */
  schedule(e: unknown, afterInit: boolean): void {
    const { ctx } = this;
    const prev = this.#wait;
    if (prev !== undefined) clearTimeout(prev.timer);
    const attempts = (prev?.attempts ?? 0) + 1;
    const delay = autoUnsealDelayMs(attempts, ctx.retry);
    const signal = this.#abort.signal;
    const timer = setTimeout(() => {
      ctx
        .serial(async () => {
          if (this.#wait?.timer !== timer || signal.aborted || ctx.closed()) return;
          if (!ctx.sealed()) {
            this.stop();
            return;
          }
          ctx.log.info("auto-unseal: trying again", { seal: ctx.sealType, attempt: attempts + 1 });
          await this.attempt(afterInit);
        })
        .catch((err: unknown) => {
          ctx.log.error("auto-unseal attempt failed unexpectedly", { error: errText(err) });
        });
    }, delay);
    // Like the rotation timer: a store waiting for its seal does not keep the process alive.
    timer.unref();
    const now = Date.now();
    this.#wait = {
      seal: ctx.sealType,
      attempts,
      lastError: errText(e),
      lastAttemptAt: new Date(now),
      nextAttemptAt: new Date(now + delay),
      maxDelayMs: ctx.retry.maxDelayMs,
      timer,
      afterInit: afterInit || prev?.afterInit === true,
    };
    ctx.log.warn(`auto-unseal: the ${ctx.sealType} seal is unreachable; retrying`, {
      seal: ctx.sealType,
      attempt: attempts,
      error: errText(e),
      retryInMs: delay,
      maxDelayMs: ctx.retry.maxDelayMs,
    });
  }

  /** Stops waiting (unsealed, sealed, or a failure that waiting cannot fix). */
  stop(): void {
    if (this.#wait !== undefined) clearTimeout(this.#wait.timer);
    this.#wait = undefined;
  }

  /** `status().sealedReason` while waiting for the seal; `undefined` when not waiting. */
  waitReason(): string | undefined {
    const w = this.#wait;
    if (w === undefined) return undefined;
    const next = Math.max(0, w.nextAttemptAt.getTime() - Date.now());
    return (
      `${w.afterInit ? "initialized, but unsealing right after init failed; " : ""}` +
      `waiting for the ${w.seal} seal (${w.lastError}): retrying with backoff up to every ${formatDelay(w.maxDelayMs)}, ` +
      `next attempt in ${formatDelay(next)} (${w.attempts} failed so far); the store unseals by itself when the seal is reachable`
    );
  }
}

import { SealConfigError, SealUnavailableError } from "@bulwark/seal";
import { DEFAULT_MAX_PARALLEL_CAP } from "./constants.js";

/**
 * How many operation sessions to open: `maxParallel` when set (checked against the token), else
 * the token's read-write session limit minus the login session, at most 16. `maxRw` is the
 * token's ulMaxRwSessionCount: 0 (CK_EFFECTIVELY_INFINITE) or ~0 (CK_UNAVAILABLE_INFORMATION)
 * mean no limit.
 */
export function poolSizeFor(maxRw: number, maxParallel: number | undefined): number {
  const limited = maxRw > 0 && maxRw < 0xffffffff;
  const tokenMax = limited ? maxRw - 1 : Number.POSITIVE_INFINITY; // one session is the login session
  if (maxParallel !== undefined) {
    if (maxParallel > tokenMax) {
      throw new SealConfigError(
        "max_parallel",
        `is ${maxParallel}, but the token allows ${maxRw} read-write sessions (one is the login session): set max_parallel to ${tokenMax} or less`,
      );
    }
    return maxParallel;
  }
  if (tokenMax < 1) {
    throw new SealUnavailableError(
      `the token allows only ${maxRw} read-write session; the seal needs two (one login, one for operations)`,
    );
  }
  return Math.min(tokenMax, DEFAULT_MAX_PARALLEL_CAP);
}

/** The pool was closed while a caller waited (reconnect or finalize): the caller takes the next pool. */
export class PoolClosedError extends SealUnavailableError {
  static override readonly kind: string = "@bulwark/seal-pkcs11:PoolClosedError";
  override name = "PoolClosedError";

  constructor() {
    super("the PKCS#11 session pool was closed (reconnect or finalize in progress)");
  }
}

/** How a session came back to the pool. */
export type SessionOutcome =
  /** The operation finished: the session is idle and reusable. */
  | "ok"
  /** A call failed mid-operation: the session may hold an active operation, close it. */
  | "discard"
  /** The HSM said the handle is invalid: it is gone already, do not close it (the number may be reused). */
  | "gone";

export interface SessionPoolStats {
  /** Sessions open (idle + busy). */
  open: number;
  busy: number;
  /** Callers waiting for a session. */
  waiting: number;
  max: number;
}

interface Waiter {
  resolve: (h: Buffer) => void;
  reject: (e: unknown) => void;
}

/**
 * A bounded pool of PKCS#11 operation sessions. A session runs one operation at a time
 * (a second C_EncryptInit → CKR_OPERATION_ACTIVE), so every operation borrows a session for its
 * whole Init…final call sequence and returns it. Sessions open lazily up to `max`; callers beyond
 * that wait in FIFO order.
 */
export class SessionPool {
  readonly #open: () => Buffer;
  readonly #close: (h: Buffer) => void;
  readonly max: number;
  #idle: Buffer[] = [];
  #busy = new Set<Buffer>();
  #waiters: Waiter[] = [];
  #closed = false;
  /** Closed because the HSM dropped every session: busy ones are not closed on release either. */
  #gone = false;

  constructor(max: number, open: () => Buffer, close: (h: Buffer) => void) {
    this.max = max;
    this.#open = open;
    this.#close = close;
  }

  stats(): SessionPoolStats {
    return {
      open: this.#idle.length + this.#busy.size,
      busy: this.#busy.size,
      waiting: this.#waiters.length,
      max: this.max,
    };
  }

  /**
   * An idle (or newly opened) session without waiting, or undefined when all `max` are busy or the
   * pool is closed. Throws what C_OpenSession threw. The hot path: no promise, no microtask.
   */
  tryAcquire(): Buffer | undefined {
    if (this.#closed) return undefined;
    const idle = this.#idle.pop();
    if (idle !== undefined) {
      this.#busy.add(idle);
      return idle;
    }
    if (this.#busy.size < this.max) {
      const h = this.#open();
      this.#busy.add(h);
      return h;
    }
    return undefined;
  }

  /**
   * A session for one operation; throws what C_OpenSession threw when a new one cannot be opened.
   * An abort of `signal` while waiting rejects with its reason and leaves the queue at once, so a
   * session released later goes to the next waiter, not to a caller who gave up.
   */
  acquire(signal?: AbortSignal): Promise<Buffer> {
    if (signal?.aborted) return Promise.reject(signal.reason);
    if (this.#closed) return Promise.reject(this.#closedError());
    try {
      const h = this.tryAcquire();
      if (h !== undefined) return Promise.resolve(h);
    } catch (err) {
      return Promise.reject(err);
    }
    return new Promise((resolve, reject) => {
      if (signal === undefined) {
        this.#waiters.push({ resolve, reject });
        return;
      }
      const onAbort = () => {
        const at = this.#waiters.indexOf(waiter);
        if (at >= 0) this.#waiters.splice(at, 1);
        reject(signal.reason);
      };
      const waiter: Waiter = {
        resolve: (h) => {
          signal.removeEventListener("abort", onAbort);
          resolve(h);
        },
        reject: (e) => {
          signal.removeEventListener("abort", onAbort);
          reject(e);
        },
      };
      signal.addEventListener("abort", onAbort, { once: true });
      this.#waiters.push(waiter);
    });
  }

  release(h: Buffer, outcome: SessionOutcome): void {
    if (!this.#busy.delete(h)) return;
    // After close(gone) the handle number may already name a session of the next connection.
    if (!this.#gone && (outcome === "discard" || (outcome === "ok" && this.#closed))) this.#safeClose(h);
    const reusable = outcome === "ok" && !this.#closed;
    const waiter = this.#waiters.shift();
    if (waiter === undefined) {
      if (reusable) this.#idle.push(h);
      return;
    }
    if (reusable) {
      this.#busy.add(h);
      waiter.resolve(h);
      return;
    }
    // The session was dropped: open a fresh one for the next waiter. A failed open fails that
    // waiter only; the ones behind it get their own attempt (nothing else would wake them).
    for (let w: Waiter | undefined = waiter; w !== undefined; w = this.#waiters.shift()) {
      try {
        const fresh = this.#open();
        this.#busy.add(fresh);
        w.resolve(fresh);
        return;
      } catch (err) {
        w.reject(err);
      }
    }
  }

  /**
   * Stops handing out sessions: idle ones are closed now, busy ones when released — unless
   * `gone`, i.e. the HSM already dropped them (closing them again could close a session of the
   * next connection that reused the handle number). Waiters are rejected with a retryable error.
   */
  close(gone: boolean): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#gone = gone;
    for (const h of this.#idle) if (!gone) this.#safeClose(h);
    this.#idle = [];
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const w of waiters) w.reject(this.#closedError());
  }

  #safeClose(h: Buffer): void {
    try {
      this.#close(h);
    } catch {
      // The session is unusable either way; a failed close leaves nothing to clean up.
    }
  }

  #closedError(): PoolClosedError {
    return new PoolClosedError();
  }
}

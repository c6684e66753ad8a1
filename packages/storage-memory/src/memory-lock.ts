import { type Lock, StorageError, StorageUnavailableError, validateKey } from "@bulwark/storage";

interface Holder {
  owner: MemoryLock;
  value: string;
  /** Aborted when `owner` stops holding the lock, for whatever reason. */
  leadership: AbortController;
}

interface Waiter {
  owner: MemoryLock;
  grant(signal: AbortSignal): void;
}

/** The error an aborted `acquire()` rejects with: named `AbortError`, the abort reason as `cause`. */
function abortError(key: string, reason: unknown): Error {
  const err = new Error(`waiting for HA lock ${JSON.stringify(key)} was aborted`, { cause: reason });
  err.name = "AbortError";
  return err;
}

/**
 * Lock state shared by every `lockWith()` handle of one `MemoryBackend` (one "storage"). Each key
 * has at most one holder and a FIFO queue of waiters. Hand-over happens synchronously inside
 * `release`/`forceRelease`, so a newcomer can never slip in ahead of a queued waiter.
 */
export class LockTable {
  readonly #held = new Map<string, Holder>();
  readonly #queues = new Map<string, Waiter[]>();

  holder(key: string): Holder | undefined {
    return this.#held.get(key);
  }

  enqueue(key: string, waiter: Waiter): void {
    const queue = this.#queues.get(key);
    if (queue === undefined) this.#queues.set(key, [waiter]);
    else queue.push(waiter);
    if (!this.#held.has(key)) this.#grantNext(key);
  }

  /** Removes a waiter that gave up; returns whether it was still queued. */
  dequeue(key: string, waiter: Waiter): boolean {
    const queue = this.#queues.get(key);
    const i = queue?.indexOf(waiter) ?? -1;
    if (queue === undefined || i === -1) return false;
    queue.splice(i, 1);
    if (queue.length === 0) this.#queues.delete(key);
    return true;
  }

  /** Frees `key` if `owner` holds it (a handle that already lost the lock must not free a successor's hold). */
  release(key: string, owner: MemoryLock): void {
    const h = this.#held.get(key);
    if (h === undefined || h.owner !== owner) return;
    this.#free(key, h, `HA lock ${JSON.stringify(key)} was released by its holder`);
  }

  /** Takes `key` away from whoever holds it, as a lost session would; returns whether it was held. */
  forceRelease(key: string): boolean {
    const h = this.#held.get(key);
    if (h === undefined) return false;
    this.#free(
      key,
      h,
      `HA lock ${JSON.stringify(key)} was lost (forcibly released); acquire it again before writing`,
    );
    return true;
  }

  #free(key: string, h: Holder, why: string): void {
    this.#held.delete(key);
    // The old holder hears about the loss (synchronously, through its signal) before the next
    // holder's acquire() resolves, mirroring the ordering a fenced backend guarantees.
    h.leadership.abort(new StorageUnavailableError(why));
    this.#grantNext(key);
  }

  #grantNext(key: string): void {
    // The old holder's abort handlers run inside #free and may enqueue (and so already grant): a
    // second grant here would overwrite that holder and leave two nodes believing they lead.
    if (this.#held.has(key)) return;
    const queue = this.#queues.get(key);
    const next = queue?.shift();
    if (queue !== undefined && queue.length === 0) this.#queues.delete(key);
    if (next === undefined) return;
    const leadership = new AbortController();
    this.#held.set(key, { owner: next.owner, value: next.owner.lockValue, leadership });
    next.grant(leadership.signal);
  }
}

/** One node's handle on an in-memory HA lock; see `MemoryBackend.lockWith`. */
export class MemoryLock implements Lock {
  readonly key: string;
  readonly lockValue: string;
  readonly #table: LockTable;
  #waiting = false;

  constructor(table: LockTable, key: string, value: string) {
    validateKey(key);
    if (typeof value !== "string") {
      throw new TypeError(`lockWith(${JSON.stringify(key)}, value): value must be a string`);
    }
    this.#table = table;
    this.key = key;
    this.lockValue = value;
  }

  /**
   * Waits (FIFO) until the lock is free, takes it and resolves with a signal that aborts when the
   * lock is lost. Calling it again while holding returns the same signal.
   */
  acquire(signal?: AbortSignal): Promise<AbortSignal> {
    if (signal?.aborted) return Promise.reject(abortError(this.key, signal.reason));
    const current = this.#table.holder(this.key);
    if (current?.owner === this) return Promise.resolve(current.leadership.signal);
    // One handle is one node: a second concurrent wait on it would make release() ambiguous.
    if (this.#waiting) {
      return Promise.reject(
        new StorageError(
          "invalid_operation",
          `acquire() is already waiting for HA lock ${JSON.stringify(this.key)} on this handle; await or abort that call first`,
        ),
      );
    }
    this.#waiting = true;
    return new Promise<AbortSignal>((resolve, reject) => {
      const onAbort = (): void => {
        if (this.#table.dequeue(this.key, waiter)) {
          this.#waiting = false;
          reject(abortError(this.key, signal?.reason));
        }
      };
      const waiter: Waiter = {
        owner: this,
        grant: (leadership) => {
          this.#waiting = false;
          signal?.removeEventListener("abort", onAbort);
          resolve(leadership);
        },
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      this.#table.enqueue(this.key, waiter);
    });
  }

  /** Frees the lock if this handle holds it and wakes the next waiter; otherwise does nothing. */
  async release(): Promise<void> {
    this.#table.release(this.key, this);
  }

  async value(): Promise<{ held: boolean; value?: string }> {
    const h = this.#table.holder(this.key);
    return h === undefined ? { held: false } : { held: true, value: h.value };
  }
}

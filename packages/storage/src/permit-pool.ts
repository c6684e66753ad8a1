import {
  type Backend,
  type Entry,
  type HABackend,
  isHABackend,
  isTransactional,
  type Lock,
  type TransactionLimits,
  type TxnOp,
} from "./types.js";
import type { Wrapped } from "./wrapped.js";

/** Vault's `physical.DefaultParallelOperations`. */
export const DEFAULT_PARALLEL_OPERATIONS = 128;

/**
 * Bounds the number of operations in flight. A finishing operation hands its permit straight to
 * the oldest waiter, so waiters run in arrival order and a burst of newcomers cannot starve them.
 * Exported for backends that bound their own client calls (e.g. Consul's `max_parallel`).
 */
export class PermitPool {
  readonly #size: number;
  readonly #waiters: (() => void)[] = [];
  #active = 0;

  constructor(size: number) {
    // A pool of 0 (or NaN) would queue every run forever.
    if (!Number.isSafeInteger(size) || size < 1) {
      throw new RangeError(
        `PermitPool size must be a positive integer (Vault's default is ${DEFAULT_PARALLEL_OPERATIONS}), got ${String(size)}`,
      );
    }
    this.#size = size;
  }

  get active(): number {
    return this.#active;
  }

  get waiting(): number {
    return this.#waiters.length;
  }

  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.#active < this.#size) this.#active++;
    else await new Promise<void>((resolve) => this.#waiters.push(resolve));
    try {
      return await fn();
    } finally {
      const next = this.#waiters.shift();
      if (next === undefined) this.#active--;
      else next();
    }
  }
}

/**
 * Runs at most `maxParallel` of `get`/`put`/`delete`/`list`/`transaction` on the inner backend at
 * once (Vault's `PermitPool`); the rest queue in arrival order. `lockWith` passes straight
 * through: a lock wait can last as long as another node leads, and must not hold a permit.
 */
export class PermitPoolBackend implements Backend {
  readonly inner: Backend;
  readonly maxParallel: number;
  /** Present when the inner backend is transactional. */
  declare readonly transaction?: (ops: readonly TxnOp[]) => Promise<void>;
  /** Present when the inner backend is transactional. */
  declare readonly transactionLimits?: TransactionLimits;
  /** Present when the inner backend is an HA backend. */
  declare readonly lockWith?: (key: string, value: string) => Lock;
  /** Present when the inner backend has one (a start-up check, passed through). */
  declare readonly probe?: () => Promise<void>;
  readonly #pool: PermitPool;

  constructor(inner: Backend, maxParallel: number = DEFAULT_PARALLEL_OPERATIONS) {
    if (!Number.isSafeInteger(maxParallel) || maxParallel < 1) {
      throw new RangeError(
        `maxParallel must be a positive integer (Vault's default is ${DEFAULT_PARALLEL_OPERATIONS}), got ${String(maxParallel)}`,
      );
    }
    this.inner = inner;
    this.maxParallel = maxParallel;
    this.#pool = new PermitPool(maxParallel);
    if (isTransactional(inner)) {
      this.transaction = (ops) => this.#pool.run(() => inner.transaction(ops));
      this.transactionLimits = inner.transactionLimits;
    }
    if (isHABackend(inner)) {
      const ha: HABackend = inner;
      this.lockWith = (key, value) => ha.lockWith(key, value);
    }
    if (typeof inner.probe === "function") {
      const probe = inner.probe.bind(inner);
      this.probe = () => this.#pool.run(() => probe());
    }
  }

  /** Operations running on the inner backend now. */
  get active(): number {
    return this.#pool.active;
  }

  /** Operations waiting for a permit. */
  get waiting(): number {
    return this.#pool.waiting;
  }

  get(key: string): Promise<Entry | undefined> {
    return this.#pool.run(() => this.inner.get(key));
  }

  put(entry: Entry): Promise<void> {
    return this.#pool.run(() => this.inner.put(entry));
  }

  delete(key: string): Promise<void> {
    return this.#pool.run(() => this.inner.delete(key));
  }

  list(prefix: string): Promise<string[]> {
    return this.#pool.run(() => this.inner.list(prefix));
  }
}

/**
 * `backend` behind a permit pool of `maxParallel` (default 128), keeping its transaction and
 * HA-lock support in the type and at runtime.
 */
export function withPermitPool<B extends Backend>(
  backend: B,
  maxParallel: number = DEFAULT_PARALLEL_OPERATIONS,
): PermitPoolBackend & Wrapped<B> {
  return new PermitPoolBackend(backend, maxParallel) as PermitPoolBackend & Wrapped<B>;
}

import { StorageUnavailableError } from "./errors.js";
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

export type StorageOperation = "get" | "put" | "delete" | "list" | "transaction";

const OPERATIONS: readonly StorageOperation[] = ["get", "put", "delete", "list", "transaction"];

/** What a fault predicate sees about one call. */
export interface FaultContext {
  op: StorageOperation;
  /** The key (`get`/`put`/`delete`), the prefix (`list`), or `""` for `transaction`. */
  key: string;
  /** 1-based number of this call among calls of the same `op`. */
  call: number;
  /** 1-based number of this call among all calls. */
  totalCall: number;
  /** The operations of a `transaction` call. */
  ops?: readonly TxnOp[];
}

export interface FaultInjectionOptions {
  /**
   * Decides per call whether it fails: return the error to throw, or `undefined` to pass the
   * call through. Called synchronously when the call starts, in call order.
   */
  fault?: (ctx: FaultContext) => Error | undefined;
  /**
   * The first `failAfter` calls (of any operation) behave normally; every later call fails with
   * `StorageUnavailableError`. `0` fails every call. Checked after `fault`.
   */
  failAfter?: number;
  /** Delay before every call, in ms: one number for all operations, or per operation. */
  latencyMs?: number | Partial<Record<StorageOperation, number>>;
}

function latencyTable(latency: FaultInjectionOptions["latencyMs"]): Record<StorageOperation, number> {
  const table = { get: 0, put: 0, delete: 0, list: 0, transaction: 0 };
  const check = (where: string, v: unknown): number => {
    if (typeof v !== "number" || !Number.isFinite(v) || v < 0) {
      throw new RangeError(`${where} must be a non-negative number of milliseconds, got ${String(v)}`);
    }
    return v;
  };
  if (latency === undefined) return table;
  if (typeof latency === "number") {
    const ms = check("latencyMs", latency);
    for (const op of OPERATIONS) table[op] = ms;
    return table;
  }
  for (const [op, ms] of Object.entries(latency)) {
    if (!OPERATIONS.includes(op as StorageOperation)) {
      throw new RangeError(`latencyMs.${op} is not a storage operation; use one of ${OPERATIONS.join(", ")}`);
    }
    table[op as StorageOperation] = check(`latencyMs.${op}`, ms);
  }
  return table;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * A test wrapper that makes chosen calls fail and/or adds latency. A failed call never reaches the
 * inner backend. `transaction` (present when the inner backend is transactional) goes through the
 * fault predicate as op `"transaction"`; `lockWith` passes straight through.
 */
export class FaultInjectingBackend implements Backend {
  readonly inner: Backend;
  /** Present when the inner backend is transactional. */
  declare readonly transaction?: (ops: readonly TxnOp[]) => Promise<void>;
  /** Present when the inner backend is transactional. */
  declare readonly transactionLimits?: TransactionLimits;
  /** Present when the inner backend is an HA backend. */
  declare readonly lockWith?: (key: string, value: string) => Lock;
  /** Present when the inner backend has one (a start-up check, passed through). */
  declare readonly probe?: () => Promise<void>;
  readonly #fault: FaultInjectionOptions["fault"];
  readonly #failAfter: number | undefined;
  readonly #latency: Record<StorageOperation, number>;
  readonly #calls: Record<StorageOperation, number> = { get: 0, put: 0, delete: 0, list: 0, transaction: 0 };
  #total = 0;

  constructor(inner: Backend, options: FaultInjectionOptions = {}) {
    if (
      options.failAfter !== undefined &&
      (!Number.isSafeInteger(options.failAfter) || options.failAfter < 0)
    ) {
      throw new RangeError(`failAfter must be a non-negative integer, got ${String(options.failAfter)}`);
    }
    if (options.fault !== undefined && typeof options.fault !== "function") {
      throw new TypeError("fault must be a function (ctx) => Error | undefined");
    }
    this.inner = inner;
    this.#fault = options.fault;
    this.#failAfter = options.failAfter;
    this.#latency = latencyTable(options.latencyMs);
    if (isTransactional(inner)) {
      this.transaction = (ops) => this.#run("transaction", "", () => inner.transaction(ops), ops);
      this.transactionLimits = inner.transactionLimits;
    }
    if (isHABackend(inner)) {
      const ha: HABackend = inner;
      this.lockWith = (key, value) => ha.lockWith(key, value);
    }
    if (typeof inner.probe === "function") {
      const probe = inner.probe.bind(inner);
      this.probe = () => probe();
    }
  }

  /** Calls made so far to `op`, or to all operations (faulted calls included). */
  callCount(op?: StorageOperation): number {
    return op === undefined ? this.#total : this.#calls[op];
  }

  get(key: string): Promise<Entry | undefined> {
    return this.#run("get", key, () => this.inner.get(key));
  }

  put(entry: Entry): Promise<void> {
    return this.#run("put", entry.key, () => this.inner.put(entry));
  }

  delete(key: string): Promise<void> {
    return this.#run("delete", key, () => this.inner.delete(key));
  }

  list(prefix: string): Promise<string[]> {
    return this.#run("list", prefix, () => this.inner.list(prefix));
  }

  async #run<T>(
    op: StorageOperation,
    key: string,
    call: () => Promise<T>,
    ops?: readonly TxnOp[],
  ): Promise<T> {
    // Count and decide before the first await, so call numbers follow the order of the calls.
    const ctx: FaultContext = { op, key, call: ++this.#calls[op], totalCall: ++this.#total };
    if (ops !== undefined) ctx.ops = ops;
    let error = this.#fault?.(ctx);
    if (error === undefined && this.#failAfter !== undefined && ctx.totalCall > this.#failAfter) {
      error = new StorageUnavailableError(
        `injected fault: ${op} ${JSON.stringify(key)} is call ${ctx.totalCall}, after failAfter (${this.#failAfter})`,
      );
    }
    const ms = this.#latency[op];
    if (ms > 0) await sleep(ms);
    if (error !== undefined) throw error;
    return call();
  }
}

/** `backend` wrapped in a `FaultInjectingBackend`, keeping its transaction and HA-lock support in the type. */
export function withFaults<B extends Backend>(
  backend: B,
  options: FaultInjectionOptions = {},
): FaultInjectingBackend & Wrapped<B> {
  return new FaultInjectingBackend(backend, options) as FaultInjectingBackend & Wrapped<B>;
}

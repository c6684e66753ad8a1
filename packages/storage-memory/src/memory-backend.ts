import { timingSafeEqual } from "node:crypto";
import {
  type Entry,
  type HABackend,
  type TransactionalBackend,
  TransactionError,
  type TransactionLimits,
  type TxnOp,
  ValueTooLargeError,
  validateKey,
  validatePrefix,
} from "@bulwark/storage";
import { LockTable, MemoryLock } from "./memory-lock.js";
import { SortedKeys } from "./sorted-keys.js";

export interface MemoryBackendOptions {
  /** Largest value `put` accepts, in bytes; larger values fail with `ValueTooLargeError`. Default: no limit. */
  maxValueSize?: number;
  /** Per-transaction limits; each field defaults to Vault's historic 63 entries / 128 KiB. */
  transactionLimits?: Partial<TransactionLimits>;
}

const DEFAULT_TRANSACTION_LIMITS: TransactionLimits = { maxEntries: 63, maxBytes: 128 * 1024 };

function positiveInteger(field: string, v: number | undefined, fallback: number): number {
  if (v === undefined) return fallback;
  if (!Number.isSafeInteger(v) || v < 1) {
    throw new RangeError(`MemoryBackend option ${field} must be a positive integer, got ${String(v)}`);
  }
  return v;
}

function requireBytes(where: string, value: unknown): asserts value is Uint8Array {
  if (!(value instanceof Uint8Array)) {
    throw new TypeError(`${where}: value must be a Uint8Array, got ${typeof value}`);
  }
}

/** Same length and same bytes, without an early exit on the first differing byte. */
function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

/** An independent copy: a pooled `Buffer` or a view into a larger buffer must not leak in or out. */
function copyBytes(v: Uint8Array): Uint8Array {
  return new Uint8Array(v);
}

/**
 * Storage in process memory, with the semantics of the file backend (Vault's `inmem`): keys in a
 * sorted structure, values copied on the way in and out, all-or-nothing transactions and an HA
 * lock shared by every `lockWith()` on the same instance. Zero-length values are stored and read
 * back as zero bytes.
 */
export class MemoryBackend implements TransactionalBackend, HABackend {
  readonly transactionLimits: TransactionLimits;
  readonly maxValueSize: number | undefined;
  readonly #keys = new SortedKeys();
  readonly #values = new Map<string, Uint8Array>();
  readonly #locks = new LockTable();

  constructor(options: MemoryBackendOptions = {}) {
    this.maxValueSize =
      options.maxValueSize === undefined
        ? undefined
        : positiveInteger("maxValueSize", options.maxValueSize, 0);
    const limits = options.transactionLimits ?? {};
    this.transactionLimits = Object.freeze({
      maxEntries: positiveInteger(
        "transactionLimits.maxEntries",
        limits.maxEntries,
        DEFAULT_TRANSACTION_LIMITS.maxEntries,
      ),
      maxBytes: positiveInteger(
        "transactionLimits.maxBytes",
        limits.maxBytes,
        DEFAULT_TRANSACTION_LIMITS.maxBytes,
      ),
    });
  }

  /** Number of stored keys. */
  get size(): number {
    return this.#values.size;
  }

  async get(key: string): Promise<Entry | undefined> {
    validateKey(key);
    const v = this.#values.get(key);
    return v === undefined ? undefined : { key, value: copyBytes(v) };
  }

  async put(entry: Entry): Promise<void> {
    validateKey(entry.key);
    requireBytes(`put(${JSON.stringify(entry.key)})`, entry.value);
    this.#checkSize(entry.key, entry.value);
    this.#set(entry.key, copyBytes(entry.value));
  }

  async delete(key: string): Promise<void> {
    validateKey(key);
    this.#remove(key);
  }

  async list(prefix: string): Promise<string[]> {
    validatePrefix(prefix);
    return this.#keys.children(prefix);
  }

  /**
   * Applies `ops` in order, all or nothing. Everything is validated before anything is applied;
   * a `check` sees the effect of earlier ops in the same transaction. The apply step has no
   * `await`, so no other operation can observe a half-applied transaction.
   */
  async transaction(ops: readonly TxnOp[]): Promise<void> {
    if (!Array.isArray(ops)) throw new TypeError("transaction(ops): ops must be an array");
    const { maxEntries, maxBytes } = this.transactionLimits;
    if (ops.length > maxEntries) {
      throw new TransactionError(
        `transaction has ${ops.length} operations, the backend accepts at most ${maxEntries}; split it`,
        undefined,
        { code: "transaction_too_large" },
      );
    }

    // Validate every op and take private copies of the values, before touching any state.
    const staged: TxnOp[] = [];
    let bytes = 0;
    for (const [i, op] of ops.entries()) {
      switch (op?.op) {
        case "put":
          validateKey(op.entry.key);
          requireBytes(`transaction op ${i} (put ${JSON.stringify(op.entry.key)})`, op.entry.value);
          this.#checkSize(op.entry.key, op.entry.value);
          bytes += Buffer.byteLength(op.entry.key) + op.entry.value.length;
          staged.push({ op: "put", entry: { key: op.entry.key, value: copyBytes(op.entry.value) } });
          break;
        case "delete":
          validateKey(op.key);
          bytes += Buffer.byteLength(op.key);
          staged.push({ op: "delete", key: op.key });
          break;
        case "check":
          validateKey(op.key);
          if (op.value !== undefined) {
            requireBytes(`transaction op ${i} (check ${JSON.stringify(op.key)})`, op.value);
            bytes += op.value.length;
          }
          bytes += Buffer.byteLength(op.key);
          staged.push({ op: "check", key: op.key, value: op.value && copyBytes(op.value) });
          break;
        default:
          throw new TypeError(
            `transaction op ${i}: unknown op ${JSON.stringify((op as { op?: unknown } | undefined)?.op)}; expected "put", "delete" or "check"`,
          );
      }
    }
    if (bytes > maxBytes) {
      throw new TransactionError(
        `transaction carries ${bytes} bytes of keys and values, the backend accepts at most ${maxBytes}; split it`,
        undefined,
        { code: "transaction_too_large" },
      );
    }

    // Evaluate checks against the state as earlier ops in this transaction leave it (null = deleted).
    const overlay = new Map<string, Uint8Array | null>();
    for (const [i, op] of staged.entries()) {
      if (op.op === "put") overlay.set(op.entry.key, op.entry.value);
      else if (op.op === "delete") overlay.set(op.key, null);
      else {
        const current = overlay.has(op.key) ? (overlay.get(op.key) ?? undefined) : this.#values.get(op.key);
        const ok =
          op.value === undefined
            ? current === undefined
            : current !== undefined && sameBytes(current, op.value);
        if (!ok) {
          const found = current === undefined ? "absent" : "present with a different value";
          const wanted = op.value === undefined ? "absent" : "to hold the given value";
          throw new TransactionError(
            `transaction rolled back: check on ${JSON.stringify(op.key)} (op ${i}) expected it ${wanted}, but it is ${found}; nothing was written — re-read and retry`,
            i,
          );
        }
      }
    }

    for (const [key, value] of overlay) {
      if (value === null) this.#remove(key);
      else this.#set(key, value);
    }
  }

  /**
   * An HA lock on `key` holding `value` while acquired. Every handle from the same
   * `MemoryBackend` shares one lock table, as nodes sharing one storage would.
   */
  lockWith(key: string, value: string): MemoryLock {
    return new MemoryLock(this.#locks, key, value);
  }

  /**
   * Test hook: takes the lock on `key` away from its holder, as a lost session does. The
   * holder's leadership signal aborts and the next waiter gets the lock. Returns whether the
   * lock was held.
   */
  forceRelease(key: string): boolean {
    validateKey(key);
    return this.#locks.forceRelease(key);
  }

  #checkSize(key: string, value: Uint8Array): void {
    if (this.maxValueSize !== undefined && value.length > this.maxValueSize) {
      throw new ValueTooLargeError(key, value.length, this.maxValueSize);
    }
  }

  #set(key: string, value: Uint8Array): void {
    if (!this.#values.has(key)) this.#keys.insert(key);
    this.#values.set(key, value);
  }

  #remove(key: string): void {
    if (this.#values.delete(key)) this.#keys.remove(key);
  }
}

/**
 * One stored record. Backends treat `value` as opaque, untrusted bytes; `sealWrap` is a hint
 * for the seal-wrap layer (it is never persisted by a backend).
 */
export interface Entry {
  key: string;
  value: Uint8Array;
  sealWrap?: boolean;
}

/**
 * The physical storage contract (Vault's `physical.Backend`). Keys are hierarchical, `/`
 * separated, non-empty, with no leading `/` and no `..` segment. Implementations are safe for
 * concurrent use.
 */
export interface Backend {
  /** The entry at `key`, or `undefined` when there is none. */
  get(key: string): Promise<Entry | undefined>;
  /** Creates or replaces the entry at `entry.key`. */
  put(entry: Entry): Promise<void>;
  /** Removes `key`; deleting a missing key is not an error. */
  delete(key: string): Promise<void>;
  /**
   * Direct children of `prefix` (which is `""` or ends in `/`), sorted, without the prefix;
   * sub-folders end in `/`. A prefix with nothing under it lists as `[]`.
   */
  list(prefix: string): Promise<string[]>;
  /**
   * Optional: proves the storage can be used — reached, written, flushed — before anything reads
   * or writes data (the server calls it at start, before opening the store). Resolves when it
   * can; rejects with a `StorageProbeError` naming the setting at fault and the fix.
   * Leaves stored entries unchanged: a probe writes only outside the key space, and removes it.
   */
  probe?(): Promise<void>;
  /**
   * Optional: releases what the backend holds open (connections, sessions, HA locks). The server
   * calls it once when it stops, after the store has sealed, and when a start fails after the
   * backend was built. Not every backend holds anything: those leave it out.
   */
  close?(): Promise<void>;
}

export type TxnOp =
  | { op: "put"; entry: Entry }
  | { op: "delete"; key: string }
  /** Fails the whole transaction unless `key` currently holds exactly `value` (or is absent when `value` is undefined). */
  | { op: "check"; key: string; value: Uint8Array | undefined };

export interface TransactionLimits {
  /** Most operations one transaction may carry. */
  maxEntries: number;
  /** Most bytes (keys + values) one transaction may carry. */
  maxBytes: number;
}

/** A backend that applies a list of operations all-or-nothing. */
export interface TransactionalBackend extends Backend {
  transaction(ops: readonly TxnOp[]): Promise<void>;
  readonly transactionLimits: TransactionLimits;
}

/** A mutual-exclusion lock shared by every node on the same storage (Vault's `physical.Lock`). */
export interface Lock {
  /**
   * Resolves once this node holds the lock. The returned signal aborts when leadership is lost.
   * Aborting `signal` while waiting rejects with an `AbortError` and leaves the lock untouched.
   */
  acquire(signal?: AbortSignal): Promise<AbortSignal>;
  /** Gives up the lock (no-op if not held). The leadership signal aborts. */
  release(): Promise<void>;
  /** Whether any node holds the lock, and that holder's value. */
  value(): Promise<{ held: boolean; value?: string }>;
}

/** A backend that offers an HA lock (Vault's `physical.HABackend`). */
export interface HABackend {
  lockWith(key: string, value: string): Lock;
}

export function isTransactional(b: Backend): b is TransactionalBackend {
  return typeof (b as Partial<TransactionalBackend>).transaction === "function";
}

export function isHABackend(b: unknown): b is HABackend {
  return typeof (b as Partial<HABackend> | undefined)?.lockWith === "function";
}

import { directChildren } from "../src/keys.js";
import type { Entry, TransactionalBackend, TransactionLimits, TxnOp } from "../src/types.js";

/** A minimal backend for wrapper tests: a Map, optional per-call gate, and an in-flight counter. */
export class MapBackend implements TransactionalBackend {
  readonly transactionLimits: TransactionLimits = { maxEntries: 63, maxBytes: 131072 };
  readonly data = new Map<string, Uint8Array>();
  inFlight = 0;
  maxInFlight = 0;
  /** When set, every call waits for it before touching the map. */
  gate: Promise<void> | undefined;
  /** Keys/prefixes in the order calls started. */
  readonly started: string[] = [];

  async #enter<T>(label: string, fn: () => T): Promise<T> {
    this.started.push(label);
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    try {
      if (this.gate !== undefined) await this.gate;
      return fn();
    } finally {
      this.inFlight--;
    }
  }

  get(key: string): Promise<Entry | undefined> {
    return this.#enter(key, () => {
      const v = this.data.get(key);
      return v === undefined ? undefined : { key, value: v };
    });
  }

  put(entry: Entry): Promise<void> {
    return this.#enter(entry.key, () => {
      this.data.set(entry.key, entry.value);
    });
  }

  delete(key: string): Promise<void> {
    return this.#enter(key, () => {
      this.data.delete(key);
    });
  }

  list(prefix: string): Promise<string[]> {
    return this.#enter(prefix, () => directChildren(prefix, this.data.keys()));
  }

  transaction(ops: readonly TxnOp[]): Promise<void> {
    return this.#enter("txn", () => {
      for (const op of ops) {
        if (op.op === "put") this.data.set(op.entry.key, op.entry.value);
        else if (op.op === "delete") this.data.delete(op.key);
      }
    });
  }
}

/** A promise plus the function that settles it. */
export function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

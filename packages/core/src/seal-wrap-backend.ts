import { constantTimeEqual } from "@bulwark/crypto";
import {
  type BlobInfo,
  encodeSealWrapped,
  type KeyInfo,
  parseSealWrapped,
  type Seal,
  SealDecryptError,
  SealError,
  SealFinalizedError,
  SealNotInitializedError,
  SealUnavailableError,
} from "@bulwark/seal";
import {
  type Backend,
  type Entry,
  isTransactional,
  type TransactionalBackend,
  TransactionError,
  type TransactionLimits,
  type TxnOp,
  validateKey,
  validatePrefix,
} from "@bulwark/storage";

type WrappedBlob = BlobInfo & { keyInfo: KeyInfo };

/** Counts reported by {@link SealWrapBackend.rewrap}. */
export interface RewrapResult {
  /** Entries examined. */
  processed: number;
  /** Seal-wrapped entries re-encrypted with the seal's current key. */
  rewrapped: number;
  /** Entries that could not be re-wrapped (see `failedKeys`; the entries are left unchanged). */
  failed: number;
  /** Storage keys of the failed entries. */
  failedKeys: string[];
}

export interface RewrapProgress extends Readonly<Omit<RewrapResult, "failedKeys">> {
  /** The entry just handled. */
  key: string;
}

export interface RewrapOptions {
  /** Entries re-wrapped at the same time (HSM/KMS calls are latency bound). Default 8. */
  concurrency?: number;
  /** Stops the walk; the returned promise rejects with the signal's reason. */
  signal?: AbortSignal;
}

/** Seal errors that describe the seal's state, not the entry: reported as they are. */
function isSealStateError(err: unknown): boolean {
  return (
    err instanceof SealUnavailableError ||
    err instanceof SealNotInitializedError ||
    err instanceof SealFinalizedError
  );
}

/**
 * The seal-wrap layer (Vault's `sealWrapBackend`): sits between the barrier and the physical
 * backend. Entries written with `sealWrap: true` are encrypted a second time by the seal — when
 * the seal supports it — and stored as `protobuf(BlobInfo) || 's'`; everything else passes through
 * unchanged. Reads detect wrapped values by their shape, so turning seal wrap on or off never
 * makes existing data unreadable (lazy upgrade/downgrade on the next write).
 *
 * No AAD is used for the seal layer (as in Vault): the barrier ciphertext inside already binds the
 * storage path.
 *
 * When `inner` is a `TransactionalBackend`, so is this wrapper (same `transactionLimits`; wrapped
 * values are larger than their input by the BlobInfo overhead). Check with `isTransactional()`.
 */
export class SealWrapBackend implements Backend {
  readonly inner: Backend;
  readonly seal: Seal;
  /** Present only when `inner` is transactional. */
  readonly transaction?: (ops: readonly TxnOp[]) => Promise<void>;
  /** Present only when `inner` is transactional: the inner backend's limits. */
  readonly transactionLimits?: TransactionLimits;

  /** Vault Enterprise's `disable_sealwrap`: puts never wrap; wrapped values are still read. */
  readonly disabled: boolean;

  constructor(inner: Backend, seal: Seal, opts: { disabled?: boolean } = {}) {
    for (const m of ["get", "put", "delete", "list"] as const) {
      if (typeof (inner as Partial<Backend> | undefined)?.[m] !== "function") {
        throw new TypeError(`SealWrapBackend: inner must be a Backend (missing ${m}())`);
      }
    }
    for (const m of ["encrypt", "decrypt", "keyId"] as const) {
      if (typeof (seal as Partial<Seal> | undefined)?.[m] !== "function") {
        throw new TypeError(`SealWrapBackend: seal must be a Seal (missing ${m}())`);
      }
    }
    this.inner = inner;
    this.seal = seal;
    this.disabled = opts.disabled === true;
    if (isTransactional(inner)) {
      this.transaction = (ops) => this.#transaction(inner, ops);
      this.transactionLimits = inner.transactionLimits;
    }
  }

  async get(key: string): Promise<Entry | undefined> {
    const entry = await this.inner.get(key);
    if (entry === undefined) return undefined;
    return this.#unwrap(entry);
  }

  async put(entry: Entry): Promise<void> {
    // Validate before spending an HSM/KMS call on a write the backend would reject.
    validateKey(entry?.key);
    await this.inner.put(await this.#wrap(entry));
  }

  delete(key: string): Promise<void> {
    return this.inner.delete(key);
  }

  list(prefix: string): Promise<string[]> {
    return this.inner.list(prefix);
  }

  /**
   * Re-encrypts, with the seal's current key, every seal-wrapped entry under `prefix` whose
   * `keyInfo.keyId` differs from `seal.keyId()` (run after rotating the seal key, with the old key
   * still available to the seal for decrypt). Unwrapped entries are left alone. On a
   * transactional backend each rewrite is conditional on the entry being unchanged since it was
   * read, so a concurrent write is never overwritten with older data; on any other backend the
   * entry is re-read just before the rewrite, which leaves only the window between that read and
   * the write.
   */
  async rewrap(
    prefix = "",
    onProgress?: (progress: RewrapProgress) => void,
    options: RewrapOptions = {},
  ): Promise<RewrapResult> {
    validatePrefix(prefix);
    if (!this.seal.supportsSealWrap) {
      throw new SealError(
        "unsupported_operation",
        `the ${this.seal.type} seal does not support seal wrap, so there is nothing to rewrap with it`,
      );
    }
    const concurrency = options.concurrency ?? 8;
    if (!Number.isInteger(concurrency) || concurrency < 1) {
      throw new SealError(
        "invalid_argument",
        `rewrap: concurrency must be a positive integer, got ${concurrency}`,
      );
    }
    const signal = options.signal;
    signal?.throwIfAborted();

    const result: RewrapResult = { processed: 0, rewrapped: 0, failed: 0, failedKeys: [] };
    const keys = this.#walk(prefix);
    let stop: { error: unknown } | undefined;

    const worker = async (): Promise<void> => {
      while (stop === undefined) {
        const next = await keys.next();
        if (next.done === true || stop !== undefined) return;
        const key = next.value;
        const outcome = await this.#rewrapOne(key);
        if (outcome === "missing") continue;
        result.processed++;
        if (outcome === "rewrapped") result.rewrapped++;
        if (outcome === "failed") {
          result.failed++;
          result.failedKeys.push(key);
        }
        onProgress?.({
          processed: result.processed,
          rewrapped: result.rewrapped,
          failed: result.failed,
          key,
        });
        if (signal?.aborted) stop = { error: signal.reason };
      }
    };

    const workers = Array.from({ length: concurrency }, () =>
      worker().catch((error: unknown) => {
        stop ??= { error };
      }),
    );
    await Promise.all(workers);
    if (stop !== undefined) throw stop.error;
    result.failedKeys.sort();
    return result;
  }

  async *#walk(prefix: string): AsyncGenerator<string> {
    for (const name of await this.inner.list(prefix)) {
      if (name.endsWith("/")) yield* this.#walk(prefix + name);
      else yield prefix + name;
    }
  }

  async #rewrapOne(key: string): Promise<"missing" | "skipped" | "rewrapped" | "failed"> {
    const raw = await this.inner.get(key);
    if (raw === undefined) return "missing";
    const blob = parseSealWrapped(raw.value);
    if (blob === undefined) return "skipped";
    const currentId = this.seal.keyId();
    // With seal wrap disabled, a rewrap unwraps (what makes an older wrapped data set readable by
    // a server without seal wrap, such as OpenBao); otherwise it re-wraps with the current key.
    if (!this.disabled && blob.keyInfo?.keyId === currentId) return "skipped";
    let next: Uint8Array;
    try {
      const plaintext = await this.#decrypt(key, blob);
      next = this.disabled ? plaintext : encodeSealWrapped(await this.seal.encrypt(plaintext));
    } catch (err) {
      if (isSealStateError(err)) throw err;
      return "failed";
    }
    if (this.transaction !== undefined) {
      try {
        await this.#innerTransactional().transaction([
          { op: "check", key, value: raw.value },
          { op: "put", entry: this.disabled ? { key, value: next } : { key, value: next, sealWrap: true } },
        ]);
      } catch (err) {
        // The entry changed since we read it: the newer write stands (it was wrapped, or not, by its writer).
        const now = await this.inner.get(key);
        if (now === undefined || !constantTimeEqual(now.value, raw.value)) return "skipped";
        throw err;
      }
    } else {
      // No conditional write: re-read after the seal round trip (where the time goes), so a write
      // that landed meanwhile stands; what is left is the window between this read and the put.
      const now = await this.inner.get(key);
      if (now === undefined || !constantTimeEqual(now.value, raw.value)) return "skipped";
      await this.inner.put(this.disabled ? { key, value: next } : { key, value: next, sealWrap: true });
    }
    return "rewrapped";
  }

  #innerTransactional(): TransactionalBackend {
    return this.inner as TransactionalBackend;
  }

  async #wrap(entry: Entry): Promise<Entry> {
    // Rule: only entries flagged sealWrap, and only with a seal that supports it, are wrapped.
    if (entry.sealWrap !== true || !this.seal.supportsSealWrap || this.disabled) return entry;
    // No AAD (Vault compatibility): the barrier ciphertext inside already binds the path.
    const blob = await this.seal.encrypt(entry.value);
    return { key: entry.key, value: encodeSealWrapped(blob), sealWrap: true };
  }

  async #unwrap(entry: Entry): Promise<Entry> {
    const blob = parseSealWrapped(entry.value);
    if (blob === undefined) return entry;
    return { key: entry.key, value: await this.#decrypt(entry.key, blob), sealWrap: true };
  }

  async #decrypt(key: string, blob: BlobInfo): Promise<Uint8Array> {
    const keyId = blob.keyInfo?.keyId;
    try {
      if (blob.keyInfo === undefined) {
        throw new SealDecryptError("the value is marked wrapped but names no key");
      }
      // Vault sets the (deprecated) value path to the storage key while unwrapping.
      const withPath: WrappedBlob = { ...blob, keyInfo: blob.keyInfo, valuePath: key };
      return await this.seal.decrypt(withPath);
    } catch (err) {
      if (isSealStateError(err)) throw err;
      const why = err instanceof Error ? err.message : String(err);
      throw new SealDecryptError(
        `cannot unwrap seal-wrapped entry ${JSON.stringify(key)} written with seal key ${JSON.stringify(keyId ?? "")} (the ${this.seal.type} seal's current key is ${JSON.stringify(this.seal.keyId())}): ${why}`,
        { cause: err, keyId },
      );
    }
  }

  async #transaction(inner: TransactionalBackend, ops: readonly TxnOp[]): Promise<void> {
    if (!Array.isArray(ops)) throw new TransactionError("transaction operations must be an array");
    // Wrap every put first (in parallel: each may be an HSM/KMS round trip).
    const wrapped = await Promise.all(
      ops.map((op) => {
        if (op?.op !== "put") return undefined;
        validateKey(op.entry?.key);
        return this.#wrap(op.entry);
      }),
    );
    // A check sees the effect of earlier ops in the same transaction: track them, logically and as stored.
    const overlay = new Map<string, { logical: Uint8Array; stored: Uint8Array } | null>();
    const translated: TxnOp[] = [];
    for (const [i, op] of ops.entries()) {
      const put = wrapped[i];
      if (op?.op === "put" && put !== undefined) {
        overlay.set(put.key, { logical: op.entry.value, stored: put.value });
        translated.push({ op: "put", entry: put });
      } else if (op?.op === "delete") {
        overlay.set(op.key, null);
        translated.push(op);
      } else if (op?.op === "check") {
        translated.push(await this.#translateCheck(inner, op, i, overlay));
      } else {
        translated.push(op);
      }
    }
    await inner.transaction(translated);
  }

  /**
   * A check compares the logical (unwrapped) value, but wrapped values are randomised, so the
   * caller's bytes cannot be compared with storage directly. Compare the unwrapped form of the
   * current value here, then check the stored bytes themselves: the transaction still fails if the
   * entry changes between this read and the commit.
   */
  async #translateCheck(
    inner: TransactionalBackend,
    op: Extract<TxnOp, { op: "check" }>,
    index: number,
    overlay: ReadonlyMap<string, { logical: Uint8Array; stored: Uint8Array } | null>,
  ): Promise<TxnOp> {
    // "Absent" and "absent after an earlier delete" need no translation.
    if (op.value === undefined) return op;
    let current: { logical: Uint8Array; stored: Uint8Array } | null | undefined = overlay.get(op.key);
    if (current === undefined && !overlay.has(op.key)) {
      const stored = await inner.get(op.key);
      current =
        stored === undefined ? null : { logical: (await this.#unwrap(stored)).value, stored: stored.value };
    }
    // Absent: the inner check fails as it should.
    if (current === null || current === undefined) return op;
    if (!(op.value instanceof Uint8Array) || !constantTimeEqual(current.logical, op.value)) {
      throw new TransactionError(
        `transaction rolled back: check on ${JSON.stringify(op.key)} (op ${index}) expected it to hold the given value, but it holds another; nothing was written — re-read and retry`,
        index,
      );
    }
    return { op: "check", key: op.key, value: current.stored };
  }
}

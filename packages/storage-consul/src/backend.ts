import {
  type Entry,
  FencedWriteError,
  type HABackend,
  PermitPool,
  StorageError,
  StorageProbeError,
  StorageUnavailableError,
  type TransactionalBackend,
  TransactionError,
  type TransactionLimits,
  type TxnOp,
  ValueTooLargeError,
  validateKey,
  validatePrefix,
} from "@bulwark/storage";
import {
  type AclNeed,
  bodyText,
  ConsulHttp,
  type ConsulTxnOp,
  classify,
  describeError,
  type KvPair,
  statusOf,
} from "./client.js";
import { type ConsulBackendOptions, type ResolvedOptions, resolveOptions } from "./config.js";
import { ConsulLock, type LockHost } from "./lock.js";

/** Consul's default `kv_max_value_size`: the largest value a KV PUT accepts. */
export const MAX_VALUE_BYTES = 512 * 1024;

/**
 * Vault's Consul limits: Consul 1.8 takes 64 operations per `/v1/txn`; one is reserved for the
 * fencing `check-session`. 128 KiB of keys and values keeps a transaction well inside Consul's
 * 512 KiB request limit after base64.
 */
export const CONSUL_TRANSACTION_LIMITS: TransactionLimits = Object.freeze({
  maxEntries: 63,
  maxBytes: 128 * 1024,
});

/** The key `probe()` reads (under `path`); it need not exist. */
const PROBE_KEY = ".bulwark-probe";

/** The HA lock that fences this backend's writes while held. */
interface Fence {
  lock: ConsulLock;
  /** Full Consul key of the lock. */
  key: string;
  session: string;
  /** The lock was lost: writes are refused until it is acquired again or released. */
  lost: boolean;
}

/** Rollbacks that followed an unanswered attempt of the same request, which may have been applied. */
const AFTER_UNANSWERED = new WeakSet<Error>();

/** A pre-read of a `check` op: the key's state now, to pin with `check-index`. */
type CheckPlan = { ok: true; op: ConsulTxnOp } | { ok: false; why: string };

function b64(v: Uint8Array): string {
  return Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString("base64");
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && Buffer.compare(a, b) === 0;
}

/**
 * Bulwark storage on Consul's KV store: `TransactionalBackend` through `/v1/txn`, `HABackend`
 * through a session lock, and fenced writes while this backend holds its HA lock (Vault's
 * `physical/consul`). Pass the same instance as `storage` and `ha` to `SealedStore.open()`.
 */
export class ConsulBackend implements TransactionalBackend, HABackend {
  readonly transactionLimits: TransactionLimits = CONSUL_TRANSACTION_LIMITS;
  /** The KV prefix every key is stored under (normalized: `""` or ending in `/`). */
  readonly path: string;
  /** The agent this backend talks to, e.g. `http://127.0.0.1:8500`. */
  readonly address: string;
  readonly #opts: ResolvedOptions;
  readonly #http: ConsulHttp;
  /** A separate pool for the HA lock: renewals and watches must not queue behind data requests. */
  readonly #haHttp: ConsulHttp;
  readonly #permits: PermitPool;
  /** Locks with something for close() to end: a wait, a held or lost lock, a session destroy in flight. */
  readonly #locks = new Set<ConsulLock>();
  readonly #lockHost: LockHost;
  #fence: Fence | undefined;
  #closed = false;
  #closing: Promise<void> | undefined;

  constructor(options: ConsulBackendOptions = {}) {
    this.#opts = resolveOptions(options);
    this.path = this.#opts.path;
    this.address = this.#opts.endpoint.display;
    this.#http = new ConsulHttp(this.#opts, this.#opts.maxParallel);
    this.#haHttp = new ConsulHttp(this.#opts, Number.POSITIVE_INFINITY);
    this.#permits = new PermitPool(this.#opts.maxParallel);
    this.#lockHost = {
      http: this.#haHttp,
      opts: this.#opts,
      fullKey: (key) => this.path + key,
      fenceKey: this.path + this.#opts.haLockKey,
      acquired: (lock, key, session) => {
        this.#fence = { lock, key, session, lost: false };
      },
      lost: (lock) => {
        if (this.#fence?.lock === lock) this.#fence.lost = true;
      },
      released: (lock) => {
        if (this.#fence?.lock === lock) this.#fence = undefined;
      },
      track: (lock) => {
        if (this.#closed) return false;
        this.#locks.add(lock);
        return true;
      },
      forget: (lock) => {
        this.#locks.delete(lock);
      },
    };
  }

  /**
   * Proves, before anything reads or writes data, that the agent at `address` answers as Consul
   * and that the token may read keys under `path`: one read of a key that need not exist, retried
   * like every read (within `retry_budget`). Throws a `StorageProbeError` naming the setting at
   * fault (`address`, `token`) and the fix.
   */
  async probe(): Promise<void> {
    this.#checkOpen();
    let consulIndex: unknown;
    try {
      consulIndex = await this.#permits.run(() =>
        this.#http.retry(
          "probe read",
          async () => {
            const { ctx, done } = this.#http.ctx();
            try {
              const [response] = await this.#http.raw.kv.get({
                key: this.path + PROBE_KEY,
                buffer: true,
                ctx,
                timeout: this.#opts.requestTimeoutMs,
              });
              return response?.headers?.["x-consul-index"];
            } catch (err) {
              throw this.#mapError(err, "key read");
            } finally {
              done();
            }
          },
          { idempotent: true },
        ),
      );
    } catch (err) {
      if (err instanceof StorageError && err.code === "permission_denied") {
        throw new StorageProbeError(
          "permission_denied",
          "token",
          `Consul at ${this.address} refused to let this token read "${this.path}": ${err.message}`,
          "set token (or CONSUL_HTTP_TOKEN) to a token whose policy allows it",
          { cause: err },
        );
      }
      throw new StorageProbeError(
        err instanceof StorageError ? err.code : "unavailable",
        "address",
        `cannot reach the Consul agent at ${this.address}: ${err instanceof Error ? err.message : String(err)}`,
        "start the Consul agent, or set address (or CONSUL_HTTP_ADDR) to where its HTTP API listens",
        { cause: err },
      );
    }
    // Every Consul KV answer, a missing key's 404 included, carries X-Consul-Index; another
    // HTTP server's 404 would otherwise look like an empty Consul.
    if (consulIndex === undefined) {
      throw new StorageProbeError(
        "io",
        "address",
        `${this.address} answered, but not as a Consul agent (no X-Consul-Index header)`,
        "set address (or CONSUL_HTTP_ADDR) to the Consul agent's HTTP address (by default port 8500)",
      );
    }
  }

  /**
   * The HA lock fencing this backend's writes, if any: its Consul key, session, and whether it
   * was lost (then every write fails with `FencedWriteError` until it is acquired again or released).
   */
  get fencing(): { key: string; session: string; lost: boolean } | undefined {
    const f = this.#fence;
    return f === undefined ? undefined : { key: f.key, session: f.session, lost: f.lost };
  }

  async get(key: string): Promise<Entry | undefined> {
    validateKey(key);
    this.#checkOpen();
    const pair = await this.#permits.run(() => this.#readPair(this.path + key, "get"));
    if (pair === undefined) return undefined;
    // A fresh, exclusive copy: the client's Buffer may come from a shared pool.
    return { key, value: pair.Value === null ? new Uint8Array(0) : new Uint8Array(pair.Value) };
  }

  async put(entry: Entry): Promise<void> {
    validateKey(entry.key);
    this.#checkValue(entry.key, entry.value);
    this.#checkOpen();
    const full = this.path + entry.key;
    // Copied once, so a retry sends the same bytes even if the caller reuses its buffer.
    const value = Buffer.from(entry.value);
    const fence = this.#fenceFor();
    if (fence !== undefined) {
      const ops: ConsulTxnOp[] = [{ KV: { Verb: "set", Key: full, Value: value.toString("base64") } }];
      await this.#permits.run(() =>
        this.#fencedTxn(fence, ops, `put ${JSON.stringify(entry.key)}`, {
          key: entry.key,
          size: value.length,
        }),
      );
      return;
    }
    await this.#permits.run(() =>
      this.#http.retry(
        `put ${JSON.stringify(entry.key)}`,
        async () => {
          try {
            await this.#http.raw.kv.set({ key: full, value, timeout: this.#opts.requestTimeoutMs });
          } catch (err) {
            throw this.#mapWriteError(err, entry.key, value.length);
          }
        },
        { idempotent: true },
      ),
    );
  }

  async delete(key: string): Promise<void> {
    validateKey(key);
    this.#checkOpen();
    const full = this.path + key;
    const fence = this.#fenceFor();
    if (fence !== undefined) {
      await this.#permits.run(() =>
        this.#fencedTxn(fence, [{ KV: { Verb: "delete", Key: full } }], `delete ${JSON.stringify(key)}`),
      );
      return;
    }
    await this.#permits.run(() =>
      this.#http.retry(
        `delete ${JSON.stringify(key)}`,
        async () => {
          try {
            await this.#http.raw.kv.del({ key: full, timeout: this.#opts.requestTimeoutMs });
          } catch (err) {
            throw this.#mapError(err, "key write");
          }
        },
        { idempotent: true },
      ),
    );
  }

  async list(prefix: string): Promise<string[]> {
    validatePrefix(prefix);
    this.#checkOpen();
    const scan = this.path + prefix;
    const keys = await this.#permits.run(() =>
      this.#http.retry(
        `list ${JSON.stringify(prefix)}`,
        async () => {
          try {
            return await this.#http.raw.kv.keys({
              key: scan,
              separator: "/",
              timeout: this.#opts.requestTimeoutMs,
              ...(this.#opts.consistent ? { consistent: true } : {}),
            });
          } catch (err) {
            // No keys under the prefix: Consul answers 404 and the client throws.
            if (statusOf(err) === 404) return [];
            throw this.#mapError(err, "key list");
          }
        },
        { idempotent: true },
      ),
    );
    const out = new Set<string>();
    for (const k of keys) {
      if (!k.startsWith(scan)) continue;
      const name = k.slice(scan.length);
      // Consul also returns the prefix itself if a key by that exact name exists.
      if (name === "" || name === "/") continue;
      out.add(name);
    }
    // Code-unit order, like every Bulwark backend (Consul sorts by UTF-8 bytes).
    return [...out].sort();
  }

  async transaction(ops: readonly TxnOp[]): Promise<void> {
    if (!Array.isArray(ops)) {
      throw new TypeError(
        `transaction(ops): ops must be an array, got ${ops === null ? "null" : typeof ops}`,
      );
    }
    const { maxEntries, maxBytes } = this.transactionLimits;
    let bytes = 0;
    for (const [i, op] of ops.entries()) {
      switch (op?.op) {
        case "put":
          validateKey(op.entry.key);
          this.#checkValue(op.entry.key, op.entry.value);
          bytes += Buffer.byteLength(op.entry.key) + op.entry.value.length;
          break;
        case "delete":
          validateKey(op.key);
          bytes += Buffer.byteLength(op.key);
          break;
        case "check":
          validateKey(op.key);
          if (op.value !== undefined && !(op.value instanceof Uint8Array)) {
            throw new TypeError(
              `transaction op ${i} (check ${JSON.stringify(op.key)}): value must be a Uint8Array or undefined, got ${typeof op.value}`,
            );
          }
          bytes += Buffer.byteLength(op.key) + (op.value?.length ?? 0);
          break;
        default:
          throw new TypeError(
            `transaction op ${i}: unknown op ${JSON.stringify((op as { op?: unknown } | null)?.op)}; expected "put", "delete" or "check"`,
          );
      }
    }
    if (ops.length > maxEntries) {
      throw new TransactionError(
        `transaction has ${ops.length} operations; Consul takes at most ${maxEntries} (64 per /v1/txn, one kept for the fencing check): split it`,
        undefined,
        { code: "transaction_too_large" },
      );
    }
    if (bytes > maxBytes) {
      throw new TransactionError(
        `transaction carries ${bytes} bytes of keys and values; the Consul backend accepts at most ${maxBytes}: split it`,
        undefined,
        { code: "transaction_too_large" },
      );
    }
    this.#checkOpen();
    if (ops.length === 0) return;
    // Copy the values now: the caller may reuse its buffers once we return.
    const body: ConsulTxnOp[] = [];
    const checks: { index: number; key: string; value: Uint8Array | undefined; local?: CheckPlan }[] = [];
    // What earlier ops of this transaction leave at a key (null = deleted): a check on such a key
    // is decided here, like the memory backend does, since Consul applies the ops in order.
    const written = new Map<string, Uint8Array | null>();
    for (const [i, op] of ops.entries()) {
      if (op.op === "put") {
        body.push({ KV: { Verb: "set", Key: this.path + op.entry.key, Value: b64(op.entry.value) } });
        written.set(op.entry.key, op.entry.value);
      } else if (op.op === "delete") {
        body.push({ KV: { Verb: "delete", Key: this.path + op.key } });
        written.set(op.key, null);
      } else {
        const full = this.path + op.key;
        const prior = written.get(op.key);
        let local: CheckPlan | undefined;
        if (prior === null) {
          local =
            op.value === undefined
              ? { ok: true, op: { KV: { Verb: "check-not-exists", Key: full } } }
              : { ok: false, why: "an earlier op of this transaction deletes it" };
        } else if (prior !== undefined) {
          // The key exists after the earlier put: a `get` passes and keeps the op indexes aligned.
          local =
            op.value !== undefined && sameBytes(prior, op.value)
              ? { ok: true, op: { KV: { Verb: "get", Key: full } } }
              : {
                  ok: false,
                  why:
                    op.value === undefined
                      ? "an earlier op of this transaction writes it"
                      : "the value an earlier op of this transaction writes differs",
                };
        }
        body.push(local?.ok ? local.op : { KV: { Verb: "check-not-exists", Key: full } });
        checks.push({
          index: i,
          key: op.key,
          value: op.value === undefined ? undefined : Uint8Array.from(op.value),
          ...(local !== undefined ? { local } : {}),
        });
      }
    }
    // Checks decided here do not depend on Consul's state: replaying them is safe.
    const idempotent = checks.every((c) => c.local !== undefined);
    await this.#permits.run(async () => {
      // Consul has no value compare: a check reads the key now and pins that version with
      // check-index, so the transaction fails if anyone changes the key in between.
      for (const c of checks) {
        const plan = c.local ?? (await this.#planCheck(c.key, c.value));
        if (!plan.ok) {
          throw new TransactionError(
            `transaction rolled back: check on ${JSON.stringify(c.key)} (op ${c.index}) failed: ${plan.why}`,
            c.index,
          );
        }
        body[c.index] = plan.op;
      }
      const fence = this.#fenceFor();
      if (fence !== undefined) {
        await this.#fencedTxn(fence, body, "transaction", undefined, idempotent);
        return;
      }
      await this.#sendTxn(body, 0, idempotent);
    });
  }

  /**
   * A lock on `key` (relative to `path`) whose holder is recorded as `value`. The lock on
   * `core/lock` (option `haLockKey`) also fences this backend's writes while held.
   */
  lockWith(key: string, value: string): ConsulLock {
    validateKey(key);
    if (typeof value !== "string") {
      throw new TypeError(`lockWith(${JSON.stringify(key)}, value): value must be a string`);
    }
    this.#checkOpen();
    // Not tracked until it waits or holds: core makes a handle for every leader lookup.
    return new ConsulLock(this.#lockHost, key, value);
  }

  /**
   * Releases held locks (destroying their sessions, so a standby takes over at once), cancels
   * lock waits and closes the connection pools. Later calls fail with `StorageUnavailableError`.
   */
  async close(): Promise<void> {
    // A second call waits for the first: when any close() resolves, the locks are given back.
    if (this.#closing !== undefined) return this.#closing;
    this.#closed = true;
    this.#closing = (async () => {
      await Promise.allSettled([...this.#locks].map((l) => l.shutdown()));
      this.#http.close();
      this.#haHttp.close();
    })();
    return this.#closing;
  }

  // ------------------------------------------------------------------ internals

  #checkOpen(): void {
    if (this.#closed) throw new StorageUnavailableError("the Consul backend was closed; open a new one");
  }

  #checkValue(key: string, value: Uint8Array): void {
    if (!(value instanceof Uint8Array)) {
      throw new TypeError(`entry ${JSON.stringify(key)}: value must be a Uint8Array`);
    }
    if (value.length > MAX_VALUE_BYTES) throw new ValueTooLargeError(key, value.length, MAX_VALUE_BYTES);
  }

  /** The fence to write under now, or a `FencedWriteError` if this node lost its lock. */
  #fenceFor(): Fence | undefined {
    const f = this.#fence;
    if (f?.lost) {
      throw new FencedWriteError(
        `lock has changed ownership before attempting write: this node lost the HA lock at ${JSON.stringify(f.key)}; ` +
          "writes are refused until it acquires the lock again (or releases it)",
      );
    }
    return f;
  }

  async #readPair(full: string, what: string): Promise<KvPair | undefined> {
    return this.#http.retry(
      `${what} ${JSON.stringify(full.slice(this.path.length))}`,
      async () => {
        const { ctx, done } = this.#http.ctx();
        try {
          const [, pair] = await this.#http.raw.kv.get({
            key: full,
            buffer: true,
            ctx,
            timeout: this.#opts.requestTimeoutMs,
            ...(this.#opts.consistent ? { consistent: true } : {}),
          });
          return pair;
        } catch (err) {
          throw this.#mapError(err, "key read");
        } finally {
          done();
        }
      },
      { idempotent: true },
    );
  }

  async #planCheck(key: string, expected: Uint8Array | undefined): Promise<CheckPlan> {
    const full = this.path + key;
    const pair = await this.#readPair(full, "check");
    if (expected === undefined) {
      if (pair !== undefined) return { ok: false, why: "the key exists" };
      return { ok: true, op: { KV: { Verb: "check-not-exists", Key: full } } };
    }
    if (pair === undefined) return { ok: false, why: "the key does not exist" };
    const actual = pair.Value ?? new Uint8Array(0);
    if (!sameBytes(actual, expected)) return { ok: false, why: "the value differs" };
    return { ok: true, op: { KV: { Verb: "check-index", Key: full, Index: pair.ModifyIndex } } };
  }

  /** `ops` behind a `check-session` on the lock key: applied only while this node holds the lock. */
  async #fencedTxn(
    fence: Fence,
    ops: ConsulTxnOp[],
    what: string,
    put?: { key: string; size: number },
    idempotent = true,
  ): Promise<void> {
    const body: ConsulTxnOp[] = [
      { KV: { Verb: "check-session", Key: fence.key, Session: fence.session } },
      ...ops,
    ];
    const size = Buffer.byteLength(JSON.stringify(body));
    if (size > this.#opts.txnMaxRequestBytes) {
      if (put !== undefined) {
        // Base64 grows the value by 4/3: report the largest raw value that fits a fenced put.
        const valueB64 = ops[0]?.KV.Value?.length ?? 0;
        const room = this.#opts.txnMaxRequestBytes - (size - valueB64);
        const limit = Math.max(0, Math.floor(room / 4) * 3);
        throw new ValueTooLargeError(put.key, put.size, Math.min(limit, MAX_VALUE_BYTES));
      }
      throw new TransactionError(
        `${what}: the /v1/txn body would be ${size} bytes; Consul's txn_max_req_len is ${this.#opts.txnMaxRequestBytes}: split it`,
        undefined,
        { code: "transaction_too_large" },
      );
    }
    try {
      // Replaying a fenced set/delete gives the same state, and the fence still holds; a
      // transaction with check-index ops is not replayed (its own first commit would fail the check).
      await this.#sendTxn(body, 1, idempotent, put);
    } catch (err) {
      if (err instanceof TransactionError && err.failedIndex === -1) {
        fence.lock.fencedWriteFailed(fence.session);
        if (AFTER_UNANSWERED.has(err)) {
          throw new FencedWriteError(
            `lock has changed ownership before attempting write: ${what} failed because this node no longer holds ` +
              `the HA lock at ${JSON.stringify(fence.key)} (${err.message}), but an earlier attempt got no answer and ` +
              "may have been applied before the lock was lost: read the keys to know; stepping down",
            { cause: err },
          );
        }
        throw new FencedWriteError(
          `lock has changed ownership before attempting write: ${what} was rejected because this node no longer holds ` +
            `the HA lock at ${JSON.stringify(fence.key)} (${err.message}); stepping down`,
          { cause: err },
        );
      }
      throw err;
    }
  }

  /**
   * PUT /v1/txn. `offset` ops were prepended (the fence), so a failing op index is shifted back
   * (-1 = the fence). Read-modify-write transactions are retried only when surely not applied.
   */
  async #sendTxn(
    body: ConsulTxnOp[],
    offset: number,
    idempotent: boolean,
    put?: { key: string; size: number },
  ): Promise<void> {
    // An attempt that got no answer may have been applied; a rollback on a replay says nothing about it.
    let unanswered = false;
    await this.#http.retry(
      "transaction",
      async () => {
        try {
          await this.#http.raw.transaction.create(body, { timeout: this.#opts.requestTimeoutMs });
        } catch (err) {
          if (statusOf(err) === 409) {
            const errors = ((err as { response?: { body?: { Errors?: unknown } } }).response?.body?.Errors ??
              []) as { OpIndex?: number; What?: string }[];
            const first = errors[0];
            // Consul reports ACL denials inside a transaction as a rolled-back op.
            if (/permission denied/i.test(first?.What ?? "")) {
              throw this.#http.aclError("key write", err, this.path, first?.What);
            }
            const opIndex = typeof first?.OpIndex === "number" ? first.OpIndex : undefined;
            const failed = opIndex === undefined ? undefined : opIndex - offset;
            const target = opIndex === undefined ? undefined : body[opIndex]?.KV.Key;
            const rolledBack = new TransactionError(
              `transaction rolled back by Consul${failed === undefined ? "" : ` at op ${failed}`}` +
                `${target === undefined ? "" : ` (${JSON.stringify(target.slice(this.path.length))})`}: ${first?.What ?? bodyText(err)}`,
              failed,
              { cause: err },
            );
            if (unanswered) AFTER_UNANSWERED.add(rolledBack);
            throw rolledBack;
          }
          if (classify(err) === "ambiguous") unanswered = true;
          if (statusOf(err) === 413 && put !== undefined) throw this.#mapWriteError(err, put.key, put.size);
          if (statusOf(err) === 413) {
            throw new TransactionError(
              `transaction refused by Consul as too large: ${bodyText(err)}`,
              undefined,
              {
                cause: err,
                code: "transaction_too_large",
              },
            );
          }
          throw this.#mapError(err, "key write");
        }
      },
      { idempotent },
    );
  }

  #mapWriteError(err: unknown, key: string, size: number): unknown {
    const status = statusOf(err);
    const body = bodyText(err);
    if (status === 413 || /too large|exceeds/i.test(body)) {
      const m = /max size: (\d+)/.exec(body);
      return new ValueTooLargeError(key, size, m ? Number(m[1]) : MAX_VALUE_BYTES);
    }
    return this.#mapError(err, "key write");
  }

  /** 403 → what the token lacks; other final errors → `StorageError` naming the HTTP answer. */
  #mapError(err: unknown, need: AclNeed): unknown {
    const status = statusOf(err);
    if (status === 403) return this.#http.aclError(need, err, this.path);
    // A 4xx that classify() deems final; a transient one (429) passes through for retry().
    if (status !== undefined && status >= 400 && status < 500 && classify(err) === "final") {
      return new StorageError("io", `Consul at ${this.address} refused the request: ${describeError(err)}`, {
        cause: err,
      });
    }
    // Transient errors pass through unchanged: retry() decides and maps them.
    return err;
  }
}

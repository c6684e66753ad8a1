import { EventEmitter } from "node:events";
import { Agent as HttpAgent } from "node:http";
import { Agent as HttpsAgent } from "node:https";
import { CodedError, type CodedErrorOptions } from "@bulwark/errors";
import { StorageError, type StorageErrorCode, StorageUnavailableError } from "@bulwark/storage";
import Consul from "consul";
import type { ResolvedOptions } from "./config.js";

/** A KV pair as the `consul` client returns it with `buffer: true`. */
export interface KvPair {
  Key: string;
  /** `null` for a zero-length value. */
  Value: Buffer | null;
  Session?: string;
  CreateIndex: number;
  ModifyIndex: number;
  LockIndex: number;
  Flags: number;
}

/** One `/v1/txn` KV operation (Consul's PascalCase body shape). */
export interface ConsulTxnOp {
  KV: {
    Verb: "set" | "delete" | "get" | "check-index" | "check-not-exists" | "check-session";
    Key: string;
    Value?: string;
    Index?: number;
    Session?: string;
  };
}

interface CallOptions {
  token?: string;
  consistent?: boolean;
  index?: string;
  wait?: string;
  timeout?: number;
  ctx?: EventEmitter;
}

interface ResponseLike {
  statusCode?: number;
  headers?: Record<string, string | string[] | undefined>;
  body?: unknown;
}

/**
 * The parts of the `consul` client used here. Its bundled typings omit `baseUrl`, `timeout`,
 * `ctx`, `buffer` and the `[response, body]` results that `ctx.includeResponse` gives, so the
 * calls are typed here instead.
 */
interface RawConsul {
  kv: {
    get(opts: CallOptions & { key: string; buffer: true }): Promise<[ResponseLike, KvPair?]>;
    keys(opts: CallOptions & { key: string; separator: string }): Promise<string[]>;
    set(
      opts: CallOptions & { key: string; value: Buffer; acquire?: string; release?: string },
    ): Promise<boolean | undefined>;
    del(opts: CallOptions & { key: string }): Promise<unknown>;
  };
  session: {
    create(opts: CallOptions & { name: string; ttl: string; lockdelay: string; behavior: string }): Promise<{
      ID: string;
    }>;
    destroy(opts: CallOptions & { id: string }): Promise<unknown>;
    renew(opts: CallOptions & { id: string }): Promise<unknown[]>;
  };
  transaction: {
    create(ops: ConsulTxnOp[], opts: CallOptions): Promise<unknown>;
  };
  destroy(): void;
}

type ConsulCtor = new (opts: Record<string, unknown>) => RawConsul;

/** What an error from the `consul` client (papi underneath) looks like. */
interface ClientError extends Error {
  code?: string;
  statusCode?: number;
  response?: ResponseLike;
  isTimeout?: boolean;
  isAbort?: boolean;
}

/**
 * The request was aborted through its `AbortSignal`. Named "AbortError" as the platform's aborts
 * are; domain "storage", code `aborted` (typed from `StorageErrorCode`).
 */
export class RequestAbortedError extends CodedError<Extract<StorageErrorCode, "aborted">> {
  static override readonly kind: string = "@bulwark/storage-consul:RequestAbortedError";
  override name = "AbortError";
  constructor(message: string, options?: CodedErrorOptions) {
    super("storage", "aborted", message, options);
  }
}

/** Network errors after which the request surely never reached Consul. */
const NOT_SENT = new Set(["ECONNREFUSED", "ENOENT", "EAI_AGAIN"]);
/** Network errors worth retrying, where the request may or may not have been applied. */
const TRANSIENT = new Set([
  "ECONNRESET",
  "EPIPE",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ENETDOWN",
  "ECONNABORTED",
  "UND_ERR_SOCKET",
]);

export type Outcome = "not_sent" | "ambiguous" | "final";

export function statusOf(err: unknown): number | undefined {
  const e = err as ClientError | undefined;
  const s = e?.response?.statusCode;
  return typeof s === "number" ? s : undefined;
}

/** The body Consul sent with an error response, as text. */
export function bodyText(err: unknown): string {
  const b = (err as ClientError | undefined)?.response?.body;
  if (b === undefined || b === null) return "";
  if (typeof b === "string") return b.trim();
  if (Buffer.isBuffer(b)) return b.toString("utf8").trim();
  return JSON.stringify(b);
}

/**
 * How a failed request may be retried: `not_sent` (never applied: refused connection, no leader),
 * `ambiguous` (a timeout, a reset, a 5xx: perhaps applied), or `final` (a 4xx, a bug: do not retry).
 */
export function classify(err: unknown): Outcome {
  const e = err as ClientError;
  const status = statusOf(err);
  if (status !== undefined) {
    // Deterministic refusals Consul sends as 500s: retrying cannot help.
    if (status === 500 && /invalid session|session ttl|permission denied/i.test(bodyText(err)))
      return "final";
    // 429: Consul's rate limiter refused the request before doing anything; retrying is safe.
    if (status === 429) return "not_sent";
    if (status >= 500) {
      // Consul answers 500 "No cluster leader" (after its RPC hold timeout) without applying anything.
      // "rpc error making call: EOF" is not among them: the server may have applied the write
      // before the connection dropped (Consul's own RPC client retries EOF only for reads).
      return /no cluster leader|no path to datacenter/i.test(bodyText(err)) ? "not_sent" : "ambiguous";
    }
    return "final";
  }
  if (e?.isAbort) return "final";
  if (e?.isTimeout) return "ambiguous";
  const code = e?.code ?? (e?.cause as { code?: string } | undefined)?.code;
  if (code !== undefined && NOT_SENT.has(code)) return "not_sent";
  if (code !== undefined && TRANSIENT.has(code)) return "ambiguous";
  if (/socket hang up|other side closed/i.test(e?.message ?? "")) return "ambiguous";
  return "final";
}

export function describeError(err: unknown): string {
  const status = statusOf(err);
  if (status !== undefined) {
    const body = bodyText(err);
    return `HTTP ${status}${body ? `: ${body.length > 300 ? `${body.slice(0, 300)}…` : body}` : ""}`;
  }
  const e = err as ClientError | undefined;
  const msg = e?.message ?? String(err);
  return msg.replace(/^consul: [\w.]+: /, "");
}

const sleep = (ms: number, signal?: AbortSignal): Promise<void> =>
  new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(new RequestAbortedError("aborted"));
    const t = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = (): void => {
      clearTimeout(t);
      reject(new RequestAbortedError("aborted"));
    };
    signal?.addEventListener("abort", onAbort, { once: true });
  });

export { sleep };

export interface RetryPolicy {
  /** Retry `ambiguous` failures too (the request is idempotent). */
  idempotent: boolean;
  /** Total time to keep retrying; default the backend's `retryBudgetMs`. */
  budgetMs?: number;
  signal?: AbortSignal;
}

/** What a permission error is about, for the message. */
export type AclNeed = "key read" | "key write" | "key list" | "session write";

/**
 * One connection pool to one Consul agent, with Bulwark's retry and error mapping. The backend
 * keeps two: one for storage operations (bounded by `max_parallel`) and one for the HA lock's
 * session renewals and blocking queries, so a burst of writes cannot starve a renewal.
 */
export class ConsulHttp {
  readonly raw: RawConsul;
  readonly opts: ResolvedOptions;
  readonly #agent: HttpAgent | HttpsAgent;
  #closed = false;

  constructor(opts: ResolvedOptions, maxSockets: number) {
    this.opts = opts;
    const { endpoint, tls } = opts;
    this.#agent = endpoint.secure
      ? new HttpsAgent({
          keepAlive: true,
          maxSockets,
          minVersion: tls.minVersion,
          rejectUnauthorized: tls.rejectUnauthorized,
          ...(tls.ca !== undefined ? { ca: tls.ca } : {}),
          ...(tls.cert !== undefined ? { cert: tls.cert } : {}),
          ...(tls.key !== undefined ? { key: tls.key } : {}),
        })
      : new HttpAgent({ keepAlive: true, maxSockets });
    const ctorOpts: Record<string, unknown> = {
      baseUrl: endpoint.baseUrl,
      agent: this.#agent,
      ...(endpoint.socketPath !== undefined ? { socketPath: endpoint.socketPath } : {}),
      ...(opts.token !== undefined ? { defaults: { token: opts.token } } : {}),
    };
    this.raw = new (Consul as unknown as ConsulCtor)(ctorOpts);
  }

  get closed(): boolean {
    return this.#closed;
  }

  close(): void {
    this.#closed = true;
    this.raw.destroy();
  }

  /**
   * A context for one request: `includeResponse` makes the client return `[response, body]`
   * (for `X-Consul-Index`), and `signal` cancels the request in flight.
   */
  ctx(signal?: AbortSignal): { ctx: EventEmitter; done: () => void } {
    const ctx = Object.assign(new EventEmitter(), { includeResponse: true, canceled: false });
    if (signal === undefined) return { ctx, done: () => undefined };
    // Already aborted: papi refuses a canceled ctx before sending (a "cancel" emitted now would be lost).
    if (signal.aborted) {
      ctx.canceled = true;
      return { ctx, done: () => undefined };
    }
    const onAbort = (): void => {
      ctx.canceled = true;
      ctx.emit("cancel");
    };
    signal.addEventListener("abort", onAbort, { once: true });
    return { ctx, done: () => signal.removeEventListener("abort", onAbort) };
  }

  /**
   * Runs `fn` and retries transient failures with capped exponential backoff (50 ms doubling to
   * 1 s, full jitter) until `budgetMs` has passed. Non-idempotent requests are retried only when
   * they surely were not applied. The last failure is mapped by `mapFinal`.
   */
  async retry<T>(what: string, fn: () => Promise<T>, policy: RetryPolicy): Promise<T> {
    const budget = policy.budgetMs ?? this.opts.retryBudgetMs;
    const start = Date.now();
    let delay = 50;
    let attempts = 0;
    for (;;) {
      if (this.#closed) {
        throw new StorageUnavailableError(`${what}: the Consul backend was closed; open a new one`);
      }
      attempts++;
      try {
        return await fn();
      } catch (err) {
        if (policy.signal?.aborted) throw new RequestAbortedError(`${what} was aborted`, { cause: err });
        const outcome = classify(err);
        const retryable = outcome === "not_sent" || (outcome === "ambiguous" && policy.idempotent);
        const elapsed = Date.now() - start;
        if (!retryable || elapsed >= budget || this.#closed) {
          if (outcome === "final") {
            // HTTP answers and already-mapped errors go to the caller; anything else (a TLS
            // failure, an unknown host) becomes a storage error that says where it happened.
            if (err instanceof StorageError || statusOf(err) !== undefined) throw err;
            throw new StorageUnavailableError(
              `${what}: request to Consul at ${this.opts.endpoint.display} failed: ${describeError(err)}`,
              { cause: err },
            );
          }
          const unsure = outcome === "ambiguous" && !policy.idempotent;
          throw new StorageUnavailableError(
            `${what}: Consul at ${this.opts.endpoint.display} is unavailable (${describeError(err)}) ` +
              `after ${attempts} attempt${attempts === 1 ? "" : "s"} over ${elapsed} ms` +
              (unsure
                ? "; the request may or may not have been applied: read the keys before retrying"
                : "; check that the agent is running and reachable, then retry"),
            { cause: err },
          );
        }
        const wait = Math.min(Math.random() * delay, budget - elapsed);
        delay = Math.min(delay * 2, 1000);
        await sleep(wait, policy.signal);
      }
    }
  }

  /** The error for a 403: what the token lacks and on which path. */
  aclError(need: AclNeed, err: unknown, path: string, detail?: string): StorageError {
    const body = detail ?? bodyText(err);
    if (/acl not found/i.test(body)) {
      return new StorageError(
        "permission_denied",
        `Consul does not know the ACL token (ACL not found): check the token setting or CONSUL_HTTP_TOKEN`,
        { cause: err },
      );
    }
    if (need === "session write") {
      return new StorageError(
        "permission_denied",
        `Consul ACL token lacks session write, which the HA lock on "${path}" needs to create its session ` +
          `(${body || "Permission denied"}): grant the token's policy session_prefix "" { policy = "write" } ` +
          `next to key_prefix "${path}" { policy = "write" }`,
        { cause: err },
      );
    }
    const level = need === "key write" ? "write" : need === "key list" ? "list" : "read";
    return new StorageError(
      "permission_denied",
      `Consul ACL token lacks key_prefix ${level} on "${path}" (${body || "Permission denied"}): ` +
        `grant the token's policy key_prefix "${path}" { policy = "${level === "list" ? "list" : level}" }` +
        (level === "write" ? "" : ` (or "write", which Bulwark needs anyway)`),
      { cause: err },
    );
  }
}

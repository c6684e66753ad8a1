import { type Lock, StorageError, StorageUnavailableError } from "@bulwark/storage";
import {
  type ConsulHttp,
  classify,
  describeError,
  type KvPair,
  RequestAbortedError,
  sleep,
  statusOf,
} from "./client.js";
import type { ResolvedOptions } from "./config.js";
import { formatDuration } from "./duration.js";

/** What a lock needs from its backend (kept narrow so the backend's internals stay private). */
export interface LockHost {
  http: ConsulHttp;
  opts: ResolvedOptions;
  fullKey(key: string): string;
  /** Full key of the lock that fences the backend's writes. */
  fenceKey: string;
  acquired(lock: ConsulLock, key: string, session: string): void;
  lost(lock: ConsulLock): void;
  released(lock: ConsulLock): void;
  /** The lock has work close() must end (a wait, a hold, a session destroy); false once closed. */
  track(lock: ConsulLock): boolean;
  /** The lock has nothing left for close() to do. */
  forget(lock: ConsulLock): void;
}

/** The session name Vault uses is "Vault Lock"; Bulwark's sessions are recognisable the same way. */
export const SESSION_NAME = "Bulwark Lock";

/** How often to retry while Consul's lock-delay keeps a freed lock from being taken. */
const LOCK_DELAY_RETRY_MS = 250;
/** How long past the lock-delay a deposed handle holds back, so a waiting standby wins. */
const YIELD_AFTER_LOSS_MS = 1000;
/** Pause after a failed watch or renewal before trying again. */
const RETRY_PAUSE_MS = 500;

function abortError(key: string, reason: unknown): Error {
  const err = new Error(`waiting for HA lock ${JSON.stringify(key)} was aborted`, { cause: reason });
  err.name = "AbortError";
  return err;
}

type State =
  | { kind: "idle" }
  | { kind: "held"; session: string; leadership: AbortController; stop: AbortController }
  | { kind: "lost"; session: string };

/**
 * One node's handle on a Consul session lock (Vault's `ConsulLock`): a session named
 * "Bulwark Lock" with `session_ttl`, renewed every TTL/2, takes the key with `?acquire=`.
 * Leadership ends (the returned signal aborts) when the key's session changes (seen by a
 * blocking query), when renewal fails for longer than the TTL, when a fenced write is rejected,
 * or on `release()`.
 */
export class ConsulLock implements Lock {
  /** The key relative to the backend's path. */
  readonly key: string;
  readonly lockValue: string;
  readonly #host: LockHost;
  readonly #full: string;
  #state: State = { kind: "idle" };
  /** Session used while waiting (kept across loop iterations, renewed in the background). */
  #waitSession: string | undefined;
  #waiting = false;
  #waitAbort: AbortController | undefined;
  /** The release() in flight, if any. */
  #releasing: Promise<void> | undefined;
  /** Settles when the acquire() in progress (and its clean-up) has finished. */
  #acquiring: Promise<void> | undefined;
  /** Session destroys in flight: close() waits for them before the connection pool goes. */
  readonly #destroying = new Set<Promise<void>>();
  #shutDown = false;
  #renewTimer: ReturnType<typeof setTimeout> | undefined;
  #renewToken: symbol | undefined;
  #lastRenewed = 0;
  /** After an involuntary loss: no acquisition attempt before this time (standbys go first). */
  #yieldUntil = 0;

  constructor(host: LockHost, key: string, value: string) {
    this.#host = host;
    this.key = key;
    this.lockValue = value;
    this.#full = host.fullKey(key);
  }

  /** The session currently holding the lock through this handle, if any. */
  get session(): string | undefined {
    return this.#state.kind === "held" ? this.#state.session : undefined;
  }

  async acquire(signal?: AbortSignal): Promise<AbortSignal> {
    if (signal?.aborted) throw abortError(this.key, signal.reason);
    if (this.#state.kind === "held") return this.#state.leadership.signal;
    if (this.#waiting) {
      throw new StorageError(
        "invalid_operation",
        `acquire() is already waiting for HA lock ${JSON.stringify(this.key)} on this handle; await or abort that call first`,
      );
    }
    if (this.#shutDown || this.#host.http.closed || !this.#host.track(this)) {
      throw new StorageUnavailableError("the Consul backend was closed; open a new one");
    }
    this.#waiting = true;
    let settled = (): void => undefined;
    this.#acquiring = new Promise<void>((resolve) => {
      settled = resolve;
    });
    // One controller for this wait: the caller's signal and close() both cancel requests in flight.
    const wait = new AbortController();
    this.#waitAbort = wait;
    const onAbort = (): void => wait.abort(signal?.reason);
    signal?.addEventListener("abort", onAbort, { once: true });
    try {
      return await this.#acquireLoop(wait.signal);
    } catch (err) {
      // Leave no trace: a session created for this wait is destroyed.
      const s = this.#waitSession;
      this.#waitSession = undefined;
      this.#stopRenewals();
      if (s !== undefined) this.#destroyInBackground(s);
      if (wait.signal.aborted) {
        if (this.#shutDown) {
          throw new StorageUnavailableError("the Consul backend was closed while waiting for the lock");
        }
        throw abortError(this.key, signal?.reason);
      }
      throw err;
    } finally {
      signal?.removeEventListener("abort", onAbort);
      this.#waiting = false;
      this.#waitAbort = undefined;
      this.#acquiring = undefined;
      settled();
      this.#forgetIfIdle();
    }
  }

  async #acquireLoop(signal: AbortSignal): Promise<AbortSignal> {
    const { opts } = this.#host;
    let index = "0";
    for (;;) {
      if (signal.aborted) throw abortError(this.key, signal.reason);
      if (this.#waitSession === undefined) {
        this.#waitSession = await this.#createSession(signal);
        this.#startRenewals();
      }
      const session = this.#waitSession;
      // Wait (blocking query) while someone else holds the key.
      const seen = await this.#read(signal, index, opts.lockWaitTimeMs);
      // Consul's index can go backwards (a restarted agent): start over instead of waiting out `wait`.
      index = BigInt(seen.index) < BigInt(index) ? "0" : seen.index;
      if (seen.pair?.Session !== undefined && seen.pair.Session !== session) continue;
      const yieldMs = this.#yieldUntil - Date.now();
      if (yieldMs > 0) {
        // Recently deposed: give a standby that was already waiting the first chance. A change to
        // the key ends the wait early and is looked at again above.
        await this.#read(signal, index, Math.max(yieldMs, 100));
        index = "0";
        continue;
      }
      let acquired: boolean;
      try {
        acquired = await this.#host.http.retry(
          `acquire HA lock ${JSON.stringify(this.key)}`,
          async () =>
            (await this.#host.http.raw.kv.set({
              key: this.#full,
              value: Buffer.from(this.lockValue),
              acquire: session,
              timeout: opts.requestTimeoutMs,
            })) === true,
          { idempotent: true, signal },
        );
      } catch (err) {
        if (statusOf(err) === 403) throw this.#host.http.aclError("key write", err, this.#host.opts.path);
        // 500 "invalid session": it expired or was destroyed while we waited; make a new one.
        if (statusOf(err) !== undefined && /session/i.test(describeError(err))) {
          this.#waitSession = undefined;
          this.#stopRenewals();
          index = "0";
          continue;
        }
        throw err;
      }
      if (acquired) {
        const leadership = this.#becomeHeld(session);
        if (signal.aborted) {
          // Aborted while the acquire request was in flight: give the lock straight back.
          await this.release();
          throw abortError(this.key, signal.reason);
        }
        return leadership;
      }
      // Not acquired: either someone else won the race (wait on the key) or Consul's lock-delay
      // still protects the previous holder's lock (poll until it passes).
      const now = await this.#read(signal, "0", 0);
      if (now.pair?.Session !== undefined && now.pair.Session !== session) {
        index = now.index;
        continue;
      }
      await sleep(Math.min(LOCK_DELAY_RETRY_MS, Math.max(opts.lockDelayMs, 1)), signal);
      index = "0";
    }
  }

  #becomeHeld(session: string): AbortSignal {
    this.#waitSession = undefined;
    const leadership = new AbortController();
    const stop = new AbortController();
    this.#state = { kind: "held", session, leadership, stop };
    if (this.#full === this.#host.fenceKey) this.#host.acquired(this, this.#full, session);
    void this.#monitor(session, stop.signal);
    return leadership.signal;
  }

  /** Watches the key with blocking queries; leadership ends as soon as its session is not ours. */
  async #monitor(session: string, stop: AbortSignal): Promise<void> {
    let index = "0";
    while (!stop.aborted) {
      try {
        const seen = await this.#read(stop, index, this.#host.opts.lockWaitTimeMs, 0);
        if (seen.pair?.Session !== session) {
          this.#lose(
            session,
            seen.pair === undefined
              ? `the lock key ${JSON.stringify(this.#full)} was deleted`
              : `the lock key ${JSON.stringify(this.#full)} is no longer held by this node's session ${session}` +
                  (seen.pair.Session ? ` (now ${seen.pair.Session})` : " (the session was invalidated)"),
          );
          return;
        }
        index = BigInt(seen.index) < BigInt(index) ? "0" : seen.index;
      } catch {
        // Unreachable agent: keep watching; renewal failing past the TTL ends leadership.
        if (stop.aborted) return;
        await sleep(RETRY_PAUSE_MS, stop).catch(() => undefined);
      }
    }
  }

  #startRenewals(): void {
    this.#stopRenewals();
    this.#lastRenewed = Date.now();
    const ttl = this.#host.opts.sessionTtlMs;
    // A token per renewal chain: a tick still in flight after stop/start must not fork a second chain.
    const token = Symbol("renewals");
    this.#renewToken = token;
    const schedule = (ms: number): void => {
      if (this.#renewToken !== token) return;
      const t = setTimeout(() => void tick(), ms);
      t.unref();
      this.#renewTimer = t;
    };
    const tick = async (): Promise<void> => {
      const session = this.#state.kind === "held" ? this.#state.session : this.#waitSession;
      if (session === undefined || this.#renewToken !== token) return;
      let next = ttl / 2;
      try {
        const res = await this.#host.http.raw.session.renew({
          id: session,
          timeout: Math.max(1000, ttl / 2),
        });
        if (Array.isArray(res) && res.length === 0)
          throw Object.assign(new Error("session not found"), { gone: true });
        this.#lastRenewed = Date.now();
      } catch (err) {
        if (this.#renewToken !== token) return;
        const gone = statusOf(err) === 404 || (err as { gone?: boolean }).gone === true;
        if (gone) {
          this.#onSessionGone(session);
          return;
        }
        if (this.#state.kind === "held" && Date.now() - this.#lastRenewed >= ttl) {
          this.#lose(
            session,
            `failed to renew the Consul session for more than the TTL (${formatDuration(ttl)}): ${describeError(err)}`,
          );
          return;
        }
        next = Math.min(RETRY_PAUSE_MS * 2, ttl / 4);
      }
      schedule(next);
    };
    schedule(ttl / 2);
  }

  #stopRenewals(): void {
    this.#renewToken = undefined;
    if (this.#renewTimer !== undefined) clearTimeout(this.#renewTimer);
    this.#renewTimer = undefined;
  }

  #onSessionGone(session: string): void {
    if (this.#state.kind === "held" && this.#state.session === session) {
      this.#lose(
        session,
        `the Consul session ${session} was invalidated (destroyed, or expired past its TTL)`,
      );
    } else if (this.#waitSession === session) {
      // The acquire loop makes a new session before its next attempt.
      this.#waitSession = undefined;
      this.#stopRenewals();
    }
  }

  /** @internal The backend's fenced write was rejected: the lock is gone even if the watch has not seen it yet. */
  fencedWriteFailed(session: string): void {
    this.#lose(session, "a fenced write's check-session failed: the lock changed ownership");
  }

  #lose(session: string, why: string): void {
    const s = this.#state;
    if (s.kind !== "held" || s.session !== session) return;
    this.#state = { kind: "lost", session };
    // The lock-delay keeps everyone out for lock_delay; a waiting standby then needs a moment.
    this.#yieldUntil = Date.now() + this.#host.opts.lockDelayMs + YIELD_AFTER_LOSS_MS;
    this.#stopRenewals();
    s.stop.abort();
    // The fence stays (as lost) so a write racing with the step-down is refused, not applied.
    this.#host.lost(this);
    s.leadership.abort(new StorageUnavailableError(`lost HA lock ${JSON.stringify(this.key)}: ${why}`));
    // Like Vault's Unlock() on loss: make sure the old session cannot come back.
    this.#destroyInBackground(session);
  }

  async release(): Promise<void> {
    // A release in flight (close() racing a caller's release()): wait for it, do not return early.
    if (this.#releasing !== undefined && this.#state.kind !== "held") return this.#releasing;
    const s = this.#state;
    if (s.kind === "lost") {
      this.#state = { kind: "idle" };
      this.#host.released(this);
      this.#forgetIfIdle();
      return;
    }
    if (s.kind !== "held") return;
    this.#state = { kind: "idle" };
    this.#stopRenewals();
    s.stop.abort();
    const releasing = this.#giveBack(s);
    this.#releasing = releasing;
    try {
      await releasing;
    } finally {
      if (this.#releasing === releasing) this.#releasing = undefined;
    }
  }

  async #giveBack(s: Extract<State, { kind: "held" }>): Promise<void> {
    const budget = Math.min(this.#host.opts.retryBudgetMs, 5000);
    try {
      // Release first (no lock-delay applies to a release), then drop the session.
      await this.#host.http.retry(
        `release HA lock ${JSON.stringify(this.key)}`,
        () =>
          this.#host.http.raw.kv.set({
            key: this.#full,
            value: Buffer.from(this.lockValue),
            release: s.session,
            timeout: this.#host.opts.requestTimeoutMs,
          }),
        { idempotent: true, budgetMs: budget },
      );
    } catch {
      // Destroying the session below frees the key too; failing that, it expires with its TTL.
    } finally {
      await this.#destroySession(s.session, budget);
      this.#host.released(this);
      s.leadership.abort(
        new StorageUnavailableError(`HA lock ${JSON.stringify(this.key)} was released by its holder`),
      );
      this.#forgetIfIdle();
    }
  }

  async value(): Promise<{ held: boolean; value?: string }> {
    const seen = await this.#read(undefined, "0", 0);
    const pair = seen.pair;
    if (pair?.Session === undefined || pair.Session === "") return { held: false };
    return { held: true, value: pair.Value === null ? "" : pair.Value.toString("utf8") };
  }

  /** @internal Called by `ConsulBackend.close()`: ends any wait, releases if held. */
  async shutdown(): Promise<void> {
    this.#shutDown = true;
    this.#waitAbort?.abort();
    // Let an ended wait clean up (destroy its session, give back a lock its last request took)
    // while the connection pool is still open.
    await this.#acquiring;
    await this.release();
    await Promise.allSettled([...this.#destroying]);
    this.#host.forget(this);
  }

  async #createSession(signal: AbortSignal): Promise<string> {
    const { opts, http } = this.#host;
    try {
      const res = await http.retry(
        "create the HA lock session",
        () =>
          http.raw.session.create({
            name: SESSION_NAME,
            ttl: formatDuration(opts.sessionTtlMs),
            lockdelay: formatDuration(opts.lockDelayMs),
            behavior: "release",
            timeout: opts.requestTimeoutMs,
          }),
        // A replayed create at worst leaves an unused session that expires with its TTL.
        { idempotent: true, signal },
      );
      return res.ID;
    } catch (err) {
      if (statusOf(err) === 403) throw http.aclError("session write", err, opts.path);
      if (statusOf(err) === 500 && /session ttl/i.test(describeError(err))) {
        throw new StorageError(
          "io",
          `Consul refused session_ttl ${formatDuration(opts.sessionTtlMs)} (${describeError(err)}): ` +
            "Consul accepts from the servers' session_ttl_min (10s by default) up to 24h",
          { cause: err },
        );
      }
      throw err;
    }
  }

  #destroyInBackground(session: string): void {
    this.#host.track(this);
    const p = this.#destroySession(session).finally(() => {
      this.#destroying.delete(p);
      this.#forgetIfIdle();
    });
    this.#destroying.add(p);
  }

  #forgetIfIdle(): void {
    if (this.#state.kind === "idle" && !this.#waiting && this.#destroying.size === 0) this.#host.forget(this);
  }

  async #destroySession(session: string, budgetMs = 2000): Promise<void> {
    const { http, opts } = this.#host;
    if (http.closed) return;
    try {
      await http.retry(
        "destroy the HA lock session",
        () => http.raw.session.destroy({ id: session, timeout: opts.requestTimeoutMs }),
        { idempotent: true, budgetMs },
      );
    } catch {
      // Best effort: an unreachable session expires with its TTL.
    }
  }

  /**
   * GET the lock key. With `waitMs > 0` it is a blocking query from `index`; `signal` cancels it.
   * Retries transient errors within `budgetMs` (default: the backend's retry budget).
   */
  async #read(
    signal: AbortSignal | undefined,
    index: string,
    waitMs: number,
    budgetMs?: number,
  ): Promise<{ pair: KvPair | undefined; index: string }> {
    const { http, opts } = this.#host;
    const blocking = waitMs > 0 && index !== "0";
    try {
      return await http.retry(
        `read HA lock ${JSON.stringify(this.key)}`,
        async () => {
          const { ctx, done } = http.ctx(signal);
          try {
            const [res, pair] = await http.raw.kv.get({
              key: this.#full,
              buffer: true,
              ctx,
              ...(opts.consistent ? { consistent: true } : {}),
              ...(blocking
                ? {
                    index,
                    wait: formatDuration(waitMs),
                    // Consul adds up to wait/16 of jitter.
                    timeout: waitMs + waitMs / 16 + opts.requestTimeoutMs,
                  }
                : { timeout: opts.requestTimeoutMs }),
            });
            const h = res.headers?.["x-consul-index"];
            const next = typeof h === "string" && /^\d+$/.test(h) ? h : "0";
            return { pair, index: next };
          } finally {
            done();
          }
        },
        { idempotent: true, ...(signal ? { signal } : {}), ...(budgetMs !== undefined ? { budgetMs } : {}) },
      );
    } catch (err) {
      if (err instanceof RequestAbortedError || signal?.aborted) throw abortError(this.key, signal?.reason);
      if (statusOf(err) === 403) throw http.aclError("key read", err, opts.path);
      if (classify(err) === "final" && !(err instanceof StorageError)) {
        throw new StorageError(
          "io",
          `reading HA lock ${JSON.stringify(this.key)} failed: ${describeError(err)}`,
          {
            cause: err,
          },
        );
      }
      throw err;
    }
  }
}

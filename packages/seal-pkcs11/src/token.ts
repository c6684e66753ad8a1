import { SealConfigError, SealError, SealUnavailableError } from "@bulwark/seal";
import { TokenFlag } from "graphene-pk11";
import type { Pkcs11Calls } from "./calls.js";
import {
  CKR_TOKEN_NOT_PRESENT,
  CKR_USER_ALREADY_LOGGED_IN,
  isPinError,
  isStaleHandle,
  needsReconnect,
  Pkcs11CallError,
  pinRejectedMessage,
  rvOf,
  sessionGone,
} from "./errors.js";
import { handleToBigInt } from "./handles.js";
import { checkLoginPin, notePinRejected, pinWasRejected, releaseModule } from "./module-registry.js";
import type { Connection, FoundToken } from "./seal-types.js";
import { PoolClosedError, poolSizeFor, SessionPool } from "./session-pool.js";

/** Waits `ms`, or rejects with `signal.reason` as soon as the signal aborts. */
function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal === undefined) {
      setTimeout(resolve, ms);
      return;
    }
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    const timer = setTimeout(() => {
      signal.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal.addEventListener("abort", onAbort, { once: true });
  });
}

/**
 * Token, login, pool: finds the configured token, logs in, keeps a pool of operation sessions, and
 * reconnects (once, shared by every caller) after a lost session or a device error.
 */
export class Pkcs11Token {
  readonly #calls: Pkcs11Calls;
  /** The live connection (undefined before init, after finalize, and while reconnecting). */
  conn: Connection | undefined;
  #reconnecting: Promise<Connection> | undefined;
  lastError: { message: string; at: string } | undefined;
  reconnects = 0;

  constructor(calls: Pkcs11Calls) {
    this.#calls = calls;
  }

  /** Closes the connection and releases the library. */
  teardown(gone: boolean): void {
    const conn = this.conn;
    this.conn = undefined;
    if (conn !== undefined) this.#closeConnection(conn, gone);
    if (this.#calls.module !== undefined) {
      releaseModule(this.#calls.module);
      this.#calls.module = undefined;
    }
  }

  #closeConnection(conn: Connection, sessionsGone: boolean): void {
    conn.broken = true;
    conn.pool.close(sessionsGone);
    const lib = this.#calls.module?.lib;
    if (lib === undefined) return;
    try {
      // Close the login session only while it is still ours: after C_CloseAllSessions or a device
      // reset its handle number may already belong to another session.
      this.#calls.call("C_GetSessionInfo", () => lib.C_GetSessionInfo(conn.login.handle));
      this.#calls.call("C_CloseSession", () => lib.C_CloseSession(conn.login.handle));
    } catch {
      // Already gone; nothing left to release.
    }
  }

  #findSlot(reconnecting: boolean): FoundToken {
    const m = this.#calls.loaded();
    const cfg = this.#calls.config;
    const slots = this.#calls.call("C_GetSlotList", () => m.module.getSlots(true));
    const present: FoundToken[] = [];
    for (let i = 0; i < slots.length; i++) {
      const slot = slots.items(i);
      const token = this.#calls.call("C_GetTokenInfo", () => slot.getToken());
      // SoftHSM always lists one empty, uninitialised token: it has no label and cannot log in.
      if ((token.flags & TokenFlag.TOKEN_INITIALIZED) === 0) continue;
      present.push({
        slot,
        slotId: handleToBigInt(slot.handle),
        label: token.label.trim(),
        serial: token.serialNumber.trim(),
        maxRwSessionCount: token.maxRwSessionCount,
      });
    }
    // While reconnecting, a missing token is an outage (HSM restarting, token re-inserted): retryable.
    const missing = (field: string, message: string): never => {
      if (reconnecting) throw new Pkcs11CallError("C_GetSlotList", CKR_TOKEN_NOT_PRESENT, message);
      throw new SealConfigError(field, message);
    };
    const list = () =>
      present.length === 0
        ? "no initialised token is present"
        : `tokens present: ${present.map((p) => `slot ${p.slotId} "${p.label}" (serial ${p.serial})`).join(", ")}`;
    let matches = present;
    if (cfg.slot !== undefined) {
      matches = matches.filter((p) => p.slotId === cfg.slot);
      if (matches.length === 0) {
        missing(
          "slot",
          `no initialised token in slot ${cfg.slot} (${list()}); slot ids can change when tokens are created (SoftHSM renumbers them) — token_label is more stable`,
        );
      }
    }
    if (cfg.tokenLabel !== undefined) {
      const byLabel = matches.filter((p) => p.label === cfg.tokenLabel);
      if (byLabel.length === 0) {
        missing(
          "token_label",
          cfg.slot !== undefined
            ? `slot ${cfg.slot} holds token "${matches[0]?.label}", not "${cfg.tokenLabel}"; fix slot or token_label`
            : `no token labelled "${cfg.tokenLabel}" (${list()})`,
        );
      }
      matches = byLabel;
    }
    if (cfg.serial !== undefined) {
      const bySerial = matches.filter((p) => p.serial === cfg.serial);
      if (bySerial.length === 0) {
        missing("serial", `no token with serial "${cfg.serial}" (${list()})`);
      }
      matches = bySerial;
    }
    if (matches.length > 1) {
      throw new SealConfigError(
        "token_label",
        `${matches.length} tokens are labelled "${cfg.tokenLabel}" (serials ${matches.map((p) => p.serial).join(", ")}): set serial to pick one`,
      );
    }
    return matches[0] as (typeof matches)[number];
  }

  /** Finds the token, opens the login session, logs in, sets up the pool. Synchronous calls only. */
  connect(reconnecting: boolean): Connection {
    const m = this.#calls.loaded();
    const cfg = this.#calls.config;
    const call = this.#calls.call.bind(this.#calls);
    const found = this.#findSlot(reconnecting);
    const slotKey = found.slotId.toString();
    if (pinWasRejected(m, slotKey, cfg.pin)) {
      throw new SealConfigError(
        "pin",
        `token "${found.label}" already rejected this PIN in this process; not trying again (repeated failures lock the token) — fix pin and restart`,
      );
    }
    const max = poolSizeFor(found.maxRwSessionCount, cfg.maxParallel);
    const mechanisms = new Set<number>();
    for (const mech of call("C_GetMechanismList", () => m.lib.C_GetMechanismList(found.slot.handle))) {
      mechanisms.add(mech);
    }
    const login = call("C_OpenSession", () => found.slot.open(cfg.sessionFlags));
    try {
      let fresh = true;
      try {
        call("C_Login", () => login.login(cfg.pin));
      } catch (err) {
        if (rvOf(err) === CKR_USER_ALREADY_LOGGED_IN) fresh = false;
        else if (isPinError(err)) {
          notePinRejected(m, slotKey, cfg.pin);
          throw new SealConfigError("pin", pinRejectedMessage(found.label, err), { cause: err });
        } else throw err;
      }
      if (!checkLoginPin(m, slotKey, cfg.pin, fresh)) {
        throw new SealConfigError(
          "pin",
          `token "${found.label}" is already logged in by another seal of this process with a different PIN; use the same pin for every seal on one token`,
        );
      }
    } catch (err) {
      try {
        login.close();
      } catch {
        // Closing the half-open login session is best effort.
      }
      throw err;
    }
    const lib = m.lib;
    const conn: Connection = {
      slot: found.slot,
      slotId: found.slotId,
      tokenLabel: found.label,
      tokenSerial: found.serial,
      login,
      mechanisms,
      keys: { encrypt: new Map(), hmac: new Map() },
      broken: false,
      pool: new SessionPool(
        max,
        () => call("C_OpenSession", () => lib.C_OpenSession(found.slot.handle, cfg.sessionFlags)),
        (h) => call("C_CloseSession", () => lib.C_CloseSession(h)),
      ),
    };
    return conn;
  }

  /** The live connection, reconnecting (once, shared by all callers) when it was marked broken. */
  async #connection(): Promise<Connection> {
    const conn = this.conn;
    if (conn !== undefined && !conn.broken) return conn;
    if (this.#reconnecting !== undefined) return this.#reconnecting;
    const attempt = (async () => {
      const old = this.conn;
      this.conn = undefined;
      // A connection marked broken already closed its pool (#markBroken) with the right "gone" flag.
      if (old !== undefined) this.#closeConnection(old, true);
      const fresh = this.connect(true);
      this.conn = fresh;
      this.reconnects++;
      return fresh;
    })();
    this.#reconnecting = attempt;
    try {
      return await attempt;
    } finally {
      if (this.#reconnecting === attempt) this.#reconnecting = undefined;
    }
  }

  #markBroken(conn: Connection, err: unknown): void {
    this.noteError(err);
    if (conn !== this.conn || conn.broken) return;
    conn.broken = true;
    // Sessions the HSM already dropped are not closed again (their handle numbers may be reused).
    conn.pool.close(sessionGone(err));
  }

  noteError(err: unknown): void {
    const message = err instanceof Error ? err.message : String(err);
    this.lastError = { message, at: new Date().toISOString() };
  }

  /**
   * Runs `fn` on a pooled session. On a lost session, logout, stale handle or device error: marks
   * the connection broken (next call reconnects), backs off, retries — at most `maxRetries` times.
   *
   * An abort of `signal` stops the wait for a session and the backoff between retries, and no new
   * attempt starts after it (the rejection is `signal.reason`). A PKCS#11 call already running in
   * the library cannot be interrupted: `fn` runs to its end and its session returns to the pool.
   */
  async withSession<T>(
    signal: AbortSignal | undefined,
    fn: (conn: Connection, session: Buffer) => Promise<T>,
  ): Promise<T> {
    const { maxRetries, retryBaseMs } = this.#calls.config;
    let failures = 0;
    for (;;) {
      signal?.throwIfAborted();
      let conn: Connection;
      let session: Buffer;
      try {
        // Fast path: a live connection with an idle session costs no await.
        const live = this.conn;
        conn = live !== undefined && !live.broken ? live : await this.#connection();
        session = conn.pool.tryAcquire() ?? (await conn.pool.acquire(signal));
      } catch (err) {
        // A reconnect closed the pool we were waiting on: take the next connection (not a failure).
        if (err instanceof PoolClosedError) continue;
        if (needsReconnect(err) && failures < maxRetries) {
          if (this.conn !== undefined) this.#markBroken(this.conn, err);
          else this.noteError(err);
          await sleep(this.#backoff(failures++, retryBaseMs), signal);
          continue;
        }
        if (needsReconnect(err)) throw this.#exhausted(err, failures);
        throw err;
      }
      let outcome: "ok" | "discard" | "gone" = "ok";
      try {
        return await fn(conn, session);
      } catch (err) {
        // Seal errors (key not found, HMAC mismatch) are raised outside an active operation: the
        // session is clean. A failed PKCS#11 call may leave an operation active: drop the session.
        outcome = err instanceof SealError ? "ok" : sessionGone(err) ? "gone" : "discard";
        if ((needsReconnect(err) || isStaleHandle(err)) && failures < maxRetries) {
          this.#markBroken(conn, err);
          await sleep(this.#backoff(failures++, retryBaseMs), signal);
          continue;
        }
        if (needsReconnect(err)) {
          this.#markBroken(conn, err);
          throw this.#exhausted(err, failures);
        }
        throw err;
      } finally {
        conn.pool.release(session, outcome);
      }
    }
  }

  #backoff(failures: number, base: number): number {
    const ms = base * 2 ** failures;
    return ms / 2 + Math.random() * (ms / 2);
  }

  #exhausted(err: unknown, failures: number): SealUnavailableError {
    this.noteError(err);
    const why = err instanceof Error ? err.message : String(err);
    return new SealUnavailableError(
      `the PKCS#11 token is unavailable (${why}) after ${failures + 1} attempt(s) with reconnects; check the HSM and its connection`,
      { cause: err },
    );
  }
}

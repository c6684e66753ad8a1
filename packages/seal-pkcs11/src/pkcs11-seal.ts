import { createPublicKey, type KeyObject, constants as nodeCrypto, publicEncrypt } from "node:crypto";
import { aesGcmDecrypt, aesGcmEncrypt, randomBytes } from "@bulwark/crypto";
import {
  BaseSeal,
  type BlobInfo,
  createBlobInfo,
  type KeyInfo,
  SealConfigError,
  SealDecryptError,
  type SealEncryptOptions,
  SealError,
  type SealHealth,
  SealKeyNotFoundError,
  SealUnavailableError,
} from "@bulwark/seal";
import {
  KeyGenMechanism,
  KeyType,
  ObjectClass,
  type Session,
  type SessionObject,
  type Slot,
  TokenFlag,
} from "graphene-pk11";
import pkcs11js from "pkcs11js";
import {
  type Pkcs11SealOptions,
  type Pkcs11TraceEvent,
  parsePkcs11Config,
  type ResolvedPkcs11Config,
  resolveOptions,
} from "./config.js";
import {
  CBC_IV_BYTES,
  CKM_AES_CBC_PAD,
  CKM_AES_GCM,
  CKM_RSA_PKCS_OAEP,
  CKM_SHA256_HMAC,
  CKZ_DATA_SPECIFIED,
  DATA_KEY_BYTES,
  FLAG_ENVELOPE,
  FLAG_OAEP_HASH_MASK,
  FLAG_OAEP_HASH_SHIFT,
  GCM_IV_BYTES,
  GCM_TAG_BYTES,
  HMAC_BYTES,
  KNOWN_FLAGS,
  mechanismName,
  OAEP_HASHES,
  type Pkcs11Mechanism,
  type RsaOaepHash,
} from "./constants.js";
import {
  CKR_ARGUMENTS_BAD,
  CKR_KEY_FUNCTION_NOT_PERMITTED,
  CKR_KEY_TYPE_INCONSISTENT,
  CKR_MECHANISM_INVALID,
  CKR_MECHANISM_PARAM_INVALID,
  CKR_SIGNATURE_INVALID,
  CKR_SIGNATURE_LEN_RANGE,
  CKR_TOKEN_NOT_PRESENT,
  CKR_USER_ALREADY_LOGGED_IN,
  isPinError,
  isStaleHandle,
  needsReconnect,
  Pkcs11CallError,
  pinRejectedMessage,
  rvOf,
  sessionGone,
  toCallError,
} from "./errors.js";
import { handleToBigInt } from "./handles.js";
import {
  acquireModule,
  checkLoginPin,
  type LoadedModule,
  notePinRejected,
  pinWasRejected,
  releaseModule,
} from "./module-registry.js";
import { PoolClosedError, poolSizeFor, SessionPool, type SessionPoolStats } from "./session-pool.js";

/** What a token and the seal's configuration allow; fixed at construction (profiles set them). */
export interface Pkcs11Capabilities {
  /** The HSM writes its own GCM IV into the IV buffer (CloudHSM). */
  hsmGeneratedIv: boolean;
  /** Largest value encrypted in the HSM directly; larger ones use an HSM-wrapped data key. */
  maxDirectBytes: number;
  /** C_OpenSession flags. */
  sessionFlags: number;
}

/** `health().details` of a PKCS#11 seal. */
export interface Pkcs11HealthDetails {
  library: string;
  slot: string;
  tokenLabel: string;
  tokenSerial: string;
  mechanism: string;
  pool: SessionPoolStats;
  reconnects: number;
  lastError: { message: string; at: string } | undefined;
  roundTripMs: number;
}

type KeyKind = "aes" | "rsa" | "hmac";

interface ResolvedKey {
  /** `<label>:<CKA_ID hex>`, recorded in blobs. */
  keyId: string;
  label: string;
  id: Buffer;
  kind: KeyKind;
  /** Secret key, or the RSA private key. */
  handle: Buffer;
  /** RSA: public key object in the HSM (undefined when only the private key exists). */
  publicHandle: Buffer | undefined;
  /** RSA: public key for local encryption (rsa_encrypt_local, or no public key object). */
  publicKey: KeyObject | undefined;
  modulusBytes: number;
}

interface Connection {
  slot: Slot;
  slotId: bigint;
  tokenLabel: string;
  tokenSerial: string;
  login: Session;
  pool: SessionPool;
  mechanisms: Set<number>;
  /** Key handles by purpose and key id; object handles belong to a login, so a reconnect starts empty. */
  keys: { encrypt: Map<string, ResolvedKey>; hmac: Map<string, ResolvedKey> };
  broken: boolean;
}

/** An initialised token as C_GetTokenInfo described it while the slot was chosen. */
interface FoundToken {
  slot: Slot;
  slotId: bigint;
  label: string;
  serial: string;
  /** ulMaxRwSessionCount, for the pool size. */
  maxRwSessionCount: number;
}

/** The currently configured key(s) and how they are used. */
interface Current {
  keyId: string;
  mechanism: Pkcs11Mechanism;
  hmacKeyId: string;
}

// Read once: property reads on the native addon object are not free on the hot path.
const CK_PARAMS_AES_GCM_V240 = pkcs11js.CK_PARAMS_AES_GCM_v240;

/** CKK_SHA256_HMAC: a key type some HSMs use for HMAC keys (graphene's enum lacks it). */
const CKK_SHA256_HMAC = 0x2b;

function toBuffer(u: Uint8Array): Buffer {
  return Buffer.isBuffer(u) ? u : Buffer.from(u.buffer, u.byteOffset, u.byteLength);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** `iv || ct`, plus `aad || u64be(len(aad))` when there is AAD (the length stops boundary shifts). */
function macInput(iv: Uint8Array, ct: Uint8Array, aad: Uint8Array | undefined): Buffer {
  const tail = aad !== undefined && aad.length > 0 ? aad.length + 8 : 0;
  const out = Buffer.alloc(iv.length + ct.length + tail);
  out.set(iv, 0);
  out.set(ct, iv.length);
  if (tail > 0 && aad !== undefined) {
    out.set(aad, iv.length + ct.length);
    out.writeBigUInt64BE(BigInt(aad.length), out.length - 8);
  }
  return out;
}

/** A copy in a buffer of its own; the source (an HSM output buffer) is wiped. */
function takeOut(out: Buffer, result: Buffer): Uint8Array {
  const copy = new Uint8Array(result.length);
  copy.set(result);
  out.fill(0);
  return copy;
}

/**
 * `<label>:<CKA_ID hex>` (ours, OpenBao's) → label and id; anything else is a bare label, which is
 * what Vault Enterprise records in `key_id` / `hmac_key_id` ("seal entries track the label").
 */
function splitKeyId(keyId: string): { label: string; id: Buffer | undefined } {
  const at = keyId.lastIndexOf(":");
  const hex = at < 0 ? "" : keyId.slice(at + 1);
  if (at < 0 || !/^([0-9a-f]{2})*$/i.test(hex)) return { label: keyId, id: undefined };
  return { label: keyId.slice(0, at), id: hex.length > 0 ? Buffer.from(hex, "hex") : undefined };
}

function formatKeyId(label: string, id: Buffer): string {
  return `${label}:${id.toString("hex")}`;
}

function describeSelector(label: string | undefined, id: Buffer | undefined): string {
  const parts: string[] = [];
  if (label !== undefined) parts.push(`labelled ${JSON.stringify(label)}`);
  if (id !== undefined) parts.push(`with CKA_ID 0x${id.toString("hex")}`);
  return parts.join(" ");
}

/**
 * A seal whose key lives in a PKCS#11 token (HSM, SoftHSM, CloudHSM): the root key and seal-wrapped
 * entries are encrypted by the token and come back through it to unseal automatically.
 *
 * - Token chosen by slot id, label or serial (never by list position); one logged-in session plus
 *   a bounded pool of read-write operation sessions; crypto via pkcs11js async calls, so the
 *   event loop keeps serving while the HSM works.
 * - Mechanisms: AES-GCM (default for AES keys), AES-CBC-PAD + HMAC-SHA256 (encrypt-then-MAC),
 *   RSA-OAEP (envelope, default for RSA keys). Values above `maxDirectBytes` are encrypted with a
 *   fresh AES-256-GCM data key that the HSM wraps; the blob records which (never guessed).
 * - Blob key id `<label>:<CKA_ID hex>`; decrypt uses the key the blob names, so rotation is:
 *   configure a new `key_label`, restart, let the store upgrade its stored keys and rewrap.
 * - Lost sessions / device errors: drop the pool, log in again, look keys up again, retry a few
 *   times with backoff. A rejected PIN is never retried.
 */
export class Pkcs11Seal extends BaseSeal {
  /** Profiles built on this class (CloudHSM) override it. */
  readonly type: string = "pkcs11";
  readonly autoUnseal = true;
  readonly supportsSealWrap = true;

  protected readonly config: ResolvedPkcs11Config;
  #module: LoadedModule | undefined;
  #conn: Connection | undefined;
  #reconnecting: Promise<Connection> | undefined;
  #current: Current | undefined;
  #lastError: { message: string; at: string } | undefined;
  #reconnects = 0;
  /** Buffers handed to in-flight async calls: the native side reads/writes them until they settle. */
  readonly #pinned = new Set<unknown[]>();
  /** Health checks in flight (finalize waits for them). */
  readonly #healthRuns = new Set<Promise<SealHealth>>();

  constructor(options: Pkcs11SealOptions) {
    super();
    this.config = resolveOptions(options);
  }

  /** Parses a Vault `seal "pkcs11"` block (or typed options) with BULWARK_HSM_* / VAULT_HSM_* fallbacks. */
  static fromConfig<T extends Pkcs11Seal>(
    this: new (
      options: Pkcs11SealOptions,
    ) => T,
    config: Record<string, unknown> | Pkcs11SealOptions,
    env: Record<string, string | undefined> = process.env,
  ): T {
    // `this` is the class it is called on, so profiles (subclasses) get their own instances.
    return new this(parsePkcs11Config(config, env));
  }

  get capabilities(): Pkcs11Capabilities {
    return {
      hsmGeneratedIv: this.config.hsmGeneratedIv,
      maxDirectBytes: this.config.maxDirectBytes,
      sessionFlags: this.config.sessionFlags,
    };
  }

  /** `<label>:<CKA_ID hex>` of the current key once initialised; "" before. */
  keyId(): string {
    return this.#current?.keyId ?? "";
  }

  /** The mechanism new blobs are written with (after init). */
  get mechanism(): Pkcs11Mechanism | undefined {
    return this.#current?.mechanism;
  }

  /** Session pool use right now (for health pages and tests). */
  poolStats(): SessionPoolStats | undefined {
    return this.#conn?.pool.stats();
  }

  // ------------------------------------------------------------------------------------------
  // Lifecycle

  protected override async doInit(signal: AbortSignal | undefined): Promise<void> {
    this.#module = acquireModule(this.config.lib);
    try {
      signal?.throwIfAborted();
      const conn = this.#connect(false);
      this.#conn = conn;
      signal?.throwIfAborted();
      this.#current = await this.#resolveCurrent(conn);
      signal?.throwIfAborted();
      await this.#selfTest();
    } catch (err) {
      this.#teardown(false);
      throw this.#initError(err);
    }
  }

  protected override async doFinalize(): Promise<void> {
    // BaseSeal drains encrypt/decrypt before this, but not health checks: their HSM calls would
    // otherwise run on sessions (and a library) that are being closed under them.
    await Promise.allSettled([...this.#healthRuns]);
    this.#teardown(false);
    this.#current = undefined;
  }

  #teardown(gone: boolean): void {
    const conn = this.#conn;
    this.#conn = undefined;
    if (conn !== undefined) this.#closeConnection(conn, gone);
    if (this.#module !== undefined) {
      releaseModule(this.#module);
      this.#module = undefined;
    }
  }

  #closeConnection(conn: Connection, sessionsGone: boolean): void {
    conn.broken = true;
    conn.pool.close(sessionsGone);
    const lib = this.#module?.lib;
    if (lib === undefined) return;
    try {
      // Close the login session only while it is still ours: after C_CloseAllSessions or a device
      // reset its handle number may already belong to another session.
      this.#call("C_GetSessionInfo", () => lib.C_GetSessionInfo(conn.login.handle));
      this.#call("C_CloseSession", () => lib.C_CloseSession(conn.login.handle));
    } catch {
      // Already gone; nothing left to release.
    }
  }

  #initError(err: unknown): unknown {
    if (err instanceof SealError) return err;
    if (err instanceof Pkcs11CallError) {
      return new SealUnavailableError(
        `${this.type} seal init failed: ${err.message}; check that the HSM is reachable and the token is present`,
        { cause: err },
      );
    }
    return err;
  }

  // ------------------------------------------------------------------------------------------
  // PKCS#11 call wrappers: every failure names its call and CK_RV; every call can be traced.

  #lib(): pkcs11js.PKCS11 {
    const m = this.#module;
    if (m === undefined)
      throw new SealUnavailableError(`the ${this.type} seal has no PKCS#11 library loaded`);
    return m.lib;
  }

  #trace(call: string, rv: number, started: number): void {
    const trace = this.config.trace;
    if (trace === undefined) return;
    const event: Pkcs11TraceEvent = { call, rv, ms: performance.now() - started };
    try {
      trace(event);
    } catch {
      // A broken observer must not break the seal.
    }
  }

  #call<T>(call: string, fn: () => T): T {
    const started = this.config.trace === undefined ? 0 : performance.now();
    try {
      const result = fn();
      this.#trace(call, 0, started);
      return result;
    } catch (err) {
      const e = toCallError(call, err);
      this.#trace(call, e.rv ?? -1, started);
      throw e;
    }
  }

  async #callAsync<T>(call: string, keep: unknown[], fn: () => Promise<T>): Promise<T> {
    const started = this.config.trace === undefined ? 0 : performance.now();
    // pkcs11js passes Buffers to the worker thread without copying (pkcs11js #121): they must stay
    // referenced, unmodified, until the call settles.
    this.#pinned.add(keep);
    try {
      const result = await fn();
      this.#trace(call, 0, started);
      return result;
    } catch (err) {
      const e = toCallError(call, err);
      this.#trace(call, e.rv ?? -1, started);
      throw e;
    } finally {
      this.#pinned.delete(keep);
    }
  }

  // ------------------------------------------------------------------------------------------
  // Token, login, pool

  #findSlot(reconnecting: boolean): FoundToken {
    const m = this.#module;
    if (m === undefined)
      throw new SealUnavailableError(`the ${this.type} seal has no PKCS#11 library loaded`);
    const cfg = this.config;
    const slots = this.#call("C_GetSlotList", () => m.module.getSlots(true));
    const present: FoundToken[] = [];
    for (let i = 0; i < slots.length; i++) {
      const slot = slots.items(i);
      const token = this.#call("C_GetTokenInfo", () => slot.getToken());
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
  #connect(reconnecting: boolean): Connection {
    const m = this.#module;
    if (m === undefined)
      throw new SealUnavailableError(`the ${this.type} seal has no PKCS#11 library loaded`);
    const cfg = this.config;
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
    for (const mech of this.#call("C_GetMechanismList", () => m.lib.C_GetMechanismList(found.slot.handle))) {
      mechanisms.add(mech);
    }
    const login = this.#call("C_OpenSession", () => found.slot.open(cfg.sessionFlags));
    try {
      let fresh = true;
      try {
        this.#call("C_Login", () => login.login(cfg.pin));
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
        () => this.#call("C_OpenSession", () => lib.C_OpenSession(found.slot.handle, cfg.sessionFlags)),
        (h) => this.#call("C_CloseSession", () => lib.C_CloseSession(h)),
      ),
    };
    return conn;
  }

  /** The live connection, reconnecting (once, shared by all callers) when it was marked broken. */
  async #connection(): Promise<Connection> {
    const conn = this.#conn;
    if (conn !== undefined && !conn.broken) return conn;
    if (this.#reconnecting !== undefined) return this.#reconnecting;
    const attempt = (async () => {
      const old = this.#conn;
      this.#conn = undefined;
      // A connection marked broken already closed its pool (#markBroken) with the right "gone" flag.
      if (old !== undefined) this.#closeConnection(old, true);
      const fresh = this.#connect(true);
      this.#conn = fresh;
      this.#reconnects++;
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
    this.#noteError(err);
    if (conn !== this.#conn || conn.broken) return;
    conn.broken = true;
    // Sessions the HSM already dropped are not closed again (their handle numbers may be reused).
    conn.pool.close(sessionGone(err));
  }

  #noteError(err: unknown): void {
    const message = err instanceof Error ? err.message : String(err);
    this.#lastError = { message, at: new Date().toISOString() };
  }

  /**
   * Runs `fn` on a pooled session. On a lost session, logout, stale handle or device error: marks
   * the connection broken (next call reconnects), backs off, retries — at most `maxRetries` times.
   */
  async #withSession<T>(fn: (conn: Connection, session: Buffer) => Promise<T>): Promise<T> {
    const { maxRetries, retryBaseMs } = this.config;
    let failures = 0;
    for (;;) {
      let conn: Connection;
      let session: Buffer;
      try {
        // Fast path: a live connection with an idle session costs no await.
        const live = this.#conn;
        conn = live !== undefined && !live.broken ? live : await this.#connection();
        session = conn.pool.tryAcquire() ?? (await conn.pool.acquire());
      } catch (err) {
        // A reconnect closed the pool we were waiting on: take the next connection (not a failure).
        if (err instanceof PoolClosedError) continue;
        if (needsReconnect(err) && failures < maxRetries) {
          if (this.#conn !== undefined) this.#markBroken(this.#conn, err);
          else this.#noteError(err);
          await sleep(this.#backoff(failures++, retryBaseMs));
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
          await sleep(this.#backoff(failures++, retryBaseMs));
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
    this.#noteError(err);
    const why = err instanceof Error ? err.message : String(err);
    return new SealUnavailableError(
      `the PKCS#11 token is unavailable (${why}) after ${failures + 1} attempt(s) with reconnects; check the HSM and its connection`,
      { cause: err },
    );
  }

  // ------------------------------------------------------------------------------------------
  // Keys

  #keyAttributes(obj: SessionObject): { label: string; id: Buffer } {
    const attrs = this.#call("C_GetAttributeValue", () => obj.getAttribute({ label: null, id: null }));
    return { label: typeof attrs.label === "string" ? attrs.label : "", id: attrs.id ?? Buffer.alloc(0) };
  }

  #find(conn: Connection, template: Record<string, unknown>): SessionObject[] {
    const found = this.#call("C_FindObjects", () => conn.login.find(template));
    const out: SessionObject[] = [];
    for (let i = 0; i < found.length; i++) out.push(found.items(i));
    return out;
  }

  #rsaPublic(
    conn: Connection,
    priv: SessionObject,
    label: string,
    id: Buffer,
  ): Omit<ResolvedKey, "keyId" | "label" | "id" | "kind" | "handle"> {
    const template: Record<string, unknown> = { class: ObjectClass.PUBLIC_KEY, keyType: KeyType.RSA };
    if (id.length > 0) template.id = id;
    else if (label !== "") template.label = label;
    const pubs = this.#find(conn, template);
    const pub = pubs.length === 1 ? pubs[0] : undefined;
    // The public key's modulus and exponent are readable on both objects; prefer the public one.
    const source = pub ?? priv;
    const attrs = this.#call("C_GetAttributeValue", () =>
      source.getAttribute({ modulus: null, publicExponent: null }),
    );
    const modulus = attrs.modulus as Buffer;
    const exponent = attrs.publicExponent as Buffer;
    const needLocal = this.config.rsaEncryptLocal || pub === undefined;
    const publicKey = needLocal
      ? createPublicKey({
          key: { kty: "RSA", n: modulus.toString("base64url"), e: exponent.toString("base64url") },
          format: "jwk",
        })
      : undefined;
    return { publicHandle: pub?.handle, publicKey, modulusBytes: modulus.length };
  }

  /**
   * Finds one key by label and/or CKA_ID. `purpose` "encrypt" accepts an AES secret key or an
   * RSA private key; "hmac" a generic-secret / SHA256-HMAC key. Undefined when nothing matches.
   */
  #lookup(
    conn: Connection,
    label: string | undefined,
    id: Buffer | undefined,
    purpose: "encrypt" | "hmac",
  ): ResolvedKey | undefined {
    const base: Record<string, unknown> = {};
    if (label !== undefined) base.label = label;
    if (id !== undefined) base.id = id;
    const what = describeSelector(label, id);
    if (purpose === "hmac") {
      const found = this.#find(conn, { ...base, class: ObjectClass.SECRET_KEY }).filter((o) => {
        const t = this.#call("C_GetAttributeValue", () => o.getAttribute({ keyType: null })).keyType;
        return t === KeyType.GENERIC_SECRET || t === CKK_SHA256_HMAC;
      });
      if (found.length === 0) return undefined;
      if (found.length > 1) {
        throw new SealConfigError(
          "hmac_key_label",
          `${found.length} HMAC keys are ${what}: set hmac_key_id to pick one`,
        );
      }
      const obj = found[0] as SessionObject;
      const a = this.#keyAttributes(obj);
      return {
        keyId: formatKeyId(a.label, a.id),
        ...a,
        kind: "hmac",
        handle: obj.handle,
        publicHandle: undefined,
        publicKey: undefined,
        modulusBytes: 0,
      };
    }
    const aes = this.#find(conn, { ...base, class: ObjectClass.SECRET_KEY, keyType: KeyType.AES });
    const rsa = this.#find(conn, { ...base, class: ObjectClass.PRIVATE_KEY, keyType: KeyType.RSA });
    if (aes.length + rsa.length === 0) return undefined;
    if (aes.length + rsa.length > 1) {
      throw new SealConfigError(
        "key_label",
        `${aes.length + rsa.length} keys are ${what} (${aes.length} AES, ${rsa.length} RSA private): set key_id to pick one`,
      );
    }
    const obj = (aes[0] ?? rsa[0]) as SessionObject;
    const a = this.#keyAttributes(obj);
    const keyId = formatKeyId(a.label, a.id);
    if (aes.length === 1) {
      return {
        keyId,
        ...a,
        kind: "aes",
        handle: obj.handle,
        publicHandle: undefined,
        publicKey: undefined,
        modulusBytes: 0,
      };
    }
    return { keyId, ...a, kind: "rsa", handle: obj.handle, ...this.#rsaPublic(conn, obj, a.label, a.id) };
  }

  /** The key a blob (or the config) names, cached per connection. */
  #keyById(conn: Connection, keyId: string, purpose: "encrypt" | "hmac"): ResolvedKey {
    const cached = conn.keys[purpose].get(keyId);
    if (cached !== undefined) return cached;
    const parts = keyId === "" ? undefined : splitKeyId(keyId);
    let label = parts?.label;
    let id = parts?.id;
    if (keyId === "") {
      // Blobs written before labels were recorded (Vault < 0.10.1): Vault's default_*_key_label.
      label = purpose === "hmac" ? this.config.defaultHmacKeyLabel : this.config.defaultKeyLabel;
      id = undefined;
    }
    if (label === undefined && id === undefined) {
      throw new SealKeyNotFoundError(
        keyId,
        keyId === ""
          ? `the blob names no ${purpose === "hmac" ? "HMAC " : ""}key; set ${purpose === "hmac" ? "default_hmac_key_label" : "default_key_label"} to the label that encrypted it`
          : `seal key ${JSON.stringify(keyId)} names neither a label nor a CKA_ID; the blob is damaged`,
      );
    }
    const key = this.#lookup(conn, label === "" && id !== undefined ? undefined : label, id, purpose);
    if (key === undefined) {
      throw new SealKeyNotFoundError(
        keyId,
        `no ${purpose === "hmac" ? "HMAC " : ""}key ${describeSelector(label, id)} on token "${conn.tokenLabel}" (seal key ${JSON.stringify(keyId)}); keep old keys on the token until every blob was rewrapped with the new one`,
      );
    }
    conn.keys[purpose].set(keyId, key);
    return key;
  }

  async #generate(
    conn: Connection,
    mechanism: Pkcs11Mechanism,
    kind: "encrypt" | "hmac",
  ): Promise<ResolvedKey> {
    const cfg = this.config;
    const label = kind === "hmac" ? cfg.hmacKeyLabel : cfg.keyLabel;
    if (label === undefined) {
      throw new SealConfigError(
        kind === "hmac" ? "hmac_key_label" : "key_label",
        "generate_key needs a label for the new key",
      );
    }
    // Vault gives generated keys a random 32-bit CKA_ID.
    const id = (kind === "hmac" ? cfg.hmacKeyId : cfg.keyId) ?? Buffer.from(randomBytes(4));
    const common = { token: true, private: true, label, id };
    if (kind === "hmac") {
      this.#call("C_GenerateKey", () =>
        conn.login.generateKey(KeyGenMechanism.GENERIC_SECRET, {
          ...common,
          keyType: KeyType.GENERIC_SECRET,
          valueLen: HMAC_BYTES,
          sensitive: true,
          extractable: false,
          sign: true,
          verify: true,
        }),
      );
    } else if (mechanism === CKM_RSA_PKCS_OAEP) {
      // Modulus bits only in the public template (CloudHSM makes an unusable key otherwise).
      await this.#callAsync(
        "C_GenerateKeyPair",
        [],
        () =>
          new Promise((resolve, reject) =>
            conn.login.generateKeyPair(
              KeyGenMechanism.RSA,
              {
                ...common,
                private: false,
                keyType: KeyType.RSA,
                modulusBits: cfg.rsaModulusBits,
                publicExponent: Buffer.from([1, 0, 1]),
                encrypt: true,
                wrap: true,
              },
              {
                ...common,
                keyType: KeyType.RSA,
                sensitive: true,
                extractable: false,
                decrypt: true,
                unwrap: true,
              },
              (err, pair) => (err ? reject(err) : resolve(pair)),
            ),
          ),
      );
    } else {
      this.#call("C_GenerateKey", () =>
        conn.login.generateKey(KeyGenMechanism.AES, {
          ...common,
          keyType: KeyType.AES,
          valueLen: DATA_KEY_BYTES,
          sensitive: true,
          extractable: false,
          encrypt: true,
          decrypt: true,
          wrap: true,
          unwrap: true,
        }),
      );
    }
    const key = this.#lookup(conn, label, id, kind);
    if (key === undefined) {
      throw new SealUnavailableError(
        `generated a key labelled ${JSON.stringify(label)} but cannot find it again on the token`,
      );
    }
    return key;
  }

  /** Resolves (or generates) the configured key and HMAC key, and picks the mechanism. */
  async #resolveCurrent(conn: Connection): Promise<Current> {
    const cfg = this.config;
    let key = this.#lookup(conn, cfg.keyLabel, cfg.keyId, "encrypt");
    if (key === undefined) {
      if (!cfg.generateKey) {
        const selector = describeSelector(cfg.keyLabel, cfg.keyId);
        throw new SealKeyNotFoundError(
          cfg.keyLabel ?? `:${cfg.keyId?.toString("hex")}`,
          `no key ${selector} on token "${conn.tokenLabel}": create it (pkcs11-tool --keygen --key-type aes:32 --label ${cfg.keyLabel ?? "<label>"}) or set generate_key = true`,
        );
      }
      key = await this.#generate(conn, cfg.mechanism ?? CKM_AES_GCM, "encrypt");
    }
    let mechanism: Pkcs11Mechanism;
    if (cfg.mechanism !== undefined) {
      mechanism = cfg.mechanism;
      const needs = mechanism === CKM_RSA_PKCS_OAEP ? "rsa" : "aes";
      if (key.kind !== needs) {
        throw new SealConfigError(
          "mechanism",
          `${mechanismName(mechanism)} needs an ${needs.toUpperCase()} key, but key ${JSON.stringify(key.keyId)} is ${key.kind.toUpperCase()}; change mechanism or key_label`,
        );
      }
    } else if (key.kind === "rsa") mechanism = CKM_RSA_PKCS_OAEP;
    else if (
      conn.mechanisms.has(CKM_AES_GCM) ||
      (cfg.hmacKeyLabel === undefined && cfg.hmacKeyId === undefined)
    ) {
      mechanism = CKM_AES_GCM;
    } else mechanism = CKM_AES_CBC_PAD; // "best available" without GCM, as Vault picks it
    if (!conn.mechanisms.has(mechanism)) {
      throw new SealConfigError(
        "mechanism",
        `token "${conn.tokenLabel}" does not offer ${mechanismName(mechanism)}${mechanism === CKM_AES_GCM ? '; set mechanism = "0x1085" with hmac_key_label for AES-CBC-PAD + HMAC' : ""}`,
      );
    }
    conn.keys.encrypt.set(key.keyId, key);
    let hmacKeyId = "";
    if (mechanism === CKM_AES_CBC_PAD) {
      if (!conn.mechanisms.has(CKM_SHA256_HMAC)) {
        throw new SealConfigError(
          "hmac_mechanism",
          `token "${conn.tokenLabel}" does not offer CKM_SHA256_HMAC (0x0251)`,
        );
      }
      let hmac = this.#lookup(conn, cfg.hmacKeyLabel, cfg.hmacKeyId, "hmac");
      if (hmac === undefined) {
        if (!cfg.generateKey) {
          throw new SealKeyNotFoundError(
            cfg.hmacKeyLabel ?? "",
            `no HMAC key ${describeSelector(cfg.hmacKeyLabel, cfg.hmacKeyId)} on token "${conn.tokenLabel}": create a 32-byte generic secret key or set generate_key = true`,
          );
        }
        hmac = await this.#generate(conn, mechanism, "hmac");
      }
      conn.keys.hmac.set(hmac.keyId, hmac);
      hmacKeyId = hmac.keyId;
    }
    return { keyId: key.keyId, mechanism, hmacKeyId };
  }

  async #selfTest(): Promise<void> {
    const probe = randomBytes(32);
    const aad = new TextEncoder().encode("bulwark pkcs11 self-test");
    let back: Uint8Array;
    try {
      back = await this.#decrypt(await this.#encrypt(probe, aad), aad);
    } catch (err) {
      throw this.#selfTestError(err);
    }
    if (Buffer.compare(Buffer.from(back), Buffer.from(probe)) !== 0) {
      throw new SealUnavailableError(
        `${this.type} seal self-test: the token returned a different value after encrypt and decrypt`,
      );
    }
  }

  #selfTestError(err: unknown): unknown {
    const cause = err instanceof SealError && err.cause instanceof Pkcs11CallError ? err.cause : err;
    const rv = rvOf(cause);
    const mechanism = this.#current?.mechanism;
    if (mechanism === CKM_RSA_PKCS_OAEP && (rv === CKR_ARGUMENTS_BAD || rv === CKR_MECHANISM_PARAM_INVALID)) {
      return new SealConfigError(
        "rsa_oaep_hash",
        `the token rejected RSA-OAEP with ${this.config.rsaOaepHash} (${(cause as Error).message}); SoftHSM supports only sha1: set rsa_oaep_hash = "sha1"`,
        { cause },
      );
    }
    if (rv === CKR_KEY_FUNCTION_NOT_PERMITTED || rv === CKR_KEY_TYPE_INCONSISTENT) {
      // The key's attributes forbid the operation: no retry or reconnect will change that.
      const call = cause instanceof Pkcs11CallError ? cause.call : "";
      const hmac =
        call === "C_SignInit" || call === "C_VerifyInit" || call === "C_Sign" || call === "C_Verify";
      const keyId = hmac ? this.#current?.hmacKeyId : this.#current?.keyId;
      const needs = hmac ? "CKA_SIGN and CKA_VERIFY" : "CKA_ENCRYPT and CKA_DECRYPT";
      return new SealConfigError(
        hmac ? "hmac_key_label" : "key_label",
        `the token refused to use key ${JSON.stringify(keyId)} for ${hmac ? "CKM_SHA256_HMAC (0x0251)" : mechanismName(mechanism ?? 0)} in the self-test (${(cause as Error).message}); the key needs ${needs} set to true — choose another key or create one with generate_key = true`,
        { cause },
      );
    }
    if (rv === CKR_MECHANISM_INVALID || rv === CKR_MECHANISM_PARAM_INVALID) {
      return new SealConfigError(
        "mechanism",
        `the token rejected ${mechanismName(mechanism ?? 0)} in the self-test (${(cause as Error).message}); choose another mechanism`,
        { cause },
      );
    }
    if (err instanceof SealError) return err;
    const why = err instanceof Error ? err.message : String(err);
    return new SealUnavailableError(`${this.type} seal self-test (encrypt + decrypt) failed: ${why}`, {
      cause: err,
    });
  }

  // ------------------------------------------------------------------------------------------
  // Mechanisms (each runs on one borrowed session, start to finish)

  #gcmParams(iv: Buffer, aad: Buffer | undefined): pkcs11js.AesGCM {
    const params: pkcs11js.AesGCM = {
      type: CK_PARAMS_AES_GCM_V240,
      iv,
      ivBits: this.config.gcmIvBits ?? iv.length * 8,
      tagBits: GCM_TAG_BYTES * 8,
    };
    if (aad !== undefined && aad.length > 0) params.aad = aad;
    return params;
  }

  async #gcmEncrypt(
    session: Buffer,
    key: ResolvedKey,
    pt: Buffer,
    aad: Buffer | undefined,
  ): Promise<{ iv: Buffer; ct: Buffer }> {
    const lib = this.#lib();
    const iv = Buffer.alloc(GCM_IV_BYTES);
    // CloudHSM ignores a caller IV and writes its own into this buffer (it must start zeroed).
    if (!this.config.hsmGeneratedIv) this.#call("C_GenerateRandom", () => lib.C_GenerateRandom(session, iv));
    const params = this.#gcmParams(iv, aad);
    this.#call("C_EncryptInit", () =>
      lib.C_EncryptInit(session, { mechanism: CKM_AES_GCM, parameter: params }, key.handle),
    );
    // Single-part call, output sized for ciphertext + tag (graphene's multi-part path breaks on SoftHSM).
    const out = Buffer.alloc(pt.length + GCM_TAG_BYTES);
    const ct = await this.#callAsync("C_Encrypt", [pt, out, iv, params, aad], () =>
      lib.C_EncryptAsync(session, pt, out),
    );
    if (ct.length !== pt.length + GCM_TAG_BYTES) {
      throw new Pkcs11CallError(
        "C_Encrypt",
        undefined,
        `AES-GCM returned ${ct.length} bytes for ${pt.length}; expected ciphertext || 16-byte tag`,
      );
    }
    if (this.config.hsmGeneratedIv && iv.every((b) => b === 0)) {
      throw new Pkcs11CallError(
        "C_Encrypt",
        undefined,
        "hsmGeneratedIv is set but the HSM did not write an IV; turn hsmGeneratedIv off for this HSM",
      );
    }
    // `ct` spans all of `out` (checked above), and both buffers are this call's own: no copies.
    return { iv, ct };
  }

  async #gcmDecrypt(
    session: Buffer,
    key: ResolvedKey,
    iv: Buffer,
    ct: Buffer,
    aad: Buffer | undefined,
  ): Promise<Uint8Array> {
    const lib = this.#lib();
    const params = this.#gcmParams(iv, aad);
    this.#call("C_DecryptInit", () =>
      lib.C_DecryptInit(session, { mechanism: CKM_AES_GCM, parameter: params }, key.handle),
    );
    // SoftHSM wants room for the tag too, although it returns only the plaintext.
    const out = Buffer.alloc(ct.length);
    const pt = await this.#callAsync("C_Decrypt", [ct, out, iv, params, aad], () =>
      lib.C_DecryptAsync(session, ct, out),
    );
    return takeOut(out, pt);
  }

  async #hmacSign(session: Buffer, key: ResolvedKey, data: Buffer): Promise<Buffer> {
    const lib = this.#lib();
    this.#call("C_SignInit", () => lib.C_SignInit(session, { mechanism: CKM_SHA256_HMAC }, key.handle));
    const out = Buffer.alloc(HMAC_BYTES);
    const mac = await this.#callAsync("C_Sign", [data, out], () => lib.C_SignAsync(session, data, out));
    return Buffer.from(mac);
  }

  async #hmacVerify(session: Buffer, key: ResolvedKey, data: Buffer, mac: Buffer): Promise<boolean> {
    const lib = this.#lib();
    if (mac.length !== HMAC_BYTES) return false;
    this.#call("C_VerifyInit", () => lib.C_VerifyInit(session, { mechanism: CKM_SHA256_HMAC }, key.handle));
    try {
      return await this.#callAsync("C_Verify", [data, mac], () => lib.C_VerifyAsync(session, data, mac));
    } catch (err) {
      const rv = rvOf(err);
      if (rv === CKR_SIGNATURE_INVALID || rv === CKR_SIGNATURE_LEN_RANGE) return false;
      throw err;
    }
  }

  async #cbcEncrypt(session: Buffer, key: ResolvedKey, pt: Buffer): Promise<{ iv: Buffer; ct: Buffer }> {
    const lib = this.#lib();
    const iv = Buffer.alloc(CBC_IV_BYTES);
    this.#call("C_GenerateRandom", () => lib.C_GenerateRandom(session, iv));
    this.#call("C_EncryptInit", () =>
      lib.C_EncryptInit(session, { mechanism: CKM_AES_CBC_PAD, parameter: iv }, key.handle),
    );
    const out = Buffer.alloc(pt.length + CBC_IV_BYTES);
    const ct = await this.#callAsync("C_Encrypt", [pt, out, iv], () => lib.C_EncryptAsync(session, pt, out));
    return { iv, ct: Buffer.from(ct) };
  }

  async #cbcDecrypt(session: Buffer, key: ResolvedKey, iv: Buffer, ct: Buffer): Promise<Uint8Array> {
    const lib = this.#lib();
    this.#call("C_DecryptInit", () =>
      lib.C_DecryptInit(session, { mechanism: CKM_AES_CBC_PAD, parameter: iv }, key.handle),
    );
    const out = Buffer.alloc(ct.length);
    const pt = await this.#callAsync("C_Decrypt", [ct, out, iv], () => lib.C_DecryptAsync(session, ct, out));
    return takeOut(out, pt);
  }

  #oaepParams(hash: RsaOaepHash): pkcs11js.RsaOAEP {
    const h = OAEP_HASHES[hash];
    return { type: pkcs11js.CK_PARAMS_RSA_OAEP, hashAlg: h.hashAlg, mgf: h.mgf, source: CKZ_DATA_SPECIFIED };
  }

  async #oaepEncrypt(session: Buffer, key: ResolvedKey, dataKey: Buffer): Promise<Buffer> {
    const hash = this.config.rsaOaepHash;
    if (key.publicKey !== undefined) {
      return publicEncrypt(
        { key: key.publicKey, padding: nodeCrypto.RSA_PKCS1_OAEP_PADDING, oaepHash: hash },
        dataKey,
      );
    }
    const lib = this.#lib();
    const params = this.#oaepParams(hash);
    const pub = key.publicHandle as Buffer;
    this.#call("C_EncryptInit", () =>
      lib.C_EncryptInit(session, { mechanism: CKM_RSA_PKCS_OAEP, parameter: params }, pub),
    );
    const out = Buffer.alloc(key.modulusBytes);
    const ct = await this.#callAsync("C_Encrypt", [dataKey, out, params], () =>
      lib.C_EncryptAsync(session, dataKey, out),
    );
    return Buffer.from(ct);
  }

  async #oaepDecrypt(
    session: Buffer,
    key: ResolvedKey,
    wrapped: Buffer,
    hash: RsaOaepHash,
  ): Promise<Uint8Array> {
    const lib = this.#lib();
    const params = this.#oaepParams(hash);
    this.#call("C_DecryptInit", () =>
      lib.C_DecryptInit(session, { mechanism: CKM_RSA_PKCS_OAEP, parameter: params }, key.handle),
    );
    const out = Buffer.alloc(Math.max(key.modulusBytes, wrapped.length));
    const pt = await this.#callAsync("C_Decrypt", [wrapped, out, params], () =>
      lib.C_DecryptAsync(session, wrapped, out),
    );
    return takeOut(out, pt);
  }

  // ------------------------------------------------------------------------------------------
  // Encrypt / decrypt

  protected override async doEncrypt(plaintext: Uint8Array, opts: SealEncryptOptions): Promise<BlobInfo> {
    try {
      return await this.#encrypt(plaintext, opts.aad);
    } catch (err) {
      throw this.#opError("encrypt", err, undefined);
    }
  }

  protected override async doDecrypt(
    blob: BlobInfo & { keyInfo: NonNullable<BlobInfo["keyInfo"]> },
    opts: SealEncryptOptions,
  ): Promise<Uint8Array> {
    try {
      return await this.#decrypt(blob, opts.aad);
    } catch (err) {
      throw this.#opError("decrypt", err, blob.keyInfo.keyId);
    }
  }

  #opError(op: "encrypt" | "decrypt", err: unknown, keyId: string | undefined): unknown {
    if (err instanceof SealError) return err;
    if (op === "decrypt") {
      const why = err instanceof Error ? err.message : String(err);
      return new SealDecryptError(
        `${this.type} seal cannot decrypt the blob with key ${JSON.stringify(keyId)}: ${why} — wrong key, wrong AAD or the blob was changed`,
        { cause: err, keyId },
      );
    }
    const why = err instanceof Error ? err.message : String(err);
    return new SealError("encrypt_failed", `${this.type} seal encrypt failed: ${why}`, { cause: err });
  }

  #currentOrThrow(): Current {
    const c = this.#current;
    if (c === undefined) throw new SealUnavailableError(`the ${this.type} seal has no key loaded`);
    return c;
  }

  async #encrypt(plaintext: Uint8Array, aadIn: Uint8Array | undefined): Promise<BlobInfo> {
    const cur = this.#currentOrThrow();
    const aad = aadIn !== undefined && aadIn.length > 0 ? toBuffer(aadIn) : undefined;
    // Envelope for RSA (OAEP carries only a few hundred bytes), for large values, and for empty
    // ones: pkcs11js passes a zero-length Buffer as NULL, which C_Encrypt refuses (CKR_ARGUMENTS_BAD).
    const envelope =
      cur.mechanism === CKM_RSA_PKCS_OAEP ||
      plaintext.length === 0 ||
      plaintext.length > this.config.maxDirectBytes;
    if (!envelope) {
      const pt = toBuffer(plaintext);
      return this.#withSession(async (conn, session) => {
        const key = this.#keyById(conn, cur.keyId, "encrypt");
        if (cur.mechanism === CKM_AES_GCM) {
          const { iv, ct } = await this.#gcmEncrypt(session, key, pt, aad);
          return createBlobInfo({
            ciphertext: ct,
            iv,
            keyInfo: { mechanism: CKM_AES_GCM, keyId: cur.keyId },
          });
        }
        const hmacKey = this.#keyById(conn, cur.hmacKeyId, "hmac");
        const { iv, ct } = await this.#cbcEncrypt(session, key, pt);
        const hmac = await this.#hmacSign(session, hmacKey, macInput(iv, ct, aad));
        return createBlobInfo({
          ciphertext: ct,
          iv,
          hmac,
          keyInfo: {
            mechanism: CKM_AES_CBC_PAD,
            hmacMechanism: CKM_SHA256_HMAC,
            keyId: cur.keyId,
            hmacKeyId: cur.hmacKeyId,
          },
        });
      });
    }
    // Envelope: the value is encrypted here with a fresh data key; only the data key goes to the HSM.
    const dataKey = Buffer.from(randomBytes(DATA_KEY_BYTES));
    try {
      const nonce = randomBytes(GCM_IV_BYTES);
      const ciphertext = aesGcmEncrypt(dataKey, nonce, plaintext, aad);
      return await this.#withSession(async (conn, session) => {
        const key = this.#keyById(conn, cur.keyId, "encrypt");
        const keyInfo: Partial<KeyInfo> = {
          mechanism: cur.mechanism,
          keyId: cur.keyId,
          flags: FLAG_ENVELOPE,
        };
        let hmac: Buffer | undefined;
        if (cur.mechanism === CKM_AES_GCM) {
          const { iv, ct } = await this.#gcmEncrypt(session, key, dataKey, undefined);
          keyInfo.wrappedKey = Buffer.concat([iv, ct]);
        } else if (cur.mechanism === CKM_AES_CBC_PAD) {
          const hmacKey = this.#keyById(conn, cur.hmacKeyId, "hmac");
          const { iv, ct } = await this.#cbcEncrypt(session, key, dataKey);
          keyInfo.wrappedKey = Buffer.concat([iv, ct]);
          hmac = await this.#hmacSign(session, hmacKey, macInput(iv, ct, undefined));
          keyInfo.hmacMechanism = CKM_SHA256_HMAC;
          keyInfo.hmacKeyId = cur.hmacKeyId;
        } else {
          keyInfo.wrappedKey = await this.#oaepEncrypt(session, key, dataKey);
          keyInfo.flags = FLAG_ENVELOPE | (OAEP_HASHES[this.config.rsaOaepHash].code << FLAG_OAEP_HASH_SHIFT);
        }
        return createBlobInfo({ ciphertext, iv: nonce, ...(hmac ? { hmac } : {}), keyInfo });
      });
    } finally {
      dataKey.fill(0);
    }
  }

  async #decrypt(blob: BlobInfo, aadIn: Uint8Array | undefined): Promise<Uint8Array> {
    const info = blob.keyInfo;
    const keyId = info?.keyId ?? "";
    const damaged = (why: string) =>
      new SealDecryptError(
        `${this.type} seal cannot decrypt: ${why}; the blob is damaged or was not written by this seal`,
        {
          keyId,
        },
      );
    if (info === undefined) throw damaged("the blob has no keyInfo");
    if ((info.flags & ~KNOWN_FLAGS) !== 0) {
      throw damaged(`unknown flags 0x${info.flags.toString(16)} (written by a newer version?)`);
    }
    const aad = aadIn !== undefined && aadIn.length > 0 ? toBuffer(aadIn) : undefined;
    const envelope = (info.flags & FLAG_ENVELOPE) !== 0;
    // Blobs from OpenBao's pkcs11 wrapper record no mechanism: they are direct AES-GCM.
    const mechanism = info.mechanism === 0 && !envelope ? CKM_AES_GCM : info.mechanism;
    const iv = toBuffer(blob.iv);
    const ct = toBuffer(blob.ciphertext);

    if (!envelope) {
      if (mechanism === CKM_AES_GCM) {
        if (iv.length === 0 || ct.length < GCM_TAG_BYTES)
          throw damaged(`AES-GCM needs an IV and at least ${GCM_TAG_BYTES} bytes`);
        return this.#withSession(async (conn, session) => {
          const key = this.#keyFor(conn, keyId, "aes");
          return this.#gcmDecrypt(session, key, iv, ct, aad);
        });
      }
      if (mechanism === CKM_AES_CBC_PAD) {
        if (iv.length !== CBC_IV_BYTES || ct.length === 0 || ct.length % CBC_IV_BYTES !== 0) {
          throw damaged("AES-CBC needs a 16-byte IV and whole blocks");
        }
        const hmac = toBuffer(blob.hmac);
        return this.#withSession(async (conn, session) => {
          const key = this.#keyFor(conn, keyId, "aes");
          const hmacKey = this.#keyById(conn, info.hmacKeyId, "hmac");
          // Encrypt-then-MAC: nothing is decrypted before the MAC checks out.
          if (!(await this.#hmacVerify(session, hmacKey, macInput(iv, ct, aad), hmac))) {
            throw new SealDecryptError(
              `${this.type} seal: HMAC check failed for key ${JSON.stringify(keyId)} — wrong key, wrong AAD or the blob was changed`,
              { keyId },
            );
          }
          return this.#cbcDecrypt(session, key, iv, ct);
        });
      }
      throw damaged(
        `mechanism ${mechanismName(mechanism)} without the envelope flag is not a layout this seal writes`,
      );
    }

    // Envelope: unwrap the data key in the HSM, decrypt the value here.
    if (iv.length !== GCM_IV_BYTES || ct.length < GCM_TAG_BYTES)
      throw damaged("the envelope needs a 12-byte IV and a GCM tag");
    const wrapped = toBuffer(info.wrappedKey);
    let dataKey: Uint8Array;
    if (mechanism === CKM_AES_GCM) {
      if (wrapped.length !== GCM_IV_BYTES + DATA_KEY_BYTES + GCM_TAG_BYTES)
        throw damaged("wrapped data key has the wrong size");
      dataKey = await this.#withSession(async (conn, session) => {
        const key = this.#keyFor(conn, keyId, "aes");
        return this.#gcmDecrypt(
          session,
          key,
          wrapped.subarray(0, GCM_IV_BYTES),
          wrapped.subarray(GCM_IV_BYTES),
          undefined,
        );
      });
    } else if (mechanism === CKM_AES_CBC_PAD) {
      if (wrapped.length !== CBC_IV_BYTES + DATA_KEY_BYTES + CBC_IV_BYTES)
        throw damaged("wrapped data key has the wrong size");
      const hmac = toBuffer(blob.hmac);
      dataKey = await this.#withSession(async (conn, session) => {
        const key = this.#keyFor(conn, keyId, "aes");
        const hmacKey = this.#keyById(conn, info.hmacKeyId, "hmac");
        const wiv = wrapped.subarray(0, CBC_IV_BYTES);
        const wct = wrapped.subarray(CBC_IV_BYTES);
        if (!(await this.#hmacVerify(session, hmacKey, macInput(wiv, wct, undefined), hmac))) {
          throw new SealDecryptError(
            `${this.type} seal: HMAC check of the wrapped data key failed for key ${JSON.stringify(keyId)}`,
            {
              keyId,
            },
          );
        }
        return this.#cbcDecrypt(session, key, wiv, wct);
      });
    } else if (mechanism === CKM_RSA_PKCS_OAEP) {
      const code = (info.flags & FLAG_OAEP_HASH_MASK) >> FLAG_OAEP_HASH_SHIFT;
      const hash = (Object.keys(OAEP_HASHES) as RsaOaepHash[]).find((h) => OAEP_HASHES[h].code === code);
      if (hash === undefined) throw damaged(`unknown OAEP hash code ${code}`);
      dataKey = await this.#withSession(async (conn, session) => {
        const key = this.#keyFor(conn, keyId, "rsa");
        return this.#oaepDecrypt(session, key, wrapped, hash);
      });
    } else {
      throw damaged(`unknown mechanism ${mechanismName(mechanism)}`);
    }
    try {
      if (dataKey.length !== DATA_KEY_BYTES) throw damaged("the unwrapped data key has the wrong size");
      try {
        return aesGcmDecrypt(dataKey, iv, ct, aad);
      } catch (cause) {
        throw new SealDecryptError(
          `${this.type} seal: the value did not authenticate under its data key (key ${JSON.stringify(keyId)}) — wrong AAD or the blob was changed`,
          { cause, keyId },
        );
      }
    } finally {
      dataKey.fill(0);
    }
  }

  /** The blob's key, checked to be of the kind its mechanism needs. */
  #keyFor(conn: Connection, keyId: string, kind: "aes" | "rsa"): ResolvedKey {
    const key = this.#keyById(conn, keyId, "encrypt");
    if (key.kind !== kind) {
      throw new SealDecryptError(
        `${this.type} seal: the blob needs an ${kind.toUpperCase()} key but ${JSON.stringify(keyId)} is ${key.kind.toUpperCase()}; the blob is damaged`,
        { keyId },
      );
    }
    return key;
  }

  // ------------------------------------------------------------------------------------------
  // Health

  protected override async doHealth(): Promise<SealHealth> {
    const run = this.#health();
    this.#healthRuns.add(run);
    try {
      return await run;
    } finally {
      this.#healthRuns.delete(run);
    }
  }

  async #health(): Promise<SealHealth> {
    const started = performance.now();
    const probe = randomBytes(16);
    let healthy = false;
    let message: string | undefined;
    try {
      const back = await this.#decrypt(await this.#encrypt(probe, undefined), undefined);
      healthy = Buffer.compare(Buffer.from(back), Buffer.from(probe)) === 0;
      if (!healthy) message = "the heartbeat round trip returned a different value";
    } catch (err) {
      this.#noteError(err);
      message = err instanceof Error ? err.message : String(err);
    }
    const conn = this.#conn;
    const details: Pkcs11HealthDetails = {
      library: this.#module?.description ?? "",
      slot: conn?.slotId.toString() ?? "",
      tokenLabel: conn?.tokenLabel ?? "",
      tokenSerial: conn?.tokenSerial ?? "",
      mechanism: mechanismName(this.#current?.mechanism ?? 0),
      pool: conn?.pool.stats() ?? { open: 0, busy: 0, waiting: 0, max: 0 },
      reconnects: this.#reconnects,
      lastError: this.#lastError,
      roundTripMs: Math.round((performance.now() - started) * 100) / 100,
    };
    return {
      healthy,
      keyId: this.keyId(),
      ...(message !== undefined ? { message } : {}),
      details: details as unknown as Record<string, unknown>,
    };
  }
}

/**
 * Builds a {@link Pkcs11Seal} from the server's parsed `seal "pkcs11" { … }` block (Vault key
 * names) or from typed options. Settings missing from `config` come from `BULWARK_HSM_*`, then
 * `VAULT_HSM_*`. Throws `SealConfigError` (with `field`) for anything unusable.
 */
export function createPkcs11Seal(
  config: Record<string, unknown> | Pkcs11SealOptions,
  env: Record<string, string | undefined> = process.env,
): Pkcs11Seal {
  return Pkcs11Seal.fromConfig(config, env);
}

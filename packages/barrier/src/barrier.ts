import { AES_256_KEY_BYTES, AesGcmKey, randomBytes } from "@bulwark/crypto";
import type { Backend, Entry } from "@bulwark/storage";
import {
  ABSOLUTE_OPERATION_MAXIMUM,
  ABSOLUTE_OPERATION_MINIMUM,
  CIPHERTEXT_OVERHEAD,
  DEFAULT_UPGRADE_GRACE_PERIOD_MS,
  INITIAL_KEY_TERM,
  KEYRING_PATH,
  LEGACY_ROTATION_AGE_MS,
  MAX_TERM,
  MINIMUM_ROTATION_INTERVAL_MS,
  OPENBAO_ROOT_KEY_PATH,
  ROOT_KEY_PATH,
  SHAMIR_KEK_PATH,
  UPGRADE_PREFIX,
} from "./constants.js";
import {
  BarrierAlreadyInitializedError,
  BarrierCiphertextError,
  BarrierError,
  BarrierInvalidKeyError,
  BarrierNotInitializedError,
  BarrierSealedError,
} from "./errors.js";
import { decryptFrame, encryptFrame, frameTerm } from "./frame.js";
import { GoTime } from "./go-time.js";
import { deserializeKey, Keyring, type RotationConfig, serializeKey } from "./keyring.js";
import { CORE_PREFIX } from "./layout.js";

/** The active term as reported by `keyStatus()` (Vault's `GET /sys/key-status`). */
export interface KeyStatus {
  term: number;
  installTime: Date;
  /** Encryptions with this term: persisted count plus those not yet persisted. */
  encryptions: number;
}

export interface BarrierLogger {
  debug(msg: string, fields?: object): void;
  info(msg: string, fields?: object): void;
  warn(msg: string, fields?: object): void;
}

export interface BarrierOptions {
  /** Clock for install times and the rotation interval (tests inject one). */
  now?: () => Date;
  /** How long `core/upgrade/<N>` stays after a rotation, for standbys to pick up; default 120 000. */
  upgradeGracePeriodMs?: number;
  /** Receives lifecycle events; never key material. */
  logger?: BarrierLogger;
}

/** Why `checkAutoRotate()` rotated (Vault's reasons, same strings). */
export type AutoRotateReason = "reached max operations" | "rotation interval reached" | "legacy rotation";

const MAX_TIMER_MS = 2_147_483_647;
const NO_LOG: BarrierLogger = { debug() {}, info() {}, warn() {} };
const ROTATION_FIELDS = new Set(["disabled", "maxOperations", "intervalMs"]);

function requireBytes(what: string, value: unknown): asserts value is Uint8Array {
  if (!(value instanceof Uint8Array)) {
    throw new BarrierError("invalid_argument", `${what} must be a Uint8Array, got ${typeof value}`);
  }
}

function requireKey(what: string, value: unknown): asserts value is Uint8Array {
  requireBytes(what, value);
  // AES-256 only: the root key encrypts the keyring with AES-256-GCM.
  if (value.length !== AES_256_KEY_BYTES) {
    throw new BarrierError(
      "invalid_argument",
      `${what} must be ${AES_256_KEY_BYTES} bytes (AES-256), got ${value.length}`,
    );
  }
}

function requirePath(value: unknown): asserts value is string {
  if (typeof value !== "string") {
    throw new BarrierError("invalid_argument", `path must be a string, got ${typeof value}`);
  }
}

/**
 * Vault's AES-GCM security barrier: everything written through it is encrypted with the active
 * keyring term (AAD = the storage key) before it reaches `storage`, in the exact byte format
 * Vault and OpenBao use. Starts sealed; `unseal(rootKey)` decrypts `core/keyring`.
 *
 * Key management (initialize, unseal, rotate, rekey, reloads) runs one operation at a time; data
 * operations run concurrently with each other and with those. `seal()` wins over anything in
 * flight: an operation that was waiting on storage when the barrier sealed fails with
 * `BarrierSealedError` and installs nothing.
 */
export class AesGcmBarrier implements Backend {
  readonly #storage: Backend;
  readonly #now: () => Date;
  readonly #gracePeriodMs: number;
  readonly #log: BarrierLogger;

  /** `undefined` = sealed. */
  #keyring: Keyring | undefined;
  /** One prepared AES key per term, so the hot path never re-imports a key. */
  #aeads = new Map<number, AesGcmKey>();
  #activeTerm = 0;
  #activeAead: AesGcmKey | undefined;
  /** Encryptions with the active term not yet written to the keyring (Vault's UnaccountedEncryptions). */
  #unaccounted = 0;
  /** Bumped by every seal; async operations compare it after each await. */
  #epoch = 0;
  readonly #timers = new Set<NodeJS.Timeout>();
  #queue: Promise<unknown> = Promise.resolve();

  constructor(storage: Backend, options: BarrierOptions = {}) {
    for (const m of ["get", "put", "delete", "list"] as const) {
      if (typeof (storage as Partial<Backend> | undefined)?.[m] !== "function") {
        throw new BarrierError("invalid_argument", `storage must implement Backend: missing ${m}()`);
      }
    }
    const grace = options.upgradeGracePeriodMs ?? DEFAULT_UPGRADE_GRACE_PERIOD_MS;
    // setTimeout turns delays above 2^31-1 ms into 1 ms, which would delete upgrade entries at once.
    if (!Number.isFinite(grace) || grace < 0 || grace > MAX_TIMER_MS) {
      throw new BarrierError(
        "invalid_argument",
        `upgradeGracePeriodMs must be between 0 and ${MAX_TIMER_MS} milliseconds, got ${grace}`,
      );
    }
    this.#storage = storage;
    this.#now = options.now ?? (() => new Date());
    this.#gracePeriodMs = grace;
    this.#log = options.logger ?? NO_LOG;
  }

  get sealed(): boolean {
    return this.#keyring === undefined;
  }

  // ------------------------------------------------------------------------------------------
  // Lifecycle

  /** Whether `core/keyring` exists. Reads only the key listing, so it works while sealed. */
  async initialized(): Promise<boolean> {
    const names = await this.#storage.list(CORE_PREFIX);
    return names.includes("keyring");
  }

  /**
   * Creates the keyring: term 1 with a fresh random key, protected by `rootKey`; writes
   * `core/keyring` and `core/master`, and `core/shamir-kek` when a Shamir KEK is given. The
   * barrier stays sealed: call `unseal(rootKey)` next. Both keys are copied; wipe your own.
   */
  async initialize(rootKey: Uint8Array, shamirKek?: Uint8Array): Promise<void> {
    requireKey("root key", rootKey);
    if (shamirKek !== undefined) requireKey("Shamir KEK", shamirKek);
    return this.#exclusive(async () => {
      if (await this.initialized()) throw new BarrierAlreadyInitializedError();
      const ring = new Keyring(rootKey);
      try {
        const termKey = randomBytes(AES_256_KEY_BYTES);
        try {
          ring.addKey({ term: INITIAL_KEY_TERM, value: termKey, installTime: this.#installTime() });
        } finally {
          termKey.fill(0);
        }
        const aead = new AesGcmKey(ring.activeKey().value);
        ring.activeKey().encryptions = 1; // the core/master write below
        await this.#persistKeyring(ring, aead, undefined);
        if (shamirKek !== undefined) {
          await this.#storage.put({
            key: SHAMIR_KEK_PATH,
            value: encryptFrame(aead, INITIAL_KEY_TERM, SHAMIR_KEK_PATH, shamirKek),
            sealWrap: true,
          });
        }
      } finally {
        ring.zero();
      }
      this.#log.info("barrier initialized", { term: INITIAL_KEY_TERM });
    });
  }

  /**
   * Decrypts `core/keyring` with `rootKey` and opens the barrier. A wrong key throws
   * `BarrierInvalidKeyError` and leaves it sealed; when already unsealed this is a no-op.
   */
  async unseal(rootKey: Uint8Array): Promise<void> {
    requireKey("root key", rootKey);
    return this.#exclusive(async () => {
      if (!this.sealed) return;
      const epoch = this.#epoch;
      const entry = await this.#storage.get(KEYRING_PATH);
      if (entry === undefined) throw new BarrierNotInitializedError();
      const ring = this.#openKeyring(entry.value, rootKey);
      if (epoch !== this.#epoch) {
        ring.zero();
        throw new BarrierSealedError("Bulwark was sealed while unsealing: unseal again");
      }
      this.#install(ring);
      this.#log.info("barrier unsealed", { term: ring.activeTerm });
    });
  }

  /**
   * Wipes the root key and every term key, cancels pending upgrade-entry deletions and refuses
   * all further data operations until `unseal`. Idempotent. (Node's KeyObjects keep their own
   * native copy until garbage-collected; the references are dropped here.)
   */
  seal(): void {
    this.#epoch++;
    for (const t of this.#timers) clearTimeout(t);
    this.#timers.clear();
    const ring = this.#keyring;
    this.#keyring = undefined;
    this.#aeads = new Map();
    this.#activeAead = undefined;
    this.#activeTerm = 0;
    if (ring !== undefined) {
      ring.zero();
      this.#log.info("barrier sealed");
    }
  }

  // ------------------------------------------------------------------------------------------
  // Data (Backend)

  async get(key: string): Promise<Entry | undefined> {
    this.#requireUnsealed();
    const entry = await this.#storage.get(key);
    if (entry === undefined) {
      this.#requireUnsealed();
      return undefined;
    }
    const out: Entry = { key, value: this.decrypt(key, entry.value) };
    if (entry.sealWrap !== undefined) out.sealWrap = entry.sealWrap;
    return out;
  }

  async put(entry: Entry): Promise<void> {
    if (typeof entry !== "object" || entry === null) {
      throw new BarrierError("invalid_argument", "put: entry must be an object { key, value }");
    }
    const value = this.encrypt(entry.key, entry.value);
    const out: Entry = { key: entry.key, value };
    // The barrier never seal-wraps; the flag is for a seal-wrap layer below.
    if (entry.sealWrap !== undefined) out.sealWrap = entry.sealWrap;
    await this.#storage.put(out);
  }

  async delete(key: string): Promise<void> {
    this.#requireUnsealed();
    await this.#storage.delete(key);
  }

  async list(prefix: string): Promise<string[]> {
    this.#requireUnsealed();
    return this.#storage.list(prefix);
  }

  /** Barrier ciphertext of `plaintext` for `path` with the active term (counted for rotation). */
  encrypt(path: string, plaintext: Uint8Array): Uint8Array {
    const aead = this.#activeAead;
    if (aead === undefined) throw new BarrierSealedError();
    requirePath(path);
    requireBytes("plaintext", plaintext);
    const out = encryptFrame(aead, this.#activeTerm, path, plaintext);
    this.#unaccounted++;
    return out;
  }

  /** Opens a barrier ciphertext written for `path` with any installed term. */
  decrypt(path: string, ciphertext: Uint8Array): Uint8Array {
    if (this.#keyring === undefined) throw new BarrierSealedError();
    requirePath(path);
    requireBytes("ciphertext", ciphertext);
    return decryptFrame(this.#aeads, path, ciphertext);
  }

  // ------------------------------------------------------------------------------------------
  // Keys

  /** The active term, its install time and its encryption count. */
  keyStatus(): KeyStatus {
    const ring = this.#requireUnsealed();
    const active = ring.activeKey();
    return {
      term: active.term,
      installTime: active.installTime.toDate(),
      encryptions: active.encryptions + this.#unaccounted,
    };
  }

  /** Whether `rootKey` is the root key in memory (constant time). */
  verifyRootKey(rootKey: Uint8Array): boolean {
    const ring = this.#requireUnsealed();
    requireBytes("root key", rootKey);
    return ring.hasRootKey(rootKey);
  }

  /**
   * Installs term N+1 and makes it active. Order matters for crash safety: the keyring with the
   * new term is persisted first, then `core/upgrade/<N>` (the new key encrypted with term N, for
   * standbys), which is deleted again after the grace period.
   */
  async rotate(): Promise<KeyStatus> {
    this.#requireUnsealed();
    return this.#exclusive(() => this.#rotateLocked());
  }

  /**
   * Protects the keyring with a new root key: `core/keyring` is re-encrypted first, then
   * `core/master` rewritten, then the old root key is wiped. If that fails (or the barrier seals
   * meanwhile) both records are put back, so the old root key still opens the keyring; only a
   * crash in between leaves a keyring that opens with the new root key and a `core/master` the
   * term keys still decrypt.
   */
  async rekey(newRootKey: Uint8Array): Promise<void> {
    this.#requireUnsealed();
    requireKey("new root key", newRootKey);
    return this.#exclusive(async () => {
      const { ring, epoch } = this.#current();
      const next = ring.clone();
      next.setRootKey(newRootKey);
      await this.#commit(next, epoch, true);
      this.#log.info("barrier root key changed (rekey)", { term: next.activeTerm });
    });
  }

  rotationConfig(): RotationConfig {
    return this.#requireUnsealed().rotationConfig();
  }

  /**
   * Changes the automatic-rotation policy and persists it. `maxOperations` must lie in
   * [1 000 000, 3 865 470 566]; `intervalMs` must be 0 (off) or at least 24 h.
   */
  async setRotationConfig(cfg: Partial<RotationConfig>): Promise<void> {
    this.#requireUnsealed();
    if (typeof cfg !== "object" || cfg === null) {
      throw new BarrierError("invalid_rotation_config", "rotation config must be an object");
    }
    for (const k of Object.keys(cfg)) {
      if (!ROTATION_FIELDS.has(k)) {
        throw new BarrierError(
          "invalid_rotation_config",
          `unknown rotation config field ${JSON.stringify(k)}: use disabled, maxOperations or intervalMs`,
        );
      }
    }
    const { disabled, maxOperations, intervalMs } = cfg;
    if (disabled !== undefined && typeof disabled !== "boolean") {
      throw new BarrierError("invalid_rotation_config", `disabled must be a boolean, got ${typeof disabled}`);
    }
    if (
      maxOperations !== undefined &&
      (!Number.isSafeInteger(maxOperations) ||
        maxOperations < ABSOLUTE_OPERATION_MINIMUM ||
        maxOperations > ABSOLUTE_OPERATION_MAXIMUM)
    ) {
      throw new BarrierError(
        "invalid_rotation_config",
        `maxOperations must be an integer between ${ABSOLUTE_OPERATION_MINIMUM} and ${ABSOLUTE_OPERATION_MAXIMUM} (AES-GCM's safe limit per key), got ${maxOperations}`,
      );
    }
    if (
      intervalMs !== undefined &&
      (!Number.isSafeInteger(intervalMs) ||
        intervalMs < 0 ||
        (intervalMs > 0 && intervalMs < MINIMUM_ROTATION_INTERVAL_MS))
    ) {
      throw new BarrierError(
        "invalid_rotation_config",
        `intervalMs must be 0 (no time-based rotation) or a whole number of milliseconds of at least ${MINIMUM_ROTATION_INTERVAL_MS} (24 h), got ${intervalMs}`,
      );
    }
    return this.#exclusive(async () => {
      const { ring, epoch } = this.#current();
      const before = ring.rotationConfig();
      const next = ring.clone();
      next.setRotationConfig(cfg);
      const after = next.rotationConfig();
      if (
        after.disabled === before.disabled &&
        after.maxOperations === before.maxOperations &&
        next.rotationIntervalNs === ring.rotationIntervalNs
      ) {
        next.zero();
        return;
      }
      await this.#commit(next, epoch, true);
      this.#log.info("barrier rotation config changed", { ...after });
    });
  }

  /**
   * Vault's periodic check: rotates when the active term is due (same reasons and order as
   * Vault: an untracked key older than a year, more than `maxOperations` encryptions, or older
   * than the interval) and returns why; otherwise persists the encryption counter and returns
   * `undefined`.
   */
  async checkAutoRotate(): Promise<AutoRotateReason | undefined> {
    this.#requireUnsealed();
    return this.#exclusive(async () => {
      const { ring, epoch } = this.#current();
      const rc = ring.rotationConfig();
      let reason: AutoRotateReason | undefined;
      if (!rc.disabled) {
        const active = ring.activeKey();
        const ops = active.encryptions + this.#unaccounted;
        const ageMs = this.#now().getTime() - active.installTime.epochMs();
        if (active.encryptions === 0 && !active.installTime.isZero() && ageMs > LEGACY_ROTATION_AGE_MS) {
          reason = "legacy rotation";
        } else if (ops > rc.maxOperations) {
          reason = "reached max operations";
        } else if (ring.rotationIntervalNs > 0n && ageMs > rc.intervalMs) {
          reason = "rotation interval reached";
        }
      }
      if (reason !== undefined) {
        this.#log.info("barrier key auto-rotation", { reason, term: ring.activeTerm });
        await this.#rotateLocked();
        return reason;
      }
      if (this.#unaccounted > 0) await this.#commit(ring.clone(), epoch, true);
      return undefined;
    });
  }

  /** Re-reads `core/keyring` with the root key in memory (a standby after a rotate or rekey). */
  async reloadKeyring(): Promise<void> {
    this.#requireUnsealed();
    return this.#exclusive(async () => {
      const { ring, epoch } = this.#current();
      const entry = await this.#storage.get(KEYRING_PATH);
      this.#checkEpoch(epoch);
      if (entry === undefined) {
        throw new BarrierError(
          "keyring_missing",
          "keyring unexpectedly missing from core/keyring: the storage was wiped or replaced; seal and restore it",
        );
      }
      const next = this.#openKeyring(
        entry.value,
        ring.rootKey.bytes,
        "core/keyring no longer opens with the root key in memory: it was rekeyed; run reloadRootKey() first",
      );
      // Vault resets the counters here: this may be a leadership change.
      this.#unaccounted = 0;
      this.#install(next);
      this.#log.info("barrier keyring reloaded", { term: next.activeTerm });
    });
  }

  /**
   * Reads the root-key copy (`core/master`, or OpenBao's `core/root-key`) through the barrier
   * and adopts it when it differs from the one in memory (a standby after a rekey). Missing
   * records are ignored, as in Vault.
   */
  async reloadRootKey(): Promise<void> {
    this.#requireUnsealed();
    return this.#exclusive(async () => {
      const { ring, epoch } = this.#current();
      let path = ROOT_KEY_PATH;
      let entry = await this.#storage.get(path);
      if (entry === undefined) {
        path = OPENBAO_ROOT_KEY_PATH;
        entry = await this.#storage.get(path);
      }
      this.#checkEpoch(epoch);
      if (entry === undefined) return;
      const plain = decryptFrame(this.#aeads, path, entry.value);
      let record: ReturnType<typeof deserializeKey>;
      try {
        record = deserializeKey(plain);
      } finally {
        plain.fill(0);
      }
      try {
        if (record.value.length !== AES_256_KEY_BYTES) {
          throw new BarrierError(
            "invalid_keyring",
            `root key record at ${path} holds ${record.value.length} bytes, expected ${AES_256_KEY_BYTES}`,
          );
        }
        if (ring.hasRootKey(record.value)) return;
        const next = ring.clone();
        next.setRootKey(record.value);
        this.#install(next);
        this.#log.info("barrier root key reloaded", { path });
      } finally {
        record.value.fill(0);
      }
    });
  }

  /**
   * Standby catch-up: while `core/upgrade/<active term>` exists, decrypt it with the active term
   * and install the term it carries. Returns whether any term was added.
   */
  async checkUpgrade(): Promise<boolean> {
    this.#requireUnsealed();
    return this.#exclusive(async () => {
      let upgraded = false;
      for (;;) {
        const { ring, epoch } = this.#current();
        const term = ring.activeTerm;
        const path = `${UPGRADE_PREFIX}${term}`;
        const entry = await this.#storage.get(path);
        this.#checkEpoch(epoch);
        if (entry === undefined) return upgraded;
        const plain = decryptFrame(this.#aeads, path, entry.value);
        let record: ReturnType<typeof deserializeKey>;
        try {
          record = deserializeKey(plain);
        } finally {
          plain.fill(0);
        }
        try {
          // An upgrade entry for term N carries term N+1; anything else would loop or go back.
          if (record.term !== term + 1) {
            throw new BarrierError(
              "invalid_keyring",
              `upgrade entry ${path} carries term ${record.term}, expected ${term + 1}; reload the keyring instead`,
            );
          }
          const next = ring.clone();
          next.addKey({
            term: record.term,
            version: record.version,
            value: record.value,
            installTime: record.installTime,
            encryptions: record.encryptions,
          });
          this.#install(next);
        } finally {
          record.value.fill(0);
        }
        upgraded = true;
        this.#log.info("upgraded to new key term", { term: record.term });
      }
    });
  }

  /**
   * Schedules deletion of every `core/upgrade/*` entry after the grace period (Vault does this
   * when a node becomes active). Returns how many were scheduled.
   */
  async scheduleUpgradeCleanup(): Promise<number> {
    this.#requireUnsealed();
    const epoch = this.#epoch;
    const names = await this.#storage.list(UPGRADE_PREFIX);
    this.#checkEpoch(epoch);
    let n = 0;
    for (const name of names) {
      if (name.endsWith("/")) continue;
      this.#scheduleDelete(`${UPGRADE_PREFIX}${name}`);
      n++;
    }
    return n;
  }

  /** The Shamir KEK stored at `core/shamir-kek`, if any. */
  async shamirKek(): Promise<Uint8Array | undefined> {
    const entry = await this.get(SHAMIR_KEK_PATH);
    return entry?.value;
  }

  /** Stores the Shamir KEK at `core/shamir-kek` (flagged for seal wrap). */
  async setShamirKek(kek: Uint8Array): Promise<void> {
    this.#requireUnsealed();
    requireKey("Shamir KEK", kek);
    await this.put({ key: SHAMIR_KEK_PATH, value: kek, sealWrap: true });
  }

  // ------------------------------------------------------------------------------------------
  // Internals

  #requireUnsealed(): Keyring {
    const ring = this.#keyring;
    if (ring === undefined) throw new BarrierSealedError();
    return ring;
  }

  #current(): { ring: Keyring; epoch: number } {
    return { ring: this.#requireUnsealed(), epoch: this.#epoch };
  }

  #checkEpoch(epoch: number): void {
    if (epoch !== this.#epoch || this.#keyring === undefined) throw new BarrierSealedError();
  }

  #installTime(): GoTime {
    return GoTime.fromDate(this.#now());
  }

  /** Runs key-management operations one at a time, in call order. */
  #exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(fn, fn);
    this.#queue = run.catch(() => undefined);
    return run;
  }

  /**
   * Persists `next` with the pending encryption count folded into its active term, then makes it
   * the keyring in memory. `next` is wiped when anything fails.
   */
  async #commit(next: Keyring, epoch: number, foldCount: boolean): Promise<void> {
    const pending = foldCount ? this.#unaccounted : 0;
    try {
      // +1: the core/master encryption the persist itself performs (as Vault counts it).
      if (foldCount) next.activeKey().encryptions += pending + 1;
      const aead = this.#aeads.get(next.activeTerm);
      if (aead === undefined) throw new BarrierError("invalid_keyring", "active term has no prepared key");
      await this.#persistKeyring(next, aead, epoch);
    } catch (e) {
      next.zero();
      throw e;
    }
    this.#unaccounted -= pending;
    this.#install(next);
  }

  async #rotateLocked(): Promise<KeyStatus> {
    const { ring, epoch } = this.#current();
    const prevTerm = ring.activeTerm;
    if (prevTerm >= MAX_TERM) {
      throw new BarrierError("term_exhausted", `cannot rotate past term ${MAX_TERM} (terms are 32-bit)`);
    }
    const newTerm = prevTerm + 1;
    const next = ring.clone();
    const value = randomBytes(AES_256_KEY_BYTES);
    try {
      next.addKey({ term: newTerm, value, installTime: this.#installTime() });
    } finally {
      value.fill(0);
    }
    const newKey = next.activeKey();
    // The count restarts with the new term; 1 for the core/master write below.
    newKey.encryptions = 1;
    try {
      await this.#persistKeyring(next, new AesGcmKey(newKey.value), epoch);
    } catch (e) {
      next.zero();
      throw e;
    }
    this.#unaccounted = 0;
    this.#install(next);
    this.#log.info("barrier key rotated", { term: newTerm });

    // Standbys that only know term N find term N+1 here (Vault's CreateUpgrade).
    const upgradePath = `${UPGRADE_PREFIX}${prevTerm}`;
    const record = serializeKey({
      term: newKey.term,
      version: newKey.version,
      value: newKey.value.bytes,
      installTime: newKey.installTime,
      encryptions: 0,
    });
    try {
      const prevAead = this.#aeads.get(prevTerm) as AesGcmKey;
      await this.#storage.put({
        key: upgradePath,
        value: encryptFrame(prevAead, prevTerm, upgradePath, record),
      });
    } catch (e) {
      this.#log.warn("rotated, but could not write the upgrade entry: standbys must reloadKeyring()", {
        term: newTerm,
        path: upgradePath,
      });
      throw e;
    } finally {
      record.fill(0);
    }
    // Sealed while the entry was written: seal() already cancelled the cleanups, so schedule none
    // (it would fire after a later unseal, e.g. on a standby, and delete what others still need).
    this.#checkEpoch(epoch);
    this.#scheduleDelete(upgradePath);
    return this.keyStatus();
  }

  /**
   * Writes `core/keyring` (root key, term-1 framing, AAD "core/keyring") and then `core/master`
   * (root-key record under the active term). Both are CSPs: flagged for seal wrap.
   *
   * All or nothing while the process lives: when `core/master` cannot be written, the two records
   * are put back as they were before and the error is rethrown; the caller then truly has changed
   * nothing (after a rekey the old root key still opens the keyring). When the barrier is sealed
   * (a new `epoch`) in between, only a root-key change is put back: a sealed node may no longer
   * be the active one, and a new keyring beside the old `core/master` still opens and reads.
   * Only a crash between the writes leaves the new keyring behind, and only a failed restore
   * reports `keyring_not_restored`.
   */
  async #persistKeyring(ring: Keyring, activeAead: AesGcmKey, epoch: number | undefined): Promise<void> {
    const changesRootKey = this.#keyring !== undefined && !this.#keyring.hasRootKey(ring.rootKey.bytes);
    const before = await Promise.all([this.#storage.get(KEYRING_PATH), this.#storage.get(ROOT_KEY_PATH)]);
    if (epoch !== undefined) this.#checkEpoch(epoch);
    const json = ring.serialize();
    let value: Uint8Array;
    try {
      value = encryptFrame(new AesGcmKey(ring.rootKey), INITIAL_KEY_TERM, KEYRING_PATH, json);
    } finally {
      json.fill(0);
    }
    await this.#storage.put({ key: KEYRING_PATH, value, sealWrap: true });

    try {
      if (epoch !== undefined) this.#checkEpoch(epoch);
      // Vault writes the root-key record with a zero InstallTime.
      const record = serializeKey({
        term: 1,
        version: 1,
        value: ring.rootKey.bytes,
        installTime: GoTime.ZERO,
        encryptions: 0,
      });
      try {
        value = encryptFrame(activeAead, ring.activeTerm, ROOT_KEY_PATH, record);
      } finally {
        record.fill(0);
      }
      await this.#storage.put({ key: ROOT_KEY_PATH, value, sealWrap: true });
      if (epoch !== undefined) this.#checkEpoch(epoch);
    } catch (e) {
      const sealed = epoch !== undefined && epoch !== this.#epoch;
      if (!sealed || changesRootKey) await this.#restoreKeyRecords(before, e);
      throw e;
    }
  }

  /** Puts `core/keyring` and `core/master` back as `before` read them (absent ones are deleted). */
  async #restoreKeyRecords(before: (Entry | undefined)[], cause: unknown): Promise<void> {
    try {
      for (const [i, key] of [KEYRING_PATH, ROOT_KEY_PATH].entries()) {
        const old = before[i];
        if (old === undefined) await this.#storage.delete(key);
        else await this.#storage.put({ key, value: old.value, sealWrap: true });
      }
      this.#log.warn("keyring change failed; the previous keyring was put back", { error: String(cause) });
    } catch (restoreError) {
      throw new BarrierError(
        "keyring_not_restored",
        `core/keyring was rewritten but the change could not be completed (${String(cause)}), and putting the previous keyring back failed too (${String(restoreError)}): storage now holds the new keyring, which after a rekey opens only with the new root key — keep that key, then retry the operation`,
        { cause },
      );
    }
  }

  /** Decrypts and parses a `core/keyring` ciphertext with `rootKey`. */
  #openKeyring(ciphertext: Uint8Array, rootKey: Uint8Array, wrongKeyMessage?: string): Keyring {
    // The keyring is always framed with term 1, whatever the active term (Vault: "term mis-match").
    if (ciphertext.length >= CIPHERTEXT_OVERHEAD && frameTerm(ciphertext) !== INITIAL_KEY_TERM) {
      throw new BarrierError(
        "invalid_keyring",
        `core/keyring is framed with term ${frameTerm(ciphertext)}, expected ${INITIAL_KEY_TERM}: not a barrier keyring`,
      );
    }
    const rootAead = new AesGcmKey(rootKey);
    let plain: Uint8Array;
    try {
      plain = decryptFrame(new Map([[INITIAL_KEY_TERM, rootAead]]), KEYRING_PATH, ciphertext);
    } catch (e) {
      if (e instanceof BarrierCiphertextError && e.code === "authentication_failed") {
        throw new BarrierInvalidKeyError(wrongKeyMessage, { cause: e });
      }
      throw e;
    }
    try {
      const ring = Keyring.deserialize(plain);
      if (!ring.hasRootKey(rootKey)) {
        ring.zero();
        throw new BarrierError(
          "invalid_keyring",
          "core/keyring opened with the root key but names a different MasterKey: the keyring is inconsistent",
        );
      }
      return ring;
    } finally {
      plain.fill(0);
    }
  }

  /** Makes `ring` the keyring in memory, reusing prepared keys of unchanged terms; wipes the old one. */
  #install(ring: Keyring): void {
    const old = this.#keyring;
    const aeads = new Map<number, AesGcmKey>();
    for (const term of ring.terms()) {
      const key = ring.term(term);
      if (key === undefined) continue;
      const prev = this.#aeads.get(term);
      const same = prev !== undefined && old?.term(term)?.value.equals(key.value.bytes) === true;
      aeads.set(term, same ? prev : new AesGcmKey(key.value));
    }
    this.#keyring = ring;
    this.#aeads = aeads;
    this.#activeTerm = ring.activeTerm;
    this.#activeAead = aeads.get(ring.activeTerm);
    if (old !== undefined && old !== ring) old.zero();
  }

  #scheduleDelete(path: string): void {
    const timer = setTimeout(() => {
      this.#timers.delete(timer);
      if (this.sealed) return;
      // Through a promise so a backend that throws synchronously cannot crash the timer.
      Promise.resolve()
        .then(() => this.#storage.delete(path))
        .then(
          () => this.#log.debug("upgrade entry removed", { path }),
          (e: unknown) => this.#log.warn("could not remove upgrade entry", { path, error: String(e) }),
        );
    }, this.#gracePeriodMs);
    // A pending cleanup must not keep the process alive.
    timer.unref();
    this.#timers.add(timer);
  }
}

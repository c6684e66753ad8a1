import { AES_256_KEY_BYTES, AesGcmKey, randomBytes } from "@bulwark/crypto";
import type { Backend, Entry } from "@bulwark/storage";
import { INITIAL_KEY_TERM, KEYRING_PATH, SHAMIR_KEK_PATH } from "./constants.js";
import {
  type AutoRotateReason,
  type BarrierContext,
  type BarrierLogger,
  installTime,
  type KeyStatus,
} from "./context.js";
import {
  BarrierAlreadyInitializedError,
  BarrierError,
  BarrierNotInitializedError,
  BarrierSealedError,
} from "./errors.js";
import { decryptFrame, encryptFrame } from "./frame.js";
import { commitKeyring, openKeyring, persistKeyring } from "./key-records.js";
import { KeyState } from "./key-state.js";
import { Keyring, type RotationConfig } from "./keyring.js";
import { CORE_PREFIX } from "./layout.js";
import { checkAutoRotateLocked, rotateLocked, setRotationConfigLocked } from "./rotation.js";
import { reloadKeyringLocked, reloadRootKeyLocked } from "./standby.js";
import { checkUpgradeLocked, scheduleUpgradeCleanup, UpgradeCleanup } from "./upgrades.js";
import {
  requireBackend,
  requireBytes,
  requireKey,
  requirePath,
  requireRotationConfig,
  upgradeGracePeriod,
} from "./validate.js";

export type { AutoRotateReason, BarrierLogger, KeyStatus } from "./context.js";

export interface BarrierOptions {
  /** Clock for install times and the rotation interval (tests inject one). */
  now?: () => Date;
  /** How long `core/upgrade/<N>` stays after a rotation, for standbys to pick up; default 120 000. */
  upgradeGracePeriodMs?: number;
  /** Receives lifecycle events; never key material. */
  logger?: BarrierLogger;
}

const NO_LOG: BarrierLogger = { debug() {}, info() {}, warn() {} };

/**
 * Vault's AES-GCM security barrier: everything written through it is encrypted with the active
 * keyring term (AAD = the storage key) before it reaches `storage`, in the exact byte format
 * Vault and OpenBao use. Starts sealed; `unseal(rootKey)` decrypts `core/keyring`.
 *
 * Key management (initialize, unseal, rotate, rekey, reloads) runs one operation at a time; data
 * operations run concurrently with each other and with those. `seal()` wins over anything in
 * flight: an operation that was waiting on storage when the barrier sealed fails with
 * `BarrierSealedError` and installs nothing.
 *
 * This class is the facade: the keys in memory are a `KeyState`, and the key records
 * (key-records.ts), rotation (rotation.ts), standby reloads (standby.ts) and upgrade entries
 * (upgrades.ts) are functions of a shared `BarrierContext`, run inside this class's queue.
 */
export class AesGcmBarrier implements Backend {
  readonly #storage: Backend;
  readonly #log: BarrierLogger;
  readonly #keys = new KeyState();
  readonly #ctx: BarrierContext;
  #queue: Promise<unknown> = Promise.resolve();

  constructor(storage: Backend, options: BarrierOptions = {}) {
    requireBackend(storage);
    const grace = upgradeGracePeriod(options.upgradeGracePeriodMs);
    this.#storage = storage;
    this.#log = options.logger ?? NO_LOG;
    this.#ctx = {
      storage,
      keys: this.#keys,
      log: this.#log,
      now: options.now ?? (() => new Date()),
      upgrades: new UpgradeCleanup(storage, this.#keys, this.#log, grace),
    };
  }

  get sealed(): boolean {
    return this.#keys.sealed;
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
          ring.addKey({ term: INITIAL_KEY_TERM, value: termKey, installTime: installTime(this.#ctx) });
        } finally {
          termKey.fill(0);
        }
        const aead = new AesGcmKey(ring.activeKey().value);
        ring.activeKey().encryptions = 1; // the core/master write below
        await persistKeyring(this.#ctx, ring, aead, undefined);
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
      const epoch = this.#keys.epoch;
      const entry = await this.#storage.get(KEYRING_PATH);
      if (entry === undefined) throw new BarrierNotInitializedError();
      const ring = openKeyring(entry.value, rootKey);
      if (epoch !== this.#keys.epoch) {
        ring.zero();
        throw new BarrierSealedError("Bulwark was sealed while unsealing: unseal again");
      }
      this.#keys.install(ring);
      this.#log.info("barrier unsealed", { term: ring.activeTerm });
    });
  }

  /**
   * Wipes the root key and every term key, cancels pending upgrade-entry deletions and refuses
   * all further data operations until `unseal`. Idempotent. (Node's KeyObjects keep their own
   * native copy until garbage-collected; the references are dropped here.)
   */
  seal(): void {
    const wiped = this.#keys.seal();
    this.#ctx.upgrades.cancelAll();
    if (wiped) this.#log.info("barrier sealed");
  }

  // ------------------------------------------------------------------------------------------
  // Data (Backend)

  async get(key: string): Promise<Entry | undefined> {
    this.#keys.requireUnsealed();
    const entry = await this.#storage.get(key);
    if (entry === undefined) {
      this.#keys.requireUnsealed();
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
    this.#keys.requireUnsealed();
    await this.#storage.delete(key);
  }

  async list(prefix: string): Promise<string[]> {
    this.#keys.requireUnsealed();
    return this.#storage.list(prefix);
  }

  /** Barrier ciphertext of `plaintext` for `path` with the active term (counted for rotation). */
  encrypt(path: string, plaintext: Uint8Array): Uint8Array {
    const keys = this.#keys;
    const aead = keys.activeAead;
    if (aead === undefined) throw new BarrierSealedError();
    requirePath(path);
    requireBytes("plaintext", plaintext);
    const out = encryptFrame(aead, keys.activeTerm, path, plaintext);
    keys.unaccounted++;
    return out;
  }

  /** Opens a barrier ciphertext written for `path` with any installed term. */
  decrypt(path: string, ciphertext: Uint8Array): Uint8Array {
    if (this.#keys.sealed) throw new BarrierSealedError();
    requirePath(path);
    requireBytes("ciphertext", ciphertext);
    return decryptFrame(this.#keys.aeads, path, ciphertext);
  }

  // ------------------------------------------------------------------------------------------
  // Keys

  /** The active term, its install time and its encryption count. */
  keyStatus(): KeyStatus {
    return this.#keys.status();
  }

  /** Whether `rootKey` is the root key in memory (constant time). */
  verifyRootKey(rootKey: Uint8Array): boolean {
    const ring = this.#keys.requireUnsealed();
    requireBytes("root key", rootKey);
    return ring.hasRootKey(rootKey);
  }

  /**
   * Installs term N+1 and makes it active. Order matters for crash safety: the keyring with the
   * new term is persisted first, then `core/upgrade/<N>` (the new key encrypted with term N, for
   * standbys), which is deleted again after the grace period.
   */
  async rotate(): Promise<KeyStatus> {
    this.#keys.requireUnsealed();
    return this.#exclusive(() => rotateLocked(this.#ctx));
  }

  /**
   * Protects the keyring with a new root key: `core/keyring` is re-encrypted first, then
   * `core/master` rewritten, then the old root key is wiped. If that fails (or the barrier seals
   * meanwhile) both records are put back, so the old root key still opens the keyring; only a
   * crash in between leaves a keyring that opens with the new root key and a `core/master` the
   * term keys still decrypt.
   */
  async rekey(newRootKey: Uint8Array): Promise<void> {
    this.#keys.requireUnsealed();
    requireKey("new root key", newRootKey);
    return this.#exclusive(async () => {
      const { ring, epoch } = this.#keys.current();
      const next = ring.clone();
      next.setRootKey(newRootKey);
      await commitKeyring(this.#ctx, next, epoch, true);
      this.#log.info("barrier root key changed (rekey)", { term: next.activeTerm });
    });
  }

  rotationConfig(): RotationConfig {
    return this.#keys.requireUnsealed().rotationConfig();
  }

  /**
   * Changes the automatic-rotation policy and persists it. `maxOperations` must lie in
   * [1 000 000, 3 865 470 566]; `intervalMs` must be 0 (off) or at least 24 h.
   */
  async setRotationConfig(cfg: Partial<RotationConfig>): Promise<void> {
    this.#keys.requireUnsealed();
    requireRotationConfig(cfg);
    return this.#exclusive(() => setRotationConfigLocked(this.#ctx, cfg));
  }

  /**
   * Vault's periodic check: rotates when the active term is due (same reasons and order as
   * Vault: an untracked key older than a year, more than `maxOperations` encryptions, or older
   * than the interval) and returns why; otherwise persists the encryption counter and returns
   * `undefined`.
   */
  async checkAutoRotate(): Promise<AutoRotateReason | undefined> {
    this.#keys.requireUnsealed();
    return this.#exclusive(() => checkAutoRotateLocked(this.#ctx));
  }

  /** Re-reads `core/keyring` with the root key in memory (a standby after a rotate or rekey). */
  async reloadKeyring(): Promise<void> {
    this.#keys.requireUnsealed();
    return this.#exclusive(() => reloadKeyringLocked(this.#ctx));
  }

  /**
   * Reads the root-key copy (`core/master`, or OpenBao's `core/root-key`) through the barrier
   * and adopts it when it differs from the one in memory (a standby after a rekey). Missing
   * records are ignored, as in Vault.
   */
  async reloadRootKey(): Promise<void> {
    this.#keys.requireUnsealed();
    return this.#exclusive(() => reloadRootKeyLocked(this.#ctx));
  }

  /**
   * Standby catch-up: while `core/upgrade/<active term>` exists, decrypt it with the active term
   * and install the term it carries. Returns whether any term was added.
   */
  async checkUpgrade(): Promise<boolean> {
    this.#keys.requireUnsealed();
    return this.#exclusive(() => checkUpgradeLocked(this.#ctx));
  }

  /**
   * Schedules deletion of every `core/upgrade/*` entry after the grace period (Vault does this
   * when a node becomes active). Returns how many were scheduled.
   */
  scheduleUpgradeCleanup(): Promise<number> {
    return scheduleUpgradeCleanup(this.#ctx);
  }

  /** The Shamir KEK stored at `core/shamir-kek`, if any. */
  async shamirKek(): Promise<Uint8Array | undefined> {
    const entry = await this.get(SHAMIR_KEK_PATH);
    return entry?.value;
  }

  /** Stores the Shamir KEK at `core/shamir-kek` (flagged for seal wrap). */
  async setShamirKek(kek: Uint8Array): Promise<void> {
    this.#keys.requireUnsealed();
    requireKey("Shamir KEK", kek);
    await this.put({ key: SHAMIR_KEK_PATH, value: kek, sealWrap: true });
  }

  /** Runs key-management operations one at a time, in call order. */
  #exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(fn, fn);
    this.#queue = run.catch(() => undefined);
    return run;
  }
}

import { randomUUID } from "node:crypto";
import { AesGcmBarrier, type KeyStatus, LEADER_PREFIX, type RotationConfig } from "@bulwark/barrier";
import { type Seal, ShamirSeal } from "@bulwark/seal";
import type { Backend, Entry } from "@bulwark/storage";
import { resolveRetry } from "./auto-unseal.js";
import { AutoUnsealer } from "./auto-unsealer.js";
import { CoreError, InvalidRequestError, SealedError } from "./errors.js";
import { HaNode } from "./ha.js";
import { type InitContext, initializeStore } from "./initialize.js";
import { Journal } from "./journal.js";
import { KeyRecords } from "./key-records.js";
import { MigrationSeal } from "./migration-seal.js";
import { PostUnseal } from "./post-unseal.js";
import { Rekey } from "./rekey.js";
import { rewrapAll } from "./rewrap.js";
import { migrationPending, needsImplicitShamirSource, SealMigration } from "./seal-migration.js";
import { type RewrapProgress, type RewrapResult, SealWrapBackend } from "./seal-wrap-backend.js";
import { ShareCollector } from "./shares.js";
import { sealStatus } from "./status.js";
import { LifecycleSteps } from "./steps.js";
import {
  type ImplicitMigration,
  type InitRequest,
  type InitResult,
  type LeaderStatus,
  type Logger,
  type RekeyResult,
  type RekeyStatus,
  type RekeyTarget,
  type SealedStoreOptions,
  type SealStatus,
  silentLogger,
  VERSION,
} from "./types.js";
import { foreignSealMessage, submitUnsealShare, type UnsealerContext } from "./unseal.js";
import { initSeal } from "./util.js";

export type {
  ImplicitMigration,
  InitRequest,
  InitResult,
  LeaderStatus,
  Logger,
  RekeyResult,
  RekeyStatus,
  RekeyTarget,
  SealedStoreOptions,
  SealStatus,
} from "./types.js";
export { LEADER_PREFIX, VERSION };

/**
 * The embeddable sealed store: Vault's lifecycle (init, unseal, auto-unseal, seal, rotate,
 * rekey, seal migration, HA) over a barrier, a seal and a storage backend.
 *
 * The facade over collaborators cut along OpenBao's vault/ seams, each seeing the store through a
 * narrow context: {@link KeyRecords} (seal configurations, stored root and recovery keys),
 * {@link HaNode} (ha.go: election, standby catch-up, advertisements), {@link Rekey} (rekey.go),
 * {@link SealMigration} (seal_migration.go), {@link AutoUnsealer}, {@link LifecycleSteps} (the
 * rollback journal), {@link PostUnseal} (becoming active), initialize.ts and unseal.ts. This class
 * owns the barrier, the lifecycle queue, the seals and the sealed/closed state.
 */
export class SealedStore {
  readonly #raw: Backend;
  readonly #seal: Seal;
  /** The migration source; set later when an implicit migration is found at open. */
  #migrationSeal: Seal | undefined;
  readonly #wrapSeal: MigrationSeal;
  readonly #barrier: AesGcmBarrier;
  readonly #log: Logger;
  readonly #nodeId: string;
  readonly #opts: SealedStoreOptions;
  readonly #unseal = new ShareCollector();
  readonly #records: KeyRecords;
  readonly #ha: HaNode;
  readonly #rekey: Rekey;
  readonly #migration: SealMigration;
  readonly #auto: AutoUnsealer;
  readonly #steps: LifecycleSteps;
  readonly #post: PostUnseal;
  readonly #view: Backend;
  #implicit: ImplicitMigration | undefined;
  #sealedReason: string | undefined;
  #closed = false;
  /** Bumped by every seal(): a step that began before it must not unseal the barrier again. */
  #sealings = 0;
  /** Serialises lifecycle steps (init, unseal, seal, rekey, migration). */
  #queue: Promise<unknown> = Promise.resolve();

  private constructor(opts: SealedStoreOptions) {
    this.#opts = opts;
    this.#raw = opts.storage;
    this.#seal = opts.seal ?? new ShamirSeal();
    this.#migrationSeal = opts.migrationSeal;
    this.#log = opts.logger ?? silentLogger;
    this.#nodeId = opts.nodeId ?? randomUUID();
    this.#wrapSeal = new MigrationSeal(this.#seal, this.#migrationSeal);
    this.#barrier = new AesGcmBarrier(
      new SealWrapBackend(this.#raw, this.#wrapSeal, { disabled: opts.disableSealWrap === true }),
      opts.barrier,
    );
    this.#view = this.#barrierView();
    this.#records = new KeyRecords(this.#raw, this.#log);
    this.#steps = this.#newSteps();
    this.#ha = this.#newHaNode();
    this.#rekey = this.#newRekey();
    this.#migration = this.#newSealMigration();
    this.#auto = this.#newAutoUnsealer();
    this.#post = this.#newPostUnseal();
  }

  #barrierView(): Backend {
    const barrier = this.#barrier;
    return {
      get: async (key) => {
        this.#checkUnsealed();
        return this.#ha.read(key);
      },
      list: async (prefix) => {
        this.#checkUnsealed();
        return barrier.list(prefix);
      },
      put: async (entry) => {
        this.#checkWritable();
        return barrier.put(entry);
      },
      delete: async (key) => {
        this.#checkWritable();
        return barrier.delete(key);
      },
    };
  }

  #newSteps(): LifecycleSteps {
    return new LifecycleSteps({
      journal: new Journal(this.#raw),
      barrier: this.#barrier,
      log: this.#log,
      sealings: () => this.#sealings,
      loadConfig: () => this.#loadConfig(),
      clearShamirKeys: () => this.#clearShamirKeys(),
      sealForGood: async (reason) => {
        this.#sealedReason = reason;
        await this.#sealNow();
      },
    });
  }

  /** What most collaborators need: the seal, the key records, the barrier and the log. */
  #sealContext() {
    return {
      seal: this.#seal,
      records: this.#records,
      barrier: this.#barrier,
      log: this.#log,
    };
  }

  #unsealContext(): UnsealerContext {
    return {
      ...this.#sealContext(),
      collector: this.#unseal,
      ha: this.#ha,
      migration: this.#migration,
      migrationSeal: () => this.#migrationSeal,
      migrationPending: () => this.migrationPending,
      waiting: () => this.#auto.waiting,
      clearShamirKeys: () => this.#clearShamirKeys(),
      clearSealedReason: () => {
        this.#sealedReason = undefined;
      },
    };
  }

  #newHaNode(): HaNode {
    return new HaNode({
      ha: this.#opts.ha,
      nodeId: this.#nodeId,
      redirectAddr: this.#opts.redirectAddr ?? "",
      standbyPollMs: this.#opts.standbyPollMs ?? 10_000,
      log: this.#log,
      barrier: this.#barrier,
      becomeActive: (stillLeading) => this.#post.run(stillLeading),
    });
  }

  /** What rekey and seal migration share: the key records and the journaled steps. */
  #stepContext() {
    return {
      ...this.#sealContext(),
      rootKeyStep: (op: string, oldRoot: Uint8Array, fn: () => Promise<void>) =>
        this.#steps.rootKeyStep(op, oldRoot, fn),
      reloadAfterCommit: (written: () => void) => this.#steps.reloadAfterCommit(written),
    };
  }

  #newRekey(): Rekey {
    return new Rekey({ ...this.#stepContext(), step: (op, fn) => this.#steps.step(op, fn) });
  }

  #newSealMigration(): SealMigration {
    return new SealMigration({
      ...this.#stepContext(),
      migrationPending: () => this.migrationPending,
      sealings: () => this.#sealings,
    });
  }

  #newPostUnseal(): PostUnseal {
    return new PostUnseal({
      raw: this.#raw,
      seal: this.#seal,
      wrapSeal: this.#wrapSeal,
      records: this.#records,
      barrier: this.#barrier,
      ha: this.#ha,
      migration: this.#migration,
      log: this.#log,
      autoRotateCheckMs: this.#opts.autoRotateCheckMs ?? 5 * 60_000,
      sealWrapDisabled: this.#opts.disableSealWrap === true,
      migrationSeal: () => this.#migrationSeal,
      recoverJournal: () => this.#steps.recoverJournal(),
      loadConfig: () => this.#loadConfig(),
      serial: (fn) => this.#serial(fn),
    });
  }

  #newAutoUnsealer(): AutoUnsealer {
    return new AutoUnsealer({
      sealType: this.#seal.type,
      retry: resolveRetry(this.#opts.autoUnsealRetry),
      log: this.#log,
      sealed: () => this.#barrier.sealed,
      closed: () => this.#closed,
      sealedReason: () => this.#sealedReason,
      setSealedReason: (reason) => {
        this.#sealedReason = reason;
      },
      unsealThroughSeal: (signal) => this.#unsealThroughSeal(signal),
      stepDown: () => {
        this.#ha.active = false;
        this.#barrier.seal();
      },
      serial: (fn) => this.#serial(fn),
    });
  }

  /**
   * Opens a store: finishes (rolls back) any interrupted lifecycle step, reads the seal
   * configuration and, with an auto seal, unseals itself through the HSM/KMS. If that fails the
   * store stays sealed and `status().sealedReason` says why; while the seal is only unreachable it
   * keeps retrying in the background (see {@link SealedStoreOptions.autoUnsealRetry}).
   */
  static async open(opts: SealedStoreOptions): Promise<SealedStore> {
    if (opts.storage === undefined) throw new InvalidRequestError("storage is required: pass a Backend");
    if (opts.migrationSeal !== undefined && opts.seal === undefined && opts.migrationSeal.type === "shamir") {
      throw new InvalidRequestError(
        "migrating from Shamir needs a target seal: set seal to the new auto seal",
      );
    }
    const store = new SealedStore(opts);
    // With HA, a journal may belong to the active node's step in progress: only roll it back
    // when no other node holds the lock (otherwise the next active node does, at takeover).
    if (!(await store.#ha.lockHeldElsewhere())) await store.#steps.recoverJournal();
    if (opts.migrationSeal !== undefined && opts.migrationSeal.type === store.#seal.type) {
      // A same-type migration is told apart by key id, which an auto seal knows once initialised.
      await initSeal(store.#seal);
    }
    await store.#loadConfig();
    if (store.#records.config !== undefined && store.#seal.autoUnseal && !store.migrationPending) {
      await store.#auto.attempt(false);
    }
    return store;
  }

  get nodeId(): string {
    return this.#nodeId;
  }

  /**
   * True while the data is still protected by the migration source (unseal with `migrate: true`):
   * the stored seal type is the source's, or, for a migration between two seals of one type
   * (e.g. two KMS keys), the stored root key is still wrapped by the source's key.
   */
  get migrationPending(): boolean {
    return migrationPending(this.#migrationSeal, this.#seal, this.#records.config, this.#records.storedKeyId);
  }

  /**
   * Set when the store entered seal migration mode by itself ({@link SealedStoreOptions.implicitMigration}):
   * the data is protected by Shamir key shares but the configured seal is an auto seal. An embedder
   * reports it to the operator (unseal with `migrate: true`).
   */
  get implicitMigration(): ImplicitMigration | undefined {
    return this.#implicit === undefined ? undefined : { ...this.#implicit };
  }

  get sealed(): boolean {
    return this.#barrier.sealed;
  }

  /**
   * While this node is active (unsealed and, with HA, holding the lock): a number that stays the
   * same for as long as it stays active without interruption, and differs from every earlier
   * term of this store; `undefined` on a standby or when sealed. Only the active node writes, so
   * a cache of what this node wrote and read back is valid while the term is unchanged (the
   * server's KV metadata cache relies on it); when the term changes, such a cache is stale.
   */
  get activeTerm(): number | undefined {
    return this.#ha.activeTerm;
  }

  /**
   * Who is active (Vault's `sys/leader`). On a standby: the HA lock holder and the address it
   * advertised, re-read at most once a second once known (every call while no node is active or
   * the active node has not advertised an address). Sealed → {@link SealedError}.
   */
  async leader(): Promise<LeaderStatus> {
    this.#checkUnsealed();
    return this.#ha.leader();
  }

  status(): SealStatus {
    return sealStatus({
      records: this.#records,
      sealType: this.#seal.type,
      sealed: this.#barrier.sealed,
      unseal: this.#unseal,
      migration: this.migrationPending,
      storageType: this.#opts.storageType ?? this.#raw.constructor.name,
      haEnabled: this.#ha.enabled,
      active: this.activeTerm !== undefined,
      sealedReason: this.#sealedReason,
      auto: this.#auto,
    });
  }

  // ---------------------------------------------------------------- init

  async initialize(req: InitRequest): Promise<InitResult> {
    return this.#serial(async () => {
      this.#checkOpen();
      // With HA, nodes initialise one at a time (Vault's init lock); the second one then finds the
      // store initialised.
      const initLock = await this.#ha.acquireInitLock();
      try {
        return await this.#initialize(req);
      } finally {
        await initLock?.release().catch(() => undefined);
      }
    });
  }

  async #initialize(req: InitRequest): Promise<InitResult> {
    await this.#steps.recoverJournal();
    await this.#loadConfig();
    if (this.#records.config !== undefined)
      throw new CoreError("already_initialized", "Bulwark is already initialized");
    if (this.#migrationSeal !== undefined) {
      throw new InvalidRequestError(
        "cannot initialize while a migration seal is configured: remove the disabled seal",
      );
    }
    return initializeStore(this.#initContext(), req);
  }

  #initContext(): InitContext {
    return {
      ...this.#sealContext(),
      ha: this.#ha,
      auto: this.#auto,
      steps: this.#steps,
      clearShamirKeys: () => this.#clearShamirKeys(),
      setSealedReason: (reason) => {
        this.#sealedReason = reason;
      },
    };
  }

  // ---------------------------------------------------------------- unseal / seal

  /**
   * Submits one key share (hex, base64 or bytes). Shamir: unseal shares. Auto seals (after a
   * manual seal, or during migration away from one): recovery shares. Returns the status; at the
   * threshold the store unseals. A wrong key resets progress and changes nothing.
   */
  async unseal(
    keyShare: Uint8Array | string | undefined,
    opts: { reset?: boolean; migrate?: boolean } = {},
  ): Promise<SealStatus> {
    return this.#serial(async () => {
      this.#checkOpen();
      if (this.#records.config === undefined) await this.#loadConfig();
      const config = this.#records.config;
      if (config === undefined) throw new CoreError("not_initialized", "Bulwark is not initialized");
      // Vault: reset wins over a key given in the same request.
      if (opts.reset === true) {
        this.#unseal.reset();
        return this.status();
      }
      if (!this.#barrier.sealed) return this.status();
      if (keyShare === undefined)
        throw new InvalidRequestError("key is required: give one unseal key share, or reset");
      await submitUnsealShare(this.#unsealContext(), config, keyShare, opts.migrate === true);
      return this.status();
    });
  }

  /** Auto-unseal's attempt: the stored root key unwrapped by the seal. */
  async #unsealThroughSeal(signal: AbortSignal): Promise<void> {
    let rootKey: Uint8Array | undefined;
    try {
      await initSeal(this.#seal, signal);
      rootKey = await this.#records.readStoredKeys(this.#seal);
      if (signal.aborted) throw new CoreError("closed", "auto-unseal stopped by seal() or close()");
      await this.#barrier.unseal(rootKey);
      await this.#ha.start();
    } finally {
      rootKey?.fill(0);
    }
  }

  /** Seals: stops HA participation and auto-unseal retries, zeroes every key in memory. */
  async seal(): Promise<void> {
    // Now, not in turn: an auto-unseal attempt in flight must not hold the seal up (or unseal after it).
    this.#auto.abort();
    return this.#serial(async () => {
      await this.#sealNow();
    });
  }

  /** Seals and finalizes the seals; the store cannot be used afterwards. */
  async close(): Promise<void> {
    this.#auto.abort();
    await this.#serial(async () => {
      if (this.#closed) return;
      await this.#sealNow();
      this.#closed = true;
      // Both seals are finalized even if the first fails (a later close() returns early).
      try {
        await this.#seal.finalize();
      } finally {
        await this.#migrationSeal?.finalize();
      }
    });
  }

  // ---------------------------------------------------------------- data

  async get(path: string): Promise<Uint8Array | undefined> {
    this.#checkUnsealed();
    return (await this.#ha.read(path))?.value;
  }

  async put(path: string, value: Uint8Array, opts: { sealWrap?: boolean } = {}): Promise<void> {
    this.#checkWritable();
    const entry: Entry = { key: path, value };
    if (opts.sealWrap === true) entry.sealWrap = true;
    await this.#barrier.put(entry);
  }

  async delete(path: string): Promise<void> {
    this.#checkWritable();
    await this.#barrier.delete(path);
  }

  async list(prefix: string): Promise<string[]> {
    this.#checkUnsealed();
    return this.#barrier.list(prefix);
  }

  /**
   * Opens a value the barrier encrypted for `path` that is not stored under it: Vault's batch
   * tokens are `barrier.Encrypt(path "", TokenEntry)` handed to the client, and any server of the
   * data set must open them. Needs an unsealed store; a forged or foreign blob fails to open.
   */
  openBarrierValue(path: string, ciphertext: Uint8Array): Uint8Array {
    this.#checkUnsealed();
    return this.#barrier.decrypt(path, ciphertext);
  }

  /**
   * The barrier as a Backend (plaintext entries), for layers such as a KV engine. Reads need an
   * unsealed store; writes (put, delete) also need this node to be active: a standby refuses
   * them with code "standby" (Vault: only the active node writes).
   */
  get storage(): Backend {
    return this.#view;
  }

  // ---------------------------------------------------------------- keyring

  /**
   * Adds a key term. Serialised with the lifecycle steps: a rekey or migration that rolls back
   * restores the keyring it saved, which must not drop a term data was written with meanwhile.
   */
  async rotate(): Promise<KeyStatus> {
    return this.#serialWrite(async () => {
      const s = await this.#barrier.rotate();
      this.#log.info("barrier key rotated", { term: s.term });
      return s;
    });
  }

  keyStatus(): KeyStatus {
    this.#checkUnsealed();
    return this.#barrier.keyStatus();
  }

  rotationConfig(): RotationConfig {
    this.#checkUnsealed();
    return this.#barrier.rotationConfig();
  }

  async setRotationConfig(cfg: Partial<RotationConfig>): Promise<void> {
    // Stored in the keyring: serialised with steps that may roll the keyring back.
    return this.#serialWrite(() => this.#barrier.setRotationConfig(cfg));
  }

  // ---------------------------------------------------------------- rekey

  /**
   * Starts a rekey. `barrier`: new unseal shares and a new root key (Shamir), or a new root key
   * authorised by recovery shares (auto seals). `recovery`: new recovery shares (auto seals).
   */
  async rekeyInit(req: {
    secretShares?: number;
    secretThreshold?: number;
    target?: RekeyTarget;
  }): Promise<RekeyStatus> {
    return this.#serial(async () => {
      this.#checkWritable();
      return this.#rekey.init(req);
    });
  }

  rekeyStatus(): RekeyStatus | undefined {
    return this.#rekey.status();
  }

  rekeyCancel(): void {
    this.#rekey.cancel();
  }

  /** Adds one current share (unseal shares, or recovery shares with an auto seal). */
  async rekeyUpdate(keyShare: Uint8Array | string, nonce: string): Promise<RekeyStatus | RekeyResult> {
    return this.#serial(async () => {
      this.#checkWritable();
      return this.#rekey.update(keyShare, nonce);
    });
  }

  /**
   * Checks, without changing anything, that `shares` (at least the threshold, distinct) combine to
   * the current unseal key (Shamir) or recovery key (auto seals). Used to authorise operations such
   * as root token generation. Throws `invalid_key` when they do not.
   */
  async verifyKeyShares(shares: ReadonlyArray<Uint8Array | string>): Promise<void> {
    this.#checkUnsealed();
    await this.#rekey.verifyKeyShares(shares);
  }

  // ---------------------------------------------------------------- seal key upgrade, rewrap

  /**
   * Re-encrypts the stored root key and recovery key with the seal's current key when they were
   * written under an older key id (HSM key label changed, KMS alias re-pointed). Returns the
   * records upgraded.
   */
  async upgradeSealKeys(): Promise<string[]> {
    // Serialised with rekey: re-encrypting a root or recovery key read before a rekey stored a new
    // one would put the old key back (the store could no longer unseal).
    return this.#serialWrite(() => this.#records.upgradeSealKeys(this.#seal));
  }

  /**
   * Re-wraps every seal-wrapped entry with the seal's current key (after a seal key rotation or a
   * migration). With a seal that cannot wrap (Shamir, after migrating away from an auto seal),
   * wrapped entries are unwrapped instead: they stay barrier-encrypted.
   */
  async rewrap(onProgress?: (p: RewrapProgress) => void): Promise<RewrapResult> {
    this.#checkWritable();
    return rewrapAll(this.#raw, this.#wrapSeal, this.#log, onProgress, {
      sealWrapDisabled: this.#opts.disableSealWrap === true,
    });
  }

  // ---------------------------------------------------------------- internals

  async #serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(fn, fn);
    this.#queue = run.catch(() => undefined);
    return run;
  }

  /**
   * A write to records a lifecycle step's journal saves (keyring, stored keys), on the active node:
   * serialised with the steps, and after any journal left behind is rolled back.
   */
  async #serialWrite<T>(fn: () => Promise<T>): Promise<T> {
    return this.#serial(async () => {
      this.#checkWritable();
      await this.#steps.recoverJournal();
      return fn();
    });
  }

  #checkOpen(): void {
    if (this.#closed) throw new CoreError("closed", "the store was closed: open a new one");
  }

  #checkUnsealed(): void {
    this.#checkOpen();
    if (this.#barrier.sealed) {
      const reason = this.#auto.waitReason() ?? this.#sealedReason;
      throw new SealedError(reason ? `Bulwark is sealed: ${reason}` : undefined);
    }
  }

  #checkWritable(): void {
    this.#checkUnsealed();
    if (!this.#ha.active)
      throw new CoreError("standby", "this node is a standby: send writes to the active node");
  }

  async #loadConfig(): Promise<void> {
    await this.#records.load();
    const config = this.#records.config;
    if (config === undefined) return;
    if (
      this.#opts.implicitMigration === true &&
      needsImplicitShamirSource(this.#seal, this.#migrationSeal, config)
    ) {
      const source = new ShamirSeal();
      this.#migrationSeal = source;
      this.#wrapSeal.setPrevious(source);
      this.#implicit = { from: source.type, to: this.#seal.type };
    }
    const stored = config.type;
    if (stored !== this.#seal.type && stored !== this.#migrationSeal?.type) {
      this.#sealedReason = foreignSealMessage(stored, this.#seal.type);
    }
  }

  async #sealNow(): Promise<void> {
    this.#sealings++;
    this.#auto.stop();
    this.#post.stop();
    this.#migration.discard();
    await this.#ha.stop();
    this.#barrier.seal();
    this.#unseal.reset();
    this.#rekey.cancel();
    this.#clearShamirKeys();
    this.#log.info("store sealed");
  }

  #clearShamirKeys(): void {
    if (this.#seal instanceof ShamirSeal) this.#seal.clearKey();
    if (this.#migrationSeal instanceof ShamirSeal) this.#migrationSeal.clearKey();
  }
}

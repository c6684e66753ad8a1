import { randomUUID } from "node:crypto";
import {
  AesGcmBarrier,
  BarrierCiphertextError,
  BarrierInvalidKeyError,
  type BarrierOptions,
  INIT_LOCK_PATH,
  KEY_RECORD_PATHS,
  type KeyStatus,
  LEADER_PREFIX,
  LOCK_PATH,
  type RotationConfig,
  SHAMIR_KEK_PATH,
} from "@bulwark/barrier";
import {
  constantTimeEqual,
  randomBytes,
  SecretBytes,
  shamirSplit,
  validateShamirParameters,
} from "@bulwark/crypto";
import {
  decodeBlobInfo,
  encodeBlobInfo,
  parseSealWrapped,
  type Seal,
  SealDecryptError,
  ShamirSeal,
} from "@bulwark/seal";
import { type Backend, type Entry, type HABackend, isTransactional, type Lock } from "@bulwark/storage";
import {
  type AutoUnsealRetryOptions,
  type AutoUnsealWait,
  autoUnsealDelayMs,
  formatDelay,
  isTransientUnsealError,
  type ResolvedRetry,
  resolveRetry,
} from "./auto-unseal.js";
import { CoreError, InvalidRequestError, SealedError } from "./errors.js";
import { Journal } from "./journal.js";
import { MigrationSeal } from "./migration-seal.js";
import {
  decodeSealConfig,
  encodeSealConfig,
  RECOVERY_CONFIG_PATH,
  RECOVERY_KEY_PATH,
  SEAL_CONFIG_PATH,
  type SealConfig,
  STORED_KEYS_PATH,
  sealConfig,
} from "./seal-config.js";
import { type RewrapProgress, type RewrapResult, SealWrapBackend } from "./seal-wrap-backend.js";
import { parseKeyShare, ShareCollector } from "./shares.js";

export const VERSION = "0.1.0";
export { LEADER_PREFIX };

const INIT_LOCK_WAIT_MS = 10_000;
/** How long a standby reuses what it learnt about the active node (lock holder and address). */
const LEADER_CACHE_MS = 1000;

export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
}

const silentLogger: Logger = { debug() {}, info() {}, warn() {}, error() {} };

export interface SealedStoreOptions {
  /** Physical storage (memory, file, Consul, or a plugin backend). */
  storage: Backend;
  /** The seal protecting the root key; default: a Shamir seal (key shares). */
  seal?: Seal;
  /**
   * The seal the data is protected by today when moving to `seal` (Vault's `disabled = true`
   * block). While set and the stored seal type is this seal's, the store does not auto-unseal:
   * unseal with `migrate: true` to migrate.
   */
  migrationSeal?: Seal;
  logger?: Logger;
  /** HA lock provider (usually the storage backend itself); omit for a single node. */
  ha?: HABackend;
  /** This node's id, stored as the HA lock value (default: a random UUID). */
  nodeId?: string;
  /** How often a standby checks for keyring upgrades (Vault: 10 s). */
  standbyPollMs?: number;
  /** How often the active node checks automatic rotation (Vault: 5 min). 0 disables the timer. */
  autoRotateCheckMs?: number;
  /** Name reported as `storage_type` in status. */
  storageType?: string;
  /**
   * Where clients should send requests while this node is active (Vault's `api_addr`). With HA
   * the active node advertises it to the standbys (`core/leader/<node id>`, through the barrier),
   * which report it in {@link SealedStore.leader} and forward requests there.
   */
  redirectAddr?: string;
  barrier?: BarrierOptions;
  /**
   * Auto seals: while the HSM/KMS (or the storage) is unreachable at open or right after init,
   * the store keeps trying to unseal itself with capped exponential backoff and jitter until it
   * succeeds, a failure that waiting cannot fix happens, or `seal()`/`close()` is called.
   * `status().autoUnseal` reports what it waits for. Default: 1 s doubling up to 10 s.
   */
  autoUnsealRetry?: AutoUnsealRetryOptions;
}

/** Who is active, as `sys/leader` reports it. */
export interface LeaderStatus {
  haEnabled: boolean;
  /** This node is the active node. */
  isSelf: boolean;
  /** The active node's advertised address; `""` when no node is active or it advertised none. */
  leaderAddress: string;
  /** The active node's id (the HA lock value); `undefined` when no node holds the lock. */
  leaderNodeId?: string;
  /** When this node became active (only when `isSelf`). */
  activeTime?: Date;
}

export interface SealStatus {
  type: string;
  initialized: boolean;
  sealed: boolean;
  /** Threshold: unseal shares (Shamir) or recovery shares (auto seals). */
  t: number;
  n: number;
  progress: number;
  nonce: string;
  version: string;
  migration: boolean;
  recoverySeal: boolean;
  recoverySealType?: string;
  storageType: string;
  haEnabled: boolean;
  /** Unsealed and holding the HA lock (always true without HA when unsealed). */
  active: boolean;
  /** Why the store is still sealed when it tried to unseal itself. */
  sealedReason?: string;
  /**
   * Set while an auto-sealed store waits for its seal (HSM/KMS unreachable) and retries
   * auto-unseal by itself; key shares cannot unseal it meanwhile, the seal is needed.
   */
  autoUnseal?: AutoUnsealWait;
}

export interface InitRequest {
  secretShares?: number;
  secretThreshold?: number;
  recoveryShares?: number;
  recoveryThreshold?: number;
}

export interface InitResult {
  /** Unseal key shares (Shamir), hex. Empty with an auto seal. */
  keys: string[];
  keysBase64: string[];
  /** Recovery key shares (auto seals), hex. */
  recoveryKeys: string[];
  recoveryKeysBase64: string[];
}

export type RekeyTarget = "barrier" | "recovery";

export interface RekeyStatus {
  started: boolean;
  nonce: string;
  t: number;
  n: number;
  progress: number;
  /** Shares needed to authorise the rekey (threshold of the current keys). */
  required: number;
  target: RekeyTarget;
}

export interface RekeyResult {
  complete: true;
  nonce: string;
  /** New shares (hex / base64); empty when an auto seal's root key was rekeyed. */
  keys: string[];
  keysBase64: string[];
}

interface RekeyOp {
  target: RekeyTarget;
  nonce: string;
  shares: number;
  threshold: number;
  collector: ShareCollector;
}

/** Every key below `prefix`, depth first. */
async function* walk(storage: Backend, prefix: string): AsyncGenerator<string> {
  for (const name of await storage.list(prefix)) {
    if (name.endsWith("/")) yield* walk(storage, prefix + name);
    else yield prefix + name;
  }
}

function safeKeyId(seal: Seal): string | undefined {
  try {
    return seal.keyId();
  } catch {
    return undefined;
  }
}

function tryKeyIdOf(blob: Uint8Array): string | undefined {
  try {
    return decodeBlobInfo(blob).keyInfo?.keyId;
  } catch {
    return undefined;
  }
}

// Views, not copies: Buffer.from(bytes) copies small inputs into Node's shared pool, where a key
// or share would outlive the zeroing of `b`.
const view = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.byteLength);
const hex = (b: Uint8Array) => view(b).toString("hex");
const b64 = (b: Uint8Array) => view(b).toString("base64");
const errText = (e: unknown) => (e instanceof Error ? e.message : String(e));

/**
 * The embeddable sealed store: Vault's lifecycle (init, unseal, auto-unseal, seal, rotate,
 * rekey, seal migration, HA) over a barrier, a seal and a storage backend.
 */
export class SealedStore {
  readonly #raw: Backend;
  readonly #seal: Seal;
  readonly #migrationSeal: Seal | undefined;
  readonly #wrapSeal: MigrationSeal;
  readonly #barrier: AesGcmBarrier;
  readonly #journal: Journal;
  readonly #log: Logger;
  readonly #ha: HABackend | undefined;
  readonly #nodeId: string;
  readonly #opts: SealedStoreOptions;
  readonly #unseal = new ShareCollector();
  #config: SealConfig | undefined;
  #recoveryConfig: SealConfig | undefined;
  #sealedReason: string | undefined;
  readonly #retry: ResolvedRetry;
  /** Auto-unseal is waiting for the seal: the next attempt's timer and what to report. */
  #autoWait: (AutoUnsealWait & { timer: NodeJS.Timeout; afterInit: boolean }) | undefined;
  /** Aborted by seal() and close(): stops auto-unseal retries and an attempt in flight. */
  #autoAbort = new AbortController();
  /** Key id recorded in the stored root-key blob (which seal key wraps it). */
  #storedKeyId: string | undefined;
  readonly #view: Backend;
  #activeFlag = false;
  /** Bumped whenever this node becomes or stops being active (see {@link activeTerm}). */
  #activeChanges = 0;
  #activeSince: Date | undefined;
  /** A standby's last answer about the active node. */
  #leaderSeen: { at: number; status: LeaderStatus } | undefined;
  get #active(): boolean {
    return this.#activeFlag;
  }
  set #active(v: boolean) {
    if (v === this.#activeFlag) return;
    this.#activeFlag = v;
    this.#activeChanges++;
    this.#activeSince = v ? new Date() : undefined;
    this.#leaderSeen = undefined;
  }
  /**
   * With HA, a migrating unseal only unseals; the migration itself runs once this node holds the
   * lock (as in Vault: only the active node migrates), so two nodes unsealed with `migrate` cannot
   * both write new key records.
   */
  #pendingMigration: { from: Seal; secret: SecretBytes; oldRoot: SecretBytes } | undefined;
  #rekey: RekeyOp | undefined;
  #lock: Lock | undefined;
  #haAbort: AbortController | undefined;
  #timers: NodeJS.Timeout[] = [];
  #rotateTimer: NodeJS.Timeout | undefined;
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
    this.#ha = opts.ha;
    this.#nodeId = opts.nodeId ?? randomUUID();
    this.#retry = resolveRetry(opts.autoUnsealRetry);
    this.#wrapSeal = new MigrationSeal(this.#seal, this.#migrationSeal);
    this.#barrier = new AesGcmBarrier(new SealWrapBackend(this.#raw, this.#wrapSeal), opts.barrier);
    const barrier = this.#barrier;
    this.#view = {
      get: async (key) => {
        this.#checkUnsealed();
        return this.#read(key);
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
    this.#journal = new Journal(this.#raw);
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
    if (!(await store.#lockHeldElsewhere())) await store.#recoverJournal();
    if (opts.migrationSeal !== undefined && opts.migrationSeal.type === store.#seal.type) {
      // A same-type migration is told apart by key id, which an auto seal knows once initialised.
      await store.#initSeal(store.#seal);
    }
    await store.#loadConfig();
    if (store.#config !== undefined && store.#seal.autoUnseal && !store.migrationPending) {
      await store.#autoUnseal(false);
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
    const from = this.#migrationSeal;
    const cfg = this.#config;
    if (from === undefined || cfg === undefined || cfg.type !== from.type) return false;
    if (cfg.type !== this.#seal.type) return true;
    return this.#storedKeyId !== undefined && this.#storedKeyId !== safeKeyId(this.#seal);
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
    return !this.#barrier.sealed && this.#activeFlag ? this.#activeChanges : undefined;
  }

  /**
   * Who is active (Vault's `sys/leader`). On a standby: the HA lock holder and the address it
   * advertised, re-read at most once a second once known (every call while no node is active or
   * the active node has not advertised an address). Sealed → {@link SealedError}.
   */
  async leader(): Promise<LeaderStatus> {
    this.#checkUnsealed();
    const own = this.#opts.redirectAddr ?? "";
    const self = (): LeaderStatus => {
      const s: LeaderStatus = {
        haEnabled: this.#ha !== undefined,
        isSelf: true,
        leaderAddress: own,
        leaderNodeId: this.#nodeId,
      };
      if (this.#activeSince !== undefined) s.activeTime = this.#activeSince;
      return s;
    };
    if (this.#ha === undefined || this.activeTerm !== undefined) return self();
    const seen = this.#leaderSeen;
    if (seen !== undefined && Date.now() - seen.at < LEADER_CACHE_MS) return seen.status;
    const holder = await this.#ha.lockWith(LOCK_PATH, this.#nodeId).value();
    const status: LeaderStatus = { haEnabled: true, isSelf: false, leaderAddress: "" };
    // This node holding the lock but not active yet is a takeover in progress: no address yet.
    if (holder.held && holder.value !== undefined && holder.value !== "" && holder.value !== this.#nodeId) {
      status.leaderNodeId = holder.value;
      const e = await this.#barrier.get(`${LEADER_PREFIX}${holder.value}`);
      if (e !== undefined) {
        try {
          const adv = JSON.parse(new TextDecoder().decode(e.value)) as { redirect_addr?: unknown };
          if (typeof adv.redirect_addr === "string") status.leaderAddress = adv.redirect_addr;
        } catch {
          this.#log.warn("unreadable active-node advertisement", { nodeId: holder.value });
        }
      }
    }
    // Only a complete answer is reused: during a failover (no holder yet, or a holder that has not
    // advertised yet) the next call looks again, instead of reporting "no address" for a second.
    if (status.leaderAddress !== "") this.#leaderSeen = { at: Date.now(), status };
    return status;
  }

  status(): SealStatus {
    const auto = this.#storedSealIsAuto();
    const cfg = auto ? this.#recoveryConfig : this.#config;
    const s: SealStatus = {
      type: this.#config?.type ?? this.#seal.type,
      initialized: this.#config !== undefined,
      sealed: this.#barrier.sealed,
      t: cfg?.secret_threshold ?? 0,
      n: cfg?.secret_shares ?? 0,
      progress: this.#unseal.progress,
      nonce: this.#unseal.nonce,
      version: VERSION,
      migration: this.migrationPending,
      recoverySeal: auto,
      storageType: this.#opts.storageType ?? this.#raw.constructor.name,
      haEnabled: this.#ha !== undefined,
      active: this.activeTerm !== undefined,
    };
    if (auto) s.recoverySealType = "shamir";
    if (this.#sealedReason !== undefined && this.#barrier.sealed) s.sealedReason = this.#sealedReason;
    const wait = this.#autoWait;
    if (wait !== undefined && this.#barrier.sealed) {
      s.autoUnseal = {
        seal: wait.seal,
        attempts: wait.attempts,
        lastError: wait.lastError,
        lastAttemptAt: new Date(wait.lastAttemptAt),
        nextAttemptAt: new Date(wait.nextAttemptAt),
        maxDelayMs: wait.maxDelayMs,
      };
      s.sealedReason = this.#waitReason(wait);
    }
    return s;
  }

  // ---------------------------------------------------------------- init

  async initialize(req: InitRequest): Promise<InitResult> {
    return this.#serial(async () => {
      this.#checkOpen();
      // With HA, nodes initialise one at a time (Vault's init lock): two concurrent inits would
      // interleave their key records (and roll back each other's journal), leaving shares that
      // open nothing. The second one then finds the store initialised.
      const initLock = await this.#acquireInitLock();
      try {
        return await this.#initialize(req);
      } finally {
        await initLock?.release().catch(() => undefined);
      }
    });
  }

  async #acquireInitLock(): Promise<Lock | undefined> {
    if (this.#ha === undefined) return undefined;
    const lock = this.#ha.lockWith(INIT_LOCK_PATH, this.#nodeId);
    const wait = new AbortController();
    const timer = setTimeout(() => wait.abort(), INIT_LOCK_WAIT_MS);
    timer.unref();
    try {
      await lock.acquire(wait.signal);
    } catch (e) {
      if (!wait.signal.aborted) throw e;
      throw new CoreError(
        "operation_in_progress",
        `another node is initializing the store (${INIT_LOCK_PATH} held for ${INIT_LOCK_WAIT_MS / 1000} s): check the seal status, then retry if it is still uninitialized`,
        { cause: e },
      );
    } finally {
      clearTimeout(timer);
    }
    return lock;
  }

  async #initialize(req: InitRequest): Promise<InitResult> {
    await this.#recoverJournal();
    await this.#loadConfig();
    if (this.#config !== undefined)
      throw new CoreError("already_initialized", "Bulwark is already initialized");
    if (this.#migrationSeal !== undefined) {
      throw new InvalidRequestError(
        "cannot initialize while a migration seal is configured: remove the disabled seal",
      );
    }
    const auto = this.#seal.autoUnseal;
    if (auto) {
      // Vault: auto seals store a single key; shares/threshold other than 1 make no sense.
      for (const [name, v] of [
        ["secret_shares", req.secretShares],
        ["secret_threshold", req.secretThreshold],
      ] as const) {
        if (v !== undefined && v !== 1) {
          throw new InvalidRequestError(
            `parameter ${name} not applicable to seal type ${this.#seal.type}: omit it or set 1`,
          );
        }
      }
      validateShamirParameters(req.recoveryShares ?? 5, req.recoveryThreshold ?? 3, {
        shares: "recovery_shares",
        threshold: "recovery_threshold",
      });
    } else {
      if (req.recoveryShares !== undefined || req.recoveryThreshold !== undefined) {
        throw new InvalidRequestError(
          "parameters recovery_shares and recovery_threshold apply only to auto-unseal seals",
        );
      }
      if (req.secretShares === undefined || req.secretThreshold === undefined) {
        throw new InvalidRequestError("secret_shares and secret_threshold are required with the Shamir seal");
      }
      validateShamirParameters(req.secretShares, req.secretThreshold);
    }
    await this.#initSeal(this.#seal);

    const rootKey = randomBytes(32);
    // Every key buffer made here (root key, KEK, recovery key, shares) is zeroed in the finally.
    const wipe: Uint8Array[] = [rootKey];
    const result: InitResult = { keys: [], keysBase64: [], recoveryKeys: [], recoveryKeysBase64: [] };
    try {
      await this.#step("initialize", async () => {
        if (auto) {
          const shares = req.recoveryShares ?? 5;
          const threshold = req.recoveryThreshold ?? 3;
          await this.#barrier.initialize(rootKey);
          await this.#putStoredKeys(this.#seal, rootKey);
          const recoveryKey = randomBytes(32);
          wipe.push(recoveryKey);
          const parts = await shamirSplit(recoveryKey, shares, threshold);
          wipe.push(...parts);
          await this.#putBlob(RECOVERY_KEY_PATH, this.#seal, recoveryKey);
          recoveryKey.fill(0);
          const rc = sealConfig("shamir", shares, threshold);
          await this.#raw.put({ key: RECOVERY_CONFIG_PATH, value: encodeSealConfig(rc) });
          result.recoveryKeys = parts.map(hex);
          result.recoveryKeysBase64 = parts.map(b64);
          // The seal config is written last: its presence is what "initialized" means.
          await this.#raw.put({
            key: SEAL_CONFIG_PATH,
            value: encodeSealConfig(sealConfig(this.#seal.type, 1, 1)),
          });
        } else {
          const shares = req.secretShares as number;
          const threshold = req.secretThreshold as number;
          const kek = randomBytes(32);
          wipe.push(kek);
          const parts = await shamirSplit(kek, shares, threshold);
          wipe.push(...parts);
          await this.#barrier.initialize(rootKey, kek);
          this.#shamir(this.#seal).setKey(kek);
          kek.fill(0);
          await this.#putStoredKeys(this.#seal, rootKey);
          result.keys = parts.map(hex);
          result.keysBase64 = parts.map(b64);
          await this.#raw.put({
            key: SEAL_CONFIG_PATH,
            value: encodeSealConfig(sealConfig("shamir", shares, threshold)),
          });
        }
      });
      // Committed: the store is initialised with these keys, so nothing below may lose them by
      // throwing — the caller would get an error instead of the only copy of the shares.
      await this.#reloadConfigAfterCommit(() => {
        this.#config = auto
          ? sealConfig(this.#seal.type, 1, 1)
          : sealConfig("shamir", req.secretShares as number, req.secretThreshold as number);
        this.#recoveryConfig = auto
          ? sealConfig("shamir", req.recoveryShares ?? 5, req.recoveryThreshold ?? 3)
          : undefined;
        this.#storedKeyId = safeKeyId(this.#seal);
      });
      this.#log.info("store initialized", { seal: this.#seal.type });
      if (auto) {
        // Like Vault, an auto-sealed store unseals itself right after init.
        try {
          await this.#barrier.unseal(rootKey);
          await this.#afterUnseal();
        } catch (e) {
          this.#active = false;
          this.#barrier.seal();
          // An operator's init: retries resume even after an earlier seal() stopped them.
          if (this.#autoAbort.signal.aborted) this.#autoAbort = new AbortController();
          if (isTransientUnsealError(e) && !this.#closed) this.#scheduleAutoUnseal(e, true);
          else {
            // Recovery keys cannot help here: they are verified through the same seal.
            this.#sealedReason = `initialized, but unsealing right after init failed: ${errText(e)}; fix the seal (its key, credentials or configuration) and reopen the store (restart the server)`;
            this.#log.warn("unseal after init failed; the store stays sealed", { error: errText(e) });
          }
        }
      }
    } finally {
      for (const b of wipe) b.fill(0);
      // Shamir: the store stays sealed after init, failed or not, so the seal keeps no KEK.
      if (!auto) this.#clearShamirKeys();
    }
    return result;
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
      if (this.#config === undefined) await this.#loadConfig();
      if (this.#config === undefined) throw new CoreError("not_initialized", "Bulwark is not initialized");
      // Vault: reset wins over a key given in the same request.
      if (opts.reset === true) {
        this.#unseal.reset();
        return this.status();
      }
      if (!this.#barrier.sealed) return this.status();
      if (keyShare === undefined)
        throw new InvalidRequestError("key is required: give one unseal key share, or reset");
      const stored = this.#config.type;
      if (stored !== this.#seal.type && stored !== this.#migrationSeal?.type) {
        // No key share can help: the configured seals cannot open what the stored one wrapped.
        throw new InvalidRequestError(
          `storage is sealed with seal type "${stored}" but the configured seal is "${this.#seal.type}": ` +
            `configure the "${stored}" seal as the migration source to migrate`,
        );
      }
      const migrating = this.migrationPending;
      if (migrating && opts.migrate !== true) {
        throw new CoreError(
          "migration",
          "the store is in seal migration mode: unseal with migrate=true (and the old unseal or recovery keys)",
        );
      }
      if (!migrating && opts.migrate === true) {
        throw new InvalidRequestError(
          "migrate=true given but no seal migration is pending: configure the old seal as the migration source",
        );
      }
      const wait = this.#autoWait;
      if (wait !== undefined && !migrating) {
        // Recovery shares are checked through the seal, so they cannot stand in for it.
        throw new CoreError(
          "seal_unavailable",
          `the ${wait.seal} seal is unreachable (${wait.lastError}): key shares cannot unseal the store without it; ` +
            "it unseals by itself once the seal is reachable (see seal-status)",
        );
      }
      const share = parseKeyShare(keyShare);
      const source = migrating ? (this.#migrationSeal as Seal) : this.#seal;
      const viaRecovery = source.autoUnseal;
      const threshold = viaRecovery
        ? (this.#recoveryConfig?.secret_threshold ?? 1)
        : this.#config.secret_threshold;
      // Zeroed whether it is taken or refused (wrong length, shares that do not combine).
      const secret = await this.#unseal.add(share, threshold).finally(() => share.fill(0));
      if (secret === undefined) return this.status();
      let rootKey: Uint8Array | undefined;
      try {
        await this.#initSeal(source);
        if (viaRecovery) {
          await this.#verifyRecoveryKey(source, secret);
          rootKey = await this.#readStoredKeys(source);
        } else {
          rootKey = await this.#unwrapWithKek(this.#shamir(source), secret);
        }
        await this.#barrier.unseal(rootKey);
      } catch (e) {
        if (!viaRecovery) this.#shamir(source).clearKey();
        secret.fill(0);
        rootKey?.fill(0);
        // Only a key that does not fit is an invalid key: storage or seal outages, a damaged or
        // foreign blob keep their own error (the operator's shares may well be right).
        const wrongKey =
          (e instanceof CoreError && e.code === "invalid_key") ||
          e instanceof BarrierInvalidKeyError ||
          (!viaRecovery && e instanceof SealDecryptError);
        if (!wrongKey) throw e;
        this.#log.warn("unseal failed: invalid key");
        throw new CoreError("invalid_key", "Unseal failed, invalid key", { cause: e });
      }
      try {
        if (migrating && this.#ha === undefined) await this.#migrate(source, secret, rootKey);
        else if (migrating) {
          this.#pendingMigration = {
            from: source,
            secret: SecretBytes.from(secret),
            oldRoot: SecretBytes.from(rootKey),
          };
        }
        this.#sealedReason = undefined;
        await this.#afterUnseal();
      } catch (e) {
        // Not active either: the next unseal starts a new active term.
        this.#active = false;
        this.#barrier.seal();
        // A failed migration or takeover leaves the store sealed: no seal may keep a KEK either.
        this.#clearShamirKeys();
        throw e;
      } finally {
        secret.fill(0);
        rootKey.fill(0);
      }
      this.#log.info("store unsealed", { migrated: migrating });
      return this.status();
    });
  }

  /** Seals: stops HA participation and auto-unseal retries, zeroes every key in memory. */
  async seal(): Promise<void> {
    // Now, not in turn: an auto-unseal attempt in flight must not hold the seal up (or unseal after it).
    this.#autoAbort.abort();
    return this.#serial(async () => {
      await this.#sealNow();
    });
  }

  /** Seals and finalizes the seals; the store cannot be used afterwards. */
  async close(): Promise<void> {
    this.#autoAbort.abort();
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
    return (await this.#read(path))?.value;
  }

  /**
   * A barrier read. A standby learns of the active node's key rotations by polling (every
   * `standbyPollMs`); a value written under a term it has not picked up yet makes it catch up
   * first instead of failing the read.
   */
  async #read(key: string): Promise<Entry | undefined> {
    try {
      return await this.#barrier.get(key);
    } catch (e) {
      if (!(e instanceof BarrierCiphertextError) || e.code !== "unknown_term" || this.#active) throw e;
      if (!(await this.#barrier.checkUpgrade())) {
        // Upgrade entries are kept for a grace period only: read the whole keyring instead (after
        // the root key, if the active node also rekeyed).
        try {
          await this.#barrier.reloadKeyring();
        } catch {
          await this.#barrier.reloadRootKey();
          await this.#barrier.reloadKeyring();
        }
      }
      return this.#barrier.get(key);
    }
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
      if (this.#rekey !== undefined) {
        throw new CoreError(
          "operation_in_progress",
          "a rekey is already in progress: finish it or cancel it first",
        );
      }
      const target = req.target ?? "barrier";
      const auto = this.#seal.autoUnseal;
      let shares: number;
      let threshold: number;
      if (target === "recovery") {
        if (!auto)
          throw new InvalidRequestError(
            "target recovery needs an auto seal: the Shamir seal has no recovery keys",
          );
        shares = req.secretShares ?? 0;
        threshold = req.secretThreshold ?? 0;
        validateShamirParameters(shares, threshold);
      } else if (auto) {
        // Auto seals keep one stored key; the rekey only replaces the root key.
        if ((req.secretShares ?? 1) !== 1 || (req.secretThreshold ?? 1) !== 1) {
          throw new InvalidRequestError(
            `secret_shares and secret_threshold must be 1 with seal type ${this.#seal.type}: use target=recovery to rekey recovery keys`,
          );
        }
        shares = 1;
        threshold = 1;
      } else {
        shares = req.secretShares ?? 0;
        threshold = req.secretThreshold ?? 0;
        validateShamirParameters(shares, threshold);
      }
      this.#rekey = { target, nonce: randomUUID(), shares, threshold, collector: new ShareCollector() };
      return this.rekeyStatus() as RekeyStatus;
    });
  }

  rekeyStatus(): RekeyStatus | undefined {
    const op = this.#rekey;
    if (op === undefined) return undefined;
    return {
      started: true,
      nonce: op.nonce,
      t: op.threshold,
      n: op.shares,
      progress: op.collector.progress,
      required: this.#authThreshold(),
      target: op.target,
    };
  }

  rekeyCancel(): void {
    this.#rekey?.collector.reset();
    this.#rekey = undefined;
  }

  /** Adds one current share (unseal shares, or recovery shares with an auto seal). */
  async rekeyUpdate(keyShare: Uint8Array | string, nonce: string): Promise<RekeyStatus | RekeyResult> {
    return this.#serial(async () => {
      this.#checkWritable();
      const op = this.#rekey;
      if (op === undefined)
        throw new CoreError("no_operation_in_progress", "no rekey is in progress: call rekey init first");
      if (nonce !== op.nonce)
        throw new CoreError("nonce_mismatch", "nonce does not match the rekey in progress");
      const share = parseKeyShare(keyShare);
      const secret = await op.collector.add(share, this.#authThreshold()).finally(() => share.fill(0));
      if (secret === undefined) return this.rekeyStatus() as RekeyStatus;
      try {
        await this.#verifyCurrentSecret(secret);
      } catch (e) {
        secret.fill(0);
        throw e;
      }
      secret.fill(0);
      this.#rekey = undefined;
      const result = await this.#performRekey(op);
      this.#log.info("rekey complete", { target: op.target });
      return result;
    });
  }

  /**
   * Checks, without changing anything, that `shares` (at least the threshold, distinct) combine to
   * the current unseal key (Shamir) or recovery key (auto seals). Used to authorise operations such
   * as root token generation. Throws `invalid_key` when they do not.
   */
  async verifyKeyShares(shares: ReadonlyArray<Uint8Array | string>): Promise<void> {
    this.#checkUnsealed();
    const threshold = this.#authThreshold();
    const collector = new ShareCollector();
    let secret: Uint8Array | undefined;
    for (const s of shares) {
      const share = parseKeyShare(s);
      try {
        secret = await collector.add(share, threshold);
      } catch (e) {
        collector.reset();
        throw e;
      } finally {
        share.fill(0);
      }
      if (secret !== undefined) break;
    }
    if (secret === undefined) {
      collector.reset();
      throw new InvalidRequestError(`${threshold} distinct key shares are needed, got fewer`);
    }
    try {
      await this.#verifyCurrentSecret(secret);
    } finally {
      secret.fill(0);
    }
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
    return this.#serialWrite(() => this.#upgradeSealKeysNow());
  }

  /** `upgradeSealKeys` without the active-node check: also run while taking over as active. */
  async #upgradeSealKeysNow(): Promise<string[]> {
    if (!this.#seal.autoUnseal) return [];
    const upgraded: string[] = [];
    const current = this.#seal.keyId();
    for (const key of [STORED_KEYS_PATH, RECOVERY_KEY_PATH]) {
      const e = await this.#raw.get(key);
      if (e === undefined) continue;
      const blob = decodeBlobInfo(e.value);
      if (blob.keyInfo?.keyId === current) continue;
      const plain = await this.#seal.decrypt(blob);
      try {
        await this.#putBlob(key, this.#seal, plain);
      } finally {
        plain.fill(0);
      }
      upgraded.push(key);
      this.#log.info("upgraded stored key to the seal's current key", { path: key, keyId: current });
    }
    return upgraded;
  }

  /**
   * Re-wraps every seal-wrapped entry with the seal's current key (after a seal key rotation or a
   * migration). With a seal that cannot wrap (Shamir, after migrating away from an auto seal),
   * wrapped entries are unwrapped instead: they stay barrier-encrypted.
   */
  async rewrap(onProgress?: (p: RewrapProgress) => void): Promise<RewrapResult> {
    this.#checkWritable();
    return this.#rewrapNow(onProgress);
  }

  /** `rewrap` without the active-node check: also run while taking over as active. */
  async #rewrapNow(onProgress?: (p: RewrapProgress) => void): Promise<RewrapResult> {
    if (this.#wrapSeal.supportsSealWrap) {
      return new SealWrapBackend(this.#raw, this.#wrapSeal).rewrap("", onProgress);
    }
    const result: RewrapResult = { processed: 0, rewrapped: 0, failed: 0, failedKeys: [] };
    for await (const key of walk(this.#raw, "")) {
      const e = await this.#raw.get(key);
      if (e === undefined) continue;
      result.processed++;
      const blob = parseSealWrapped(e.value);
      if (blob !== undefined) {
        try {
          const inner = await this.#wrapSeal.decrypt(blob);
          if (await this.#replaceIfUnchanged(key, e.value, inner)) result.rewrapped++;
        } catch (err) {
          this.#log.warn("could not unwrap a seal-wrapped entry", { key, error: errText(err) });
          result.failed++;
          result.failedKeys.push(key);
        }
      }
      onProgress?.({ processed: result.processed, rewrapped: result.rewrapped, failed: result.failed, key });
    }
    return result;
  }

  // ---------------------------------------------------------------- internals

  /**
   * Writes `next` at `key` only if it still holds `expected`: data writes are not serialised with
   * rewrap, so a value written since it was read must not be replaced by the older one. Atomic on
   * a transactional backend; otherwise a re-read narrows the window. Returns whether it wrote.
   */
  async #replaceIfUnchanged(key: string, expected: Uint8Array, next: Uint8Array): Promise<boolean> {
    if (isTransactional(this.#raw)) {
      try {
        await this.#raw.transaction([
          { op: "check", key, value: expected },
          { op: "put", entry: { key, value: next } },
        ]);
        return true;
      } catch (err) {
        const now = await this.#raw.get(key);
        if (now === undefined || !constantTimeEqual(now.value, expected)) return false;
        throw err;
      }
    }
    const now = await this.#raw.get(key);
    if (now === undefined || !constantTimeEqual(now.value, expected)) return false;
    await this.#raw.put({ key, value: next });
    return true;
  }

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
      await this.#recoverJournal();
      return fn();
    });
  }

  #checkOpen(): void {
    if (this.#closed) throw new CoreError("closed", "the store was closed: open a new one");
  }

  #checkUnsealed(): void {
    this.#checkOpen();
    if (this.#barrier.sealed) {
      const reason = this.#autoWait === undefined ? this.#sealedReason : this.#waitReason(this.#autoWait);
      throw new SealedError(reason ? `Bulwark is sealed: ${reason}` : undefined);
    }
  }

  #checkWritable(): void {
    this.#checkUnsealed();
    if (!this.#active)
      throw new CoreError("standby", "this node is a standby: send writes to the active node");
  }

  #storedSealIsAuto(): boolean {
    return this.#recoveryConfig !== undefined;
  }

  #authThreshold(): number {
    return this.#seal.autoUnseal
      ? (this.#recoveryConfig?.secret_threshold ?? 1)
      : (this.#config?.secret_threshold ?? 1);
  }

  #shamir(seal: Seal): ShamirSeal {
    if (!(seal instanceof ShamirSeal)) {
      throw new CoreError("seal_unavailable", `seal type ${seal.type} cannot be unsealed with key shares`);
    }
    return seal;
  }

  async #initSeal(seal: Seal, signal?: AbortSignal): Promise<void> {
    try {
      await seal.init(signal);
    } catch (e) {
      throw new CoreError("seal_unavailable", `seal ${seal.type} could not be initialized: ${errText(e)}`, {
        cause: e,
      });
    }
  }

  async #loadConfig(): Promise<void> {
    const c = await this.#raw.get(SEAL_CONFIG_PATH);
    this.#config = c === undefined ? undefined : decodeSealConfig(c.value, SEAL_CONFIG_PATH);
    const r = await this.#raw.get(RECOVERY_CONFIG_PATH);
    this.#recoveryConfig = r === undefined ? undefined : decodeSealConfig(r.value, RECOVERY_CONFIG_PATH);
    const k = await this.#raw.get(STORED_KEYS_PATH);
    this.#storedKeyId = k === undefined ? undefined : tryKeyIdOf(k.value);
    if (this.#config === undefined) return;
    // OpenBao ≥ 2.6 no longer writes stored_shares: what marks the legacy layout (the shares are
    // the root key itself, Vault < 1.3) is that no root key is stored, not the missing field.
    if (this.#config.stored_shares === 0 && k === undefined) {
      throw new CoreError(
        "invalid_request",
        `legacy Shamir seal: ${SEAL_CONFIG_PATH} has no stored_shares and there is no stored root key (${STORED_KEYS_PATH}), ` +
          "so the key shares are the root key itself (Vault < 1.3): rekey it once with Vault or OpenBao, which stores the root key, then open it with Bulwark",
      );
    }
    const stored = this.#config.type;
    if (stored !== this.#seal.type && stored !== this.#migrationSeal?.type) {
      this.#sealedReason =
        `storage is sealed with seal type "${stored}" but the configured seal is "${this.#seal.type}": ` +
        `configure the "${stored}" seal as the migration source to migrate`;
    }
  }

  async #lockHeldElsewhere(): Promise<boolean> {
    if (this.#ha === undefined) return false;
    const holder = await this.#ha.lockWith(LOCK_PATH, this.#nodeId).value();
    return holder.held && holder.value !== this.#nodeId;
  }

  /**
   * Rolls back a journal left by a step (or by a step whose own rollback failed). Run before every
   * step and before anything else that writes the records it saved (a rotation's keyring, an
   * upgraded stored key): a journal restored later would undo that write, and lose a key term.
   */
  async #recoverJournal(): Promise<void> {
    const op = await this.#journal.recover();
    if (op !== undefined) this.#log.warn("rolled back an interrupted lifecycle step", { op });
  }

  /**
   * One auto-unseal attempt (at open, or a retry). An unreachable seal or storage schedules the
   * next attempt; any other failure leaves the store sealed with the reason. `afterInit`: the
   * attempt continues the unseal that init does (for the reason's wording).
   */
  async #autoUnseal(afterInit: boolean): Promise<void> {
    if (this.#sealedReason !== undefined) return;
    const signal = this.#autoAbort.signal;
    const waited = this.#autoWait;
    let rootKey: Uint8Array | undefined;
    try {
      await this.#initSeal(this.#seal, signal);
      rootKey = await this.#readStoredKeys(this.#seal);
      if (signal.aborted) throw new CoreError("closed", "auto-unseal stopped by seal() or close()");
      await this.#barrier.unseal(rootKey);
      await this.#afterUnseal();
      this.#stopAutoUnseal();
      this.#log.info("auto-unsealed", {
        seal: this.#seal.type,
        ...(waited === undefined ? {} : { attempts: waited.attempts + 1 }),
      });
    } catch (e) {
      this.#active = false;
      this.#barrier.seal();
      // Stopped on purpose (seal, close): no retry, and no reason — nothing is wrong.
      if (signal.aborted || this.#closed) {
        this.#stopAutoUnseal();
        return;
      }
      if (isTransientUnsealError(e)) {
        this.#scheduleAutoUnseal(e, afterInit);
        return;
      }
      this.#stopAutoUnseal();
      // Recovery keys are no way out: they are verified through the same seal.
      this.#sealedReason = `stored unseal keys are present but the seal could not decrypt them: ${errText(e)}; fix the seal (its key, credentials or configuration) and reopen the store (restart the server)`;
      this.#log.warn("auto-unseal failed; the store stays sealed", { reason: this.#sealedReason });
    } finally {
      rootKey?.fill(0);
    }
  }

  /** Records a failed attempt and schedules the next one (through the lifecycle queue). */
  #scheduleAutoUnseal(e: unknown, afterInit: boolean): void {
    const prev = this.#autoWait;
    if (prev !== undefined) clearTimeout(prev.timer);
    const attempts = (prev?.attempts ?? 0) + 1;
    const delay = autoUnsealDelayMs(attempts, this.#retry);
    const signal = this.#autoAbort.signal;
    const timer = setTimeout(() => {
      this.#serial(async () => {
        if (this.#autoWait?.timer !== timer || signal.aborted || this.#closed) return;
        if (!this.#barrier.sealed) {
          this.#stopAutoUnseal();
          return;
        }
        this.#log.info("auto-unseal: trying again", { seal: this.#seal.type, attempt: attempts + 1 });
        await this.#autoUnseal(afterInit);
      }).catch((err: unknown) => {
        this.#log.error("auto-unseal attempt failed unexpectedly", { error: errText(err) });
      });
    }, delay);
    // Like the rotation timer: a store waiting for its seal does not keep the process alive.
    timer.unref();
    const now = Date.now();
    this.#autoWait = {
      seal: this.#seal.type,
      attempts,
      lastError: errText(e),
      lastAttemptAt: new Date(now),
      nextAttemptAt: new Date(now + delay),
      maxDelayMs: this.#retry.maxDelayMs,
      timer,
      afterInit: afterInit || prev?.afterInit === true,
    };
    this.#log.warn(`auto-unseal: the ${this.#seal.type} seal is unreachable; retrying`, {
      seal: this.#seal.type,
      attempt: attempts,
      error: errText(e),
      retryInMs: delay,
      maxDelayMs: this.#retry.maxDelayMs,
    });
  }

  #stopAutoUnseal(): void {
    if (this.#autoWait !== undefined) clearTimeout(this.#autoWait.timer);
    this.#autoWait = undefined;
  }

  /** `status().sealedReason` while waiting for the seal. */
  #waitReason(w: AutoUnsealWait & { afterInit: boolean }): string {
    const next = Math.max(0, w.nextAttemptAt.getTime() - Date.now());
    return (
      `${w.afterInit ? "initialized, but unsealing right after init failed; " : ""}` +
      `waiting for the ${w.seal} seal (${w.lastError}): retrying with backoff up to every ${formatDelay(w.maxDelayMs)}, ` +
      `next attempt in ${formatDelay(next)} (${w.attempts} failed so far); the store unseals by itself when the seal is reachable`
    );
  }

  /** Everything an unsealed node does: seal key upgrade, rewrap after migration, HA, timers. */
  async #afterUnseal(): Promise<void> {
    if (this.#ha === undefined) {
      this.#active = true;
      await this.#becomeActive();
    } else {
      this.#active = false;
      this.#startHA();
    }
  }

  /**
   * `stillLeading` (HA takeover) throws once this node lost the lock or was sealed: it is checked
   * before every step that writes, so a node deposed while taking over writes nothing more.
   */
  async #becomeActive(stillLeading: () => void = () => {}): Promise<void> {
    if (this.#ha !== undefined) {
      stillLeading();
      // A step the previous active node left unfinished is rolled back before anything else.
      await this.#recoverJournal();
      await this.#loadConfig();
      // Pick up what the previous active node changed: new terms (checkUpgrade follows the whole
      // chain of upgrade entries itself), a new root key.
      await this.#barrier.checkUpgrade();
      await this.#barrier.reloadRootKey();
      await this.#barrier.reloadKeyring();
      stillLeading();
      await this.#runPendingMigration();
      stillLeading();
      // Tell the standbys where to send requests (Vault's active-node advertisement).
      await this.#barrier.put({
        key: `${LEADER_PREFIX}${this.#nodeId}`,
        value: new TextEncoder().encode(JSON.stringify({ redirect_addr: this.#opts.redirectAddr ?? "" })),
      });
      await this.#removeStaleAdvertisements(stillLeading);
    }
    if (this.#seal.autoUnseal) {
      stillLeading();
      try {
        await this.#upgradeSealKeysNow();
      } catch (e) {
        this.#log.warn("post-unseal upgrade of seal keys failed", { error: errText(e) });
      }
    }
    if (this.#migrationSeal !== undefined) {
      // Finish a migration: every value wrapped by the old seal is re-wrapped (or unwrapped).
      stillLeading();
      const r = await this.#rewrapNow();
      if (r.rewrapped > 0) this.#log.info("re-wrapped seal-wrapped entries after seal migration", { ...r });
    }
    // Sealed or deposed meanwhile: no timer may outlive the session (#sealNow already cleared it).
    stillLeading();
    const every = this.#opts.autoRotateCheckMs ?? 5 * 60_000;
    // One check timer per store: each HA takeover would otherwise add another.
    if (this.#rotateTimer !== undefined) clearInterval(this.#rotateTimer);
    this.#rotateTimer = undefined;
    if (every > 0) {
      const t = setInterval(() => {
        if (this.#barrier.sealed || !this.#active) return;
        // Through the lifecycle queue, like rotate(): a term must not land inside a rekey's step.
        this.#serial(async () => {
          if (this.#barrier.sealed || !this.#active) return undefined;
          await this.#recoverJournal();
          return this.#barrier.checkAutoRotate();
        }).then(
          (reason) => reason && this.#log.info("automatic barrier key rotation", { reason }),
          (e) => this.#log.warn("automatic rotation check failed", { error: errText(e) }),
        );
      }, every);
      t.unref();
      this.#rotateTimer = t;
    }
  }

  /**
   * Deletes the advertisements of nodes that lost the lock without stepping down (Vault's
   * `cleanLeaderPrefix`); otherwise one is left behind per such node for good. Best effort.
   */
  async #removeStaleAdvertisements(stillLeading: () => void): Promise<void> {
    let stale: string[];
    try {
      stale = (await this.#barrier.list(LEADER_PREFIX)).filter(
        (id) => id !== this.#nodeId && !id.endsWith("/"),
      );
    } catch (e) {
      this.#log.warn("could not list active-node advertisements", { error: errText(e) });
      return;
    }
    for (const id of stale) {
      stillLeading();
      await this.#barrier.delete(`${LEADER_PREFIX}${id}`).catch((e: unknown) => {
        this.#log.warn("could not remove a stale active-node advertisement", {
          nodeId: id,
          error: errText(e),
        });
      });
    }
  }

  /** Runs a migration this node was unsealed for, now that it holds the HA lock. */
  async #runPendingMigration(): Promise<void> {
    const pm = this.#pendingMigration;
    if (pm === undefined) return;
    // Detached while it runs (a seal() meanwhile must not zero the keys under the migration).
    this.#pendingMigration = undefined;
    const sealings = this.#sealings;
    let retry = false;
    try {
      // Another node may have migrated (or rekeyed) meanwhile: migrate only what is still pending,
      // and only with the key that still authorises it.
      if (!this.migrationPending) {
        this.#log.info("seal migration already done by another node");
        return;
      }
      if (pm.from.autoUnseal) await this.#verifyRecoveryKey(pm.from, pm.secret.bytes);
      else {
        const kek = await this.#barrier.shamirKek();
        try {
          if (kek === undefined || !constantTimeEqual(kek, pm.secret.bytes)) {
            throw new CoreError(
              "invalid_key",
              "the unseal key changed since this node was unsealed for migration",
            );
          }
        } finally {
          kek?.fill(0);
        }
      }
      try {
        await this.#migrate(pm.from, pm.secret.bytes, pm.oldRoot.bytes);
      } catch (e) {
        // Rolled back (storage or seal fault, lock lost): the next takeover tries again, as Vault
        // does, instead of becoming active with the migration silently dropped.
        retry = true;
        throw e;
      }
    } finally {
      if (retry && sealings === this.#sealings && !this.#barrier.sealed) this.#pendingMigration = pm;
      else {
        pm.secret.zero();
        pm.oldRoot.zero();
      }
    }
  }

  #startHA(): void {
    const ha = this.#ha as HABackend;
    const abort = new AbortController();
    this.#haAbort = abort;
    const lock = ha.lockWith(LOCK_PATH, this.#nodeId);
    this.#lock = lock;
    const poll = setInterval(() => {
      if (this.#active || this.#barrier.sealed) return;
      // One chain with one catch: a failure in either step (storage down, the store sealed or
      // closed meanwhile) is logged, never left as an unhandled rejection.
      (async () => {
        if (await this.#barrier.checkUpgrade())
          this.#log.info("standby upgraded to a new key term", { term: this.#barrier.keyStatus().term });
        await this.#barrier.reloadRootKey();
      })().catch((e: unknown) => this.#log.debug("standby upgrade check failed", { error: errText(e) }));
    }, this.#opts.standbyPollMs ?? 10_000);
    poll.unref();
    this.#timers.push(poll);
    const loop = async () => {
      while (!abort.signal.aborted) {
        let leadership: AbortSignal;
        try {
          leadership = await lock.acquire(abort.signal);
        } catch (e) {
          if (abort.signal.aborted) return;
          this.#log.warn("HA lock acquisition failed; retrying", { error: errText(e) });
          await new Promise((r) => setTimeout(r, 1000).unref());
          continue;
        }
        const stillLeading = () => {
          if (abort.signal.aborted || leadership.aborted) {
            throw new CoreError(
              "standby",
              abort.signal.aborted
                ? "sealed while taking over as active node"
                : "lost the HA lock while taking over as active node",
            );
          }
        };
        try {
          await this.#becomeActive(stillLeading);
          // Sealed while taking over: this session is over (a later unseal runs its own).
          if (abort.signal.aborted) return;
          stillLeading();
          this.#active = true;
          this.#log.info("this node is now active", { nodeId: this.#nodeId });
        } catch (e) {
          if (abort.signal.aborted) {
            // Sealed meanwhile: release this session's handle too (the lock may have been taken
            // after #sealNow released it); a later unseal holds its own handle.
            await lock.release().catch(() => undefined);
            return;
          }
          this.#log.error("could not take over as active node; releasing the lock", { error: errText(e) });
          await lock.release().catch(() => undefined);
          // Back off before competing again: an immediate retry would spin on the same failure.
          await new Promise<void>((r) => {
            const t = setTimeout(r, 1000);
            t.unref();
            abort.signal.addEventListener(
              "abort",
              () => {
                clearTimeout(t);
                r();
              },
              { once: true },
            );
          });
          continue;
        }
        await new Promise<void>((resolve) => {
          if (leadership.aborted || abort.signal.aborted) return resolve();
          leadership.addEventListener("abort", () => resolve(), { once: true });
          abort.signal.addEventListener("abort", () => resolve(), { once: true });
        });
        // After a seal, #sealNow has already stepped down; #active may belong to a newer session.
        if (abort.signal.aborted) return;
        this.#active = false;
        this.#log.warn("lost the HA lock; stepping down to standby", { nodeId: this.#nodeId });
      }
    };
    void loop();
  }

  async #sealNow(): Promise<void> {
    this.#sealings++;
    this.#stopAutoUnseal();
    for (const t of this.#timers) clearInterval(t);
    this.#timers = [];
    if (this.#rotateTimer !== undefined) clearInterval(this.#rotateTimer);
    this.#rotateTimer = undefined;
    this.#haAbort?.abort();
    this.#haAbort = undefined;
    this.#pendingMigration?.secret.zero();
    this.#pendingMigration?.oldRoot.zero();
    this.#pendingMigration = undefined;
    // An active node that steps down on purpose withdraws its advertisement while it still holds
    // the lock (a deposed node's delete would be fenced; the next active node advertises anyway).
    if (this.#ha !== undefined && this.#activeFlag && !this.#barrier.sealed) {
      await this.#barrier.delete(`${LEADER_PREFIX}${this.#nodeId}`).catch(() => undefined);
    }
    // Released even when not active: a backend that lost the lock (e.g. Consul fencing) keeps
    // refusing writes through this lock until it is released or re-acquired.
    if (this.#lock !== undefined) await this.#lock.release().catch(() => undefined);
    this.#lock = undefined;
    this.#active = false;
    this.#barrier.seal();
    this.#unseal.reset();
    this.rekeyCancel();
    this.#clearShamirKeys();
    this.#log.info("store sealed");
  }

  #clearShamirKeys(): void {
    if (this.#seal instanceof ShamirSeal) this.#seal.clearKey();
    if (this.#migrationSeal instanceof ShamirSeal) this.#migrationSeal.clearKey();
  }

  /**
   * Runs a multi-record lifecycle step under the rollback journal: on failure the saved records
   * are restored (here, or at the next open if the process died) and the error is rethrown.
   */
  async #step(op: string, fn: () => Promise<void>): Promise<void> {
    // A journal left by an earlier step whose rollback failed is rolled back first.
    await this.#recoverJournal();
    await this.#journal.begin(op, KEY_RECORD_PATHS);
    try {
      await fn();
      // Until the journal is gone the step has not happened: a failed commit rolls back too,
      // because the caller is told the step failed.
      await this.#journal.commit();
    } catch (e) {
      try {
        await this.#journal.recover();
      } catch (rollbackError) {
        this.#log.error("rollback failed; it will be retried at the next open or lifecycle step", {
          op,
          error: errText(rollbackError),
        });
      }
      throw e;
    }
  }

  async #putBlob(key: string, seal: Seal, plaintext: Uint8Array): Promise<void> {
    const blob = await seal.encrypt(plaintext);
    await this.#raw.put({ key, value: encodeBlobInfo(blob) });
  }

  /** Stores `["<b64 root key>"]` encrypted by the seal (Vault's stored barrier keys). */
  async #putStoredKeys(seal: Seal, rootKey: Uint8Array): Promise<void> {
    const json = new TextEncoder().encode(JSON.stringify([b64(rootKey)]));
    try {
      await this.#putBlob(STORED_KEYS_PATH, seal, json);
    } finally {
      json.fill(0);
    }
  }

  async #readStoredKeys(seal: Seal): Promise<Uint8Array> {
    const e = await this.#raw.get(STORED_KEYS_PATH);
    if (e === undefined) {
      throw new CoreError(
        "invalid_request",
        `${STORED_KEYS_PATH} is missing: the storage holds no stored unseal keys`,
      );
    }
    const plain = await seal.decrypt(decodeBlobInfo(e.value));
    try {
      const keys = JSON.parse(new TextDecoder().decode(plain)) as unknown;
      if (!Array.isArray(keys) || keys.length !== 1 || typeof keys[0] !== "string") {
        throw new CoreError("invalid_request", `${STORED_KEYS_PATH} must hold exactly one key`);
      }
      // Decoded into Node's buffer pool: copy it out and wipe the pooled bytes.
      const pooled = Buffer.from(keys[0], "base64");
      const rootKey = new Uint8Array(pooled);
      pooled.fill(0);
      return rootKey;
    } finally {
      plain.fill(0);
    }
  }

  async #unwrapWithKek(shamir: ShamirSeal, kek: Uint8Array): Promise<Uint8Array> {
    if (kek.length !== 32) throw new CoreError("invalid_key", "Unseal failed, invalid key");
    shamir.setKey(kek);
    return this.#readStoredKeys(shamir);
  }

  async #verifyRecoveryKey(seal: Seal, candidate: Uint8Array): Promise<void> {
    const e = await this.#raw.get(RECOVERY_KEY_PATH);
    if (e === undefined)
      throw new CoreError("invalid_request", `${RECOVERY_KEY_PATH} is missing: no recovery key was stored`);
    const stored = await seal.decrypt(decodeBlobInfo(e.value));
    try {
      if (!constantTimeEqual(stored, candidate))
        throw new CoreError("invalid_key", "recovery key verification failed: invalid key");
    } finally {
      stored.fill(0);
    }
  }

  /** Checks a combined secret against the current unseal key (Shamir KEK) or recovery key. */
  async #verifyCurrentSecret(secret: Uint8Array): Promise<void> {
    if (this.#seal.autoUnseal) {
      await this.#verifyRecoveryKey(this.#seal, secret);
      return;
    }
    const kek = await this.#barrier.shamirKek();
    try {
      if (kek === undefined || !constantTimeEqual(kek, secret)) {
        throw new CoreError(
          "invalid_key",
          "invalid key: the shares do not form the current unseal key; give a threshold of the current unseal key shares",
        );
      }
    } finally {
      kek?.fill(0);
    }
  }

  async #performRekey(op: RekeyOp): Promise<RekeyResult> {
    const result: RekeyResult = { complete: true, nonce: op.nonce, keys: [], keysBase64: [] };
    if (op.target === "recovery") {
      const recoveryKey = randomBytes(32);
      let parts: Uint8Array[] = [];
      try {
        parts = await shamirSplit(recoveryKey, op.shares, op.threshold);
        await this.#step("rekey-recovery", async () => {
          await this.#putBlob(RECOVERY_KEY_PATH, this.#seal, recoveryKey);
          await this.#raw.put({
            key: RECOVERY_CONFIG_PATH,
            value: encodeSealConfig(sealConfig("shamir", op.shares, op.threshold)),
          });
        });
        result.keys = parts.map(hex);
        result.keysBase64 = parts.map(b64);
      } finally {
        recoveryKey.fill(0);
        for (const p of parts) p.fill(0);
      }
      await this.#reloadConfigAfterCommit(() => {
        this.#recoveryConfig = sealConfig("shamir", op.shares, op.threshold);
      });
      return result;
    }
    const newRoot = randomBytes(32);
    const oldRoot = await this.#readStoredKeys(this.#seal);
    try {
      if (this.#seal.autoUnseal) {
        await this.#rootKeyStep("rekey", oldRoot, async () => {
          await this.#barrier.rekey(newRoot);
          await this.#putStoredKeys(this.#seal, newRoot);
        });
      } else {
        const kek = randomBytes(32);
        let parts: Uint8Array[] = [];
        let oldKek: Uint8Array | undefined;
        const shamir = this.#shamir(this.#seal);
        try {
          parts = await shamirSplit(kek, op.shares, op.threshold);
          oldKek = await this.#barrier.shamirKek();
          await this.#rootKeyStep("rekey", oldRoot, async () => {
            await this.#barrier.rekey(newRoot);
            await this.#barrier.setShamirKek(kek);
            shamir.setKey(kek);
            await this.#putStoredKeys(shamir, newRoot);
            await this.#raw.put({
              key: SEAL_CONFIG_PATH,
              value: encodeSealConfig(sealConfig("shamir", op.shares, op.threshold)),
            });
          });
          result.keys = parts.map(hex);
          result.keysBase64 = parts.map(b64);
        } catch (e) {
          // Back to the old KEK while unsealed; a store left sealed keeps none.
          if (oldKek !== undefined && !this.#barrier.sealed) shamir.setKey(oldKek);
          throw e;
        } finally {
          oldKek?.fill(0);
          kek.fill(0);
          for (const p of parts) p.fill(0);
        }
      }
    } finally {
      newRoot.fill(0);
      oldRoot.fill(0);
    }
    await this.#reloadConfigAfterCommit(() => {
      if (!this.#seal.autoUnseal) this.#config = sealConfig("shamir", op.shares, op.threshold);
      this.#storedKeyId = safeKeyId(this.#seal);
    });
    return result;
  }

  /**
   * Re-reads the seal configuration after a committed step. The step has happened, so a failed
   * read must not throw (the caller would lose the new shares): `written` sets what was stored.
   */
  async #reloadConfigAfterCommit(written: () => void): Promise<void> {
    try {
      await this.#loadConfig();
    } catch (e) {
      this.#log.warn(
        "could not re-read the seal configuration after a committed step; using what was written",
        {
          error: errText(e),
        },
      );
      written();
    }
  }

  /**
   * A step that replaces the root key: on failure the records are rolled back and the barrier is
   * unsealed again with the old root key so memory matches storage.
   */
  async #rootKeyStep(op: string, oldRoot: Uint8Array, fn: () => Promise<void>): Promise<void> {
    const sealings = this.#sealings;
    try {
      await this.#step(op, fn);
    } catch (e) {
      this.#barrier.seal();
      // The store was sealed meanwhile (an HA takeover's migration is not serialised with seal()):
      // it stays sealed, and no seal keeps a KEK the step set.
      if (sealings !== this.#sealings) {
        this.#clearShamirKeys();
        throw e;
      }
      try {
        await this.#barrier.unseal(oldRoot);
      } catch (unsealError) {
        this.#sealedReason = `${op} failed and the store could not be restored in memory: ${errText(unsealError)}; reopen it`;
        // Sealed for good: step down (release the HA lock so another node can take over, stop timers).
        await this.#sealNow();
      }
      throw e;
    }
  }

  /**
   * Seal migration (Vault semantics). Shamir → auto: the unseal key becomes the recovery key and a
   * new root key is wrapped by the new seal. Auto → Shamir: the recovery key becomes the Shamir
   * KEK (recovery shares become unseal shares). Auto → auto: the recovery key is kept and the root
   * key re-wrapped. Every case writes a new root key under the rollback journal.
   */
  async #migrate(from: Seal, secret: Uint8Array, oldRoot: Uint8Array): Promise<void> {
    const to = this.#seal;
    const old = this.#config as SealConfig;
    const oldRecovery = this.#recoveryConfig;
    this.#log.info("seal migration initiated", { from: from.type, to: to.type });
    await this.#initSeal(to);
    const newRoot = randomBytes(32);
    /** The configs the step wrote (in case re-reading them fails once it is committed). */
    let written = (): void => {};
    try {
      await this.#rootKeyStep("seal-migration", oldRoot, async () => {
        if (!from.autoUnseal && to.autoUnseal) {
          written = () => {
            this.#config = sealConfig(to.type, 1, 1);
            this.#recoveryConfig = sealConfig("shamir", old.secret_shares, old.secret_threshold);
          };
          await this.#barrier.rekey(newRoot);
          await this.#barrier.delete(SHAMIR_KEK_PATH);
          await this.#putStoredKeys(to, newRoot);
          await this.#putBlob(RECOVERY_KEY_PATH, to, secret);
          await this.#raw.put({
            key: RECOVERY_CONFIG_PATH,
            value: encodeSealConfig(sealConfig("shamir", old.secret_shares, old.secret_threshold)),
          });
          await this.#raw.put({ key: SEAL_CONFIG_PATH, value: encodeSealConfig(sealConfig(to.type, 1, 1)) });
        } else if (from.autoUnseal && !to.autoUnseal) {
          const shamir = this.#shamir(to);
          const rc = oldRecovery ?? sealConfig("shamir", 1, 1);
          written = () => {
            this.#config = sealConfig("shamir", rc.secret_shares, rc.secret_threshold);
            this.#recoveryConfig = undefined;
          };
          shamir.setKey(secret);
          await this.#barrier.rekey(newRoot);
          await this.#barrier.setShamirKek(secret);
          await this.#putStoredKeys(shamir, newRoot);
          await this.#raw.delete(RECOVERY_KEY_PATH);
          await this.#raw.delete(RECOVERY_CONFIG_PATH);
          await this.#raw.put({
            key: SEAL_CONFIG_PATH,
            value: encodeSealConfig(sealConfig("shamir", rc.secret_shares, rc.secret_threshold)),
          });
        } else if (from.autoUnseal && to.autoUnseal) {
          written = () => {
            this.#config = sealConfig(to.type, 1, 1);
          };
          await this.#barrier.rekey(newRoot);
          await this.#putStoredKeys(to, newRoot);
          await this.#putBlob(RECOVERY_KEY_PATH, to, secret);
          await this.#raw.put({ key: SEAL_CONFIG_PATH, value: encodeSealConfig(sealConfig(to.type, 1, 1)) });
        } else {
          throw new InvalidRequestError(
            "migrating from Shamir to Shamir is not supported: use rekey to change unseal keys",
          );
        }
      });
    } finally {
      newRoot.fill(0);
    }
    await this.#reloadConfigAfterCommit(() => {
      written();
      this.#storedKeyId = safeKeyId(to);
    });
    this.#log.info("seal migration complete", { from: from.type, to: to.type });
  }
}

import type { BarrierOptions } from "@bulwark/barrier";
import type { Seal } from "@bulwark/seal";
import type { Backend, HABackend } from "@bulwark/storage";
import type { AutoUnsealRetryOptions, AutoUnsealWait } from "./auto-unseal.js";

// The public types of SealedStore (its options, statuses and results), apart from the class so the
// collaborators it is made of (ha.ts, rekey.ts, seal-migration.ts, ...) can use them.

/** Reported as `version` in the seal status. */
export const VERSION = "0.1.0";

export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
}

export const silentLogger: Logger = { debug() {}, info() {}, warn() {}, error() {} };

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
  /**
   * Vault's implicit Shamir → auto-seal migration: when `seal` is an auto seal, no
   * `migrationSeal` is given and the stored seal configuration says "shamir", a Shamir migration
   * source is added and the store enters seal migration mode (unseal with `migrate: true` and the
   * Shamir unseal keys) instead of refusing to unseal. {@link SealedStore.implicitMigration} then
   * reports it. Default false: a store opened with a seal that does not match the data stays
   * sealed and `status().sealedReason` says how to migrate.
   */
  implicitMigration?: boolean;
  /**
   * Vault Enterprise's `disable_sealwrap`: nothing is seal-wrapped from now on — neither the core
   * keys (keyring, root-key copy, KEK) nor the entries of seal_wrap mounts — while values wrapped
   * earlier are still read (the change happens lazily, as values are rewritten). A data set
   * OpenBao must read needs it: OpenBao has no seal wrap. Default false.
   */
  disableSealWrap?: boolean;
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

/** Reported by {@link SealedStore.implicitMigration}: the seal migration the store entered by itself. */
export interface ImplicitMigration {
  /** The seal the data is protected by (always "shamir"). */
  from: string;
  /** The configured seal's type. */
  to: string;
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

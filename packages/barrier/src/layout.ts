/**
 * The storage layout of a data set: every path below `core/` that Bulwark reads or writes, in one
 * place. The names and formats are Vault's/OpenBao's unless marked as Bulwark's own, so a data set
 * moves between them. Raw = stored as is in the physical backend; barrier = encrypted by the
 * barrier (AAD = the path).
 *
 * This module sits in @bulwark/barrier because it is the lowest package that both @bulwark/core
 * and the server depend on; it declares paths only, no behaviour.
 */

/** Prefix of every record below; nothing outside it belongs to the lifecycle. */
export const CORE_PREFIX = "core/";

// ------------------------------------------------------------------ barrier keys

/** Raw. The keyring, encrypted with the root key and always framed with term 1. */
export const KEYRING_PATH = "core/keyring";
/** Barrier. Root-key copy under the active term (Vault's path; standbys read it after a rekey). */
export const ROOT_KEY_PATH = "core/master";
/** OpenBao's name for the same root-key record; read as a fallback, never written. */
export const OPENBAO_ROOT_KEY_PATH = "core/root-key";
/** Barrier. Copy of the Shamir key-encryption key (Vault ≥ 1.3 "new-style Shamir"). */
export const SHAMIR_KEK_PATH = "core/shamir-kek";
/** Barrier. HA upgrade entries: `core/upgrade/<N>` holds term N+1 encrypted with term N. */
export const UPGRADE_PREFIX = "core/upgrade/";

// ------------------------------------------------------------------ seal records

/** Raw JSON. Vault's `SealConfig` of the barrier seal; its presence means "initialized". */
export const SEAL_CONFIG_PATH = "core/seal-config";
/** Raw JSON. The recovery key's `SealConfig` (auto seals only: shares and threshold). */
export const RECOVERY_CONFIG_PATH = "core/recovery-config";
/** Raw BlobInfo. The root key, wrapped by the seal (Vault's stored barrier keys). */
export const STORED_KEYS_PATH = "core/hsm/barrier-unseal-keys";
/** Raw BlobInfo. The recovery key, wrapped by the seal (auto seals only). */
export const RECOVERY_KEY_PATH = "core/recovery-key";

// ------------------------------------------------------------------ HA and locks

/** The HA lock: its holder is the active node; the value is the holder's node id. */
export const LOCK_PATH = "core/lock";
/** Held by the node initialising the store (Vault's `core/initialize-lock`). */
export const INIT_LOCK_PATH = "core/initialize-lock";
/** Barrier. Active-node advertisements: `core/leader/<node id>` → `{"redirect_addr": …}`. */
export const LEADER_PREFIX = "core/leader/";

// ------------------------------------------------------------------ logical layer (Vault's records)

/**
 * Barrier. The mount and auth tables: `'G'` + gzip of `{"type":…,"entries":[MountEntry…]}` (Vault's
 * compression canary). OpenBao on a transactional backend keeps `<path>/<uuid>` per entry instead.
 */
export const MOUNT_TABLE_PATH = "core/mounts";
/** Barrier. Local (not replicated) secrets mounts, e.g. `cubbyhole/`. */
export const LOCAL_MOUNT_TABLE_PATH = "core/local-mounts";
/** Barrier. The auth methods (`token/` …; paths without `auth/`). */
export const AUTH_TABLE_PATH = "core/auth";
/** Barrier. Local auth methods. */
export const LOCAL_AUTH_TABLE_PATH = "core/local-auth";
/** Barrier. The audit devices (`{"type":"audit","entries":null}` when there are none). */
export const AUDIT_TABLE_PATH = "core/audit";
/** Barrier. Local audit devices. */
export const LOCAL_AUDIT_TABLE_PATH = "core/local-audit";
/** Barrier. Cluster name and id: uncompressed JSON `{"name":…,"id":…}` (Vault's `Cluster`). */
export const CLUSTER_INFO_PATH = "core/cluster/local/info";

// ------------------------------------------------------------------ Bulwark's own records

/** Raw JSON. Bulwark's rollback journal of a lifecycle step in progress (init, rekey, migration). */
export const JOURNAL_PATH = "core/bulwark-rollback";
/** Held by `bulwark operator migrate` while it copies a data set (Vault's `core/migration`). */
export const MIGRATION_LOCK_PATH = "core/migration";

/**
 * Every record a key-changing lifecycle step (init, rekey, seal migration) may touch: what the
 * rollback journal saves before the step writes.
 */
export const KEY_RECORD_PATHS = [
  KEYRING_PATH,
  ROOT_KEY_PATH,
  SHAMIR_KEK_PATH,
  STORED_KEYS_PATH,
  RECOVERY_KEY_PATH,
  RECOVERY_CONFIG_PATH,
  SEAL_CONFIG_PATH,
] as const;

/** Keyring, encrypted with the root key and always framed with term 1. */
export const KEYRING_PATH = "core/keyring";
/** Root-key copy under the active term (Vault's path; standbys read it after a rekey). */
export const ROOT_KEY_PATH = "core/master";
/** OpenBao's name for the same root-key record; read as a fallback, never written. */
export const OPENBAO_ROOT_KEY_PATH = "core/root-key";
/** Copy of the Shamir key-encryption key inside the barrier (Vault ≥ 1.3 "new-style Shamir"). */
export const SHAMIR_KEK_PATH = "core/shamir-kek";
/** HA upgrade entries: `core/upgrade/<N>` holds term N+1 encrypted with term N. */
export const UPGRADE_PREFIX = "core/upgrade/";

/** term (4) + version (1) + nonce (12) + GCM tag (16). */
export const CIPHERTEXT_OVERHEAD = 33;
/** Offsets of the barrier ciphertext header. */
export const TERM_BYTES = 4;
export const VERSION_OFFSET = 4;
export const NONCE_OFFSET = 5;
export const BODY_OFFSET = 17;

/** 0x01: AES-256-GCM without AAD (read only). */
export const AES_GCM_VERSION_1 = 0x01;
/** 0x02: AES-256-GCM with AAD = storage path (the only version written). */
export const AES_GCM_VERSION_2 = 0x02;

/** The keyring is always framed with this term, whatever the active term is. */
export const INITIAL_KEY_TERM = 1;
export const MAX_TERM = 0xffff_ffff;

/** Vault's rotation bounds (keyring.go): ~0.9 × 2^32 GCM invocations per key, NIST SP 800-38D. */
export const ABSOLUTE_OPERATION_MAXIMUM = 3_865_470_566;
export const ABSOLUTE_OPERATION_MINIMUM = 1_000_000;
export const MINIMUM_ROTATION_INTERVAL_MS = 24 * 60 * 60 * 1000;
/** Vault's "legacy rotation": an untracked key older than this is rotated. */
export const LEGACY_ROTATION_AGE_MS = 365 * 24 * 60 * 60 * 1000;
/** Vault's keyRotateGracePeriod. */
export const DEFAULT_UPGRADE_GRACE_PERIOD_MS = 120_000;

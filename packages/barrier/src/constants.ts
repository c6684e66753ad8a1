// The storage paths live in layout.ts with the rest of the data set's layout; re-exported here for
// the modules (and packages) that import them from constants.
export {
  KEYRING_PATH,
  OPENBAO_ROOT_KEY_PATH,
  ROOT_KEY_PATH,
  SHAMIR_KEK_PATH,
  UPGRADE_PREFIX,
} from "./layout.js";

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

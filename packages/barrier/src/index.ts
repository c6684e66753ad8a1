export {
  AesGcmBarrier,
  type AutoRotateReason,
  type BarrierLogger,
  type BarrierOptions,
  type KeyStatus,
} from "./barrier.js";
export {
  ABSOLUTE_OPERATION_MAXIMUM,
  ABSOLUTE_OPERATION_MINIMUM,
  AES_GCM_VERSION_1,
  AES_GCM_VERSION_2,
  CIPHERTEXT_OVERHEAD,
  DEFAULT_UPGRADE_GRACE_PERIOD_MS,
  KEYRING_PATH,
  MINIMUM_ROTATION_INTERVAL_MS,
  OPENBAO_ROOT_KEY_PATH,
  ROOT_KEY_PATH,
  SHAMIR_KEK_PATH,
  UPGRADE_PREFIX,
} from "./constants.js";
export {
  BARRIER_CIPHERTEXT_ERROR_CODES,
  BARRIER_ERROR_CODES,
  BarrierAlreadyInitializedError,
  BarrierCiphertextError,
  type BarrierCiphertextErrorCode,
  BarrierError,
  type BarrierErrorCode,
  BarrierInvalidKeyError,
  BarrierNotInitializedError,
  BarrierSealedError,
} from "./errors.js";
export { decryptFrame, encryptFrame, frameTerm, type TermKeys } from "./frame.js";
export { GoTime } from "./go-time.js";
export {
  deserializeKey,
  type KeyRecord,
  Keyring,
  type KeyringKey,
  type NewKeyringKey,
  type RotationConfig,
  serializeKey,
} from "./keyring.js";
export {
  AUDIT_TABLE_PATH,
  AUTH_TABLE_PATH,
  CLUSTER_INFO_PATH,
  CORE_PREFIX,
  INIT_LOCK_PATH,
  JOURNAL_PATH,
  KEY_RECORD_PATHS,
  LEADER_PREFIX,
  LOCAL_AUDIT_TABLE_PATH,
  LOCAL_AUTH_TABLE_PATH,
  LOCAL_MOUNT_TABLE_PATH,
  LOCK_PATH,
  MIGRATION_LOCK_PATH,
  MOUNT_TABLE_PATH,
  RECOVERY_CONFIG_PATH,
  RECOVERY_KEY_PATH,
  SEAL_CONFIG_PATH,
  STORED_KEYS_PATH,
} from "./layout.js";

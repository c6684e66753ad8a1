export {
  type AutoUnsealRetryOptions,
  type AutoUnsealWait,
  DEFAULT_AUTO_UNSEAL_INITIAL_DELAY_MS,
  DEFAULT_AUTO_UNSEAL_MAX_DELAY_MS,
  isTransientUnsealError,
} from "./auto-unseal.js";
export {
  CORE_ERROR_CODES,
  CoreError,
  type CoreErrorCode,
  InvalidRequestError,
  SealedError,
} from "./errors.js";
export { JOURNAL_PATH } from "./journal.js";
export {
  RECOVERY_CONFIG_PATH,
  RECOVERY_KEY_PATH,
  SEAL_CONFIG_PATH,
  type SealConfig,
  STORED_KEYS_PATH,
} from "./seal-config.js";
export {
  type RewrapOptions,
  type RewrapProgress,
  type RewrapResult,
  SealWrapBackend,
} from "./seal-wrap-backend.js";
export {
  type ImplicitMigration,
  type InitRequest,
  type InitResult,
  LEADER_PREFIX,
  type LeaderStatus,
  type Logger,
  type RekeyResult,
  type RekeyStatus,
  type RekeyTarget,
  SealedStore,
  type SealedStoreOptions,
  type SealStatus,
  VERSION,
} from "./sealed-store.js";
export { parseKeyShare } from "./shares.js";

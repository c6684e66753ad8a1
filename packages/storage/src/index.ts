export { assertBackend } from "./assert-backend.js";
export {
  FencedWriteError,
  InvalidKeyError,
  STORAGE_ERROR_CODES,
  StorageError,
  type StorageErrorCode,
  StorageProbeError,
  StorageUnavailableError,
  TransactionError,
  ValueTooLargeError,
} from "./errors.js";
export {
  type FaultContext,
  FaultInjectingBackend,
  type FaultInjectionOptions,
  type StorageOperation,
  withFaults,
} from "./fault-injection.js";
export { directChildren, validateKey, validatePrefix } from "./keys.js";
export { DEFAULT_PARALLEL_OPERATIONS, PermitPool, PermitPoolBackend, withPermitPool } from "./permit-pool.js";
export {
  fieldIssues,
  type ProviderClaim,
  type ProviderConfig,
  type ProviderEnv,
  type ProviderIssue,
  type ProviderLogger,
  type ProviderSettings,
  type StorageProvider,
  type StorageProviderContext,
  VAULT_CLUSTER_KEYS,
} from "./provider.js";
export {
  type Backend,
  type Entry,
  type HABackend,
  isHABackend,
  isTransactional,
  type Lock,
  type TransactionalBackend,
  type TransactionLimits,
  type TxnOp,
} from "./types.js";
export type { Wrapped } from "./wrapped.js";

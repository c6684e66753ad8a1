export { assertBackend } from "./assert-backend.js";
export {
  FencedWriteError,
  InvalidKeyError,
  StorageError,
  type StorageErrorCode,
  StorageUnavailableError,
  TransactionError,
  ValueTooLargeError,
} from "./errors.js";
export { directChildren, validateKey, validatePrefix } from "./keys.js";
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

export { assertSeal } from "./assert-seal.js";
export {
  type BlobInfo,
  type BlobInfoInit,
  createBlobInfo,
  createKeyInfo,
  decodeBlobInfo,
  encodeBlobInfo,
  type KeyInfo,
} from "./blob-info.js";
export {
  type SealConfigIssue,
  SealConfigProblems,
  sealConfigIssue,
  sealSetting,
  toSealConfigError,
} from "./config-problems.js";
export {
  BlobInfoDecodeError,
  SEAL_ERROR_CODES,
  SealConfigError,
  SealDecryptError,
  SealError,
  type SealErrorCode,
  SealFinalizedError,
  SealKeyNotFoundError,
  SealNotInitializedError,
  SealUnavailableError,
} from "./errors.js";
export {
  fieldIssues,
  type ProviderClaim,
  type ProviderConfig,
  type ProviderEnv,
  type ProviderIssue,
  type ProviderLogger,
  type ProviderSettings,
  type SealProvider,
  type SealProviderContext,
  shamirSealProvider,
  staticSealProvider,
} from "./provider.js";
export { BaseSeal, type Seal, type SealEncryptOptions, type SealHealth } from "./seal.js";
export { encodeSealWrapped, parseSealWrapped, SEAL_WRAP_CANARY } from "./seal-wrapped.js";
export { ShamirSeal } from "./shamir-seal.js";
export {
  STATIC_SEAL_KEY_ENV,
  STATIC_SEAL_KEY_ID_ENV,
  type StaticKeyInput,
  StaticKeySeal,
  type StaticKeySealOptions,
} from "./static-key-seal.js";

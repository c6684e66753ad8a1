export {
  type BlobInfo,
  type BlobInfoInit,
  createBlobInfo,
  createKeyInfo,
  decodeBlobInfo,
  encodeBlobInfo,
  type KeyInfo,
} from "./blob-info.js";
export { type SealConfigIssue, SealConfigProblems, sealConfigIssue } from "./config-problems.js";
export {
  BlobInfoDecodeError,
  SealConfigError,
  SealDecryptError,
  SealError,
  type SealErrorCode,
  SealFinalizedError,
  SealKeyNotFoundError,
  SealNotInitializedError,
  SealUnavailableError,
} from "./errors.js";
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

/**
 * The AWS KMS seal's configuration, in four parts: the option table (`options-schema.ts`), the
 * readers of single settings (`options-values.ts`), the block and the environment
 * (`options-config.ts`), and the validation of typed options (`options-resolve.ts`). This module
 * is their public face.
 */

export {
  type AwsKmsConfigIssue,
  checkAwsKmsSealConfig,
  type EnvLike,
  parseAwsKmsSealConfig,
} from "./options-config.js";
export { resolveOptions } from "./options-resolve.js";
export {
  AWSKMS_CONFIG_KEYS,
  type AwsKmsSealLogger,
  type AwsKmsSealOptions,
  DEFAULT_REGION,
  DEFAULTS,
  ENDPOINT_ENV_VARS,
  KEY_ID_ENV_VARS,
  REGION_ENV_VARS,
  type ResolvedAwsKmsSealOptions,
  VAULT_CONFIG_KEYS,
} from "./options-schema.js";
export {
  checkKeyId,
  checkRegion,
  parseBoolean,
  parseDurationMs,
  parseEncryptionContext,
} from "./options-values.js";

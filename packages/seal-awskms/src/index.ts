export {
  AWSKMS_MECHANISM_DIRECT,
  AWSKMS_MECHANISM_ENVELOPE,
  AwsKmsSeal,
  type AwsKmsSealMetadata,
  createAwsKmsSeal,
  healthCheckCallsPerDay,
  KMS_CALLS_PER_HEALTH_CHECK,
} from "./awskms-seal.js";
export {
  AwsKmsAccessDeniedError,
  AwsKmsDecryptError,
  AwsKmsError,
  type AwsKmsErrorDetails,
  AwsKmsKeyNotFoundError,
  AwsKmsKeyStateError,
  AwsKmsUnavailableError,
  type KmsOperation,
} from "./errors.js";
export {
  type KmsApi,
  type KmsCallOptions,
  type KmsDecryptInput,
  type KmsEncryptInput,
  type KmsKeyMetadata,
  kmsApiFromClient,
} from "./kms-api.js";
export {
  AWSKMS_CONFIG_KEYS,
  type AwsKmsConfigIssue,
  type AwsKmsSealLogger,
  type AwsKmsSealOptions,
  checkAwsKmsSealConfig,
  DEFAULT_REGION,
  ENDPOINT_ENV_VARS,
  type EnvLike,
  KEY_ID_ENV_VARS,
  parseAwsKmsSealConfig,
  REGION_ENV_VARS,
  type ResolvedAwsKmsSealOptions,
  VAULT_CONFIG_KEYS,
} from "./options.js";
export { awsKmsSealProvider } from "./provider.js";

/**
 * The option table of the AWS KMS seal: the typed options, their defaults, the Vault `seal "awskms"`
 * key each comes from, the environment variables read, and which settings are durations or secrets.
 */
import type { KmsApi } from "./kms-api.js";

/** Structural logger (the core's `Logger` fits). Messages never carry credentials or key bytes. */
export interface AwsKmsSealLogger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
}

/**
 * Options for {@link AwsKmsSeal}. Every field has a Vault `seal "awskms"` counterpart (see
 * {@link VAULT_CONFIG_KEYS}); `createAwsKmsSeal` accepts either spelling.
 */
export interface AwsKmsSealOptions {
  /** Key id, key ARN, `alias/name` or alias ARN. Vault: `kms_key_id`. */
  kmsKeyId: string;
  /** AWS region. Unset: `AWS_REGION`/`AWS_DEFAULT_REGION` (via the factory), the shared config profile, then `us-east-1`. */
  region?: string;
  /** KMS endpoint override (VPC endpoint, FIPS endpoint, local-kms). Vault: `endpoint`. */
  endpoint?: string;
  /** Static credentials. Vault: `access_key`, `secret_key`, `session_token`. Unset: the AWS default chain. */
  accessKeyId?: string;
  secretAccessKey?: string;
  sessionToken?: string;
  /** Shared credentials file. Vault: `shared_creds_filename` (also accepted: `shared_creds_file`). */
  sharedCredsFile?: string;
  /** Profile in the shared credentials/config files. Vault: `shared_creds_profile`. */
  sharedCredsProfile?: string;
  /** Role assumed with the web identity token (IRSA). Vault: `role_arn`. Needs `webIdentityTokenFile`. */
  roleArn?: string;
  /** Vault: `role_session_name`. */
  roleSessionName?: string;
  /** Vault: `web_identity_token_file`. */
  webIdentityTokenFile?: string;
  /**
   * KMS encryption context bound to every Encrypt/Decrypt call (Vault has no such option: blobs
   * written with a context cannot be read by Vault). Changing it makes existing blobs unreadable.
   */
  encryptionContext?: Record<string, string>;
  /** Retries after the first attempt for transient failures. Default 3. */
  maxRetries?: number;
  /** Time limit of one KMS request attempt. Default 10 000 ms. */
  requestTimeoutMs?: number;
  /** First retry delay (grows ×2 per attempt, with jitter). Default 100 ms. */
  retryBaseDelayMs?: number;
  /** Largest retry delay. Default 2 000 ms. */
  retryMaxDelayMs?: number;
  /** Interval of the background health check (encrypt+decrypt = 2 KMS calls). 0 turns it off. Default 10 min. */
  healthCheckIntervalMs?: number;
  /** Interval while unhealthy. Default 1 min. */
  healthCheckUnhealthyIntervalMs?: number;
  /** Time limit of one health check. Default 1 min. */
  healthCheckTimeoutMs?: number;
  /** A KMS client to use instead of `@aws-sdk/client-kms` (tests, custom transports). Not destroyed by the seal. */
  client?: KmsApi;
  logger?: AwsKmsSealLogger;
}

/** Options after validation, with defaults applied. */
export interface ResolvedAwsKmsSealOptions {
  kmsKeyId: string;
  region: string | undefined;
  endpoint: string | undefined;
  accessKeyId: string | undefined;
  secretAccessKey: string | undefined;
  sessionToken: string | undefined;
  sharedCredsFile: string | undefined;
  sharedCredsProfile: string | undefined;
  roleArn: string | undefined;
  roleSessionName: string | undefined;
  webIdentityTokenFile: string | undefined;
  encryptionContext: Readonly<Record<string, string>> | undefined;
  maxRetries: number;
  requestTimeoutMs: number;
  retryBaseDelayMs: number;
  retryMaxDelayMs: number;
  healthCheckIntervalMs: number;
  healthCheckUnhealthyIntervalMs: number;
  healthCheckTimeoutMs: number;
  client: KmsApi | undefined;
  logger: AwsKmsSealLogger | undefined;
}

export const DEFAULTS = {
  maxRetries: 3,
  requestTimeoutMs: 10_000,
  retryBaseDelayMs: 100,
  retryMaxDelayMs: 2_000,
  healthCheckIntervalMs: 10 * 60_000,
  healthCheckUnhealthyIntervalMs: 60_000,
  healthCheckTimeoutMs: 60_000,
} as const;

/** The region used when neither configuration, environment nor profile names one (as Vault). */
export const DEFAULT_REGION = "us-east-1";

/** Environment variables for the key id, highest precedence first (Vault: environment beats `kms_key_id`). */
export const KEY_ID_ENV_VARS = [
  "BULWARK_AWSKMS_SEAL_KEY_ID",
  "AWSKMS_WRAPPER_KEY_ID",
  "VAULT_AWSKMS_SEAL_KEY_ID",
] as const;
/** Environment variables for the endpoint, highest precedence first (`AWS_KMS_ENDPOINT` is Vault's deprecated name). */
export const ENDPOINT_ENV_VARS = ["BULWARK_AWSKMS_ENDPOINT", "AWSKMS_ENDPOINT", "AWS_KMS_ENDPOINT"] as const;
/** Environment variables for the region, used when the configuration has none. */
export const REGION_ENV_VARS = ["AWS_REGION", "AWS_DEFAULT_REGION"] as const;

/** An option of {@link AwsKmsSealOptions} that a configuration block can set. */
export type OptionField = Exclude<keyof AwsKmsSealOptions, "client" | "logger">;

/** Vault `seal "awskms"` keys → option names. */
export const VAULT_CONFIG_KEYS: Readonly<Record<string, OptionField>> = {
  kms_key_id: "kmsKeyId",
  region: "region",
  endpoint: "endpoint",
  access_key: "accessKeyId",
  secret_key: "secretAccessKey",
  session_token: "sessionToken",
  shared_creds_filename: "sharedCredsFile",
  shared_creds_file: "sharedCredsFile",
  shared_creds_profile: "sharedCredsProfile",
  role_arn: "roleArn",
  role_session_name: "roleSessionName",
  web_identity_token_file: "webIdentityTokenFile",
  encryption_context: "encryptionContext",
  max_retries: "maxRetries",
  request_timeout: "requestTimeoutMs",
  health_check_interval: "healthCheckIntervalMs",
  health_check_interval_unhealthy: "healthCheckUnhealthyIntervalMs",
  health_check_timeout: "healthCheckTimeoutMs",
};

/**
 * Keys of a Vault seal block that belong to the server (seal selection, migration, Seal HA), not
 * to the KMS client: accepted and ignored here. `health_check_enabled` and `disallow_env_vars` are
 * read by the factory itself.
 */
export const SERVER_KEYS = new Set(["disabled", "name", "priority", "purpose", "type"]);
export const FACTORY_KEYS = new Set(["health_check_enabled", "disallow_env_vars"]);

export const OPTION_FIELDS = new Set<string>([
  ...Object.values(VAULT_CONFIG_KEYS),
  "retryBaseDelayMs",
  "retryMaxDelayMs",
]);
export const OBJECT_ONLY_FIELDS = new Set(["client", "logger"]);

/** Settings that may be env:// or file:// references. */
export const SECRET_FIELDS = new Set<string>(["accessKeyId", "secretAccessKey", "sessionToken"]);

export const DURATION_FIELDS = new Set<OptionField>([
  "requestTimeoutMs",
  "retryBaseDelayMs",
  "retryMaxDelayMs",
  "healthCheckIntervalMs",
  "healthCheckUnhealthyIntervalMs",
  "healthCheckTimeoutMs",
]);
/** {@link DURATION_FIELDS} for a name that may be any setting. */
export const DURATION_FIELD_NAMES: ReadonlySet<string> = DURATION_FIELDS;

/** Every setting a `seal "awskms"` block (or a typed options object) accepts. */
export const AWSKMS_CONFIG_KEYS: readonly string[] = [
  ...Object.keys(VAULT_CONFIG_KEYS),
  ...FACTORY_KEYS,
  "disallowEnvVars",
  "healthCheckEnabled",
  ...OPTION_FIELDS,
  ...OBJECT_ONLY_FIELDS,
  ...SERVER_KEYS,
];

/** The name error messages use for an option: Vault's (`kms_key_id`) or the typed one (`kmsKeyId`). */
export function fieldName(f: OptionField, vault: boolean): string {
  if (!vault) return f;
  return Object.entries(VAULT_CONFIG_KEYS).find(([, v]) => v === f)?.[0] ?? f;
}

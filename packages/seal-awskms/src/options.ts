import {
  SealConfigError,
  type SealConfigIssue,
  SealConfigProblems,
  sealConfigIssue,
  sealSetting,
} from "@bulwark/seal";
import {
  type EnvironmentRole,
  type EnvLike,
  parseBool,
  parseDuration,
  parseSecret,
  pickSetting,
} from "@bulwark/settings";
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

type OptionField = Exclude<keyof AwsKmsSealOptions, "client" | "logger">;

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
const SERVER_KEYS = new Set(["disabled", "name", "priority", "purpose", "type"]);
const FACTORY_KEYS = new Set(["health_check_enabled", "disallow_env_vars"]);

const OPTION_FIELDS = new Set<string>([
  ...Object.values(VAULT_CONFIG_KEYS),
  "retryBaseDelayMs",
  "retryMaxDelayMs",
]);
const OBJECT_ONLY_FIELDS = new Set(["client", "logger"]);

/** Settings that may be env:// or file:// references. */
const SECRET_FIELDS = new Set<string>(["accessKeyId", "secretAccessKey", "sessionToken"]);

const DURATION_FIELDS = new Set<OptionField>([
  "requestTimeoutMs",
  "retryBaseDelayMs",
  "retryMaxDelayMs",
  "healthCheckIntervalMs",
  "healthCheckUnhealthyIntervalMs",
  "healthCheckTimeoutMs",
]);

// ---------------------------------------------------------------------------------------------
// Small parsers (exported for tests).

/**
 * A duration setting in whole milliseconds, in the settings kernel's grammar (the one every
 * duration setting of every block reads): a Go duration (`"500ms"`, `"1m30s"`, `".5s"`), whole
 * days (`"7d"`), or a bare number / numeric string meaning **seconds** (Vault's convention).
 */
export function parseDurationMs(field: string, value: unknown): number {
  return Math.round(sealSetting(() => parseDuration(field, value)));
}

/** A boolean setting: the settings kernel's (Go's ParseBool words, JSON/HCL booleans), as `SealConfigError`. */
export function parseBoolean(field: string, value: unknown): boolean {
  return sealSetting(() => parseBool(field, value));
}

function parseInteger(field: string, value: unknown, min: number, max: number): number {
  const n = typeof value === "string" && /^\s*\d+\s*$/.test(value) ? Number(value) : value;
  if (typeof n !== "number" || !Number.isInteger(n) || n < min || n > max) {
    throw new SealConfigError(
      field,
      `must be a whole number from ${min} to ${max}, got ${JSON.stringify(value)}`,
    );
  }
  return n;
}

/**
 * Parses an encryption context: an object of string values, or a string `"k1=v1,k2=v2"` (or a JSON
 * object string) as a flat Vault config map can carry it. Numbers and booleans become strings.
 */
export function parseEncryptionContext(field: string, value: unknown): Record<string, string> {
  let source: unknown = value;
  if (typeof value === "string") {
    const text = value.trim();
    if (text.startsWith("{")) {
      try {
        source = JSON.parse(text) as unknown;
      } catch {
        throw new SealConfigError(
          field,
          'is not valid JSON; write it as an object or as "key1=value1,key2=value2"',
        );
      }
    } else {
      const out: Record<string, string> = {};
      for (const part of text.split(",")) {
        if (part.trim() === "") continue;
        const eq = part.indexOf("=");
        if (eq <= 0) {
          throw new SealConfigError(
            field,
            `entry ${JSON.stringify(part.trim())} is not key=value; write "key1=value1,key2=value2"`,
          );
        }
        addContextEntry(field, out, part.slice(0, eq).trim(), part.slice(eq + 1).trim());
      }
      return checkContext(field, out);
    }
  }
  if (typeof source !== "object" || source === null || Array.isArray(source)) {
    throw new SealConfigError(
      field,
      'must be a map of strings, e.g. encryption_context = { tenant = "prod" }',
    );
  }
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(source)) {
    if (typeof v !== "string" && typeof v !== "number" && typeof v !== "boolean") {
      throw new SealConfigError(
        field,
        `value of ${JSON.stringify(k)} must be a string, got ${v === null ? "null" : typeof v}`,
      );
    }
    addContextEntry(field, out, k.trim(), String(v));
  }
  return checkContext(field, out);
}

function addContextEntry(field: string, out: Record<string, string>, key: string, value: string): void {
  if (key === "") throw new SealConfigError(field, "keys must not be empty");
  if (Object.hasOwn(out, key)) throw new SealConfigError(field, `key ${JSON.stringify(key)} appears twice`);
  // defineProperty, not assignment: a key named "__proto__" must stay a key, not swap the prototype.
  Object.defineProperty(out, key, { value, enumerable: true, writable: true, configurable: true });
}

function checkContext(field: string, ctx: Record<string, string>): Record<string, string> {
  // KMS rejects context keys with the reserved "aws" prefix (case-insensitive).
  for (const k of Object.keys(ctx)) {
    if (/^aws/i.test(k)) {
      throw new SealConfigError(
        field,
        `key ${JSON.stringify(k)} starts with "aws", which KMS reserves; rename it`,
      );
    }
  }
  return ctx;
}

// us-east-1, eu-west-2, us-gov-west-1, cn-northwest-1, us-isob-east-1, ap-southeast-4, il-central-1.
const REGION = /^[a-z]{2}(?:-[a-z]+)+-\d{1,2}$/;

export function checkRegion(field: string, value: unknown): string {
  if (typeof value !== "string" || !REGION.test(value.trim())) {
    throw new SealConfigError(
      field,
      `${JSON.stringify(value)} is not an AWS region name: use the form "us-east-1" or "eu-west-2" (lower case, dashes, trailing number)`,
    );
  }
  return value.trim();
}

// The UUID shape with any alphanumerics: Vault's own documented example key id
// ("19ec80b0-dfdd-4d97-8164-c6examplekey") must load unchanged; KMS itself judges the id at init.
const KEY_UUID_OR_MRK =
  /^(?:[0-9a-zA-Z]{8}-[0-9a-zA-Z]{4}-[0-9a-zA-Z]{4}-[0-9a-zA-Z]{4}-[0-9a-zA-Z]{12}|mrk-[0-9a-fA-F]{32})$/;
const ALIAS_NAME = /^alias\/[a-zA-Z0-9/_-]{1,250}$/;
const KMS_ARN = /^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:(?:key\/[a-zA-Z0-9-]+|alias\/[a-zA-Z0-9/_-]+)$/;

/** Checks a KMS key reference: key id (UUID or `mrk-…`), key ARN, `alias/name` or alias ARN. */
export function checkKeyId(field: string, value: unknown): string {
  if (typeof value !== "string" || value.trim() === "") {
    throw new SealConfigError(
      field,
      `is required: set kms_key_id (key id, key ARN or alias/name) or one of ${KEY_ID_ENV_VARS.join(", ")}`,
    );
  }
  const id = value.trim();
  if (KEY_UUID_OR_MRK.test(id) || ALIAS_NAME.test(id) || KMS_ARN.test(id)) return id;
  throw new SealConfigError(
    field,
    `${JSON.stringify(id)} is not a KMS key reference: use a key id (1234abcd-12ab-34cd-56ef-1234567890ab), a key ARN (arn:aws:kms:us-east-1:111122223333:key/…), alias/name or an alias ARN`,
  );
}

function checkEndpoint(field: string, value: unknown): string {
  if (typeof value !== "string" || value.trim() === "") {
    throw new SealConfigError(field, "must be a URL such as https://kms.us-east-1.amazonaws.com");
  }
  let url: URL;
  try {
    url = new URL(value.trim());
  } catch {
    throw new SealConfigError(
      field,
      `${JSON.stringify(value)} is not a URL; write it as https://host[:port]`,
    );
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") {
    throw new SealConfigError(field, `must use http or https, got ${url.protocol}`);
  }
  if (url.username !== "" || url.password !== "") {
    // Never echo the URL: it carries a password.
    throw new SealConfigError(
      field,
      "must not contain user:password; use access_key/secret_key or the AWS credential chain",
    );
  }
  return value.trim();
}

/** A non-empty string, trimmed; a secret is neither echoed nor trimmed (kept exactly, as the settings kernel keeps secrets). */
function checkString(field: string, value: unknown, secret = false): string {
  if (typeof value !== "string" || value.trim() === "") {
    throw new SealConfigError(
      field,
      secret ? "must be a non-empty string" : `must be a non-empty string, got ${JSON.stringify(value)}`,
    );
  }
  return secret ? value : value.trim();
}

// ---------------------------------------------------------------------------------------------
// Validation of the typed options.

function fieldName(f: OptionField, vault: boolean): string {
  if (!vault) return f;
  return Object.entries(VAULT_CONFIG_KEYS).find(([, v]) => v === f)?.[0] ?? f;
}

/** One problem of a seal "awskms" block (the shared seal config issue shape). */
export type AwsKmsConfigIssue = SealConfigIssue;

/**
 * Validates options and applies defaults. `vaultNames` only changes which names error messages
 * use (`kms_key_id` vs `kmsKeyId`). Reads no environment.
 */
export function resolveOptions(options: AwsKmsSealOptions, vaultNames = false): ResolvedAwsKmsSealOptions {
  const p = new SealConfigProblems();
  const resolved = resolveInto(options, vaultNames, p);
  p.throwFirst();
  return resolved as ResolvedAwsKmsSealOptions;
}

function resolveInto(
  options: AwsKmsSealOptions,
  vaultNames: boolean,
  p: SealConfigProblems,
): ResolvedAwsKmsSealOptions | undefined {
  if (typeof options !== "object" || options === null) {
    p.list.push(
      new SealConfigError(
        "options",
        'pass an object such as { kmsKeyId: "alias/vault", region: "us-east-1" }',
      ),
    );
    return undefined;
  }
  const name = (f: OptionField) => fieldName(f, vaultNames);
  const opt = <T>(f: OptionField, check: (field: string, v: unknown) => T): T | undefined =>
    options[f] === undefined ? undefined : p.run(() => check(name(f), options[f]));
  const num = (f: OptionField, def: number, min: number, max: number): number => {
    const v = options[f];
    if (v === undefined) return def;
    if (typeof v !== "number" || !Number.isFinite(v) || v < min || v > max) {
      // Durations arrive here in milliseconds, whatever unit the configuration used: say so.
      const ms = DURATION_FIELDS.has(f) ? " ms" : "";
      if (!p.has(name(f))) {
        p.list.push(
          new SealConfigError(
            name(f),
            `must be from ${min}${ms} to ${max}${ms}, got ${JSON.stringify(v)}${typeof v === "number" ? ms : ""}`,
          ),
        );
      }
      return def;
    }
    return Math.round(v);
  };

  const kmsKeyId = p.run(() => checkKeyId(name("kmsKeyId"), options.kmsKeyId));
  const accessKeyId = opt("accessKeyId", (f, v) => checkString(f, v, true));
  const secretAccessKey = opt("secretAccessKey", (f, v) => checkString(f, v, true));
  const sessionToken = opt("sessionToken", (f, v) => checkString(f, v, true));
  // Static credentials come as a pair, as in Vault.
  const badCredentials = p.has(name("accessKeyId"), name("secretAccessKey"));
  if ((accessKeyId === undefined) !== (secretAccessKey === undefined) && !badCredentials) {
    const missing = accessKeyId === undefined ? name("accessKeyId") : name("secretAccessKey");
    p.list.push(
      new SealConfigError(
        missing,
        `is required when ${accessKeyId === undefined ? name("secretAccessKey") : name("accessKeyId")} is set: static credentials need both`,
      ),
    );
  } else if (sessionToken !== undefined && accessKeyId === undefined && !badCredentials) {
    p.list.push(
      new SealConfigError(
        name("sessionToken"),
        `needs ${name("accessKeyId")} and ${name("secretAccessKey")} (a session token belongs to temporary credentials)`,
      ),
    );
  }
  const roleArn = opt("roleArn", (f, v) => {
    const s = checkString(f, v);
    if (!/^arn:aws[a-z-]*:iam::\d{12}:role\/.+$/.test(s)) {
      throw new SealConfigError(
        f,
        `${JSON.stringify(s)} is not an IAM role ARN (arn:aws:iam::111122223333:role/name)`,
      );
    }
    return s;
  });
  const webIdentityTokenFile = opt("webIdentityTokenFile", (f, v) => checkString(f, v));
  // Assuming a role from base credentials needs the STS client, which this package does not ship;
  // the shared-config route (role_arn + source_profile in ~/.aws/config) does the same through the SDK.
  if (!p.has(name("roleArn"), name("webIdentityTokenFile"))) {
    if (roleArn !== undefined && webIdentityTokenFile === undefined) {
      p.list.push(
        new SealConfigError(
          name("roleArn"),
          `is only supported with ${name("webIdentityTokenFile")} (web identity / IRSA); to assume a role from other credentials, put role_arn and source_profile in a profile of the shared config file and set ${name("sharedCredsProfile")}`,
        ),
      );
    } else if (webIdentityTokenFile !== undefined && roleArn === undefined) {
      p.list.push(
        new SealConfigError(
          name("roleArn"),
          `is required with ${name("webIdentityTokenFile")}: name the role to assume with the token`,
        ),
      );
    } else if (webIdentityTokenFile !== undefined && accessKeyId !== undefined) {
      p.list.push(
        new SealConfigError(
          name("webIdentityTokenFile"),
          `cannot be combined with ${name("accessKeyId")}/${name("secretAccessKey")}: choose one credential source`,
        ),
      );
    }
  }

  for (const f of DURATION_FIELDS) {
    const v = options[f];
    if (v !== undefined && (typeof v !== "number" || !Number.isFinite(v))) {
      p.list.push(new SealConfigError(name(f), `must be a number of milliseconds, got ${JSON.stringify(v)}`));
    }
  }
  const requestTimeoutMs = num("requestTimeoutMs", DEFAULTS.requestTimeoutMs, 1, 600_000);
  const retryBaseDelayMs = num("retryBaseDelayMs", DEFAULTS.retryBaseDelayMs, 0, 60_000);
  const retryMaxDelayMs = num(
    "retryMaxDelayMs",
    Math.max(DEFAULTS.retryMaxDelayMs, retryBaseDelayMs),
    retryBaseDelayMs,
    600_000,
  );
  const healthCheckIntervalMs = num(
    "healthCheckIntervalMs",
    DEFAULTS.healthCheckIntervalMs,
    0,
    7 * 86_400_000,
  );
  const healthCheckUnhealthyIntervalMs = num(
    "healthCheckUnhealthyIntervalMs",
    healthCheckIntervalMs === 0
      ? DEFAULTS.healthCheckUnhealthyIntervalMs
      : Math.min(DEFAULTS.healthCheckUnhealthyIntervalMs, healthCheckIntervalMs),
    1,
    7 * 86_400_000,
  );
  const healthCheckTimeoutMs = num("healthCheckTimeoutMs", DEFAULTS.healthCheckTimeoutMs, 1, 3_600_000);

  if (options.client !== undefined) {
    const c = options.client as Partial<KmsApi>;
    if (
      typeof c !== "object" ||
      c === null ||
      typeof c.encrypt !== "function" ||
      typeof c.decrypt !== "function" ||
      typeof c.describeKey !== "function"
    ) {
      p.list.push(
        new SealConfigError("client", "must implement describeKey, encrypt and decrypt (see KmsApi)"),
      );
    }
  }
  if (options.logger !== undefined) {
    const l = options.logger as Partial<AwsKmsSealLogger>;
    if (
      typeof l !== "object" ||
      l === null ||
      ["debug", "info", "warn", "error"].some((m) => typeof l[m as keyof AwsKmsSealLogger] !== "function")
    ) {
      p.list.push(new SealConfigError("logger", "must have debug, info, warn and error methods"));
    }
  }

  // Read in the order the fields are listed below, so the first problem is always the same one.
  const region = opt("region", checkRegion);
  const endpoint = opt("endpoint", checkEndpoint);
  const sharedCredsFile = opt("sharedCredsFile", (f, v) => checkString(f, v));
  const sharedCredsProfile = opt("sharedCredsProfile", (f, v) => checkString(f, v));
  const roleSessionName = opt("roleSessionName", (f, v) => checkString(f, v));
  const encryptionContext = opt("encryptionContext", (f, v) => Object.freeze(parseEncryptionContext(f, v)));
  const maxRetries =
    options.maxRetries === undefined
      ? DEFAULTS.maxRetries
      : p.run(() => parseInteger(name("maxRetries"), options.maxRetries, 0, 10));
  if (p.list.length > 0 || kmsKeyId === undefined || maxRetries === undefined) return undefined;
  return {
    kmsKeyId,
    region,
    endpoint,
    accessKeyId,
    secretAccessKey,
    sessionToken,
    sharedCredsFile,
    sharedCredsProfile,
    roleArn,
    roleSessionName,
    webIdentityTokenFile,
    encryptionContext,
    maxRetries,
    requestTimeoutMs,
    retryBaseDelayMs,
    retryMaxDelayMs,
    healthCheckIntervalMs,
    healthCheckUnhealthyIntervalMs,
    healthCheckTimeoutMs,
    client: options.client,
    logger: options.logger,
  };
}

// ---------------------------------------------------------------------------------------------
// The factory's input: a Vault seal block (snake_case) or typed options (camelCase).

export type { EnvLike };

/**
 * Turns a parsed `seal "awskms" { … }` block (Vault names, string or typed values) or an
 * {@link AwsKmsSealOptions} object into validated options, applying the environment:
 * key id `BULWARK_AWSKMS_SEAL_KEY_ID` > `AWSKMS_WRAPPER_KEY_ID` > `VAULT_AWSKMS_SEAL_KEY_ID` >
 * config (as in Vault, the environment wins); endpoint `BULWARK_AWSKMS_ENDPOINT` >
 * `AWSKMS_ENDPOINT` > `AWS_KMS_ENDPOINT` > config; region config > `AWS_REGION` >
 * `AWS_DEFAULT_REGION` (then, at init, the shared config profile, then `us-east-1`): the settings
 * kernel's environment rule. `disallow_env_vars = true` turns the environment off for these three.
 * `access_key`, `secret_key` and `session_token` may be `env://NAME` or `file:///path` references.
 */
export function parseAwsKmsSealConfig(
  config: Record<string, unknown> | AwsKmsSealOptions,
  env: EnvLike = process.env,
): ResolvedAwsKmsSealOptions {
  const p = new SealConfigProblems();
  const parsed = parseInto(config, env, p);
  p.throwFirst();
  return resolveOptions(parsed.options as unknown as AwsKmsSealOptions, parsed.vaultNames);
}

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

/**
 * Every problem of a `seal "awskms"` block at once — what {@link parseAwsKmsSealConfig} would
 * refuse, in the order it checks — as setting + message; `[]` when it would accept the block.
 * Contacts no KMS.
 */
export function checkAwsKmsSealConfig(
  config: Record<string, unknown> | AwsKmsSealOptions,
  env: EnvLike = process.env,
): AwsKmsConfigIssue[] {
  const parse = new SealConfigProblems();
  const parsed = parseInto(config, env, parse);
  const resolve = new SealConfigProblems();
  resolveInto(parsed.options as unknown as AwsKmsSealOptions, parsed.vaultNames, resolve);
  // A setting that is wrong is reported once, not again by the checks that depend on it.
  const later = resolve.list.filter((e) => !parse.list.some((q) => q.field === e.field));
  return [...parse.list, ...later].map(sealConfigIssue);
}

function parseInto(
  config: Record<string, unknown> | AwsKmsSealOptions,
  env: EnvLike,
  p: SealConfigProblems,
): { options: Record<string, unknown>; vaultNames: boolean } {
  if (typeof config !== "object" || config === null || Array.isArray(config)) {
    p.list.push(
      new SealConfigError(
        "config",
        'pass the seal "awskms" block as an object, e.g. { kms_key_id: "alias/vault", region: "us-east-1" }',
      ),
    );
    return { options: {}, vaultNames: true };
  }
  const options: Record<string, unknown> = {};
  const sourceOf: Record<string, string> = {};
  // Error messages use Vault's names unless the caller wrote typed (camelCase) options.
  let vaultNames = true;
  let disallowEnv = false;
  let healthEnabled = true;
  const record = config as Record<string, unknown>;
  for (const [key, value] of Object.entries(record)) {
    if (value === undefined) continue;
    let field: string | undefined;
    if (Object.hasOwn(VAULT_CONFIG_KEYS, key)) {
      field = VAULT_CONFIG_KEYS[key];
    } else if (OPTION_FIELDS.has(key) || OBJECT_ONLY_FIELDS.has(key)) {
      field = key;
      vaultNames = false;
    } else if (key === "disallow_env_vars" || key === "disallowEnvVars") {
      disallowEnv = p.run(() => parseBoolean(key, value)) ?? disallowEnv;
      continue;
    } else if (key === "health_check_enabled" || key === "healthCheckEnabled") {
      healthEnabled = p.run(() => parseBoolean(key, value)) ?? healthEnabled;
      continue;
    } else if (SERVER_KEYS.has(key)) {
      continue;
    } else {
      const known = [...Object.keys(VAULT_CONFIG_KEYS), ...FACTORY_KEYS].sort().join(", ");
      p.list.push(
        new SealConfigError(
          key,
          key === "key_not_required"
            ? "is not supported by the seal: a seal always needs a KMS key"
            : `is not an awskms seal setting (check the spelling); known keys: ${known}`,
        ),
      );
      continue;
    }
    if (field === undefined) continue;
    if (Object.hasOwn(sourceOf, field)) {
      p.list.push(
        new SealConfigError(key, `sets the same option as \`${sourceOf[field]}\`; keep one of them`),
      );
      continue;
    }
    sourceOf[field] = key;
    options[field] = value;
  }

  // Vault's config map carries strings: convert durations, integers and the context here, and
  // resolve env:// and file:// references of the secrets (go-kms-wrapping's ParsePaths).
  for (const [field, key] of Object.entries(sourceOf)) {
    const value = options[field];
    const converted = p.run(() => {
      if (SECRET_FIELDS.has(field)) return parseSecret(key, value, env);
      if (DURATION_FIELDS.has(field as OptionField) && key.includes("_")) return parseDurationMs(key, value);
      if (DURATION_FIELDS.has(field as OptionField) && typeof value !== "number") {
        throw new SealConfigError(key, `must be a number of milliseconds, got ${JSON.stringify(value)}`);
      }
      if (field === "maxRetries") return parseInteger(key, value, 0, 10);
      if (field === "encryptionContext") return parseEncryptionContext(key, value);
      return value;
    });
    // A value that cannot be read is reported here, once; the option is left unset.
    if (converted === undefined) delete options[field];
    else options[field] = converted;
  }

  // The seal's own variables override the block; AWS_REGION only fills in (the AWS SDK's own).
  const fromEnv: [OptionField, readonly string[], EnvironmentRole, (f: string, v: unknown) => string][] = [
    ["kmsKeyId", KEY_ID_ENV_VARS, "overrides", checkKeyId],
    ["endpoint", ENDPOINT_ENV_VARS, "overrides", checkEndpoint],
    ["region", REGION_ENV_VARS, "fills-in", checkRegion],
  ];
  for (const [field, variables, role, check] of fromEnv) {
    const picked = pickSetting({ key: field, block: options[field], env, variables, role, disallowEnv });
    if (picked === undefined || !picked.fromEnvironment) continue;
    const checked = p.run(() => check(picked.from, String(picked.value).trim()));
    if (checked !== undefined) options[field] = checked;
    else delete options[field];
    sourceOf[field] = picked.from;
  }
  if (!healthEnabled) options.healthCheckIntervalMs = 0;
  if (options.kmsKeyId === undefined && !p.has(sourceOf.kmsKeyId ?? "kms_key_id", "kmsKeyId")) {
    p.list.push(
      new SealConfigError(
        vaultNames ? "kms_key_id" : "kmsKeyId",
        `is required: set kms_key_id in the seal "awskms" block (key id, key ARN or alias/name)${disallowEnv ? "" : ` or export ${KEY_ID_ENV_VARS.join(", ")}`}`,
      ),
    );
  }
  return { options, vaultNames };
}

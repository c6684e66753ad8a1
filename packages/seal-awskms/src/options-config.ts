/**
 * The factory's input: a Vault `seal "awskms"` block (snake_case, string values as Vault's config
 * map carries them) or typed options (camelCase), read into options with the environment
 * applied, then validated by `options-resolve.ts`.
 */
import { SealConfigError, type SealConfigIssue, SealConfigProblems, sealConfigIssue } from "@bulwark/seal";
import { type EnvironmentRole, type EnvLike, parseSecret, pickSetting } from "@bulwark/settings";
import { resolveInto, resolveOptions } from "./options-resolve.js";
import {
  type AwsKmsSealOptions,
  DURATION_FIELD_NAMES,
  ENDPOINT_ENV_VARS,
  FACTORY_KEYS,
  KEY_ID_ENV_VARS,
  OBJECT_ONLY_FIELDS,
  OPTION_FIELDS,
  type OptionField,
  REGION_ENV_VARS,
  type ResolvedAwsKmsSealOptions,
  SECRET_FIELDS,
  SERVER_KEYS,
  VAULT_CONFIG_KEYS,
} from "./options-schema.js";
import {
  checkEndpoint,
  checkKeyId,
  checkRegion,
  parseBoolean,
  parseDurationMs,
  parseEncryptionContext,
  parseInteger,
} from "./options-values.js";

export type { EnvLike };

/** One problem of a seal "awskms" block (the shared seal config issue shape). */
export type AwsKmsConfigIssue = SealConfigIssue;

type AwsKmsConfig = Record<string, unknown> | AwsKmsSealOptions;

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
  config: AwsKmsConfig,
  env: EnvLike = process.env,
): ResolvedAwsKmsSealOptions {
  const p = new SealConfigProblems();
  const parsed = parseInto(config, env, p);
  p.throwFirst();
  return resolveOptions(parsed.options, parsed.vaultNames);
}

/**
 * Every problem of a `seal "awskms"` block at once — what {@link parseAwsKmsSealConfig} would
 * refuse, in the order it checks — as setting + message; `[]` when it would accept the block.
 * Contacts no KMS.
 */
export function checkAwsKmsSealConfig(config: AwsKmsConfig, env: EnvLike = process.env): AwsKmsConfigIssue[] {
  const parse = new SealConfigProblems();
  const parsed = parseInto(config, env, parse);
  const resolve = new SealConfigProblems();
  resolveInto(parsed.options, parsed.vaultNames, resolve);
  // A setting that is wrong is reported once, not again by the checks that depend on it.
  const later = resolve.list.filter((e) => !parse.list.some((q) => q.field === e.field));
  return [...parse.list, ...later].map(sealConfigIssue);
}

/** The block read so far: option values by option name, and the key (or variable) each came from. */
interface Read {
  options: Record<string, unknown>;
  sourceOf: Record<string, string>;
  /** Error messages use Vault's names unless the caller wrote typed (camelCase) options. */
  vaultNames: boolean;
  disallowEnv: boolean;
  healthEnabled: boolean;
}

function parseInto(
  config: AwsKmsConfig,
  env: EnvLike,
  p: SealConfigProblems,
): { options: AwsKmsSealOptions; vaultNames: boolean } {
  if (typeof config !== "object" || config === null || Array.isArray(config)) {
    p.list.push(
      new SealConfigError(
        "config",
        'pass the seal "awskms" block as an object, e.g. { kms_key_id: "alias/vault", region: "us-east-1" }',
      ),
    );
    return { options: asOptions({}), vaultNames: true };
  }
  const read = readKeys(config, p);
  convertValues(read, env, p);
  applyEnvironment(read, env, p);
  const { options, sourceOf, vaultNames, disallowEnv } = read;
  if (!read.healthEnabled) options.healthCheckIntervalMs = 0;
  if (options.kmsKeyId === undefined && !p.has(sourceOf.kmsKeyId ?? "kms_key_id", "kmsKeyId")) {
    p.list.push(
      new SealConfigError(
        vaultNames ? "kms_key_id" : "kmsKeyId",
        `is required: set kms_key_id in the seal "awskms" block (key id, key ARN or alias/name)${disallowEnv ? "" : ` or export ${KEY_ID_ENV_VARS.join(", ")}`}`,
      ),
    );
  }
  return { options: asOptions(options), vaultNames };
}

/**
 * The values read are checked by `resolveInto` as typed options; until then they are whatever
 * the block held (the one cast of this module).
 */
function asOptions(options: Record<string, unknown>): AwsKmsSealOptions {
  return options as unknown as AwsKmsSealOptions;
}

/** Maps each key to its option (Vault or typed name), reading the factory's own booleans. */
function readKeys(config: object, p: SealConfigProblems): Read {
  const read: Read = { options: {}, sourceOf: {}, vaultNames: true, disallowEnv: false, healthEnabled: true };
  const entries: [string, unknown][] = Object.entries(config);
  for (const [key, value] of entries) {
    if (value === undefined) continue;
    let field: string | undefined;
    if (Object.hasOwn(VAULT_CONFIG_KEYS, key)) {
      field = VAULT_CONFIG_KEYS[key];
    } else if (OPTION_FIELDS.has(key) || OBJECT_ONLY_FIELDS.has(key)) {
      field = key;
      read.vaultNames = false;
    } else if (key === "disallow_env_vars" || key === "disallowEnvVars") {
      read.disallowEnv = p.run(() => parseBoolean(key, value)) ?? read.disallowEnv;
      continue;
    } else if (key === "health_check_enabled" || key === "healthCheckEnabled") {
      read.healthEnabled = p.run(() => parseBoolean(key, value)) ?? read.healthEnabled;
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
    if (Object.hasOwn(read.sourceOf, field)) {
      p.list.push(
        new SealConfigError(key, `sets the same option as \`${read.sourceOf[field]}\`; keep one of them`),
      );
      continue;
    }
    read.sourceOf[field] = key;
    read.options[field] = value;
  }
  return read;
}

/**
 * Vault's config map carries strings: converts durations, integers and the context, and resolves
 * env:// and file:// references of the secrets (go-kms-wrapping's ParsePaths).
 */
function convertValues({ options, sourceOf }: Read, env: EnvLike, p: SealConfigProblems): void {
  for (const [field, key] of Object.entries(sourceOf)) {
    const value = options[field];
    const converted = p.run(() => {
      if (SECRET_FIELDS.has(field)) return parseSecret(key, value, env);
      if (DURATION_FIELD_NAMES.has(field) && key.includes("_")) return parseDurationMs(key, value);
      if (DURATION_FIELD_NAMES.has(field) && typeof value !== "number") {
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
}

/** The seal's own variables override the block; AWS_REGION only fills in (the AWS SDK's own). */
const FROM_ENV: readonly [
  OptionField,
  readonly string[],
  EnvironmentRole,
  (f: string, v: unknown) => string,
][] = [
  ["kmsKeyId", KEY_ID_ENV_VARS, "overrides", checkKeyId],
  ["endpoint", ENDPOINT_ENV_VARS, "overrides", checkEndpoint],
  ["region", REGION_ENV_VARS, "fills-in", checkRegion],
];

function applyEnvironment(
  { options, sourceOf, disallowEnv }: Read,
  env: EnvLike,
  p: SealConfigProblems,
): void {
  for (const [field, variables, role, check] of FROM_ENV) {
    const picked = pickSetting({ key: field, block: options[field], env, variables, role, disallowEnv });
    if (picked === undefined || !picked.fromEnvironment) continue;
    const checked = p.run(() => check(picked.from, String(picked.value).trim()));
    if (checked !== undefined) options[field] = checked;
    else delete options[field];
    sourceOf[field] = picked.from;
  }
}

/**
 * Validation of the typed {@link AwsKmsSealOptions}: every option checked, the combinations that
 * must come together (static credentials, web identity), the numeric ranges, and the defaults
 * applied. Problems are collected in check order so the first one is always the same.
 */
import { SealConfigError, SealConfigProblems } from "@bulwark/seal";
import {
  type AwsKmsSealOptions,
  DEFAULTS,
  DURATION_FIELDS,
  fieldName,
  type OptionField,
  type ResolvedAwsKmsSealOptions,
} from "./options-schema.js";
import {
  checkEndpoint,
  checkKeyId,
  checkRegion,
  checkString,
  parseEncryptionContext,
  parseInteger,
} from "./options-values.js";

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

/** The options being checked, the problems found so far, and the names messages use. */
class Check {
  constructor(
    readonly options: AwsKmsSealOptions,
    readonly vaultNames: boolean,
    readonly p: SealConfigProblems,
  ) {}

  name(f: OptionField): string {
    return fieldName(f, this.vaultNames);
  }

  problem(field: string, message: string): void {
    this.p.list.push(new SealConfigError(field, message));
  }

  /** An optional option through `check`; unset, or wrong (recorded), is `undefined`. */
  opt<T>(f: OptionField, check: (field: string, v: unknown) => T): T | undefined {
    const v = this.options[f];
    return v === undefined ? undefined : this.p.run(() => check(this.name(f), v));
  }

  /** A number option within [min, max], `def` when unset (or wrong, which is recorded once). */
  num(f: OptionField, def: number, min: number, max: number): number {
    const v = this.options[f];
    if (v === undefined) return def;
    if (typeof v !== "number" || !Number.isFinite(v) || v < min || v > max) {
      // Durations arrive here in milliseconds, whatever unit the configuration used: say so.
      const ms = DURATION_FIELDS.has(f) ? " ms" : "";
      if (!this.p.has(this.name(f))) {
        this.problem(
          this.name(f),
          `must be from ${min}${ms} to ${max}${ms}, got ${JSON.stringify(v)}${typeof v === "number" ? ms : ""}`,
        );
      }
      return def;
    }
    return Math.round(v);
  }
}

/** Validates into `p`; the resolved options when nothing was wrong. */
export function resolveInto(
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
  const c = new Check(options, vaultNames, p);
  const kmsKeyId = p.run(() => checkKeyId(c.name("kmsKeyId"), options.kmsKeyId));
  const credentials = staticCredentials(c);
  const identity = webIdentity(c, credentials.accessKeyId);
  const timings = timingsOf(c);
  checkInjected(c);

  // Read in the order the fields are listed below, so the first problem is always the same one.
  const region = c.opt("region", checkRegion);
  const endpoint = c.opt("endpoint", checkEndpoint);
  const sharedCredsFile = c.opt("sharedCredsFile", (f, v) => checkString(f, v));
  const sharedCredsProfile = c.opt("sharedCredsProfile", (f, v) => checkString(f, v));
  const roleSessionName = c.opt("roleSessionName", (f, v) => checkString(f, v));
  const encryptionContext = c.opt("encryptionContext", (f, v) => Object.freeze(parseEncryptionContext(f, v)));
  const maxRetries =
    options.maxRetries === undefined
      ? DEFAULTS.maxRetries
      : p.run(() => parseInteger(c.name("maxRetries"), options.maxRetries, 0, 10));
  if (p.list.length > 0 || kmsKeyId === undefined || maxRetries === undefined) return undefined;
  return {
    kmsKeyId,
    region,
    endpoint,
    ...credentials,
    sharedCredsFile,
    sharedCredsProfile,
    roleArn: identity.roleArn,
    roleSessionName,
    webIdentityTokenFile: identity.webIdentityTokenFile,
    encryptionContext,
    maxRetries,
    ...timings,
    client: options.client,
    logger: options.logger,
  };
}

/** `accessKeyId`/`secretAccessKey`/`sessionToken`: a pair, and a session token only with the pair (as in Vault). */
function staticCredentials(c: Check): {
  accessKeyId: string | undefined;
  secretAccessKey: string | undefined;
  sessionToken: string | undefined;
} {
  const accessKeyId = c.opt("accessKeyId", (f, v) => checkString(f, v, true));
  const secretAccessKey = c.opt("secretAccessKey", (f, v) => checkString(f, v, true));
  const sessionToken = c.opt("sessionToken", (f, v) => checkString(f, v, true));
  const badCredentials = c.p.has(c.name("accessKeyId"), c.name("secretAccessKey"));
  if ((accessKeyId === undefined) !== (secretAccessKey === undefined) && !badCredentials) {
    const missing = accessKeyId === undefined ? c.name("accessKeyId") : c.name("secretAccessKey");
    c.problem(
      missing,
      `is required when ${accessKeyId === undefined ? c.name("secretAccessKey") : c.name("accessKeyId")} is set: static credentials need both`,
    );
  } else if (sessionToken !== undefined && accessKeyId === undefined && !badCredentials) {
    c.problem(
      c.name("sessionToken"),
      `needs ${c.name("accessKeyId")} and ${c.name("secretAccessKey")} (a session token belongs to temporary credentials)`,
    );
  }
  return { accessKeyId, secretAccessKey, sessionToken };
}

/** `roleArn` with `webIdentityTokenFile` (IRSA), the only role assumption this package makes. */
function webIdentity(
  c: Check,
  accessKeyId: string | undefined,
): { roleArn: string | undefined; webIdentityTokenFile: string | undefined } {
  const roleArn = c.opt("roleArn", (f, v) => {
    const s = checkString(f, v);
    if (!/^arn:aws[a-z-]*:iam::\d{12}:role\/.+$/.test(s)) {
      throw new SealConfigError(
        f,
        `${JSON.stringify(s)} is not an IAM role ARN (arn:aws:iam::111122223333:role/name)`,
      );
    }
    return s;
  });
  const webIdentityTokenFile = c.opt("webIdentityTokenFile", (f, v) => checkString(f, v));
  // Assuming a role from base credentials needs the STS client, which this package does not ship;
  // the shared-config route (role_arn + source_profile in ~/.aws/config) does the same through the SDK.
  if (!c.p.has(c.name("roleArn"), c.name("webIdentityTokenFile"))) {
    if (roleArn !== undefined && webIdentityTokenFile === undefined) {
      c.problem(
        c.name("roleArn"),
        `is only supported with ${c.name("webIdentityTokenFile")} (web identity / IRSA); to assume a role from other credentials, put role_arn and source_profile in a profile of the shared config file and set ${c.name("sharedCredsProfile")}`,
      );
    } else if (webIdentityTokenFile !== undefined && roleArn === undefined) {
      c.problem(
        c.name("roleArn"),
        `is required with ${c.name("webIdentityTokenFile")}: name the role to assume with the token`,
      );
    } else if (webIdentityTokenFile !== undefined && accessKeyId !== undefined) {
      c.problem(
        c.name("webIdentityTokenFile"),
        `cannot be combined with ${c.name("accessKeyId")}/${c.name("secretAccessKey")}: choose one credential source`,
      );
    }
  }
  return { roleArn, webIdentityTokenFile };
}

type Timings = Pick<
  ResolvedAwsKmsSealOptions,
  | "requestTimeoutMs"
  | "retryBaseDelayMs"
  | "retryMaxDelayMs"
  | "healthCheckIntervalMs"
  | "healthCheckUnhealthyIntervalMs"
  | "healthCheckTimeoutMs"
>;

/** The durations (milliseconds by now) within their ranges, defaults filled in from each other. */
function timingsOf(c: Check): Timings {
  for (const f of DURATION_FIELDS) {
    const v = c.options[f];
    if (v !== undefined && (typeof v !== "number" || !Number.isFinite(v))) {
      c.problem(c.name(f), `must be a number of milliseconds, got ${JSON.stringify(v)}`);
    }
  }
  const requestTimeoutMs = c.num("requestTimeoutMs", DEFAULTS.requestTimeoutMs, 1, 600_000);
  const retryBaseDelayMs = c.num("retryBaseDelayMs", DEFAULTS.retryBaseDelayMs, 0, 60_000);
  const retryMaxDelayMs = c.num(
    "retryMaxDelayMs",
    Math.max(DEFAULTS.retryMaxDelayMs, retryBaseDelayMs),
    retryBaseDelayMs,
    600_000,
  );
  const healthCheckIntervalMs = c.num(
    "healthCheckIntervalMs",
    DEFAULTS.healthCheckIntervalMs,
    0,
    7 * 86_400_000,
  );
  const healthCheckUnhealthyIntervalMs = c.num(
    "healthCheckUnhealthyIntervalMs",
    healthCheckIntervalMs === 0
      ? DEFAULTS.healthCheckUnhealthyIntervalMs
      : Math.min(DEFAULTS.healthCheckUnhealthyIntervalMs, healthCheckIntervalMs),
    1,
    7 * 86_400_000,
  );
  const healthCheckTimeoutMs = c.num("healthCheckTimeoutMs", DEFAULTS.healthCheckTimeoutMs, 1, 3_600_000);
  return {
    requestTimeoutMs,
    retryBaseDelayMs,
    retryMaxDelayMs,
    healthCheckIntervalMs,
    healthCheckUnhealthyIntervalMs,
    healthCheckTimeoutMs,
  };
}

/** Whether `value` is an object with a function under each of `methods`. */
function hasMethods(value: unknown, methods: readonly string[]): boolean {
  return (
    typeof value === "object" &&
    value !== null &&
    methods.every((m) => typeof Reflect.get(value, m) === "function")
  );
}

/** The injected KMS client and logger: objects of the right shape, not settings. */
function checkInjected(c: Check): void {
  const { client, logger } = c.options;
  if (client !== undefined && !hasMethods(client, ["encrypt", "decrypt", "describeKey"])) {
    c.problem("client", "must implement describeKey, encrypt and decrypt (see KmsApi)");
  }
  if (logger !== undefined && !hasMethods(logger, ["debug", "info", "warn", "error"])) {
    c.problem("logger", "must have debug, info, warn and error methods");
  }
}

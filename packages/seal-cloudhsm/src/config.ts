import { SealConfigError, type SealConfigIssue, SealConfigProblems, sealConfigIssue } from "@bulwark/seal";
import {
  CKM_AES_GCM,
  checkPkcs11Options,
  inspectPkcs11Config,
  PKCS11_CONFIG_KEYS,
  type Pkcs11SealOptions,
  type ResolvedPkcs11Config,
  resolvePkcs11Options,
  withoutReported,
} from "@bulwark/seal-pkcs11";
import { firstVariable, parseOptionalBool, pickSetting, resolveSecret } from "@bulwark/settings";
import type { CloudHsmApiClient } from "./cluster.js";

/** Where AWS installs the Client SDK 5 PKCS#11 library (`configure-pkcs11` sets it up). */
export const CLOUDHSM_DEFAULT_LIB = "/opt/cloudhsm/lib/libcloudhsm_pkcs11.so";
/**
 * Slot id of the first (usually only) cluster in SDK 5: 0x2000000000000001. Used when neither
 * `slot`, `token_label` nor `serial` is set.
 */
export const CLOUDHSM_FIRST_SLOT = 2305843009213693953n;
/** SDK 5 known issue: C_Encrypt/C_Decrypt buffers of at most 16 KB with CKM_AES_GCM. */
export const CLOUDHSM_GCM_MAX_BYTES = 16384;
/** First retry delay: the client library moves to another HSM of the cluster, which takes a moment. */
export const CLOUDHSM_DEFAULT_RETRY_BASE_MS = 100;
/** How long a DescribeClusters call may take before the check counts as failed. */
export const CLOUDHSM_DEFAULT_CLUSTER_TIMEOUT_MS = 5000;

const PIN_FORMAT =
  'a CloudHSM PIN is "<crypto user>:<password>" (e.g. "crypto_user:Passw0rd!"); set pin that way, or set user and password';

/** Structural logger (the core's `Logger` fits). Messages never carry PINs or credentials. */
export interface CloudHsmSealLogger {
  warn(msg: string, fields?: Record<string, unknown>): void;
  info?(msg: string, fields?: Record<string, unknown>): void;
}

/**
 * Typed options of {@link CloudHsmSeal}: the PKCS#11 seal's options (Vault's `seal "pkcs11"`
 * keys in camelCase) with CloudHSM defaults, plus the CU credentials and the cluster check. The
 * GCM profile knobs (`hsmGeneratedIv`, `gcmIvBits`) are fixed by the profile.
 */
export interface CloudHsmSealOptions
  extends Omit<Pkcs11SealOptions, "lib" | "pin" | "hsmGeneratedIv" | "gcmIvBits"> {
  /** PKCS#11 library; default `/opt/cloudhsm/lib/libcloudhsm_pkcs11.so`. */
  lib?: string | undefined;
  /** `"<crypto user>:<password>"`. Either this or `user` + `password`. */
  pin?: string | undefined;
  /** Crypto user (CU) name; with `password` it makes the PIN. */
  user?: string | undefined;
  /** The CU's password. */
  password?: string | undefined;

  /** CloudHSM cluster id (`cluster-…`): enables the DescribeClusters check at init and in health(). */
  clusterId?: string | undefined;
  /** AWS region of the cluster (required with clusterId; the factory reads AWS_REGION too). */
  region?: string | undefined;
  /** CloudHSMV2 API endpoint, e.g. a VPC endpoint; default: the region's public endpoint. */
  endpoint?: string | undefined;
  /** Static AWS credentials for the API; default: the SDK's credential chain. */
  accessKey?: string | undefined;
  secretKey?: string | undefined;
  sessionToken?: string | undefined;
  /** Refuse to init (and report unhealthy) unless the cluster is ACTIVE with an ACTIVE HSM. */
  requireActiveCluster?: boolean | undefined;
  /** Time limit of one DescribeClusters check in ms. Default 5000. */
  clusterTimeoutMs?: number | undefined;
  /** A CloudHSMV2 client to use instead of creating one (tests, custom middleware). */
  cloudHsmClient?: CloudHsmApiClient | undefined;
  /** Receives cluster warnings; default: console.warn. */
  logger?: CloudHsmSealLogger | undefined;
}

/** The cluster-check part of the options, validated. */
export interface ResolvedClusterConfig {
  clusterId: string;
  region: string;
  endpoint: string | undefined;
  credentials: { accessKeyId: string; secretAccessKey: string; sessionToken?: string } | undefined;
  requireActive: boolean;
  timeoutMs: number;
  client: CloudHsmApiClient | undefined;
}

/** What the profile adds to the PKCS#11 seal, validated. */
export interface ResolvedProfile {
  /** The crypto user the PIN names (for messages; never the password). */
  user: string;
  cluster: ResolvedClusterConfig | undefined;
  logger: CloudHsmSealLogger;
  /** Whether `key_id` was configured (a duplicate CKA_ID is then a configuration error). */
  keyIdConfigured: boolean;
}

function fail(field: string, message: string): never {
  throw new SealConfigError(field, message);
}

function optString(field: string, v: unknown): string | undefined {
  if (v === undefined || v === null || v === "") return undefined;
  if (typeof v !== "string") fail(field, `must be a string, got ${typeof v}`);
  return v;
}

/** A boolean setting through the settings kernel (Go's ParseBool words); an empty setting is unset. */
function parseBool(field: string, v: unknown): boolean | undefined {
  return v === "" ? undefined : parseOptionalBool(field, v);
}

/**
 * Splits a CloudHSM PIN into user and password, or says what is wrong with it. The PIN itself
 * never appears in the message.
 */
export function splitCloudHsmPin(field: string, pin: string): { user: string; password: string } {
  const at = pin.indexOf(":");
  if (at < 0) fail(field, `the PIN has no ":" — ${PIN_FORMAT}`);
  if (at === 0) fail(field, `the PIN has no crypto user before ":" — ${PIN_FORMAT}`);
  if (at === pin.length - 1) fail(field, `the PIN has no password after ":" — ${PIN_FORMAT}`);
  return { user: pin.slice(0, at), password: pin.slice(at + 1) };
}

/** The PIN from `pin` or `user` + `password` (exactly one of the two ways). */
function resolvePin(o: CloudHsmSealOptions): { pin: string; user: string } {
  const pin = optString("pin", o.pin);
  const user = optString("user", o.user);
  const password = optString("password", o.password);
  if (pin !== undefined && (user !== undefined || password !== undefined)) {
    fail(user !== undefined ? "user" : "password", "set either pin or user + password, not both");
  }
  if (pin !== undefined) return { pin, user: splitCloudHsmPin("pin", pin).user };
  if (user === undefined && password === undefined) {
    fail(
      "pin",
      `no CloudHSM credentials: ${PIN_FORMAT} (env: BULWARK_HSM_PIN / VAULT_HSM_PIN, or BULWARK_CLOUDHSM_USER + BULWARK_CLOUDHSM_PASSWORD; file:// and env:// references work)`,
    );
  }
  if (user === undefined) fail("user", "password is set but user is not: set the crypto user's name");
  if (password === undefined) fail("password", `user ${JSON.stringify(user)} is set but password is not`);
  if (user.includes(":")) {
    fail("user", `a crypto user name cannot contain ":" (the PIN is "<user>:<password>")`);
  }
  return { pin: `${user}:${password}`, user };
}

function resolveCluster(o: CloudHsmSealOptions, p: SealConfigProblems): ResolvedClusterConfig | undefined {
  const clusterId = p.run(() => optString("cluster_id", o.clusterId));
  const region = p.run(() => optString("region", o.region));
  const endpoint = p.run(() => optString("endpoint", o.endpoint));
  const accessKey = p.run(() => optString("access_key", o.accessKey));
  const secretKey = p.run(() => optString("secret_key", o.secretKey));
  const sessionToken = p.run(() => optString("session_token", o.sessionToken));
  const requireActive = p.run(() => parseBool("require_active_cluster", o.requireActiveCluster));
  if (clusterId === undefined) {
    if (p.has("cluster_id")) return undefined;
    const stray = [
      ["region", region],
      ["endpoint", endpoint],
      ["access_key", accessKey],
      ["secret_key", secretKey],
      ["session_token", sessionToken],
      ["require_active_cluster", requireActive],
      ["cloudHsmClient", o.cloudHsmClient],
    ].find(([, v]) => v !== undefined);
    if (stray !== undefined) {
      p.add(
        stray[0] as string,
        "is used only by the cluster check; set cluster_id (cluster-…) to enable it, or remove this setting",
      );
    }
    return undefined;
  }
  const before = p.list.length;
  if (!/^cluster-[a-z0-9]+$/i.test(clusterId)) {
    p.add("cluster_id", `${JSON.stringify(clusterId)} is not a CloudHSM cluster id (cluster-<id>)`);
  }
  if (region === undefined && o.cloudHsmClient === undefined && !p.has("region")) {
    p.add("region", "set region (or AWS_REGION) to the cluster's AWS region for the CloudHSM API");
  }
  if ((accessKey === undefined) !== (secretKey === undefined) && !p.has("access_key", "secret_key")) {
    p.add(accessKey === undefined ? "access_key" : "secret_key", "set access_key and secret_key together");
  } else if (sessionToken !== undefined && accessKey === undefined && !p.has("access_key")) {
    p.add("session_token", "needs access_key and secret_key");
  }
  if (endpoint !== undefined) {
    let url: URL | undefined;
    try {
      url = new URL(endpoint);
    } catch {
      p.add(
        "endpoint",
        `${JSON.stringify(endpoint)} is not a URL (https://cloudhsmv2.<region>.amazonaws.com)`,
      );
    }
    if (url !== undefined && url.protocol !== "https:" && url.protocol !== "http:") {
      p.add("endpoint", `${JSON.stringify(endpoint)} must be an http(s) URL`);
    }
  }
  const timeoutMs = o.clusterTimeoutMs ?? CLOUDHSM_DEFAULT_CLUSTER_TIMEOUT_MS;
  if (!Number.isInteger(timeoutMs) || timeoutMs < 1 || timeoutMs > 120_000) {
    p.add("clusterTimeoutMs", `${timeoutMs} must be an integer from 1 to 120000`);
  }
  const client = o.cloudHsmClient;
  if (client !== undefined && typeof (client as Partial<CloudHsmApiClient>).send !== "function") {
    p.add("cloudHsmClient", "must have a send(command) method (a CloudHSMV2Client)");
  }
  if (p.list.length > before) return undefined;
  return {
    clusterId,
    region: region ?? "",
    endpoint,
    credentials:
      accessKey !== undefined && secretKey !== undefined
        ? {
            accessKeyId: accessKey,
            secretAccessKey: secretKey,
            ...(sessionToken !== undefined ? { sessionToken } : {}),
          }
        : undefined,
    requireActive: requireActive ?? false,
    timeoutMs,
    client,
  };
}

const consoleLogger: CloudHsmSealLogger = {
  warn: (msg, fields) => console.warn(`cloudhsm seal: ${msg}`, fields ?? ""),
};

/**
 * Splits typed options into the PKCS#11 seal's options (with the CloudHSM profile applied) and
 * the profile's own settings. Throws `SealConfigError` naming the field and the fix.
 */
export function resolveCloudHsmOptions(o: CloudHsmSealOptions): {
  pkcs11: Pkcs11SealOptions;
  profile: ResolvedProfile;
} {
  const p = new SealConfigProblems();
  const resolved = resolveCloudHsmInto(o, p);
  p.throwFirst();
  return resolved as { pkcs11: Pkcs11SealOptions; profile: ResolvedProfile };
}

function resolveCloudHsmInto(
  o: CloudHsmSealOptions,
  p: SealConfigProblems,
): { pkcs11: Pkcs11SealOptions; profile: ResolvedProfile } | undefined {
  if (typeof o !== "object" || o === null) {
    p.add("options", 'pass { pin: "<user>:<password>" (or user + password), key_label, … }');
    return undefined;
  }
  const raw = o as CloudHsmSealOptions & Record<string, unknown>;
  // The profile exists to set these; a contradicting value is a configuration mistake.
  if (raw.hsmGeneratedIv !== undefined) {
    const iv = p.run(() => parseBool("hsmGeneratedIv", raw.hsmGeneratedIv));
    if (iv === false) {
      p.add("hsmGeneratedIv", "CloudHSM always generates the AES-GCM IV itself; remove this setting");
    }
  }
  if (raw.gcmIvBits !== undefined)
    p.add("gcmIvBits", "is fixed by the CloudHSM profile (0, as AWS's samples pass)");
  // The PIN's rules depend on each other: one problem with it at a time.
  const pin = p.run(() => resolvePin(o));
  const cluster = resolveCluster(o, p);
  if (o.logger !== undefined && typeof (o.logger as Partial<CloudHsmSealLogger>).warn !== "function") {
    p.add("logger", "must have a warn(message, fields) method");
  }
  const lib = p.run(() => optString("lib", o.lib));
  if (p.list.length > 0 || pin === undefined) return undefined;
  const {
    user: _user,
    password: _password,
    clusterId: _clusterId,
    region: _region,
    endpoint: _endpoint,
    accessKey: _accessKey,
    secretKey: _secretKey,
    sessionToken: _sessionToken,
    requireActiveCluster: _requireActiveCluster,
    clusterTimeoutMs: _clusterTimeoutMs,
    cloudHsmClient: _cloudHsmClient,
    logger: _logger,
    ...rest
  } = o;
  const noToken = rest.slot === undefined && rest.tokenLabel === undefined && rest.serial === undefined;
  const pkcs11: Pkcs11SealOptions = {
    ...rest,
    lib: lib ?? CLOUDHSM_DEFAULT_LIB,
    pin: pin.pin,
    ...(noToken ? { slot: CLOUDHSM_FIRST_SLOT } : {}),
    // GCM the CloudHSM way: a zeroed 12-byte IV in, the HSM's IV read back after C_Encrypt,
    // ulIvBits 0 as in AWS's samples; values above 16 KiB through an HSM-wrapped data key.
    mechanism: rest.mechanism ?? CKM_AES_GCM,
    hsmGeneratedIv: true,
    gcmIvBits: 0,
    maxDirectBytes: rest.maxDirectBytes ?? CLOUDHSM_GCM_MAX_BYTES,
    retryBaseMs: rest.retryBaseMs ?? CLOUDHSM_DEFAULT_RETRY_BASE_MS,
  };
  return {
    pkcs11,
    profile: {
      user: pin.user,
      cluster,
      logger: o.logger ?? consoleLogger,
      keyIdConfigured: rest.keyId !== undefined && rest.keyId !== "",
    },
  };
}

/**
 * What the CloudHSM profile refuses in an otherwise valid PKCS#11 configuration (the same rules
 * and messages as `CloudHsmSeal`'s constructor): another mechanism than AES-GCM, and direct
 * encryption above CloudHSM's 16 KiB per call.
 */
export function cloudHsmProfileProblems(config: ResolvedPkcs11Config): SealConfigError[] {
  const problems: SealConfigError[] = [];
  if (config.mechanism !== CKM_AES_GCM) {
    problems.push(
      new SealConfigError(
        "mechanism",
        'the CloudHSM profile seals with CKM_AES_GCM (0x1087) and the HSM-generated IV; for RSA-OAEP use seal "pkcs11" with a key pair created in cloudhsm-cli',
      ),
    );
  }
  if (config.maxDirectBytes > CLOUDHSM_GCM_MAX_BYTES) {
    problems.push(
      new SealConfigError(
        "max_direct_bytes",
        `is ${config.maxDirectBytes}, but CloudHSM encrypts at most ${CLOUDHSM_GCM_MAX_BYTES} bytes per AES-GCM call; larger values use an HSM-wrapped data key anyway`,
      ),
    );
  }
  return problems;
}

// ---------------------------------------------------------------------------------------------
// Vault-style configuration: the `seal "pkcs11"` keys plus the CloudHSM ones.

interface ProfileField {
  vault: string;
  option: keyof CloudHsmSealOptions;
  /** Suffix of BULWARK_CLOUDHSM_*; undefined = no environment variable of our own. */
  env?: string;
  /** May be a file:// or env:// reference. */
  secret?: boolean;
}

const PROFILE_FIELDS: readonly ProfileField[] = [
  { vault: "user", option: "user", env: "USER", secret: true },
  { vault: "password", option: "password", env: "PASSWORD", secret: true },
  { vault: "cluster_id", option: "clusterId", env: "CLUSTER_ID" },
  { vault: "region", option: "region", env: "REGION" },
  { vault: "endpoint", option: "endpoint", env: "ENDPOINT" },
  { vault: "access_key", option: "accessKey", secret: true },
  { vault: "secret_key", option: "secretKey", secret: true },
  { vault: "session_token", option: "sessionToken", secret: true },
  { vault: "require_active_cluster", option: "requireActiveCluster", env: "REQUIRE_ACTIVE_CLUSTER" },
];

/** Typed-only settings that may ride along in a config object (not from HCL). */
const OBJECT_ONLY = new Set<string>(["clusterTimeoutMs", "cloudHsmClient", "logger"]);

const PROFILE_BY_KEY = new Map<string, ProfileField>();
for (const f of PROFILE_FIELDS) {
  PROFILE_BY_KEY.set(f.vault, f);
  PROFILE_BY_KEY.set(f.option, f);
}

const PIN_ENV = ["BULWARK_HSM_PIN", "VAULT_HSM_PIN"];
const CU_ENV = ["BULWARK_CLOUDHSM_USER", "BULWARK_CLOUDHSM_PASSWORD"];

/**
 * Parses a Vault `seal "pkcs11"` block for CloudHSM (the PKCS#11 keys, see
 * `parsePkcs11Config`) plus the CloudHSM keys `user`, `password`, `cluster_id`, `region`,
 * `endpoint`, `access_key`, `secret_key`, `session_token`, `require_active_cluster` — or typed
 * {@link CloudHsmSealOptions} — into typed options. The seal's own variables override the block
 * (Vault's rule): the PKCS#11 settings from `BULWARK_HSM_*` / `VAULT_HSM_*`, the CloudHSM ones
 * from `BULWARK_CLOUDHSM_*`. General-purpose variables only fill in what the block leaves unset:
 * the region from `AWS_REGION` / `AWS_DEFAULT_REGION`, static credentials from
 * `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` / `AWS_SESSION_TOKEN`.
 * `pin`, `user`, `password` and the AWS secrets may be `file://…` or `env://…` references.
 * PIN precedence: `BULWARK_HSM_PIN` / `VAULT_HSM_PIN`, then `BULWARK_CLOUDHSM_USER` +
 * `BULWARK_CLOUDHSM_PASSWORD` (each overriding its own setting), then the block's `pin` or
 * `user` + `password`.
 */
export function parseCloudHsmConfig(
  config: Record<string, unknown> | CloudHsmSealOptions,
  env: Record<string, string | undefined> = process.env,
): CloudHsmSealOptions {
  const p = new SealConfigProblems();
  const options = parseInto(config, env, p);
  p.throwFirst();
  return options;
}

/** Every setting a CloudHSM seal block accepts: the pkcs11 seal's and the CloudHSM ones. */
export const CLOUDHSM_CONFIG_KEYS: readonly string[] = [
  ...PKCS11_CONFIG_KEYS,
  ...PROFILE_FIELDS.map((f) => f.vault),
  ...PROFILE_FIELDS.map((f) => f.option),
  ...OBJECT_ONLY,
];

/**
 * Every problem of a CloudHSM seal block at once — what `createCloudHsmSeal` would refuse, in the
 * order it checks — as setting + message; `[]` when it would accept the block. Loads no library
 * and contacts neither the HSM nor the CloudHSM API.
 */
export function checkCloudHsmConfig(
  config: Record<string, unknown> | CloudHsmSealOptions,
  env: Record<string, string | undefined> = process.env,
): SealConfigIssue[] {
  const parse = new SealConfigProblems();
  const options = parseInto(config, env, parse);
  const profile = new SealConfigProblems();
  const resolved = resolveCloudHsmInto(options, profile);
  const problems = [...parse.list, ...withoutReported(profile.list, parse.list)];
  if (resolved !== undefined) {
    const pkcs11 = checkPkcs11Options(resolved.pkcs11);
    problems.push(...withoutReported(pkcs11, problems));
    if (pkcs11.length === 0) {
      problems.push(
        ...withoutReported(cloudHsmProfileProblems(resolvePkcs11Options(resolved.pkcs11)), problems),
      );
    }
  }
  return problems.map(sealConfigIssue);
}

function parseInto(
  config: Record<string, unknown> | CloudHsmSealOptions,
  env: Record<string, string | undefined>,
  p: SealConfigProblems,
): CloudHsmSealOptions {
  if (typeof config !== "object" || config === null) {
    p.add("config", 'pass the seal block as an object, e.g. { pin: "<user>:<password>", key_label }');
    return {};
  }
  const pkcs11Block: Record<string, unknown> = {};
  const profile = new Map<keyof CloudHsmSealOptions, unknown>();
  const seenAs = new Map<keyof CloudHsmSealOptions, string>();
  const objects: Partial<CloudHsmSealOptions> = {};
  for (const [key, value] of Object.entries(config)) {
    if (OBJECT_ONLY.has(key)) {
      (objects as Record<string, unknown>)[key] = value;
      continue;
    }
    const spec = PROFILE_BY_KEY.get(key);
    if (spec === undefined) {
      pkcs11Block[key] = value;
      continue;
    }
    const previous = seenAs.get(spec.option);
    if (previous !== undefined) {
      p.add(key, `is given twice (also as ${previous}); keep one`);
      continue;
    }
    seenAs.set(spec.option, key);
    if (value !== undefined && value !== null && value !== "") profile.set(spec.option, value);
  }
  // The credential has two spellings (pin = "user:password", or user + password), each in the
  // block and in the environment. Vault's rule: the environment overrides the block, and of the
  // variables the PIN ones (pkcs11's) come first. So a PIN variable replaces the block's
  // credential whatever its spelling, and with no PIN variable a CU variable replaces the block's
  // pin (its own setting it overrides through pickSetting below).
  const envPin = firstVariable(env, PIN_ENV) !== undefined;
  const envCu = firstVariable(env, CU_ENV) !== undefined;
  if (envPin) {
    profile.delete("user");
    profile.delete("password");
  } else if (envCu) delete pkcs11Block.pin;
  const inspected = inspectPkcs11Config(pkcs11Block, env);
  const parsed = inspected.options;
  for (const err of inspected.problems) {
    // The PKCS#11 parser lists its own keys for a typo; add ours.
    if (/unknown setting/.test(err.message)) {
      p.list.push(
        new SealConfigError(
          err.field,
          `unknown setting; the cloudhsm seal knows the pkcs11 seal's settings and ${PROFILE_FIELDS.map((f) => f.vault).join(", ")}`,
          { cause: err },
        ),
      );
    } else p.list.push(err);
  }
  const clusterFields = new Set<keyof CloudHsmSealOptions>(["region", "endpoint", "requireActiveCluster"]);
  const clusterConfigured =
    profile.has("clusterId") || firstVariable(env, ["BULWARK_CLOUDHSM_CLUSTER_ID"]) !== undefined;
  // Vault's rule (the kernel's): this seal's own BULWARK_CLOUDHSM_* variables override the block;
  // AWS_REGION / AWS_DEFAULT_REGION, the AWS SDK's, only fill in a region the block leaves unset.
  for (const spec of PROFILE_FIELDS) {
    // AWS_REGION and friends are about many things; they mean the cluster only when there is one.
    if (clusterFields.has(spec.option) && !clusterConfigured) continue;
    // Only with pkcs11's PIN variables unset: they win over the CU variables.
    if ((spec.option === "user" || spec.option === "password") && envPin) continue;
    const block = profile.get(spec.option);
    const own = spec.env === undefined ? [] : [`BULWARK_CLOUDHSM_${spec.env}`];
    const picked =
      pickSetting({ key: spec.vault, block, env, variables: own, role: "overrides" }) ??
      (spec.option === "region"
        ? pickSetting({
            key: spec.vault,
            block,
            env,
            variables: ["AWS_REGION", "AWS_DEFAULT_REGION"],
            role: "fills-in",
          })
        : undefined);
    if (picked !== undefined) profile.set(spec.option, picked.value);
  }
  if (!profile.has("accessKey") && !profile.has("secretKey") && profile.has("clusterId")) {
    // Credentials from the given environment (the SDK's own chain reads only process.env).
    const id = env.AWS_ACCESS_KEY_ID;
    const secret = env.AWS_SECRET_ACCESS_KEY;
    if (id && secret) {
      profile.set("accessKey", id);
      profile.set("secretKey", secret);
      if (env.AWS_SESSION_TOKEN) profile.set("sessionToken", env.AWS_SESSION_TOKEN);
    }
  }
  for (const spec of PROFILE_FIELDS) {
    const v = profile.get(spec.option);
    if (typeof v === "number" && Number.isSafeInteger(v) && spec.option !== "requireActiveCluster") {
      profile.set(spec.option, String(v));
    }
    if (spec.secret && typeof v === "string") {
      const secret = p.run(() => resolveSecret(spec.vault, v, env));
      if (secret !== undefined) profile.set(spec.option, secret);
    }
  }
  const out: Record<string, unknown> = { ...parsed, ...objects };
  if (out.lib === "") delete out.lib;
  if (out.pin === "") delete out.pin;
  for (const [k, v] of profile) out[k] = v;
  return out as CloudHsmSealOptions;
}

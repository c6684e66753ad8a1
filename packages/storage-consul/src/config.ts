import { readFileSync } from "node:fs";
import { CodedError, type CodedErrorOptions } from "@bulwark/errors";
import { parseBool, parseDuration, pickSetting, resolveSecret, SettingsError } from "@bulwark/settings";
import { type StorageErrorCode, validatePrefix } from "@bulwark/storage";
import { formatDuration } from "./duration.js";

/** Options of `new ConsulBackend()`; `createConsulBackend()` also takes Vault's config names. */
export interface ConsulBackendOptions {
  /**
   * The Consul agent: `host:port`, `http://host:port`, `https://host:port` or
   * `unix:///path/to.sock`. Default `127.0.0.1:8500` (the factory reads `CONSUL_HTTP_ADDR` first).
   */
  address?: string;
  /** `http` or `https` for a `host:port` address. Default `http`. */
  scheme?: "http" | "https";
  /** KV prefix every key lives under. Default `bulwark/`; `vault/` reads a Vault data set. */
  path?: string;
  /** Consul ACL token (the factory reads `CONSUL_HTTP_TOKEN` when unset). */
  token?: string;
  /** `strong` makes reads and lock checks linearizable (`?consistent`). Default `default`. */
  consistencyMode?: "default" | "strong";
  /** Most storage requests in flight at once. Default 64 (below Consul's 100 connections per client). */
  maxParallel?: number;
  /** TTL of the HA lock's session. Default 15 000 ms (Consul servers refuse less than `session_ttl_min`, 10 s by default). */
  sessionTtlMs?: number;
  /** How long one blocking wait on the lock key lasts. Default 15 000 ms. */
  lockWaitTimeMs?: number;
  /** Consul's lock-delay after the session is invalidated. Default 15 000 ms (Consul's default). */
  lockDelayMs?: number;
  /** PEM CA bundle file to verify the Consul server with (https). */
  tlsCaFile?: string;
  /** PEM client certificate file (https; needs `tlsKeyFile`). */
  tlsCertFile?: string;
  /** PEM client key file (https; needs `tlsCertFile`). */
  tlsKeyFile?: string;
  /** Lowest TLS version. Default `tls12`. */
  tlsMinVersion?: "tls10" | "tls11" | "tls12" | "tls13";
  /** Skip server certificate verification (testing only). Default false. */
  tlsSkipVerify?: boolean;
  /** Timeout of one HTTP request (blocking queries add their wait). Default 10 000 ms. */
  requestTimeoutMs?: number;
  /** How long transient failures are retried, with bounded backoff, before an error. Default 15 000 ms. */
  retryBudgetMs?: number;
  /**
   * The Consul servers' `txn_max_req_len` (default 512 KiB): the largest `/v1/txn` body, which
   * bounds fenced writes (values travel base64-encoded in JSON). Default 524 288.
   */
  txnMaxRequestBytes?: number;
  /**
   * The lock key whose session fences this backend's writes while it is held through
   * `lockWith()` (the key core uses). Default `core/lock`.
   */
  haLockKey?: string;
}

/**
 * A Consul storage setting is wrong; `field` is the Vault config name, the message says how to fix
 * it. A `CodedError` of domain "storage", code `invalid_config` (the storage contract's code for an
 * unusable backend block; typed from `StorageErrorCode`, so a table by storage code covers it). Not
 * a `StorageError`: a wrong setting is not a failure of a working backend.
 */
export class ConsulConfigError extends CodedError<Extract<StorageErrorCode, "invalid_config">> {
  static override readonly kind: string = "@bulwark/storage-consul:ConsulConfigError";
  override name = "ConsulConfigError";
  readonly field: string;
  /** The message without the `storage "consul": <field>: ` prefix: what is wrong and the fix. */
  readonly detail: string;
  constructor(field: string, message: string, options?: CodedErrorOptions) {
    super("storage", "invalid_config", `storage "consul": ${field}: ${message}`, options);
    this.field = field;
    this.detail = message;
  }
}

/** One problem of a `storage "consul"` block: the setting (Vault's name) and what to do. */
export interface ConsulConfigIssue {
  field: string;
  message: string;
}

/**
 * Collects problems instead of stopping at the first, so a block with several mistakes is
 * reported whole (see {@link checkConsulConfig}); the throwing functions throw the first one,
 * which is the error they always threw.
 */
class Issues {
  readonly list: ConsulConfigError[] = [];
  /** Runs `fn`; a ConsulConfigError it throws is recorded and `undefined` returned. */
  run<T>(fn: () => T): T | undefined {
    try {
      return fn();
    } catch (err) {
      if (err instanceof ConsulConfigError) {
        this.list.push(err);
        return undefined;
      }
      // The settings kernel's error becomes this package's, with the same field and fix.
      if (err instanceof SettingsError) {
        this.list.push(new ConsulConfigError(err.field, err.detail, { cause: err }));
        return undefined;
      }
      throw err;
    }
  }
  has(field: string): boolean {
    return this.list.some((e) => e.field === field);
  }
  throwFirst(): void {
    const first = this.list[0];
    if (first !== undefined) throw first;
  }
}

/** Vault config name ↔ option name. */
const NAMES = [
  ["address", "address"],
  ["scheme", "scheme"],
  ["path", "path"],
  ["token", "token"],
  ["consistency_mode", "consistencyMode"],
  ["max_parallel", "maxParallel"],
  ["session_ttl", "sessionTtlMs"],
  ["lock_wait_time", "lockWaitTimeMs"],
  ["lock_delay", "lockDelayMs"],
  ["tls_ca_file", "tlsCaFile"],
  ["tls_cert_file", "tlsCertFile"],
  ["tls_key_file", "tlsKeyFile"],
  ["tls_min_version", "tlsMinVersion"],
  ["tls_skip_verify", "tlsSkipVerify"],
  ["request_timeout", "requestTimeoutMs"],
  ["retry_budget", "retryBudgetMs"],
  ["txn_max_req_len", "txnMaxRequestBytes"],
  ["ha_lock_key", "haLockKey"],
] as const satisfies readonly (readonly [string, keyof ConsulBackendOptions])[];

type OptionName = (typeof NAMES)[number][1];
const OPTION_TO_CONFIG = new Map<string, string>(NAMES.map(([c, o]) => [o, c]));
const CONFIG_TO_OPTION = new Map<string, OptionName>(NAMES.map(([c, o]) => [c, o]));

/**
 * Keys a Vault `storage "consul"` block may carry that Bulwark accepts and does not act on:
 * service registration (Vault ≥ 1.5 moved it to `service_registration "consul"`) and the
 * cluster-level keys Vault reads from the storage block.
 */
export const IGNORED_VAULT_KEYS: readonly string[] = [
  "service",
  "service_tags",
  "service_meta",
  "service_address",
  "disable_registration",
  "check_timeout",
  "ha_enabled",
  "redirect_addr",
  "cluster_addr",
  "disable_clustering",
];

export interface ParsedConsulConfig {
  options: ConsulBackendOptions;
  /** Keys that were accepted but have no effect (see `IGNORED_VAULT_KEYS`); log them. */
  ignored: string[];
}

function str(field: string, v: unknown): string {
  if (typeof v === "string") return v;
  throw new ConsulConfigError(field, `expected a string, got ${describe(v)}`);
}

function describe(v: unknown): string {
  if (v === null) return "null";
  if (typeof v === "string") return JSON.stringify(v);
  if (typeof v === "number" || typeof v === "boolean") return `${typeof v} ${String(v)}`;
  return typeof v;
}

function integer(field: string, v: unknown): number {
  const n = typeof v === "string" && /^\s*\d+\s*$/.test(v) ? Number(v) : v;
  if (typeof n === "number" && Number.isSafeInteger(n)) return n;
  throw new ConsulConfigError(field, `expected a whole number, got ${describe(v)}`);
}

/**
 * Every setting a `storage "consul"` block accepts: Vault's names, the camelCase option names and
 * the Vault keys accepted without effect ({@link IGNORED_VAULT_KEYS}).
 */
export const CONSUL_CONFIG_KEYS: readonly string[] = [
  ...NAMES.map(([c]) => c),
  ...NAMES.map(([, o]) => o),
  ...IGNORED_VAULT_KEYS,
];

/**
 * Turns a parsed `storage "consul" { … }` block (Vault's names; values as HCL gives them:
 * strings, numbers, booleans) or a `ConsulBackendOptions` object into options, applying
 * `CONSUL_HTTP_ADDR` and `CONSUL_HTTP_TOKEN` from `env` where the config sets no address or
 * token. Unknown keys are errors that name the key.
 */
export function parseConsulConfig(
  config: Record<string, unknown> | ConsulBackendOptions,
  env: Record<string, string | undefined> = process.env,
): ParsedConsulConfig {
  const issues = new Issues();
  const parsed = parseInto(config, env, issues);
  issues.throwFirst();
  return parsed;
}

/**
 * Every problem of a `storage "consul"` block at once (unknown settings, wrong values, settings
 * that need each other, unreadable TLS files), in the order the block's checks run; `[]` when
 * {@link createConsulBackend} would accept it. Contacts nothing.
 */
export function checkConsulConfig(
  config: Record<string, unknown> | ConsulBackendOptions,
  env: Record<string, string | undefined> = process.env,
): ConsulConfigIssue[] {
  const issues = new Issues();
  const { options } = parseInto(config, env, issues);
  const parseProblems = issues.list.slice();
  const resolveProblems = new Issues();
  resolveInto(options, resolveProblems);
  // A setting that failed to parse is absent from `options`: what depends on it is not re-reported.
  const later = resolveProblems.list.filter((e) => !parseProblems.some((p) => p.field === e.field));
  return [...parseProblems, ...later].map((e) => ({ field: e.field, message: e.detail }));
}

function parseInto(
  config: Record<string, unknown> | ConsulBackendOptions,
  env: Record<string, string | undefined>,
  issues: Issues,
): ParsedConsulConfig {
  if (typeof config !== "object" || config === null || Array.isArray(config)) {
    issues.list.push(
      new ConsulConfigError("(block)", `expected an object of settings, got ${describe(config)}`),
    );
    return { options: {}, ignored: [] };
  }
  const out: Record<string, unknown> = {};
  const ignored: string[] = [];
  const seen = new Map<OptionName, string>();
  for (const [key, raw] of Object.entries(config)) {
    if (raw === undefined) continue;
    const option = CONFIG_TO_OPTION.get(key) ?? (OPTION_TO_CONFIG.has(key) ? (key as OptionName) : undefined);
    if (option === undefined) {
      if (IGNORED_VAULT_KEYS.includes(key)) {
        ignored.push(key);
        continue;
      }
      issues.list.push(
        new ConsulConfigError(key, `unknown setting; known settings are ${NAMES.map(([c]) => c).join(", ")}`),
      );
      continue;
    }
    const field = OPTION_TO_CONFIG.get(option) as string;
    const prior = seen.get(option);
    if (prior !== undefined) {
      issues.list.push(new ConsulConfigError(field, `set twice (as "${prior}" and "${key}"): keep one`));
      continue;
    }
    seen.set(option, key);
    // camelCase *Ms options are milliseconds; Vault's names are durations.
    const isVaultName = CONFIG_TO_OPTION.has(key) && key !== option;
    // The token may be an env:// or file:// reference, as every secret setting.
    const value = issues.run(() =>
      option === "token"
        ? resolveSecret(field, str(field, raw), env)
        : convert(option, field, raw, isVaultName),
    );
    if (value !== undefined) out[option] = value;
  }
  const options = out as ConsulBackendOptions;
  // The Consul client's own variables only fill in what the block leaves unset (the kernel's rule
  // for general-purpose variables; Vault's consul backend does the same).
  for (const [option, variable] of [
    ["address", "CONSUL_HTTP_ADDR"],
    ["token", "CONSUL_HTTP_TOKEN"],
  ] as const) {
    const picked = pickSetting({
      key: option,
      block: options[option],
      env,
      variables: [variable],
      role: "fills-in",
    });
    if (picked?.fromEnvironment === true) options[option] = String(picked.value);
  }
  return { options, ignored };
}

function convert(option: OptionName, field: string, raw: unknown, vaultName: boolean): unknown {
  switch (option) {
    case "address":
    case "path":
    case "token":
    case "tlsCaFile":
    case "tlsCertFile":
    case "tlsKeyFile":
    case "haLockKey":
      return str(field, raw);
    case "scheme":
    case "consistencyMode":
    case "tlsMinVersion":
      return str(field, raw).trim().toLowerCase();
    case "maxParallel":
    case "txnMaxRequestBytes":
      return integer(field, raw);
    case "sessionTtlMs":
    case "lockWaitTimeMs":
    case "lockDelayMs":
    case "requestTimeoutMs":
    case "retryBudgetMs":
      if (vaultName) return parseDuration(field, raw);
      if (typeof raw === "number") return raw;
      throw new ConsulConfigError(field, `expected milliseconds as a number, got ${describe(raw)}`);
    case "tlsSkipVerify":
      return parseBool(field, raw);
  }
}

/** Where and how to reach Consul, resolved from `address` and `scheme`. */
export interface ResolvedEndpoint {
  /** For messages: `http://127.0.0.1:8500` or `unix:///path`. */
  display: string;
  baseUrl: string;
  socketPath?: string;
  secure: boolean;
}

export interface ResolvedOptions {
  endpoint: ResolvedEndpoint;
  path: string;
  token: string | undefined;
  consistent: boolean;
  maxParallel: number;
  sessionTtlMs: number;
  lockWaitTimeMs: number;
  lockDelayMs: number;
  requestTimeoutMs: number;
  retryBudgetMs: number;
  txnMaxRequestBytes: number;
  haLockKey: string;
  tls: {
    ca?: Buffer;
    cert?: Buffer;
    key?: Buffer;
    minVersion: "TLSv1" | "TLSv1.1" | "TLSv1.2" | "TLSv1.3";
    rejectUnauthorized: boolean;
  };
}

const TLS_VERSIONS = {
  tls10: "TLSv1",
  tls11: "TLSv1.1",
  tls12: "TLSv1.2",
  tls13: "TLSv1.3",
} as const;

function positive(field: string, v: number | undefined, dflt: number, min = 1): number {
  if (v === undefined) return dflt;
  if (typeof v !== "number" || !Number.isFinite(v) || v < min) {
    throw new ConsulConfigError(field, `must be a number ≥ ${min}, got ${describe(v)}`);
  }
  return v;
}

/** A duration setting in milliseconds: a value below `min` is reported as a duration ("1s", "500ms"). */
function durationMs(field: string, v: number | undefined, dflt: number, min: number): number {
  if (typeof v === "number" && Number.isFinite(v) && v < min) {
    throw new ConsulConfigError(field, `must be at least ${formatDuration(min)}, got ${formatDuration(v)}`);
  }
  return positive(field, v, dflt, min);
}

export function resolveEndpoint(address: string | undefined, scheme: string | undefined): ResolvedEndpoint {
  if (scheme !== undefined && scheme !== "http" && scheme !== "https") {
    throw new ConsulConfigError("scheme", `must be "http" or "https", got ${JSON.stringify(scheme)}`);
  }
  const addr = (address ?? "127.0.0.1:8500").trim();
  if (addr === "")
    throw new ConsulConfigError("address", 'is empty: use "host:port" such as "127.0.0.1:8500"');
  if (addr.startsWith("unix://")) {
    const socketPath = addr.slice("unix://".length);
    if (socketPath === "") {
      throw new ConsulConfigError(
        "address",
        'a unix address needs a socket path, e.g. "unix:///var/run/consul.sock"',
      );
    }
    const secure = scheme === "https";
    return { display: addr, baseUrl: `${secure ? "https" : "http"}://localhost/v1`, socketPath, secure };
  }
  const explicit = /^([a-z][a-z0-9+.-]*):\/\//i.exec(addr);
  let url: URL;
  if (explicit !== null) {
    const given = (explicit[1] as string).toLowerCase();
    if (given !== "http" && given !== "https") {
      throw new ConsulConfigError(
        "address",
        `unsupported scheme "${given}://": use host:port, http://, https:// or unix://`,
      );
    }
    if (scheme !== undefined && scheme !== given) {
      throw new ConsulConfigError(
        "scheme",
        `is "${scheme}" but address ${JSON.stringify(addr)} says ${given}://: drop one of them`,
      );
    }
    url = parseUrl(addr);
  } else {
    url = parseUrl(`${scheme ?? "http"}://${addr}`);
  }
  if (url.pathname !== "/" && url.pathname !== "") {
    throw new ConsulConfigError(
      "address",
      `${JSON.stringify(addr)} has a path (${url.pathname}): give only host:port (Consul's API lives at /v1)`,
    );
  }
  const secure = url.protocol === "https:";
  return { display: url.origin, baseUrl: `${url.origin}/v1`, secure };
}

function parseUrl(s: string): URL {
  try {
    const u = new URL(s);
    if (u.hostname === "") throw new Error("no host");
    return u;
  } catch (cause) {
    throw new ConsulConfigError(
      "address",
      `${JSON.stringify(s)} is not a valid address: use "host:port", "https://host:port" or "unix:///path"`,
      { cause },
    );
  }
}

/** Vault's path rules: a trailing `/` is added, a leading `/` dropped; `""` means the KV root. */
export function normalizePath(path: string | undefined): string {
  if (path === undefined) return "bulwark/";
  let p = path.trim();
  while (p.startsWith("/")) p = p.slice(1);
  if (p !== "" && !p.endsWith("/")) p += "/";
  try {
    validatePrefix(p);
  } catch (cause) {
    throw new ConsulConfigError(
      "path",
      `${JSON.stringify(path)} is not a usable KV prefix (${(cause as Error).message}): use something like "bulwark/"`,
      { cause },
    );
  }
  return p;
}

function readPem(field: string, file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (cause) {
    throw new ConsulConfigError(field, `cannot read ${JSON.stringify(file)}: ${(cause as Error).message}`, {
      cause,
    });
  }
}

/** Validates `options` and fills in defaults; reads TLS files (only for https). */
export function resolveOptions(options: ConsulBackendOptions): ResolvedOptions {
  const issues = new Issues();
  const resolved = resolveInto(options, issues);
  issues.throwFirst();
  return resolved as ResolvedOptions;
}

/**
 * {@link resolveOptions} that records every problem in `issues` (in the order the checks run)
 * and returns `undefined` when there was one.
 */
function resolveInto(options: ConsulBackendOptions, issues: Issues): ResolvedOptions | undefined {
  const endpoint = issues.run(() => resolveEndpoint(options.address, options.scheme));
  const mode = options.consistencyMode ?? "default";
  if (mode !== "default" && mode !== "strong") {
    issues.list.push(
      new ConsulConfigError("consistency_mode", `must be "default" or "strong", got ${JSON.stringify(mode)}`),
    );
  }
  const maxParallel = issues.run(() => {
    const n = positive("max_parallel", options.maxParallel, 64);
    if (!Number.isSafeInteger(n)) {
      throw new ConsulConfigError("max_parallel", `must be a whole number, got ${n}`);
    }
    return n;
  });
  const sessionTtlMs = issues.run(() => durationMs("session_ttl", options.sessionTtlMs, 15_000, 1000));
  const lockWaitTimeMs = issues.run(() => {
    const ms = durationMs("lock_wait_time", options.lockWaitTimeMs, 15_000, 100);
    if (ms > 600_000) {
      throw new ConsulConfigError("lock_wait_time", "Consul caps blocking queries at 10m: use at most 10m");
    }
    return ms;
  });
  const lockDelayMs = issues.run(() => {
    const ms = durationMs("lock_delay", options.lockDelayMs, 15_000, 0);
    if (ms > 60_000) throw new ConsulConfigError("lock_delay", "Consul accepts 0s to 60s");
    return ms;
  });
  const minVersion = options.tlsMinVersion ?? "tls12";
  if (!(minVersion in TLS_VERSIONS)) {
    issues.list.push(
      new ConsulConfigError(
        "tls_min_version",
        `must be one of tls10, tls11, tls12, tls13, got ${JSON.stringify(minVersion)}`,
      ),
    );
  }
  if ((options.tlsCertFile === undefined) !== (options.tlsKeyFile === undefined)) {
    const missing = options.tlsCertFile === undefined ? "tls_cert_file" : "tls_key_file";
    issues.list.push(
      new ConsulConfigError(
        missing,
        "a client certificate needs both tls_cert_file and tls_key_file: set both",
      ),
    );
  }
  const tls: ResolvedOptions["tls"] = {
    minVersion: TLS_VERSIONS[minVersion] ?? "TLSv1.2",
    rejectUnauthorized: !(options.tlsSkipVerify ?? false),
  };
  // Like Vault, TLS files only matter for https.
  if (endpoint?.secure) {
    const ca = options.tlsCaFile;
    const cert = options.tlsCertFile;
    const key = options.tlsKeyFile;
    const caPem = ca === undefined ? undefined : issues.run(() => readPem("tls_ca_file", ca));
    const certPem = cert === undefined ? undefined : issues.run(() => readPem("tls_cert_file", cert));
    const keyPem = key === undefined ? undefined : issues.run(() => readPem("tls_key_file", key));
    if (caPem !== undefined) tls.ca = caPem;
    if (certPem !== undefined) tls.cert = certPem;
    if (keyPem !== undefined) tls.key = keyPem;
  }
  const haLockKey = options.haLockKey ?? "core/lock";
  try {
    validatePrefix(`${haLockKey}/`);
  } catch (cause) {
    issues.list.push(
      new ConsulConfigError("ha_lock_key", `${JSON.stringify(haLockKey)} is not a valid key`, { cause }),
    );
  }
  const path = issues.run(() => normalizePath(options.path));
  const requestTimeoutMs = issues.run(() =>
    durationMs("request_timeout", options.requestTimeoutMs, 10_000, 1),
  );
  const retryBudgetMs = issues.run(() => durationMs("retry_budget", options.retryBudgetMs, 15_000, 0));
  const txnMaxRequestBytes = issues.run(() =>
    positive("txn_max_req_len", options.txnMaxRequestBytes, 512 * 1024, 1024),
  );
  if (
    endpoint === undefined ||
    maxParallel === undefined ||
    sessionTtlMs === undefined ||
    lockWaitTimeMs === undefined ||
    lockDelayMs === undefined ||
    path === undefined ||
    requestTimeoutMs === undefined ||
    retryBudgetMs === undefined ||
    txnMaxRequestBytes === undefined ||
    issues.list.length > 0
  ) {
    return undefined;
  }
  return {
    endpoint,
    path,
    token: options.token === undefined || options.token === "" ? undefined : options.token,
    consistent: mode === "strong",
    maxParallel,
    sessionTtlMs,
    lockWaitTimeMs,
    lockDelayMs,
    requestTimeoutMs,
    retryBudgetMs,
    txnMaxRequestBytes,
    haLockKey,
    tls,
  };
}

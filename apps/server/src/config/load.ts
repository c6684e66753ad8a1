/**
 * Loads Vault-style server configs (HCL or JSON) into a validated {@link ServerConfig}.
 *
 * Vault's rules, kept so a Vault config loads unchanged apart from its paths: several `-config`
 * files or directories merge in order (storage: the last one wins; seals and listeners add up;
 * settings: the last one set wins; in a directory, `*.hcl` and `*.json` in name order with
 * `override.*` / `*_override.*` last); `storage "<type>"`, `seal "<type>"` (at most one enabled,
 * `disabled = true` marks the seal being migrated away from) and `listener "tcp"` blocks; Vault
 * settings that have no meaning here are accepted with a warning; anything unknown is an error
 * with its file, line and column. Environment variables override the files (`BULWARK_*` first,
 * then Vault's `VAULT_*` names).
 */
import { readdir, readFile, stat } from "node:fs/promises";
import { basename, extname, join, resolve } from "node:path";
import {
  blocks,
  type HclBlockEntry,
  type HclDocument,
  HclParseError,
  type HclPosition,
  type HclValue,
  parseHcl,
  parseHclJson,
  parseHclOrJson,
  toPlain,
} from "@bulwark/hcl";
import { firstVariable } from "@bulwark/settings";
import type { ListenerConfig, ProviderBlock, SealBlock, ServerConfig } from "../contracts.js";
import { checkProviderBlocks, type ProviderRegistry } from "../registry/registry.js";
import { ConfigError, type ConfigProblem, formatProblem } from "./errors.js";
import {
  type BlockSource,
  closest,
  describeBlock,
  parseBoolean,
  parseInteger,
  rememberSource,
  suggest,
} from "./source.js";

export {
  type BlockSource,
  blockName,
  blockSource,
  describeBlock,
  formatPosition,
  parseBoolean,
  parseInteger,
  type SourcedBlock,
  type SourcePosition,
  sourceOf,
} from "./source.js";

export type LogLevel = ServerConfig["logLevel"];
export type Env = Record<string, string | undefined>;

/** Vault's listener defaults. */
export const DEFAULT_LISTENER_ADDRESS = "127.0.0.1:8200";
export const DEFAULT_MAX_REQUEST_SIZE = 32 * 1024 * 1024;
/** No `cluster_name`: the HTTP layer generates `bulwark-cluster-<hex>` once and stores it (as Vault does). */
export const DEFAULT_CLUSTER_NAME = "";

/** One parsed file (or several merged): what it sets, before defaults and the environment. */
export interface ConfigFragment {
  files: string[];
  storage?: ProviderBlock;
  seals: SealBlock[];
  listeners: ListenerConfig[];
  apiAddr?: string;
  clusterName?: string;
  logLevel?: LogLevel;
  ui?: boolean;
  disableUnauthedRekeyEndpoints?: boolean;
  warnings: string[];
}

// --------------------------------------------------------------------------- the schema

/** Settings Bulwark reads. */
const SETTINGS = ["api_addr", "cluster_name", "log_level", "ui", "disable_unauthed_rekey_endpoints"] as const;
type Setting = (typeof SETTINGS)[number];

/** Blocks Bulwark reads (`backend`/`ha_backend`: Vault's old names). */
const BLOCK_KEYS = new Set(["storage", "backend", "ha_storage", "ha_backend", "seal", "listener"]);

/** Vault settings that do not apply to Bulwark, with why; accepted and reported as warnings. */
export const IGNORED_VAULT_SETTINGS: ReadonlyMap<string, string> = new Map([
  ["disable_mlock", "Bulwark keeps key material in zeroed buffers; there is no mlock"],
  ["disable_cache", "there is no physical read cache"],
  ["cache_size", "there is no physical read cache"],
  ["plugin_directory", "Vault plugins do not run here; Bulwark providers are npm packages named by `plugin`"],
  ["plugin_file_uid", "Vault plugins do not run here"],
  ["plugin_file_permissions", "Vault plugins do not run here"],
  ["plugin_tmpdir", "Vault plugins do not run here"],
  ["telemetry", "metrics are served at /v1/sys/metrics without configuration"],
  ["default_lease_ttl", "there are no leases besides token TTLs"],
  ["max_lease_ttl", "there are no leases besides token TTLs"],
  ["default_max_request_duration", "requests have no duration limit"],
  ["raw_storage_endpoint", "there is no sys/raw endpoint"],
  ["introspection_endpoint", "there is no introspection endpoint"],
  ["cluster_addr", "there is no cluster port; standbys report the active node's api_addr"],
  ["cluster_cipher_suites", "there is no cluster port"],
  ["disable_clustering", "there is no cluster port"],
  ["disable_performance_standby", "there are no performance standbys"],
  ["disable_sealwrap", "seal wrap is chosen per mount (seal_wrap) and for the core keys"],
  ["disable_printable_check", "keys are not checked for printability"],
  ["disable_sentinel_trace", "there is no Sentinel"],
  ["enable_response_header_hostname", "responses carry no hostname header"],
  ["enable_response_header_raft_node_id", "there is no Raft storage"],
  ["log_format", "logs are JSON lines (pino)"],
  ["log_file", "logs go to stdout; redirect them"],
  ["log_rotate_duration", "logs go to stdout; rotate them outside"],
  ["log_rotate_bytes", "logs go to stdout; rotate them outside"],
  ["log_rotate_max_files", "logs go to stdout; rotate them outside"],
  ["log_requests_level", "requests are logged at debug level"],
  ["pid_file", "no pid file is written"],
  ["license_path", "Bulwark needs no licence"],
  ["service_registration", "no service registration"],
  ["entropy", "randomness comes from the operating system (node:crypto)"],
  ["replication", "there is no replication"],
  ["sentinel", "there is no Sentinel"],
  ["reporting", "there is no usage reporting"],
  ["enable_multiseal", "one enabled seal at a time (plus a disabled one during migration)"],
  ["detect_deadlocks", "not applicable"],
  ["imprecise_lease_role_tracking", "there are no leases besides token TTLs"],
  ["experiments", "no experiments"],
  ["user_lockout", "there are no user logins"],
  ["administrative_namespace_path", "there are no namespaces"],
  ["enable_post_unseal_trace", "not applicable"],
  ["post_unseal_trace_directory", "not applicable"],
]);

const LISTENER_KEYS = new Set([
  "address",
  "tls_disable",
  "tls_cert_file",
  "tls_key_file",
  "tls_min_version",
  "max_request_size",
  "disable_unauthed_rekey_endpoints",
  "disable_unauthed_generate_root_endpoints",
]);

/** Vault listener settings without an effect here (accepted with a warning). */
export const IGNORED_LISTENER_SETTINGS: readonly string[] = [
  "cluster_address",
  "http_idle_timeout",
  "http_read_header_timeout",
  "http_read_timeout",
  "http_write_timeout",
  "max_request_duration",
  "proxy_protocol_behavior",
  "proxy_protocol_authorized_addrs",
  "tls_max_version",
  "tls_cipher_suites",
  "tls_prefer_server_cipher_suites",
  "tls_client_ca_file",
  "tls_disable_client_certs",
  "x_forwarded_for_authorized_addrs",
  "x_forwarded_for_hop_skips",
  "x_forwarded_for_reject_not_authorized",
  "x_forwarded_for_reject_not_present",
  "x_forwarded_for_client_cert_header",
  "x_forwarded_for_client_cert_header_decoders",
  "telemetry",
  "profiling",
  "inflight_requests_logging",
  "custom_response_headers",
  "unauthenticated_metrics_access",
  "redact_addresses",
  "redact_cluster_name",
  "redact_version",
  "chroot_namespace",
  "disable_replication_status_endpoints",
  "disable_request_limiter",
  "purpose",
  "role",
];
const IGNORED_LISTENER = new Set(IGNORED_LISTENER_SETTINGS);

const LOG_LEVELS: ReadonlyMap<string, LogLevel> = new Map([
  ["trace", "trace"],
  ["debug", "debug"],
  ["info", "info"],
  ["warn", "warn"],
  ["warning", "warn"],
  ["err", "error"],
  ["error", "error"],
]);

// --------------------------------------------------------------------------- value readers

function describeValue(v: HclValue): string {
  switch (v.kind) {
    case "string":
      return `string ${JSON.stringify(v.value)}`;
    case "number":
      return `number ${v.raw}`;
    case "bool":
      return `bool ${v.value}`;
    case "null":
      return "null";
    case "list":
      return "a list";
    case "object":
      return "an object";
  }
}

// --------------------------------------------------------------------------- one file

class FileReader {
  readonly problems: ConfigProblem[] = [];
  readonly warnings: string[] = [];
  readonly #file: string;

  constructor(file: string) {
    this.#file = file;
  }

  problem(pos: HclPosition | undefined, message: string): void {
    const p: ConfigProblem = { filename: this.#file, message };
    if (pos !== undefined) {
      p.line = pos.line;
      p.column = pos.column;
    }
    this.problems.push(p);
  }

  warn(pos: HclPosition, message: string): void {
    this.warnings.push(formatProblem({ filename: this.#file, line: pos.line, column: pos.column, message }));
  }

  hclError(err: HclParseError): void {
    this.problems.push({ filename: err.filename, line: err.line, column: err.column, message: err.detail });
  }

  string(key: string, v: HclValue): string | undefined {
    if (v.kind === "string") return v.value;
    this.problem(v.pos, `\`${key}\` must be a string, found ${describeValue(v)}`);
    return undefined;
  }

  boolean(key: string, v: HclValue): boolean | undefined {
    const b = parseBoolean(toPlain(v));
    if (b === undefined) this.problem(v.pos, `\`${key}\` must be true or false, found ${describeValue(v)}`);
    return b;
  }

  integer(key: string, v: HclValue): number | undefined {
    const n = parseInteger(toPlain(v));
    if (n === undefined) this.problem(v.pos, `\`${key}\` must be an integer, found ${describeValue(v)}`);
    return n;
  }

  blocks(doc: HclDocument, type: string): HclBlockEntry[] {
    try {
      return blocks(doc, type, 1);
    } catch (err) {
      if (err instanceof HclParseError) {
        this.hclError(err);
        return [];
      }
      throw err;
    }
  }
}

/** A `storage`/`seal`-style block as a {@link ProviderBlock} whose options remember their positions. */
export function providerBlock(entry: HclBlockEntry): ProviderBlock {
  return { type: entry.labels[0] ?? entry.type, options: providerOptions(entry, new Set()) };
}

/** Where a block and each of its settings (first occurrence) were written. */
function entrySource(entry: HclBlockEntry): BlockSource {
  const keys = new Map<string, HclPosition>();
  for (const item of entry.body.items) {
    const key = item.kind === "attribute" ? item.key : item.type;
    if (!keys.has(key)) keys.set(key, item.pos);
  }
  return { filename: entry.filename, line: entry.line, column: entry.column, keys };
}

/** A provider block's options as plain values, remembering where each key was written. */
function providerOptions(entry: HclBlockEntry, omit: ReadonlySet<string>): Record<string, unknown> {
  const options: Record<string, unknown> = {};
  const plain = toPlain(entry.body) as Record<string, unknown>;
  for (const [k, v] of Object.entries(plain)) {
    if (!omit.has(k))
      Object.defineProperty(options, k, { value: v, enumerable: true, writable: true, configurable: true });
  }
  rememberSource({ type: entry.labels[0] ?? entry.type, options }, entrySource(entry));
  return options;
}

function checkLabel(r: FileReader, entry: HclBlockEntry, kind: string): string | undefined {
  const type = entry.labels[0] as string;
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(type)) {
    r.problem(
      entry.labelPositions[0] ?? entry.pos,
      `${kind} type ${JSON.stringify(type)} is not a valid name: use letters, digits, "_", "-" or "." (like ${kind} "file")`,
    );
    return undefined;
  }
  return type;
}

/** `host:port` or `[v6]:port`; returns an error message or undefined. */
export function checkListenAddress(address: string): string | undefined {
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([^\s:[\]]+)):(\d{1,5})$/.exec(address);
  if (!m)
    return `must be host:port (like "127.0.0.1:8200" or "[::1]:8200"), found ${JSON.stringify(address)}`;
  if (Number(m[3]) > 65535) return `port ${m[3]} is out of range (0-65535)`;
  return undefined;
}

function parseListener(r: FileReader, entry: HclBlockEntry): ListenerConfig | undefined {
  const type = entry.labels[0];
  if (type !== "tcp") {
    r.problem(
      entry.labelPositions[0] ?? entry.pos,
      `listener ${JSON.stringify(type)} is not supported: only listener "tcp" { … } (unix sockets are not)`,
    );
    return undefined;
  }
  const listener: ListenerConfig = {
    address: DEFAULT_LISTENER_ADDRESS,
    tlsDisable: false,
    maxRequestSize: DEFAULT_MAX_REQUEST_SIZE,
    // OpenBao 2.6's safer default: the unauthenticated share-holder endpoints are off.
    disableUnauthedRekeyEndpoints: true,
    disableUnauthedGenerateRootEndpoints: true,
  };
  const seen = new Map<string, HclPosition>();
  let ok = true;
  const fail = (pos: HclPosition, message: string) => {
    ok = false;
    r.problem(pos, message);
  };
  for (const item of entry.body.items) {
    const key = item.kind === "attribute" ? item.key : item.type;
    if (IGNORED_LISTENER.has(key)) {
      r.warn(item.pos, `listener "tcp": \`${key}\` is a Vault setting with no effect in Bulwark (ignored)`);
      continue;
    }
    if (key === "tls_require_and_verify_client_cert") {
      // Ignoring a request for client-certificate checks would silently weaken the listener.
      const on = item.kind === "attribute" ? parseBoolean(toPlain(item.value)) : undefined;
      if (on === false)
        r.warn(item.pos, 'listener "tcp": `tls_require_and_verify_client_cert = false` (ignored)');
      else
        fail(
          item.pos,
          "client certificate verification is not supported: remove tls_require_and_verify_client_cert",
        );
      continue;
    }
    if (!LISTENER_KEYS.has(key)) {
      fail(item.pos, `unknown listener setting \`${key}\`${suggest(key, LISTENER_KEYS)}`);
      continue;
    }
    if (item.kind === "block") {
      fail(item.pos, `\`${key}\` is a setting, not a block: write ${key} = …`);
      continue;
    }
    const first = seen.get(key);
    if (first !== undefined) {
      fail(item.pos, `\`${key}\` is set twice in this listener (first at line ${first.line})`);
      continue;
    }
    seen.set(key, item.pos);
    const v = item.value;
    switch (key) {
      case "address": {
        const s = r.string(key, v);
        if (s === undefined) ok = false;
        else {
          const bad = checkListenAddress(s);
          if (bad !== undefined) fail(v.pos, `listener address ${bad}`);
          else listener.address = s;
        }
        break;
      }
      case "tls_disable": {
        const b = r.boolean(key, v);
        if (b === undefined) ok = false;
        else listener.tlsDisable = b;
        break;
      }
      case "disable_unauthed_rekey_endpoints":
      case "disable_unauthed_generate_root_endpoints": {
        const b = r.boolean(key, v);
        if (b === undefined) ok = false;
        else if (key === "disable_unauthed_rekey_endpoints") listener.disableUnauthedRekeyEndpoints = b;
        else listener.disableUnauthedGenerateRootEndpoints = b;
        break;
      }
      case "tls_cert_file":
      case "tls_key_file": {
        const s = r.string(key, v);
        if (s === undefined) ok = false;
        else if (key === "tls_cert_file") listener.tlsCertFile = s;
        else listener.tlsKeyFile = s;
        break;
      }
      case "tls_min_version": {
        const s = r.string(key, v);
        if (s === "tls12" || s === "tls13") listener.tlsMinVersion = s;
        else if (s !== undefined) {
          fail(
            v.pos,
            s === "tls10" || s === "tls11"
              ? `tls_min_version "${s}" is not supported: TLS below 1.2 is refused; use "tls12" or "tls13"`
              : `tls_min_version must be "tls12" or "tls13", found ${JSON.stringify(s)}`,
          );
        } else ok = false;
        break;
      }
      case "max_request_size": {
        const n = r.integer(key, v);
        if (n === undefined) ok = false;
        // Vault: 0 means the default (32 MiB); only a negative size turns the limit off.
        else
          listener.maxRequestSize = n === 0 ? DEFAULT_MAX_REQUEST_SIZE : n < 0 ? Number.MAX_SAFE_INTEGER : n;
        if (n !== undefined && n < 0)
          r.warn(v.pos, 'listener "tcp": a negative max_request_size turns the body size limit off');
        break;
      }
    }
  }
  if (!listener.tlsDisable) {
    if (listener.tlsCertFile === undefined || listener.tlsKeyFile === undefined) {
      fail(
        entry.pos,
        'listener "tcp" has TLS on but no certificate: set tls_cert_file and tls_key_file, or tls_disable = true',
      );
    }
    if (listener.tlsMinVersion === undefined) listener.tlsMinVersion = "tls12";
  }
  if (!ok) return undefined;
  rememberSource(listener, entrySource(entry));
  return listener;
}

/**
 * Parses one config file's text. `format` defaults to JSON for `.json` files and to detection by
 * content otherwise. Throws {@link ConfigError} listing every problem with its line and column.
 */
export function parseConfig(source: string, filename: string, format?: "hcl" | "json"): ConfigFragment {
  const read = readConfig(source, filename, format);
  if (read.syntaxError !== undefined) throw read.syntaxError;
  if (read.problems.length > 0) throw new ConfigError(read.problems);
  return read.fragment;
}

/** Block kinds whose absence is reported by {@link finalizeConfig} ("no storage block"). */
type RequiredBlock = "storage" | "listener";

/** One file read without stopping at its problems. */
interface ReadResult {
  /** What the file sets, without the blocks that had problems. */
  fragment: ConfigFragment;
  problems: ConfigProblem[];
  /** The file is not HCL/JSON at all: nothing of it could be read. */
  syntaxError?: ConfigError;
  /**
   * Required blocks the file tried to write but that were rejected (or misspelt at the top
   * level): their absence is then not reported again as "no storage block".
   */
  attempted: Set<RequiredBlock>;
}

function readConfig(source: string, filename: string, format?: "hcl" | "json"): ReadResult {
  const r = new FileReader(filename);
  const attempted = new Set<RequiredBlock>();
  const fragment: ConfigFragment = { files: [filename], seals: [], listeners: [], warnings: r.warnings };
  let doc: HclDocument;
  try {
    const fmt = format ?? (extname(filename).toLowerCase() === ".json" ? "json" : undefined);
    doc =
      fmt === "json"
        ? parseHclJson(source, filename)
        : fmt === "hcl"
          ? parseHcl(source, filename)
          : parseHclOrJson(source, filename);
  } catch (err) {
    if (err instanceof HclParseError) {
      const syntaxError = ConfigError.at(filename, err, err.detail, err);
      return {
        fragment,
        problems: [...syntaxError.problems],
        syntaxError,
        attempted: new Set(["storage", "listener"]),
      };
    }
    throw err;
  }
  const seen = new Map<string, HclPosition>();

  for (const item of doc.body.items) {
    const key = item.kind === "attribute" ? item.key : item.type;
    if (BLOCK_KEYS.has(key)) continue;
    if ((SETTINGS as readonly string[]).includes(key)) {
      if (item.kind === "block") {
        r.problem(item.pos, `\`${key}\` is a setting, not a block: write ${key} = …`);
        continue;
      }
      const first = seen.get(key);
      if (first !== undefined) {
        r.problem(item.pos, `\`${key}\` is set twice (first at line ${first.line})`);
        continue;
      }
      seen.set(key, item.pos);
      readSetting(r, fragment, key as Setting, item.value);
    } else if (IGNORED_VAULT_SETTINGS.has(key)) {
      r.warn(
        item.pos,
        `\`${key}\` is a Vault setting with no effect in Bulwark (ignored: ${IGNORED_VAULT_SETTINGS.get(key)})`,
      );
    } else if (key === "kms") {
      r.problem(item.pos, 'unknown block `kms`: Bulwark reads Vault\'s name, seal "<type>" { … }');
    } else {
      const known = [...SETTINGS, ...BLOCK_KEYS, ...IGNORED_VAULT_SETTINGS.keys()];
      r.problem(item.pos, `unknown setting \`${key}\`${suggest(key, known)}`);
      const near = closest(key, known);
      if (near === "listener") attempted.add("listener");
      if (near === "storage" || near === "backend") attempted.add("storage");
    }
  }

  const storages = [...r.blocks(doc, "storage"), ...r.blocks(doc, "backend")];
  if (storages.length > 0) attempted.add("storage");
  storages.sort((a, b) => a.pos.offset - b.pos.offset);
  if (storages.length > 1) {
    const [first, second] = storages as [HclBlockEntry, HclBlockEntry];
    r.problem(second.pos, `only one storage block is allowed (the first is at line ${first.line})`);
  } else if (storages.length === 1) {
    const entry = storages[0] as HclBlockEntry;
    const type = checkLabel(r, entry, "storage");
    if (type !== undefined) fragment.storage = { type, options: providerOptions(entry, new Set()) };
  }

  for (const entry of [...r.blocks(doc, "ha_storage"), ...r.blocks(doc, "ha_backend")]) {
    r.warn(
      entry.pos,
      `${entry.type} "${entry.labels[0]}" is not supported (ignored): HA uses the storage backend's own lock — use storage "consul"`,
    );
  }

  for (const entry of r.blocks(doc, "seal")) {
    const type = checkLabel(r, entry, "seal");
    let disabled = false;
    const disabledAttrs = entry.body.items.filter((i) => i.kind === "attribute" && i.key === "disabled");
    for (const item of disabledAttrs) {
      if (item.kind !== "attribute") continue;
      const b = r.boolean("disabled", item.value);
      if (b !== undefined) disabled = b;
    }
    if (type !== undefined) {
      fragment.seals.push({ type, options: providerOptions(entry, new Set(["disabled"])), disabled });
    }
  }

  for (const entry of r.blocks(doc, "listener")) {
    attempted.add("listener");
    const listener = parseListener(r, entry);
    if (listener !== undefined) fragment.listeners.push(listener);
  }
  // A block the file wrote with a problem is missing from the fragment, not absent from the file.
  for (const p of r.problems) {
    if (/^`(storage|backend)` needs/.test(p.message)) attempted.add("storage");
    if (/^`listener` needs/.test(p.message)) attempted.add("listener");
  }
  return { fragment, problems: r.problems, attempted };
}

function readSetting(r: FileReader, f: ConfigFragment, key: Setting, v: HclValue): void {
  switch (key) {
    case "api_addr": {
      const s = r.string(key, v);
      if (s === undefined) return;
      const bad = checkApiAddr(s);
      if (bad !== undefined) r.problem(v.pos, `api_addr ${bad}`);
      else f.apiAddr = s;
      return;
    }
    case "cluster_name": {
      const s = r.string(key, v);
      if (s !== undefined && s.trim() === "") r.problem(v.pos, "cluster_name must not be empty");
      else if (s !== undefined) f.clusterName = s;
      return;
    }
    case "log_level": {
      const s = r.string(key, v);
      if (s === undefined) return;
      const level = LOG_LEVELS.get(s.trim().toLowerCase());
      if (level === undefined)
        r.problem(v.pos, `log_level must be trace, debug, info, warn or error, found ${JSON.stringify(s)}`);
      else f.logLevel = level;
      return;
    }
    case "ui": {
      const b = r.boolean(key, v);
      if (b !== undefined) f.ui = b;
      return;
    }
    case "disable_unauthed_rekey_endpoints": {
      const b = r.boolean(key, v);
      if (b !== undefined) f.disableUnauthedRekeyEndpoints = b;
      return;
    }
  }
}

/** `http(s)://host[:port]`; returns an error message or undefined. */
export function checkApiAddr(s: string): string | undefined {
  let url: URL;
  try {
    url = new URL(s);
  } catch {
    return `must be a URL like "https://bulwark.example.com:8200", found ${JSON.stringify(s)}`;
  }
  if (url.protocol !== "http:" && url.protocol !== "https:")
    return `must start with http:// or https://, found ${JSON.stringify(s)}`;
  return undefined;
}

// --------------------------------------------------------------------------- merge, files

/** Vault's merge: `b` over `a`. Storage and settings: `b` wins when set; seals and listeners add up. */
export function mergeFragments(a: ConfigFragment, b: ConfigFragment): ConfigFragment {
  const out: ConfigFragment = {
    files: [...a.files, ...b.files],
    seals: [...a.seals, ...b.seals],
    listeners: [...a.listeners, ...b.listeners],
    warnings: [...a.warnings, ...b.warnings],
  };
  const storage = b.storage ?? a.storage;
  if (storage !== undefined) out.storage = storage;
  const apiAddr = b.apiAddr ?? a.apiAddr;
  if (apiAddr !== undefined) out.apiAddr = apiAddr;
  const clusterName = b.clusterName ?? a.clusterName;
  if (clusterName !== undefined) out.clusterName = clusterName;
  const logLevel = b.logLevel ?? a.logLevel;
  if (logLevel !== undefined) out.logLevel = logLevel;
  const ui = b.ui ?? a.ui;
  if (ui !== undefined) out.ui = ui;
  const rekeyAuth = b.disableUnauthedRekeyEndpoints ?? a.disableUnauthedRekeyEndpoints;
  if (rekeyAuth !== undefined) out.disableUnauthedRekeyEndpoints = rekeyAuth;
  return out;
}

const isOverride = (file: string) => /(?:^|_)override$/.test(basename(file, extname(file)));

/** The config files of a directory, Vault's order: `*.hcl`/`*.json` by name, override files last. */
async function filesOf(dir: string): Promise<string[]> {
  const names = (await readdir(dir, { withFileTypes: true }))
    .filter((d) => d.isFile() && /\.(hcl|json)$/i.test(d.name) && !d.name.startsWith("."))
    .map((d) => join(dir, d.name))
    .sort();
  return [...names.filter((f) => !isOverride(f)), ...names.filter(isOverride)];
}

export interface LoadConfigOptions {
  /** Environment for overrides (default `process.env`). */
  env?: Env;
  /** Base for relative config paths (default `process.cwd()`). */
  cwd?: string;
  /** `server -dev`: memory storage and a plain-HTTP listener unless the files say otherwise. */
  dev?: boolean;
  /** The `-dev-listen-address` flag. */
  devListenAddress?: string;
  /** A `-log-level` flag: wins over the environment and the files. */
  logLevel?: string;
  /**
   * {@link loadConfig} also checks the settings of every `storage` and `seal` block with the
   * provider registry (without building or contacting anything) and reports their problems with
   * the rest. Default true.
   */
  checkProviders?: boolean;
  /** The registry whose types the blocks are checked against (default: the built-ins). */
  registry?: ProviderRegistry;
}

/** Reads and merges config files and directories (Vault's `-config`), without defaults or the environment. */
export async function readConfigFiles(
  paths: readonly string[],
  cwd = process.cwd(),
): Promise<ConfigFragment> {
  const read = await collectConfigFiles(paths, cwd);
  if (read.problems.length > 0) throw new ConfigError(read.problems);
  return read.fragment;
}

/** Every file read and merged, with every problem of every file and the order files came in. */
interface FilesResult {
  fragment: ConfigFragment;
  problems: ConfigProblem[];
  /** Names as problems carry them, in the order the files were read (for sorting problems). */
  order: string[];
  /** Required blocks a file tried to write; `"all"` when a file could not be read at all. */
  attempted: Set<RequiredBlock> | "all";
}

async function collectConfigFiles(paths: readonly string[], cwd = process.cwd()): Promise<FilesResult> {
  let merged: ConfigFragment = { files: [], seals: [], listeners: [], warnings: [] };
  const problems: ConfigProblem[] = [];
  const order: string[] = [];
  let attempted: Set<RequiredBlock> | "all" = new Set();
  for (const p of paths) {
    const full = resolve(cwd, p);
    let files: string[];
    try {
      files = (await stat(full)).isDirectory() ? await filesOf(full) : [full];
    } catch (err) {
      order.push(p);
      attempted = "all";
      problems.push({ filename: p, message: `cannot read the config: ${(err as Error).message}` });
      continue;
    }
    if (files.length === 0) {
      order.push(p);
      attempted = "all";
      problems.push({ filename: p, message: "the directory holds no .hcl or .json config files" });
      continue;
    }
    for (const file of files) {
      order.push(file);
      let text: string;
      try {
        text = await readFile(file, "utf8");
      } catch (err) {
        attempted = "all";
        problems.push({ filename: file, message: `cannot read the config: ${(err as Error).message}` });
        continue;
      }
      const read = readConfig(text, file);
      problems.push(...read.problems);
      if (read.syntaxError !== undefined) attempted = "all";
      else if (attempted !== "all") for (const kind of read.attempted) attempted.add(kind);
      // Merged even with problems: the blocks that were read are still checked (and counted).
      if (read.syntaxError === undefined) merged = mergeFragments(merged, read.fragment);
    }
  }
  return { fragment: merged, problems, order, attempted };
}

/**
 * The first set variable among `names` (BULWARK_* before VAULT_*), with its name, trimmed. The
 * server's variables override its files: the settings kernel's rule for a program's own variables.
 */
function fromEnv(env: Env, ...names: string[]): { name: string; value: string } | undefined {
  const found = firstVariable(env, names);
  return found === undefined ? undefined : { name: found.name, value: found.value.trim() };
}

/** Environment variables the loader reads, for documentation and `--help`. */
export const CONFIG_ENV_VARS: ReadonlyArray<readonly [string, string]> = [
  ["BULWARK_API_ADDR / VAULT_API_ADDR", "api_addr"],
  ["BULWARK_LOG_LEVEL / VAULT_LOG_LEVEL", "log_level"],
  ["BULWARK_CLUSTER_NAME", "cluster_name"],
  ["BULWARK_SEAL_TYPE / VAULT_SEAL_TYPE", "type of the enabled seal (shamir to use key shares)"],
];

/**
 * Applies the environment, the `-dev` defaults and the cross-block rules to merged files, giving
 * the final {@link ServerConfig}.
 */
export function finalizeConfig(fragment: ConfigFragment, opts: LoadConfigOptions = {}): ServerConfig {
  const { config, problems } = finalizeCollect(fragment, opts, new Set());
  if (problems.length > 0) throw new ConfigError(problems);
  return config as ServerConfig;
}

/**
 * {@link finalizeConfig} without throwing: the config as far as it goes (no storage when none is
 * configured) and every problem. A required block that a file `attempted` (wrote with a problem,
 * or misspelt) is not reported again as missing.
 */
function finalizeCollect(
  fragment: ConfigFragment,
  opts: LoadConfigOptions,
  attempted: ReadonlySet<RequiredBlock> | "all",
): { config: Omit<ServerConfig, "storage"> & { storage?: ProviderBlock }; problems: ConfigProblem[] } {
  const tried = (kind: RequiredBlock) => attempted === "all" || attempted.has(kind);
  const env = opts.env ?? process.env;
  const problems: ConfigProblem[] = [];
  const warnings = [...fragment.warnings];
  const where = fragment.files.length > 0 ? fragment.files.join(", ") : "the configuration";

  let storage = fragment.storage;
  if (storage === undefined) {
    if (opts.dev) storage = { type: "inmem", options: {} };
    else if (!tried("storage"))
      problems.push({
        message: `${where}: no storage block: add one, e.g. storage "file" { path = "./data" }`,
      });
  }

  const listeners = [...fragment.listeners];
  if (opts.dev && opts.devListenAddress !== undefined) {
    const bad = checkListenAddress(opts.devListenAddress);
    if (bad !== undefined) problems.push({ message: `-dev-listen-address ${bad}` });
    listeners.unshift({
      address: opts.devListenAddress,
      tlsDisable: true,
      maxRequestSize: DEFAULT_MAX_REQUEST_SIZE,
    });
  } else if (listeners.length === 0) {
    if (opts.dev)
      listeners.push({
        address: DEFAULT_LISTENER_ADDRESS,
        tlsDisable: true,
        maxRequestSize: DEFAULT_MAX_REQUEST_SIZE,
      });
    else if (!tried("listener")) {
      problems.push({
        message: `${where}: no listener block: add one, e.g. listener "tcp" { address = "127.0.0.1:8200" tls_disable = true }`,
      });
    }
  }
  const byAddress = new Map<string, number>();
  for (const l of listeners) {
    if (!l.address.endsWith(":0") && byAddress.has(l.address)) {
      problems.push({ message: `two listeners use the address ${l.address}: give each its own address` });
    }
    byAddress.set(l.address, 1);
  }

  let seals = [...fragment.seals];
  const sealType = fromEnv(env, "BULWARK_SEAL_TYPE", "VAULT_SEAL_TYPE");
  if (sealType !== undefined) {
    // Vault: the environment sets the type of the enabled seal (adding one if only a disabled
    // seal is configured); "shamir" means key shares, i.e. no seal block.
    const type = sealType.value.toLowerCase();
    const idx = seals.findIndex((s) => !s.disabled);
    const current = idx >= 0 ? seals[idx] : undefined;
    if (type === "shamir") {
      if (current !== undefined && current.type !== "shamir") {
        warnings.push(
          `${sealType.name}=shamir replaces the configured seal "${current.type}" with key shares`,
        );
      }
      seals = seals.filter((s) => s.disabled);
    } else if (current === undefined) {
      warnings.push(
        `${sealType.name}=${type} selects the ${type} seal (configured from its environment variables)`,
      );
      seals.push({ type, options: {}, disabled: false });
    } else if (current.type !== type) {
      warnings.push(
        `${sealType.name}=${type} replaces the configured seal "${current.type}"; its settings are not used (the ${type} seal reads its own environment variables)`,
      );
      seals[idx] = { type, options: {}, disabled: false };
    }
  }
  const enabled = seals.filter((s) => !s.disabled);
  const disabled = seals.filter((s) => s.disabled);
  if (enabled.length > 1) {
    problems.push({
      message: `${enabled.length} enabled seals (${enabled.map((s) => describeBlock("seal", s)).join(", ")}): at most one seal may be enabled; mark the one being migrated away from with disabled = true`,
    });
  }
  if (disabled.length > 1) {
    problems.push({
      message: `${disabled.length} disabled seals (${disabled.map((s) => describeBlock("seal", s)).join(", ")}): migrate from one seal at a time`,
    });
  }
  if (
    disabled.length === 1 &&
    enabled.length === 1 &&
    enabled[0]?.type === "shamir" &&
    disabled[0]?.type === "shamir"
  ) {
    problems.push({
      message: "seal migration from shamir to shamir is not possible (use rekey to change the key shares)",
    });
  }

  const apiAddrEnv = fromEnv(env, "BULWARK_API_ADDR", "VAULT_API_ADDR");
  let apiAddr = fragment.apiAddr;
  if (apiAddrEnv !== undefined) {
    const bad = checkApiAddr(apiAddrEnv.value);
    if (bad !== undefined) problems.push({ message: `${apiAddrEnv.name} ${bad}` });
    else apiAddr = apiAddrEnv.value;
  }

  let logLevel = fragment.logLevel ?? "info";
  const levelEnv = fromEnv(env, "BULWARK_LOG_LEVEL", "VAULT_LOG_LEVEL");
  for (const [source, raw] of [
    [levelEnv?.name, levelEnv?.value],
    ["-log-level", opts.logLevel],
  ] as const) {
    if (raw === undefined || source === undefined) continue;
    const level = LOG_LEVELS.get(raw.trim().toLowerCase());
    if (level === undefined)
      problems.push({
        message: `${source} must be trace, debug, info, warn or error, found ${JSON.stringify(raw)}`,
      });
    else logLevel = level;
  }

  const clusterName =
    fromEnv(env, "BULWARK_CLUSTER_NAME")?.value ?? fragment.clusterName ?? DEFAULT_CLUSTER_NAME;
  const ui = fragment.ui ?? false;
  if (ui) warnings.push("ui = true: Bulwark has no web UI (ignored)");

  const config: Omit<ServerConfig, "storage"> & { storage?: ProviderBlock } = {
    seals,
    listeners,
    clusterName,
    logLevel,
    ui,
    disableUnauthedRekeyEndpoints: fragment.disableUnauthedRekeyEndpoints ?? false,
    warnings,
  };
  if (apiAddr !== undefined) config.apiAddr = apiAddr;
  if (storage !== undefined) config.storage = storage;
  return { config, problems };
}

/**
 * Vault's `server -config a.hcl -config dir/`: reads, merges, applies the environment and checks
 * the whole — top-level settings, every block, and the settings inside each `storage`/`seal`
 * block against its type (see `checkProviderBlocks`; nothing is built or contacted). Throws one
 * {@link ConfigError} listing every problem, in file order, each with file, line and column where
 * it has one, and `block`/`setting` where one is to blame.
 */
export async function loadConfig(
  paths: readonly string[],
  opts: LoadConfigOptions = {},
): Promise<ServerConfig> {
  const files = await collectConfigFiles(paths, opts.cwd);
  const { config, problems } = finalizeCollect(files.fragment, opts, files.attempted);
  const blockProblems =
    opts.checkProviders === false
      ? []
      : await checkProviderBlocks(config, {
          env: opts.env ?? process.env,
          ...(opts.registry !== undefined ? { registry: opts.registry } : {}),
        });
  const all = sortProblems([...files.problems, ...problems, ...blockProblems], files.order);
  if (all.length > 0) throw new ConfigError(all);
  return config as ServerConfig;
}

/**
 * File order: by the order the files were read, then line and column; problems that belong to
 * no file (the environment, rules across files) come last, in the order they were found.
 */
function sortProblems(problems: ConfigProblem[], order: readonly string[]): ConfigProblem[] {
  const rank = (p: ConfigProblem) => {
    const i = p.filename === undefined ? -1 : order.indexOf(p.filename);
    return i < 0 ? Number.MAX_SAFE_INTEGER : i;
  };
  return problems
    .map((p, i) => ({ p, i }))
    .sort(
      (a, b) =>
        rank(a.p) - rank(b.p) ||
        (a.p.line ?? 0) - (b.p.line ?? 0) ||
        (a.p.column ?? 0) - (b.p.column ?? 0) ||
        a.i - b.i,
    )
    .map(({ p }) => p);
}

export { ConfigError, type ConfigProblem };

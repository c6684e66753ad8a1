/**
 * What the config loader accepts: the top-level settings and blocks, the listener's settings, the
 * Vault settings accepted with a warning, the log levels, and the shapes the loader's stages pass
 * between them.
 */
import type { ConfigAuditDevice } from "@bulwark/vault";
import type { ListenerConfig, ProviderBlock, SealBlock, ServerConfig } from "../contracts.js";
import type { ProviderRegistry } from "../registry/registry.js";

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
  disableSealWrap?: boolean;
  /** The `audit` blocks, in file order (files add up, as OpenBao merges them). */
  audits?: ConfigAuditDevice[];
  /** OpenBao 2.6's switches: true when any file sets them true (OpenBao's merge). */
  unsafeAllowApiAuditCreation?: boolean;
  allowAuditLogPrefixing?: boolean;
  warnings: string[];
}

/** Settings Bulwark reads. */
export const SETTINGS = [
  "api_addr",
  "cluster_name",
  "log_level",
  "ui",
  "disable_unauthed_rekey_endpoints",
  "disable_sealwrap",
  "unsafe_allow_api_audit_creation",
  "allow_audit_log_prefixing",
] as const;
export type Setting = (typeof SETTINGS)[number];
const SETTING_NAMES: ReadonlySet<string> = new Set(SETTINGS);

/** Whether a top-level key is one of the {@link SETTINGS} Bulwark reads. */
export function isSetting(key: string): key is Setting {
  return SETTING_NAMES.has(key);
}

/** Blocks Bulwark reads (`backend`/`ha_backend`: Vault's old names). */
export const BLOCK_KEYS = new Set([
  "storage",
  "backend",
  "ha_storage",
  "ha_backend",
  "seal",
  "listener",
  "audit",
]);

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

/** Listener settings Bulwark reads. */
export const LISTENER_KEYS = new Set([
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
export const IGNORED_LISTENER = new Set(IGNORED_LISTENER_SETTINGS);

/** Vault's log level names (and aliases), as the levels Bulwark logs at. */
export const LOG_LEVELS: ReadonlyMap<string, LogLevel> = new Map([
  ["trace", "trace"],
  ["debug", "debug"],
  ["info", "info"],
  ["warn", "warn"],
  ["warning", "warn"],
  ["err", "error"],
  ["error", "error"],
]);

/** Block kinds whose absence is reported by `finalizeConfig` ("no storage block"). */
export type RequiredBlock = "storage" | "listener";

/** A config as far as it goes: no storage when none is configured. */
export type PartialServerConfig = Omit<ServerConfig, "storage"> & { storage?: ProviderBlock };

/** How `loadConfig` and `finalizeConfig` read the environment, flags and providers. */
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
   * `loadConfig` also checks the settings of every `storage` and `seal` block with the
   * provider registry (without building or contacting anything) and reports their problems with
   * the rest. Default true.
   */
  checkProviders?: boolean;
  /** The registry whose types the blocks are checked against (default: the built-ins). */
  registry?: ProviderRegistry;
}

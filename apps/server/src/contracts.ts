/**
 * The seams between the server's parts: config/CLI (src/config, src/registry, src/cli, src/main.ts)
 * and the HTTP API (src/http, over @bulwark/vault). Both sides build on these types.
 */
import type { SealedStore } from "@bulwark/core";
import type { AuditSettings } from "@bulwark/vault";
import type { Logger as PinoLogger } from "pino";

/** One `listener "tcp" { … }` block, validated. */
export interface ListenerConfig {
  /** host:port, e.g. "127.0.0.1:8200"; port 0 picks a free port. */
  address: string;
  tlsDisable: boolean;
  tlsCertFile?: string;
  tlsKeyFile?: string;
  tlsMinVersion?: "tls12" | "tls13";
  /** Largest request body in bytes (Vault default 32 MiB). */
  maxRequestSize: number;
  /**
   * OpenBao 2.6's listener `disable_unauthed_rekey_endpoints` (default true, as there): the
   * unauthenticated sys/rekey/* and sys/rekey-recovery-key/* answer as OpenBao does (405
   * `unsupported operation` / 404 `unsupported path`); sys/rotate/root/* and
   * sys/rotate/recovery/* (token with sudo) are the replacement. Undefined means true.
   */
  disableUnauthedRekeyEndpoints?: boolean;
  /** Same for the unauthenticated sys/generate-root/* (replacement: sys/generate-root-token/*). */
  disableUnauthedGenerateRootEndpoints?: boolean;
}

/** A `storage "<type>" { … }` or `seal "<type>" { … }` block: type plus its raw options. */
export interface ProviderBlock {
  type: string;
  options: Record<string, unknown>;
}

export interface SealBlock extends ProviderBlock {
  /** Vault's `disabled = true`: the seal being migrated away from. */
  disabled: boolean;
}

/** A whole server configuration, after parsing, validation and environment overrides. */
export interface ServerConfig {
  storage: ProviderBlock;
  /** Zero seals = Shamir. At most one enabled seal; a disabled one is the migration source. */
  seals: SealBlock[];
  listeners: ListenerConfig[];
  apiAddr?: string;
  clusterName: string;
  logLevel: "trace" | "debug" | "info" | "warn" | "error";
  ui: boolean;
  /**
   * OpenBao's `disable_unauthed_rekey_endpoints`: when true, sys/rekey* need a token with `sudo`
   * on the path in addition to the key shares.
   */
  disableUnauthedRekeyEndpoints: boolean;
  /**
   * Vault Enterprise's `disable_sealwrap`: nothing new is seal-wrapped (neither the core keys nor
   * seal_wrap mounts); values already wrapped are still read. What a data set needs to be read by
   * OpenBao, which has no seal wrap.
   */
  disableSealWrap: boolean;
  /**
   * The `audit "<type>" "<path>" { … }` blocks (OpenBao's declarative audit devices) with
   * `unsafe_allow_api_audit_creation` and `allow_audit_log_prefixing`. main.ts hands them to the
   * store's audit broker (`servicesFor(store).audit.configure(…)`) at start and on SIGHUP.
   */
  audit: AuditSettings;
  /** Messages about accepted-but-ignored Vault keys (`disable_mlock`, …). */
  warnings: string[];
}

export interface HttpServerOptions {
  store: SealedStore;
  listener: ListenerConfig;
  clusterName: string;
  logger: PinoLogger;
  apiAddr?: string;
  /** See {@link ServerConfig.disableUnauthedRekeyEndpoints}. Default false (Vault's behaviour). */
  disableUnauthedRekeyEndpoints?: boolean;
}

export interface RunningServer {
  /** The URL clients use, e.g. "http://127.0.0.1:8200". */
  address: string;
  /** Stops accepting, drains in-flight requests, closes the listener (does not seal). */
  close(): Promise<void>;
}

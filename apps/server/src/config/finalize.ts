/**
 * From merged files to the final {@link ServerConfig}: the `-dev` defaults, the environment
 * (`BULWARK_*` first, then Vault's `VAULT_*` names; the server's own variables override its files)
 * and the rules across blocks (one enabled seal, one listener per address).
 */
import { firstVariable } from "@bulwark/settings";
import type { ListenerConfig, ProviderBlock, SealBlock, ServerConfig } from "../contracts.js";
import { auditSettingsOf } from "./audit.js";
import { ConfigError, type ConfigProblem } from "./errors.js";
import { checkListenAddress } from "./listener.js";
import { checkApiAddr } from "./read.js";
import {
  type ConfigFragment,
  DEFAULT_CLUSTER_NAME,
  DEFAULT_LISTENER_ADDRESS,
  DEFAULT_MAX_REQUEST_SIZE,
  type Env,
  LOG_LEVELS,
  type LoadConfigOptions,
  type LogLevel,
  type PartialServerConfig,
  type RequiredBlock,
} from "./schema.js";
import { describeBlock } from "./source.js";

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
 * Whether a config has its storage. Without problems it always has: every way to lack one (no
 * block, a rejected or misspelt block, an unreadable file) is reported as a problem.
 */
export function isComplete(config: PartialServerConfig): config is ServerConfig {
  return config.storage !== undefined;
}

/**
 * Applies the environment, the `-dev` defaults and the cross-block rules to merged files, giving
 * the final {@link ServerConfig}.
 */
export function finalizeConfig(fragment: ConfigFragment, opts: LoadConfigOptions = {}): ServerConfig {
  const { config, problems } = finalizeCollect(fragment, opts, new Set());
  if (problems.length > 0 || !isComplete(config)) throw new ConfigError(problems);
  return config;
}

/** What each stage of {@link finalizeCollect} reads and adds to. */
interface Finalizing {
  fragment: ConfigFragment;
  opts: LoadConfigOptions;
  env: Env;
  problems: ConfigProblem[];
  warnings: string[];
  /** Whether a file tried to write a required block (then its absence is not reported again). */
  tried: (kind: RequiredBlock) => boolean;
  /** The files, as "no storage block" names them. */
  where: string;
}

/**
 * {@link finalizeConfig} without throwing: the config as far as it goes (no storage when none is
 * configured) and every problem. A required block that a file `attempted` (wrote with a problem,
 * or misspelt) is not reported again as missing.
 */
export function finalizeCollect(
  fragment: ConfigFragment,
  opts: LoadConfigOptions,
  attempted: ReadonlySet<RequiredBlock> | "all",
): { config: PartialServerConfig; problems: ConfigProblem[] } {
  const f: Finalizing = {
    fragment,
    opts,
    env: opts.env ?? process.env,
    problems: [],
    warnings: [...fragment.warnings],
    tried: (kind) => attempted === "all" || attempted.has(kind),
    where: fragment.files.length > 0 ? fragment.files.join(", ") : "the configuration",
  };
  // In this order, so problems and warnings come in the order they always have.
  const storage = storageOf(f);
  const listeners = listenersOf(f);
  const seals = sealsOf(f);
  const apiAddr = apiAddrOf(f);
  const logLevel = logLevelOf(f);
  const clusterName =
    fromEnv(f.env, "BULWARK_CLUSTER_NAME")?.value ?? fragment.clusterName ?? DEFAULT_CLUSTER_NAME;
  const ui = fragment.ui ?? false;
  if (ui) f.warnings.push("ui = true: Bulwark has no web UI (ignored)");

  const config: PartialServerConfig = {
    seals,
    listeners,
    clusterName,
    logLevel,
    ui,
    disableUnauthedRekeyEndpoints: fragment.disableUnauthedRekeyEndpoints ?? false,
    disableSealWrap: fragment.disableSealWrap ?? false,
    audit: auditSettingsOf(
      fragment.audits ?? [],
      fragment.unsafeAllowApiAuditCreation ?? false,
      fragment.allowAuditLogPrefixing ?? false,
      f.problems,
    ),
    warnings: f.warnings,
  };
  if (apiAddr !== undefined) config.apiAddr = apiAddr;
  if (storage !== undefined) config.storage = storage;
  return { config, problems: f.problems };
}

/** The files' storage; `-dev` falls back to memory storage. */
function storageOf(f: Finalizing): ProviderBlock | undefined {
  if (f.fragment.storage !== undefined) return f.fragment.storage;
  if (f.opts.dev) return { type: "inmem", options: {} };
  if (!f.tried("storage"))
    f.problems.push({
      message: `${f.where}: no storage block: add one, e.g. storage "file" { path = "./data" }`,
    });
  return undefined;
}

/** The files' listeners, `-dev`'s plain-HTTP one first; each address used once. */
function listenersOf(f: Finalizing): ListenerConfig[] {
  const { opts } = f;
  const listeners = [...f.fragment.listeners];
  if (opts.dev && opts.devListenAddress !== undefined) {
    const bad = checkListenAddress(opts.devListenAddress);
    if (bad !== undefined) f.problems.push({ message: `-dev-listen-address ${bad}` });
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
    else if (!f.tried("listener")) {
      f.problems.push({
        message: `${f.where}: no listener block: add one, e.g. listener "tcp" { address = "127.0.0.1:8200" tls_disable = true }`,
      });
    }
  }
  const byAddress = new Map<string, number>();
  for (const l of listeners) {
    if (!l.address.endsWith(":0") && byAddress.has(l.address)) {
      f.problems.push({ message: `two listeners use the address ${l.address}: give each its own address` });
    }
    byAddress.set(l.address, 1);
  }
  return listeners;
}

/** The files' seals with `BULWARK_SEAL_TYPE`/`VAULT_SEAL_TYPE` applied; at most one enabled. */
function sealsOf(f: Finalizing): SealBlock[] {
  let seals = [...f.fragment.seals];
  const sealType = fromEnv(f.env, "BULWARK_SEAL_TYPE", "VAULT_SEAL_TYPE");
  if (sealType !== undefined) seals = applySealType(seals, sealType, f.warnings);
  const enabled = seals.filter((s) => !s.disabled);
  const disabled = seals.filter((s) => s.disabled);
  if (enabled.length > 1) {
    f.problems.push({
      message: `${enabled.length} enabled seals (${enabled.map((s) => describeBlock("seal", s)).join(", ")}): at most one seal may be enabled; mark the one being migrated away from with disabled = true`,
    });
  }
  if (disabled.length > 1) {
    f.problems.push({
      message: `${disabled.length} disabled seals (${disabled.map((s) => describeBlock("seal", s)).join(", ")}): migrate from one seal at a time`,
    });
  }
  if (
    disabled.length === 1 &&
    enabled.length === 1 &&
    enabled[0]?.type === "shamir" &&
    disabled[0]?.type === "shamir"
  ) {
    f.problems.push({
      message: "seal migration from shamir to shamir is not possible (use rekey to change the key shares)",
    });
  }
  return seals;
}

/**
 * Vault: the environment sets the type of the enabled seal (adding one if only a disabled seal is
 * configured); "shamir" means key shares, i.e. no seal block.
 */
function applySealType(
  configured: SealBlock[],
  sealType: { name: string; value: string },
  warnings: string[],
): SealBlock[] {
  const seals = [...configured];
  const type = sealType.value.toLowerCase();
  const idx = seals.findIndex((s) => !s.disabled);
  const current = idx >= 0 ? seals[idx] : undefined;
  if (type === "shamir") {
    if (current !== undefined && current.type !== "shamir") {
      warnings.push(`${sealType.name}=shamir replaces the configured seal "${current.type}" with key shares`);
    }
    return seals.filter((s) => s.disabled);
  }
  if (current === undefined) {
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
  return seals;
}

/** `api_addr`, `BULWARK_API_ADDR`/`VAULT_API_ADDR` winning when it is a valid URL. */
function apiAddrOf(f: Finalizing): string | undefined {
  const apiAddrEnv = fromEnv(f.env, "BULWARK_API_ADDR", "VAULT_API_ADDR");
  if (apiAddrEnv === undefined) return f.fragment.apiAddr;
  const bad = checkApiAddr(apiAddrEnv.value);
  if (bad === undefined) return apiAddrEnv.value;
  f.problems.push({ message: `${apiAddrEnv.name} ${bad}` });
  return f.fragment.apiAddr;
}

/** `log_level`, then the environment, then the `-log-level` flag: the last valid one wins. */
function logLevelOf(f: Finalizing): LogLevel {
  let logLevel = f.fragment.logLevel ?? "info";
  const levelEnv = fromEnv(f.env, "BULWARK_LOG_LEVEL", "VAULT_LOG_LEVEL");
  for (const [source, raw] of [
    [levelEnv?.name, levelEnv?.value],
    ["-log-level", f.opts.logLevel],
  ] as const) {
    if (raw === undefined || source === undefined) continue;
    const level = LOG_LEVELS.get(raw.trim().toLowerCase());
    if (level === undefined)
      f.problems.push({
        message: `${source} must be trace, debug, info, warn or error, found ${JSON.stringify(raw)}`,
      });
    else logLevel = level;
  }
  return logLevel;
}

/**
 * Server boot: config → bind the listeners → providers → probe the storage → SealedStore → serve,
 * and the orderly way down (stop accepting, drain, seal, zero keys) within a deadline.
 * `bulwark server` is a thin CLI wrapper around {@link startServer}, which embedders and tests
 * can call directly.
 *
 * The listeners are bound and the storage probed before anything reads or writes data: a port in
 * use (another server running) or an unwritable data directory is an error at start that names
 * the setting, its file and line, and the fix — not a 500 at `operator init`.
 */
import { isAbsolute, relative } from "node:path";
import type { Writable } from "node:stream";
import { SealedStore, type SealStatus } from "@bulwark/core";
import { CodedError, type CodedErrorOptions } from "@bulwark/errors";
import { type Backend, StorageProbeError } from "@bulwark/storage";
import { type AuditBroker, type AuditSettings, BadRequestError, servicesFor } from "@bulwark/vault";
import type { DestinationStream, Logger } from "pino";
import { auditBlockName, auditSourceOf } from "./config/audit.js";
import { ConfigError, type ConfigProblem, formatProblem } from "./config/errors.js";
import { type Env, finalizeConfig, type LoadConfigOptions, loadConfig } from "./config/load.js";
import { type SourcePosition, sourceOf } from "./config/source.js";
import type { RunningServer, ServerConfig } from "./contracts.js";
import {
  type BoundListener,
  bindListener,
  createRootToken,
  ListenerError,
  mountKv,
  startHttpServer,
} from "./http/server.js";
import { coreLogger, createLogger } from "./logging.js";
import { createProviders, type Providers } from "./registry/registry.js";

export interface StartServerOptions {
  /** `-config` files and directories (Vault merge rules). Optional with `dev`. */
  configPaths?: readonly string[];
  /** `-dev`: in-memory, initialised with one key share, unsealed, root token printed. */
  dev?: boolean;
  /** `-dev-listen-address` (default 127.0.0.1:8200). */
  devListenAddress?: string;
  /**
   * `-dev-root-token-id`: the dev server's root token instead of a random one (Vault's flag; also
   * `BULWARK_DEV_ROOT_TOKEN_ID` / `VAULT_DEV_ROOT_TOKEN_ID`).
   */
  devRootTokenId?: string;
  /** `-log-level`: wins over BULWARK_LOG_LEVEL / VAULT_LOG_LEVEL and the config. */
  logLevel?: string;
  env?: Env;
  cwd?: string;
  /** Where the start banner goes (default stdout). */
  out?: Writable;
  /** Where log lines go (default stdout). */
  logDestination?: DestinationStream;
}

/**
 * Codes of {@link StartupError} (domain "server"): a listener that cannot bind, a storage backend
 * that cannot be used.
 */
export const STARTUP_ERROR_CODES = ["listener_unavailable", "storage_unusable"] as const;

export type StartupErrorCode = (typeof STARTUP_ERROR_CODES)[number];

/**
 * The server cannot start for a reason the operator fixes in the config or the environment (a
 * port in use, an unusable data directory, an unreachable Consul). `message` names the setting,
 * where it is written and the fix; the CLI prints it without a stack trace and exits 1.
 */
export class StartupError extends CodedError<StartupErrorCode> {
  static override readonly kind: string = "@bulwark/server:StartupError";
  override name = "StartupError";
  /** The setting at fault, e.g. `address` or `path`. */
  readonly setting: string;
  constructor(code: StartupErrorCode, setting: string, message: string, options?: CodedErrorOptions) {
    super("server", code, message, options);
    this.setting = setting;
  }
}

export interface DevCredentials {
  rootToken: string;
  unsealKey: string;
}

export interface BulwarkServer {
  config: ServerConfig;
  store: SealedStore;
  logger: Logger;
  listeners: RunningServer[];
  /** The first listener's URL (what BULWARK_ADDR should be). */
  address: string;
  /** Only in dev mode. */
  dev?: DevCredentials;
  /** Stops accepting, drains requests, seals (zeroing keys), finalizes the seals, closes storage. Idempotent. */
  shutdown(reason?: string): Promise<void>;
  /**
   * Vault's SIGHUP: re-reads and checks the config files; when they are valid, applies what can
   * change while running (the audit blocks and switches, the log level) and warns about what needs
   * a restart; when they are not, logs every problem and keeps the running config. Either way the
   * audit devices reopen (a file device reopens its file: logrotate). Never rejects; concurrent
   * calls share one reload, and a call during a reload runs one more after it.
   */
  reload(): Promise<ReloadResult>;
}

/** What a {@link BulwarkServer.reload} did. */
export interface ReloadResult {
  /** The config files were read and valid, and their settings applied. */
  applied: boolean;
  /** Why not, or what failed while applying (config problems, the audit broker's error). */
  errors: string[];
}

const STORAGE_CLOSE = async (storage: Backend): Promise<void> => {
  await storage.close?.();
};

async function openStore(config: ServerConfig, providers: Providers, logger: Logger): Promise<SealedStore> {
  const redirect = redirectAddress(config);
  if (redirect === undefined && providers.ha !== undefined) {
    logger.warn(
      "HA is on but no api_addr is set and the listener address is not one other nodes can reach: standbys will not forward requests to this node; set api_addr",
    );
  }
  const migrationSeal = providers.migrationSeal;
  const store = await SealedStore.open({
    storage: providers.storage,
    ...(providers.seal === undefined ? {} : { seal: providers.seal }),
    ...(migrationSeal === undefined ? {} : { migrationSeal }),
    // Vault's implicit Shamir → auto-seal migration (the config names only the new seal): core
    // decides it on the stored seal configuration, after rolling back an interrupted step.
    implicitMigration: true,
    disableSealWrap: config.disableSealWrap,
    ...(providers.ha === undefined ? {} : { ha: providers.ha }),
    logger: coreLogger(logger.child({ component: "core" })),
    storageType: config.storage.type,
    ...(redirect === undefined ? {} : { redirectAddr: redirect }),
  });
  const implicit = store.implicitMigration;
  if (implicit !== undefined) {
    logger.warn(
      implicit,
      "the data is protected by Shamir key shares but the config names another seal: entering seal migration mode; unseal with -migrate",
    );
  }
  return store;
}

/**
 * The address the active node advertises to standbys: `api_addr`, else the first listener's when
 * it names a specific host and port (a wildcard host or port 0 is not an address others can use).
 */
export function redirectAddress(config: ServerConfig): string | undefined {
  if (config.apiAddr !== undefined) return config.apiAddr;
  const l = config.listeners[0];
  if (l === undefined) return undefined;
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d+)$/.exec(l.address.trim());
  if (m === null) return undefined;
  const host = m[1] ?? m[2] ?? "";
  if (host === "" || host === "0.0.0.0" || host === "::" || m[3] === "0") return undefined;
  return `${l.tlsDisable ? "http" : "https"}://${m[1] === undefined ? host : `[${host}]`}:${m[3]}`;
}

/** The store's audit broker (Vault's audit table and devices, on the active node). */
function auditOf(store: SealedStore): AuditBroker {
  return servicesFor(store).audit;
}

/**
 * The broker refused a config block (an option a device rejects, a block that differs from the
 * device at its path): a {@link ConfigError} at the block's file and line, naming it. Anything else
 * (the storage failing) is passed on as it is.
 */
function auditBlockError(settings: AuditSettings, err: unknown): unknown {
  if (!(err instanceof BadRequestError)) return err;
  // The broker's messages name the device's path (`… audit device broken/: …`, `(path: broken/)`).
  const device = settings.devices.find(
    (d) => err.message.includes(` ${d.path}`) || err.message.includes(`(path: ${d.path})`),
  );
  const problem: ConfigProblem = {
    message: `${device === undefined ? "audit" : auditBlockName(device)}: the audit device cannot be set up: ${err.message}`,
  };
  if (device !== undefined) {
    problem.block = auditBlockName(device);
    const pos = auditSourceOf(device);
    if (pos !== undefined) Object.assign(problem, pos);
  }
  return new ConfigError([problem], { cause: err });
}

/** `file/ (file), net/ (socket)`: the configured devices as the reload log names them. */
function auditSummary(settings: AuditSettings): string[] {
  return settings.devices.map((d) => `${d.path} (${d.type})`);
}

/** Starts a server from config files (or `-dev`). Resolves once every listener is accepting. */
export async function startServer(opts: StartServerOptions = {}): Promise<BulwarkServer> {
  const env = opts.env ?? process.env;
  const loadOpts: LoadConfigOptions = { env, dev: opts.dev === true };
  if (opts.cwd !== undefined) loadOpts.cwd = opts.cwd;
  if (opts.devListenAddress !== undefined) loadOpts.devListenAddress = opts.devListenAddress;
  if (opts.logLevel !== undefined) loadOpts.logLevel = opts.logLevel;
  const paths = opts.configPaths ?? [];
  const config =
    paths.length === 0 && opts.dev
      ? finalizeConfig({ files: [], seals: [], listeners: [], warnings: [] }, loadOpts)
      : await loadConfig(paths, loadOpts);

  const logger = createLogger({
    level: config.logLevel,
    ...(opts.logDestination === undefined ? {} : { destination: opts.logDestination }),
  });
  for (const w of config.warnings) logger.warn(w);

  // 1. Every listener is bound before anything touches the data: a second server started on the
  // same config fails here, before opening the storage the running one is using.
  const bound: BoundListener[] = [];
  const unbind = () => Promise.allSettled(bound.map((b) => b.close()));
  try {
    for (const listener of config.listeners) bound.push(await bindListener(listener));
  } catch (err) {
    await unbind();
    if (err instanceof ListenerError) {
      const failed = config.listeners[bound.length];
      const pos = failed === undefined ? undefined : sourceOf(failed, err.setting);
      // Not from a file: the dev listener, from -dev-listen-address (or its default).
      const where =
        pos !== undefined
          ? fileLine(pos)
          : opts.dev && err.setting === "address"
            ? "-dev-listen-address"
            : undefined;
      throw new StartupError(
        "listener_unavailable",
        err.setting,
        `listener "tcp" ${err.setting} ${err.value}${where === undefined ? "" : ` (${where})`} ${err.problem}: ${err.fix}`,
        { cause: err },
      );
    }
    throw err;
  }

  let providers: Providers;
  try {
    providers = await createProviders(config, {
      env,
      logger: coreLogger(logger.child({ component: "registry" })),
    });
  } catch (err) {
    await unbind();
    throw err;
  }
  let store: SealedStore;
  try {
    // 2. The storage proves it can be used (reached, written, flushed) before the store reads it.
    await probeStorage(config, providers.storage, logger);
    store = await openStore(config, providers, logger);
  } catch (err) {
    await unbind();
    await providers.release();
    throw err;
  }

  const listeners: RunningServer[] = [];
  let dev: DevCredentials | undefined;
  try {
    if (opts.dev) {
      const id =
        opts.devRootTokenId ??
        nonEmpty(env.BULWARK_DEV_ROOT_TOKEN_ID) ??
        nonEmpty(env.VAULT_DEV_ROOT_TOKEN_ID);
      dev = await initialiseDev(store, id);
    }
    // Before any listener serves a request: an active node sets up the config's audit devices now
    // (so no request goes unaudited); a sealed or standby node only takes the settings, and the
    // broker reconciles them at the start of every active term.
    try {
      await auditOf(store).configure(config.audit);
    } catch (err) {
      throw auditBlockError(config.audit, err);
    }
    for (const [i, listener] of config.listeners.entries()) {
      listeners.push(
        await startHttpServer({
          store,
          listener,
          bound: bound[i] as BoundListener,
          clusterName: config.clusterName,
          logger,
          ...(config.apiAddr === undefined ? {} : { apiAddr: config.apiAddr }),
          disableUnauthedRekeyEndpoints: config.disableUnauthedRekeyEndpoints,
        }),
      );
    }
  } catch (err) {
    await Promise.allSettled(listeners.map((l) => l.close()));
    await unbind();
    await store.close().catch(() => undefined);
    await STORAGE_CLOSE(providers.storage).catch(() => undefined);
    throw err;
  }

  let down: Promise<void> | undefined;
  let reloading: Promise<ReloadResult> | undefined;
  let again: Promise<ReloadResult> | undefined;
  const reloadOnce = async (): Promise<ReloadResult> => {
    const result = await reloadConfig(server, paths, loadOpts);
    const audit = auditOf(store);
    // Reopened whether or not the config was valid: logrotate has moved the files either way.
    try {
      await audit.reopen();
      logger.info("reload: audit devices reopened");
    } catch (err) {
      result.errors.push(`reopening the audit devices failed: ${(err as Error).message}`);
      logger.error({ err }, "reload: reopening the audit devices failed");
    }
    return result;
  };
  const server: BulwarkServer = {
    reload() {
      if (reloading === undefined) {
        reloading = reloadOnce().finally(() => {
          reloading = undefined;
        });
        return reloading;
      }
      // A SIGHUP during a reload may come after a change the running reload did not read.
      again ??= reloading.then(() => {
        again = undefined;
        return server.reload();
      });
      return again;
    },
    config,
    store,
    logger,
    listeners,
    address: (listeners[0] as RunningServer).address,
    shutdown(reason = "shutdown requested") {
      down ??= (async () => {
        logger.info({ reason }, "shutting down: no new connections, draining requests");
        const closed = await Promise.allSettled(listeners.map((l) => l.close()));
        for (const c of closed)
          if (c.status === "rejected") logger.warn({ err: c.reason }, "listener close failed");
        // The devices' last records are flushed and their files closed before the store seals.
        await auditOf(store)
          .close()
          .catch((err: unknown) => logger.warn({ err }, "closing the audit devices failed"));
        // close() seals (the barrier and Shamir keys are zeroed), releases the HA lock and finalizes the seals.
        await store.close();
        await STORAGE_CLOSE(providers.storage).catch((err: unknown) =>
          logger.warn({ err }, "storage close failed"),
        );
        logger.info("sealed and stopped");
        await new Promise<void>((resolve) => logger.flush(() => resolve()));
      })();
      return down;
    },
  };
  if (dev !== undefined) server.dev = dev;
  (opts.out ?? process.stdout).write(banner(server));
  return server;
}

/**
 * The reload's config part: re-reads the files; when valid, hands the audit settings to the
 * broker and applies the log level. Without config files (`-dev` alone) there is nothing to read.
 */
async function reloadConfig(
  server: BulwarkServer,
  paths: readonly string[],
  loadOpts: LoadConfigOptions,
): Promise<ReloadResult> {
  const { logger } = server;
  if (paths.length === 0) {
    logger.info("reload: no config files to re-read (-dev without -config)");
    return { applied: false, errors: [] };
  }
  logger.info({ files: paths }, "reload: re-reading the config (SIGHUP)");
  let next: ServerConfig;
  try {
    next = await loadConfig(paths, loadOpts);
  } catch (err) {
    const problems =
      err instanceof ConfigError ? err.problems.map(formatProblem) : [(err as Error).message ?? String(err)];
    logger.error(
      { problems },
      `reload: the config has ${problems.length === 1 ? "a problem" : `${problems.length} problems`}; the running configuration is kept: ${problems.join("; ")}`,
    );
    return { applied: false, errors: problems };
  }
  for (const w of next.warnings) logger.warn(w);
  const errors: string[] = [];
  const running = server.config;
  for (const [what, a, b] of [
    ["storage", running.storage, next.storage],
    ["seal", running.seals, next.seals],
    ["listener", running.listeners, next.listeners],
    ["api_addr", running.apiAddr, next.apiAddr],
    ["cluster_name", running.clusterName, next.clusterName],
    ["disable_sealwrap", running.disableSealWrap, next.disableSealWrap],
    [
      "disable_unauthed_rekey_endpoints",
      running.disableUnauthedRekeyEndpoints,
      next.disableUnauthedRekeyEndpoints,
    ],
  ] as const) {
    if (JSON.stringify(a) !== JSON.stringify(b))
      logger.warn(`reload: the ${what} settings changed; they take effect at the next restart`);
  }
  try {
    await auditOf(server.store).configure(next.audit);
    running.audit = next.audit;
    logger.info(
      {
        auditDevices: auditSummary(next.audit),
        unsafeAllowApiAuditCreation: next.audit.unsafeAllowApiAuditCreation,
        allowAuditLogPrefixing: next.audit.allowAuditLogPrefixing,
      },
      `reload: audit settings applied (${next.audit.devices.length === 0 ? "no audit blocks" : next.audit.devices.map((d) => auditBlockName(d)).join(", ")})`,
    );
  } catch (err) {
    const refused = auditBlockError(next.audit, err);
    const text = refused instanceof Error ? refused.message : String(refused);
    errors.push(text);
    logger.error(
      { err },
      `reload: the config's audit blocks cannot be set up; going back to the running audit settings: ${text}`,
    );
    // The broker took the new settings before it failed on one block: the running ones go back, so
    // what it enforces (and reconciles at the next active term) is what server.config says.
    await auditOf(server.store)
      .configure(running.audit)
      .catch((again: unknown) =>
        logger.error({ err: again }, "reload: the running audit settings could not be set up again"),
      );
  }
  if (next.logLevel !== running.logLevel) {
    logger.info({ from: running.logLevel, to: next.logLevel }, "reload: log level changed");
    logger.level = next.logLevel;
    running.logLevel = next.logLevel;
  }
  return { applied: errors.length === 0, errors };
}

/** `file:line:column`, relative to the working directory when the file is below it. */
function fileLine(pos: SourcePosition, cwd = process.cwd()): string {
  const rel = relative(cwd, pos.filename);
  const shown = rel !== "" && !rel.startsWith("..") && !isAbsolute(rel) ? rel : pos.filename;
  return `${shown}:${pos.line}:${pos.column}`;
}

/** Runs the storage's probe (when it has one); a failure names the block, the setting and the fix. */
async function probeStorage(config: ServerConfig, storage: Backend, logger: Logger): Promise<void> {
  if (typeof storage.probe !== "function") return;
  const started = performance.now();
  try {
    await storage.probe();
  } catch (err) {
    const block = config.storage;
    const setting = err instanceof StorageProbeError ? err.setting : undefined;
    // The setting's line, or the block's when the value is a default or from the environment.
    const pos = sourceOf(block, setting);
    const value = setting === undefined ? undefined : block.options[setting];
    let name = `storage "${block.type}"`;
    if (setting !== undefined) name += ` ${setting}`;
    if (typeof value === "string" && setting !== "token") name += ` ${JSON.stringify(value)}`;
    if (pos !== undefined) name += ` (${fileLine(pos)})`;
    const what = err instanceof StorageProbeError ? `${err.detail}: ${err.fix}` : (err as Error).message;
    throw new StartupError("storage_unusable", setting ?? "storage", `${name}: ${what}`, { cause: err });
  }
  logger.debug({ ms: Math.round(performance.now() - started) }, "storage probe passed");
}

/** `vault server -dev`: one key share, unsealed, a root token and kv v2 at `secret/`. */
function nonEmpty(v: string | undefined): string | undefined {
  return v === undefined || v === "" ? undefined : v;
}

async function initialiseDev(store: SealedStore, rootTokenId: string | undefined): Promise<DevCredentials> {
  const status = store.status();
  if (status.initialized) {
    throw new StartupError(
      "storage_unusable",
      "storage",
      "-dev needs empty storage: the configured storage is already initialised",
    );
  }
  let unsealKey: string;
  if (status.type !== "shamir") {
    const res = await store.initialize({ recoveryShares: 1, recoveryThreshold: 1 });
    unsealKey = res.recoveryKeysBase64[0] as string;
  } else {
    const res = await store.initialize({ secretShares: 1, secretThreshold: 1 });
    unsealKey = res.keysBase64[0] as string;
    await store.unseal(res.keys[0] as string);
  }
  const rootToken = await createRootToken(store, rootTokenId);
  await mountKv(store, "secret", { version: 2, description: "key/value secret storage (dev mode)" });
  return { rootToken, unsealKey };
}

function banner(server: BulwarkServer): string {
  const { config, store } = server;
  const status = store.status();
  const seal = config.seals.find((s) => !s.disabled)?.type ?? "shamir";
  const migrating = config.seals.find((s) => s.disabled)?.type;
  const lines = [
    "==> Bulwark server configuration:",
    "",
    `             Api Address: ${config.apiAddr ?? server.address}`,
    `            Cluster Name: ${config.clusterName || "(generated at first unseal)"}`,
    ...server.listeners.map(
      (l, i) =>
        `              Listener ${i + 1}: tcp (addr: "${config.listeners[i]?.address}", url: "${l.address}", tls: "${config.listeners[i]?.tlsDisable ? "disabled" : "enabled"}")`,
    ),
    `               Log Level: ${config.logLevel}`,
    `                    Seal: ${seal}${migrating ? ` (migrating from ${migrating})` : ""}`,
    `                 Storage: ${config.storage.type}${status.haEnabled ? " (HA available)" : ""}`,
    `                 Version: Bulwark v${status.version}`,
    "",
    "==> Bulwark server started! Log data will stream in below:",
    "",
  ];
  const addr = server.address;
  if (server.dev !== undefined) {
    lines.push(
      "WARNING! dev mode is enabled! In this mode, Bulwark runs entirely in-memory",
      "and starts unsealed with a single unseal key. To use the CLI with the root",
      "token, set these environment variables:",
      "",
      `    $ export BULWARK_ADDR='${addr}'`,
      `    $ export BULWARK_TOKEN='${server.dev.rootToken}'`,
      "",
      "The unseal key and root token are displayed below in case you want to",
      "seal/unseal the store or re-authenticate.",
      "",
      `Unseal Key: ${server.dev.unsealKey}`,
      `Root Token: ${server.dev.rootToken}`,
      "",
      "Development mode should NOT be used in production installations!",
      "",
    );
  } else if (!status.initialized) {
    const auto = seal !== "shamir";
    lines.push(
      "The store is not initialised yet. Initialise it with the CLI:",
      "",
      `    $ export BULWARK_ADDR='${addr}'`,
      auto
        ? "    $ bulwark operator init -recovery-shares=5 -recovery-threshold=3"
        : "    $ bulwark operator init",
      "",
      auto
        ? "The seal unseals the store by itself. Keep the recovery keys printed by init safe: they authorise rekey, generate-root and seal migration (they cannot unseal)."
        : "init prints 5 unseal keys and a root token; then unseal with any 3 of the keys:",
      ...(auto
        ? []
        : [
            "",
            "    $ bulwark operator unseal      (run it three times, one key each)",
            "    $ bulwark status",
          ]),
      "",
    );
  } else if (status.sealed) lines.push(...sealedLines(status, addr));
  return `${lines.join("\n")}\n`;
}

/**
 * What the banner says about a sealed store. Recovery keys are never offered for unsealing: they
 * are verified through the seal, so they cannot open a store whose seal is unreachable or broken.
 */
function sealedLines(status: SealStatus, addr: string): string[] {
  const wait = status.autoUnseal;
  if (wait !== undefined) {
    return [
      `The store is sealed, waiting for the ${wait.seal} seal (${wait.lastError}):`,
      `retrying every ${seconds(wait.maxDelayMs)} at most; the server unseals by itself when it is reachable.`,
      "Watch it with:",
      "",
      `    $ BULWARK_ADDR='${addr}' bulwark status`,
      "",
    ];
  }
  if (status.migration) {
    return [
      `Seal migration pending: unseal with -migrate (${status.t} of ${status.n} keys):`,
      "",
      `    $ export BULWARK_ADDR='${addr}'`,
      "    $ bulwark operator unseal -migrate",
      "",
    ];
  }
  if (status.recoverySeal) {
    return [
      `The store is sealed and the ${status.type} seal cannot unseal it.`,
      ...(status.sealedReason === undefined ? [] : [`Why it is sealed: ${status.sealedReason}`]),
      "Fix the seal (its key, credentials or configuration) and restart the server.",
      "",
    ];
  }
  return [
    `The store is sealed. Unseal it with ${status.t} of its ${status.n} keys:`,
    "",
    `    $ export BULWARK_ADDR='${addr}'`,
    "    $ bulwark operator unseal",
    "",
    ...(status.sealedReason === undefined ? [] : [`Why it is sealed: ${status.sealedReason}`, ""]),
  ];
}

function seconds(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000} s` : `${(ms / 1000).toFixed(1)} s`;
}

/** How long an orderly shutdown may take before the process exits anyway. */
export const DEFAULT_SHUTDOWN_DEADLINE_MS = 10_000;

export interface RunOptions {
  /**
   * How long the orderly shutdown (drain, seal, close the storage) may take; past it the process
   * exits with 1 anyway. Default {@link DEFAULT_SHUTDOWN_DEADLINE_MS}.
   */
  deadlineMs?: number;
  /** Exits the process (tests replace it). Default `process.exit`. */
  exit?: (code: number) => void;
  /**
   * A signal that arrived while the server was starting (see {@link holdSignalsWhileStarting}):
   * handled at once, as if it had arrived now (SIGINT/SIGTERM: the shutdown; SIGHUP: a reload).
   */
  pendingSignal?: NodeJS.Signals;
}

/**
 * Catches SIGINT/SIGTERM (and SIGHUP) from the moment the server starts until
 * {@link runUntilSignal} takes over, and returns the release, which gives the first SIGINT/SIGTERM
 * caught, else "SIGHUP" when only a SIGHUP was, else undefined. Without it a signal that lands
 * between the listener accepting connections and runUntilSignal's handlers killed the process
 * uncleanly (Node's default action, SIGHUP's too), data set unsealed and storage open. A second
 * SIGINT/SIGTERM while starting still exits at once with 1; a SIGHUP is only remembered (the
 * reload runs once the server is up: the config it reads may be the one a logrotate just changed).
 */
export function holdSignalsWhileStarting(
  exit: (code: number) => void = (code) => process.exit(code),
): () => NodeJS.Signals | undefined {
  let caught: NodeJS.Signals | undefined;
  let hup = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (caught !== undefined) exit(1);
    else caught = signal;
  };
  const onHup = () => {
    hup = true;
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  process.on("SIGHUP", onHup);
  return () => {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
    process.off("SIGHUP", onHup);
    return caught ?? (hup ? "SIGHUP" : undefined);
  };
}

/**
 * Runs until SIGINT/SIGTERM, then shuts down in order and resolves with the exit code (0 for a
 * clean stop). A second signal while stopping exits at once with 1, and so does a shutdown that
 * has not finished within the deadline (a hung HSM, KMS or storage must not keep the process).
 * SIGHUP reloads (see {@link BulwarkServer.reload}) and never stops the server; one while
 * stopping is ignored.
 */
export async function runUntilSignal(server: BulwarkServer, opts: RunOptions = {}): Promise<number> {
  const deadlineMs = opts.deadlineMs ?? DEFAULT_SHUTDOWN_DEADLINE_MS;
  const exit = opts.exit ?? ((code: number) => process.exit(code));
  return new Promise<number>((resolve) => {
    let stopping = false;
    let deadline: NodeJS.Timeout | undefined;
    const onSignal = (signal: NodeJS.Signals) => {
      if (stopping) {
        server.logger.error({ signal }, "second signal while stopping: exiting now");
        server.logger.flush();
        exit(1);
        return;
      }
      stopping = true;
      deadline = setTimeout(() => {
        server.logger.error(
          { deadlineMs },
          `shutdown did not finish within ${deadlineMs / 1000} s: exiting now (storage or seal may not have closed cleanly)`,
        );
        server.logger.flush();
        exit(1);
      }, deadlineMs);
      server.shutdown(`received ${signal}`).then(
        () => done(0),
        (err: unknown) => {
          server.logger.error({ err }, "shutdown failed");
          done(1);
        },
      );
    };
    // The handlers go before the caller sees the code: nothing of this server is left listening.
    const done = (code: number) => {
      clearTimeout(deadline);
      process.off("SIGINT", onSignal);
      process.off("SIGTERM", onSignal);
      process.off("SIGHUP", onHup);
      resolve(code);
    };
    const onHup = () => {
      if (stopping) return;
      server.logger.info("received SIGHUP: reloading");
      // reload() logs what it did and never rejects; the catch only guards a broken embedder's.
      server.reload().catch((err: unknown) => server.logger.error({ err }, "reload failed"));
    };
    process.on("SIGINT", onSignal);
    process.on("SIGTERM", onSignal);
    process.on("SIGHUP", onHup);
    if (opts.pendingSignal === "SIGHUP") onHup();
    else if (opts.pendingSignal !== undefined) onSignal(opts.pendingSignal);
  });
}

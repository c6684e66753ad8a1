/**
 * The composition root's provider registry: `storage "<type>"` and `seal "<type>"` blocks →
 * `Backend` and `Seal` instances. The registry is a table of provider modules (`StorageProvider`
 * from `@bulwark/storage`, `SealProvider` from `@bulwark/seal`): the built-in ones
 * ({@link ProviderRegistry.withBuiltins}, listed in builtins.ts) and, for a block with
 * `plugin = "<package or path>"`, the plugin's. Every module is built the same way: its `create`
 * gets the block's settings, the environment and a context (a settings reader that names the
 * setting and its file position, the logger), and its result is checked against the interface.
 */
import type { Logger as CoreLogger } from "@bulwark/core";
import { assertSeal, type Seal, type SealProvider } from "@bulwark/seal";
import type { ProviderContext as ModuleContext, ProviderIssue } from "@bulwark/settings";
import {
  assertBackend,
  type Backend,
  type HABackend,
  isHABackend,
  type StorageProvider,
} from "@bulwark/storage";
import type { ConfigProblem } from "../config/errors.js";
import type { Env } from "../config/load.js";
import { blockName, blockSource, closest, describeBlock, parseBoolean, sourceOf } from "../config/source.js";
import type { ProviderBlock, SealBlock, ServerConfig } from "../contracts.js";
import { BUILTIN_SEALS, BUILTIN_STORAGE } from "./builtins.js";
import { ProviderError } from "./errors.js";
import { BlockOptions } from "./options.js";
import { loadPluginProvider } from "./plugin.js";
import { type LazyProvider, ProviderTable, type TableModule } from "./provider-table.js";

export {
  type PluginFactory,
  PROVIDER_EXPORTS,
  SEAL_PLUGIN_EXPORTS,
  STORAGE_PLUGIN_EXPORTS,
} from "./plugin.js";
export type { LazyProvider } from "./provider-table.js";

export interface ProviderContext {
  env: Env;
  logger: CoreLogger;
  /** Where bare `plugin` package names are looked up, in order (the config file's directory first). */
  pluginBaseDirs: readonly string[];
}

type Kind = "storage" | "seal";

const silent: CoreLogger = { debug() {}, info() {}, warn() {}, error() {} };

function withoutPlugin(options: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(options)) {
    if (k !== "plugin")
      Object.defineProperty(out, k, { value: v, enumerable: true, writable: true, configurable: true });
  }
  return out;
}

function errorField(err: unknown): string | undefined {
  const f = (err as { field?: unknown } | null)?.field;
  return typeof f === "string" ? f : undefined;
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Puts the block and the setting's file position in front of a provider's own error. */
function wrapProviderError(kind: Kind, block: ProviderBlock, err: unknown): ProviderError {
  if (err instanceof ProviderError) return err;
  const field = errorField(err);
  const where = describeBlock(kind, block, field);
  if (field !== undefined || (err as { code?: unknown })?.code === "invalid_config") {
    return new ProviderError("invalid_options", `${where}: ${message(err)}`, {
      cause: err,
      ...(field !== undefined ? { field } : {}),
    });
  }
  return new ProviderError("provider_failed", `${where}: ${message(err)}`, { cause: err });
}

/** The context a module gets for one block: warnings carry the block's name and position. */
function moduleContext(kind: Kind, block: ProviderBlock, logger: CoreLogger, settings: BlockOptions) {
  const context: ModuleContext = {
    logger,
    warn: (msg, field) => logger.warn(`${describeBlock(kind, block, field)}: ${msg}`),
    settings,
  };
  return context;
}

/** A module to build a block with, and, for a plugin, what to name in errors about it. */
interface Resolved {
  module: TableModule;
  plugin?: { spec: string; made: string };
}

function required<T>(provider: T | undefined): T {
  if (provider === undefined) throw new TypeError("register(type, provider): the provider is missing");
  return provider;
}

export class ProviderRegistry {
  readonly #storage = new ProviderTable<StorageProvider>();
  readonly #seals = new ProviderTable<SealProvider>();

  /** A registry with every built-in storage backend and seal. */
  static withBuiltins(): ProviderRegistry {
    const r = new ProviderRegistry();
    for (const p of BUILTIN_STORAGE) r.registerStorage(p);
    for (const p of BUILTIN_SEALS) r.registerSeal(p);
    return r;
  }

  /**
   * Adds a storage module (or a lazily loaded one) under its type and aliases. With a `type`
   * first, the module is registered under that name (its own `type` may then be left out).
   */
  registerStorage(provider: StorageProvider | LazyProvider<StorageProvider>): this;
  registerStorage(type: string, provider: Omit<StorageProvider, "type"> & { type?: string }): this;
  registerStorage(
    a: string | StorageProvider | LazyProvider<StorageProvider>,
    b?: Omit<StorageProvider, "type"> & { type?: string },
  ): this {
    this.#storage.register(typeof a === "string" ? { ...required(b), type: a } : a);
    return this;
  }

  /** Adds a seal module (or a lazily loaded one); see {@link registerStorage}. */
  registerSeal(provider: SealProvider | LazyProvider<SealProvider>): this;
  registerSeal(type: string, provider: Omit<SealProvider, "type"> & { type?: string }): this;
  registerSeal(
    a: string | SealProvider | LazyProvider<SealProvider>,
    b?: Omit<SealProvider, "type"> & { type?: string },
  ): this {
    this.#seals.register(typeof a === "string" ? { ...required(b), type: a } : a);
    return this;
  }

  /** Every storage block type with a module, in registration order. */
  storageTypes(): string[] {
    return this.#storage.types();
  }

  sealTypes(): string[] {
    return this.#seals.types();
  }

  /** The module a non-plugin block of `kind` is built with (a module that claims it first), or undefined. */
  resolve(kind: Kind, block: ProviderBlock, env: Env): Promise<TableModule | undefined> {
    const table: ProviderTable<TableModule> = kind === "storage" ? this.#storage : this.#seals;
    return table.resolve(block.type, withoutPlugin(block.options), env);
  }

  /** Builds the backend of a `storage` block (built-in or plugin) and decides whether its HA lock is used. */
  async createStorage(
    block: ProviderBlock,
    ctx: ProviderContext,
  ): Promise<{ backend: Backend; ha?: HABackend }> {
    const resolved = await this.#moduleFor("storage", block, ctx);
    const backend = await build("storage", block, ctx, resolved, assertBackend);
    // Vault's `ha_enabled` in the storage block turns the backend's HA lock on or off.
    const haSetting = Object.hasOwn(block.options, "ha_enabled")
      ? parseBoolean(block.options.ha_enabled)
      : undefined;
    const wantHa = haSetting ?? resolved.module.haByDefault ?? isHABackend(backend);
    if (wantHa && isHABackend(backend)) return { backend, ha: backend };
    if (haSetting === true) {
      ctx.logger.warn(
        `${describeBlock("storage", block, "ha_enabled")}: this backend has no HA lock; running as a single node`,
      );
    }
    return { backend };
  }

  /** Builds the seal of a `seal` block (built-in or plugin). Its `init()` is left to the store. */
  async createSeal(block: SealBlock, ctx: ProviderContext): Promise<Seal> {
    const resolved = await this.#moduleFor("seal", block, ctx);
    const seal = await build("seal", block, ctx, resolved, assertSeal);
    if (resolved.plugin !== undefined && seal.type !== block.type) {
      ctx.logger.info(
        `${describeBlock("seal", block)}: the plugin's seal reports type "${seal.type}"; seal-status shows that name`,
      );
    }
    return seal;
  }

  /** The block's module: its plugin's, or the table's (an unknown type says how to use a plugin). */
  async #moduleFor(kind: Kind, block: ProviderBlock, ctx: ProviderContext): Promise<Resolved> {
    const spec = pluginOf(kind, block);
    if (spec !== undefined) {
      const { module, made } = await loadPluginProvider(kind, block, spec, ctx.pluginBaseDirs);
      return { module, plugin: { spec, made } };
    }
    let module: TableModule | undefined;
    try {
      module = await this.resolve(kind, block, ctx.env);
    } catch (err) {
      // The provider's package failed to load (a native addon not built, say).
      throw wrapProviderError(kind, block, err);
    }
    if (module === undefined) {
      const known = kind === "storage" ? this.storageTypes() : this.sealTypes();
      throw unknownType(kind, block, known);
    }
    return { module };
  }
}

/**
 * Builds one block with its module — a built-in's and a plugin's alike: `create` with the block's
 * settings, the environment and the block's context; provider errors get the block's name and the
 * setting's position; the result is checked against the interface (`check`).
 */
async function build<T>(
  kind: Kind,
  block: ProviderBlock,
  ctx: ProviderContext,
  { module, plugin }: Resolved,
  check: (obj: unknown, name: string) => asserts obj is T,
): Promise<T> {
  const settings = new BlockOptions(kind, block);
  const context = moduleContext(kind, block, ctx.logger, settings);
  let made: unknown;
  try {
    made = await module.create(withoutPlugin(block.options), ctx.env, context);
  } catch (err) {
    throw wrapProviderError(kind, block, err);
  } finally {
    for (const w of settings.warnings) ctx.logger.warn(w);
  }
  try {
    check(
      made,
      plugin === undefined
        ? `the ${kind} "${block.type}" module's create()`
        : `the object from plugin "${plugin.spec}" ${plugin.made}`,
    );
  } catch (err) {
    // A built-in module returning the wrong shape is a bug of ours, not the operator's.
    if (plugin === undefined)
      throw new ProviderError("provider_failed", `${describeBlock(kind, block)}: ${message(err)}`, {
        cause: err,
      });
    const iface =
      kind === "seal"
        ? "Seal (@bulwark/seal); extend BaseSeal to get the checks for free"
        : "Backend (@bulwark/storage)";
    throw new ProviderError(
      "plugin_invalid",
      `${describeBlock(kind, block, "plugin")}: ${message(err)} — the factory must return a ${iface}`,
      { cause: err, field: "plugin" },
    );
  }
  return made;
}

const PLUGIN_HINT = (kind: Kind) =>
  `\`plugin\` must name an npm package or a file, e.g. plugin = "@acme/bulwark-${kind}"`;

function pluginOf(kind: Kind, block: ProviderBlock): string | undefined {
  if (!Object.hasOwn(block.options, "plugin")) return undefined;
  const p = block.options.plugin;
  if (typeof p !== "string" || p.trim() === "") {
    throw new ProviderError(
      "invalid_options",
      `${describeBlock(kind, block, "plugin")}: ${PLUGIN_HINT(kind)}`,
      {
        field: "plugin",
      },
    );
  }
  return p.trim();
}

/** "… is not a built-in type (the known ones)", with "did you mean" when one is close, and the plugin hint. */
function unknownTypeText(kind: Kind, type: string, known: readonly string[], near?: string): string {
  return (
    `"${type}" is not a built-in ${kind} type (${known.join(", ")})` +
    (near !== undefined ? ` — did you mean ${kind} "${near}"?` : "") +
    `; for a third-party ${kind}, add plugin = "<npm package or path>" to the block`
  );
}

function unknownType(kind: Kind, block: ProviderBlock, known: string[]): ProviderError {
  return new ProviderError(
    "unknown_type",
    `${describeBlock(kind, block)}: ${unknownTypeText(kind, block.type, known)}`,
  );
}

// --------------------------------------------------------------------------- checking a config

/**
 * Every problem of one `storage`/`seal` block, as config problems: each at the setting's file
 * position (the block's when the setting is not written), naming the block and the setting. An
 * unknown setting close to a known one gets "did you mean"; then the problem the typo causes
 * (the known setting missing) is not reported a second time.
 */
export async function checkProviderBlock(
  kind: Kind,
  block: ProviderBlock,
  opts: { registry?: ProviderRegistry; env?: Env } = {},
): Promise<ConfigProblem[]> {
  const registry = opts.registry ?? ProviderRegistry.withBuiltins();
  const env = opts.env ?? process.env;
  const name = blockName(kind, block);
  const problem = (field: string | undefined, message: string): ConfigProblem => {
    const p: ConfigProblem = { block: name, message: `${name}: ${message}` };
    if (field !== undefined) p.setting = field;
    const pos = sourceOf(block, field);
    if (pos !== undefined) Object.assign(p, pos);
    return p;
  };

  if (Object.hasOwn(block.options, "plugin")) {
    // A plugin checks its own settings when its factory runs; here only `plugin` itself.
    const p = block.options.plugin;
    if (typeof p === "string" && p.trim() !== "") return [];
    return [problem("plugin", PLUGIN_HINT(kind))];
  }
  let module: TableModule | undefined;
  let issues: ProviderIssue[];
  try {
    module = await registry.resolve(kind, block, env);
    if (module === undefined) {
      const known = kind === "storage" ? registry.storageTypes() : registry.sealTypes();
      return [problem(undefined, unknownTypeText(kind, block.type, known, closest(block.type, known)))];
    }
    if (module.check === undefined) return [];
    // The reader records the problems of the settings the module reads; `check` returns the rest.
    const reader = BlockOptions.collecting(kind, block);
    const own = await module.check(
      withoutPlugin(block.options),
      env,
      moduleContext(kind, block, silent, reader),
    );
    issues = [...reader.issues, ...own];
  } catch (err) {
    // A check that cannot run (its package failed to load) is itself the problem to report.
    return [problem(undefined, `cannot check the settings: ${message(err)}`)];
  }
  const settings = module.settings;
  if (settings === undefined) return issues.map((i) => problem(i.field, i.message));

  const accepted = new Set(settings);
  const typos = new Map<string, string>(); // suggested setting → the unknown key written
  const out: ConfigProblem[] = [];
  for (const issue of issues) {
    const f = issue.field;
    if (f !== undefined && Object.hasOwn(block.options, f) && !accepted.has(f)) {
      const near = closest(f, settings);
      if (near !== undefined) {
        if (!Object.hasOwn(block.options, near)) typos.set(near, f);
        out.push(problem(f, `unknown setting \`${f}\` — did you mean \`${near}\`?`));
        continue;
      }
    }
    out.push(problem(f, issue.message));
  }
  // `pth` for `path`: "path must be set" is the typo's doing, already said by "did you mean".
  return out.filter((p) => p.setting === undefined || !typos.has(p.setting));
}

/**
 * Every problem of a config's `storage` and `seal` blocks (see {@link checkProviderBlock}), in
 * block order, without building anything.
 */
export async function checkProviderBlocks(
  config: { storage?: ProviderBlock | undefined; seals: readonly SealBlock[] },
  opts: { registry?: ProviderRegistry; env?: Env } = {},
): Promise<ConfigProblem[]> {
  const registry = opts.registry ?? ProviderRegistry.withBuiltins();
  const problems: ConfigProblem[] = [];
  if (config.storage !== undefined)
    problems.push(...(await checkProviderBlock("storage", config.storage, { ...opts, registry })));
  for (const seal of config.seals)
    problems.push(...(await checkProviderBlock("seal", seal, { ...opts, registry })));
  return problems;
}

// --------------------------------------------------------------------------- a whole config

export interface CreateProvidersOptions {
  registry?: ProviderRegistry;
  env?: Env;
  logger?: CoreLogger;
  /** Where bare plugin names are resolved (default: the config files' directories, then the working directory). */
  pluginBaseDirs?: readonly string[];
}

/** What `SealedStore.open()` needs from a config, plus a way to release it if opening fails. */
export interface Providers {
  storage: Backend;
  /** The enabled seal; absent = Shamir (the store's default). */
  seal?: Seal;
  /** The `disabled = true` seal: the data's current seal while migrating away from it. */
  migrationSeal?: Seal;
  /** The storage's HA lock when it has one and HA is on. */
  ha?: HABackend;
  /** The storage block's type, reported as `storage_type`. */
  storageType: string;
  /** Finalizes the seals and closes the storage (for failures before the store owns them). */
  release(): Promise<void>;
}

async function closeQuietly(backend: Backend): Promise<void> {
  try {
    await backend.close?.();
  } catch {
    // Best effort while reporting the original failure.
  }
}

function defaultBaseDirs(config: ServerConfig): string[] {
  const dirs: string[] = [];
  for (const block of [config.storage, ...config.seals]) {
    const src = blockSource(block);
    if (src !== undefined) {
      const dir = src.filename.replace(/[\\/][^\\/]*$/, "");
      if (dir !== src.filename && !dirs.includes(dir)) dirs.push(dir);
    }
  }
  if (!dirs.includes(process.cwd())) dirs.push(process.cwd());
  return dirs;
}

/**
 * Builds storage, seal, migration seal and HA lock for a validated config. On failure, whatever
 * was already built is released and the {@link ProviderError} names the block and the fix.
 */
export async function createProviders(
  config: ServerConfig,
  opts: CreateProvidersOptions = {},
): Promise<Providers> {
  const registry = opts.registry ?? ProviderRegistry.withBuiltins();
  const ctx: ProviderContext = {
    env: opts.env ?? process.env,
    logger: opts.logger ?? silent,
    pluginBaseDirs: opts.pluginBaseDirs ?? defaultBaseDirs(config),
  };
  const { backend, ha } = await registry.createStorage(config.storage, ctx);
  const built: Seal[] = [];
  try {
    const enabled = config.seals.find((s) => !s.disabled);
    const disabled = config.seals.find((s) => s.disabled);
    const seal = enabled === undefined ? undefined : await registry.createSeal(enabled, ctx);
    if (seal !== undefined) built.push(seal);
    const migrationSeal = disabled === undefined ? undefined : await registry.createSeal(disabled, ctx);
    const providers: Providers = {
      storage: backend,
      storageType: config.storage.type,
      async release() {
        if (seal !== undefined) await finalizeQuietly(seal);
        if (migrationSeal !== undefined) await finalizeQuietly(migrationSeal);
        await closeQuietly(backend);
      },
    };
    if (seal !== undefined) providers.seal = seal;
    if (migrationSeal !== undefined) providers.migrationSeal = migrationSeal;
    if (ha !== undefined) providers.ha = ha;
    return providers;
  } catch (err) {
    for (const s of built) await finalizeQuietly(s);
    await closeQuietly(backend);
    throw err;
  }
}

async function finalizeQuietly(seal: Seal): Promise<void> {
  try {
    await seal.finalize();
  } catch {
    // Best effort: a seal that never initialised may refuse to finalize.
  }
}

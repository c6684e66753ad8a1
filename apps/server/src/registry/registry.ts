/**
 * The composition root's provider registry: `storage "<type>"` and `seal "<type>"` blocks →
 * `Backend` and `Seal` instances. Built-ins are registered by {@link ProviderRegistry.withBuiltins};
 * any block with `plugin = "<package or path>"` is served by that module's factory, checked
 * against the interface when it is loaded.
 *
 * Provider packages with heavy or native dependencies (PKCS#11's native addon, the AWS SDK,
 * Consul's HTTP client) are imported only when a block needs them, so a server with file storage
 * and Shamir starts without loading them.
 */
import type { Logger as CoreLogger } from "@bulwark/core";
import { type Seal, SealConfigError, ShamirSeal, StaticKeySeal } from "@bulwark/seal";
import { assertBackend, type Backend, type HABackend, isHABackend } from "@bulwark/storage";
import { FileBackend } from "@bulwark/storage-file";
import { MemoryBackend } from "@bulwark/storage-memory";
import type { ConfigProblem } from "../config/errors.js";
import type { Env } from "../config/load.js";
import { blockName, blockSource, closest, describeBlock, parseBoolean, sourceOf } from "../config/source.js";
import type { ProviderBlock, SealBlock, ServerConfig } from "../contracts.js";
import { assertSeal } from "./assert-seal.js";
import { ProviderError } from "./errors.js";
import { type BlockIssue, BlockOptions } from "./options.js";
import { findFactory, importPlugin, isPathSpecifier } from "./plugin.js";

export interface ProviderContext {
  env: Env;
  logger: CoreLogger;
  /** Where bare `plugin` package names are looked up, in order (the config file's directory first). */
  pluginBaseDirs: readonly string[];
}

/** What a config check may look at: the environment (settings fall back to variables). */
export interface CheckContext {
  env: Env;
}

/**
 * How a type checks its block before anything is built (the config check): every setting it
 * accepts, for "did you mean", and `check`, which returns every problem of the block — without
 * connecting to anything or creating files. Types without `check` are checked when built.
 */
export interface BlockChecks {
  /** Every key the block accepts (the spellings to suggest first). */
  settings?: readonly string[];
  check?(block: ProviderBlock, ctx: CheckContext): BlockIssue[] | Promise<BlockIssue[]>;
}

export interface StorageDefinition extends BlockChecks {
  /** One line for help output. */
  description: string;
  /** Whether the backend's HA lock is used when the block does not say `ha_enabled`. */
  haByDefault: boolean;
  create(block: ProviderBlock, ctx: ProviderContext): Backend | Promise<Backend>;
}

export interface SealDefinition extends BlockChecks {
  description: string;
  create(block: SealBlock, ctx: ProviderContext): Seal | Promise<Seal>;
}

/** The factory shape a plugin exports: Vault-style settings (strings, numbers, bools) and the environment. */
export type PluginFactory<T> = (config: Record<string, unknown>, env: Env) => T | Promise<T>;

/** Export names a plugin's factory is looked up by. */
export const SEAL_PLUGIN_EXPORTS = ["createSeal"] as const;
export const STORAGE_PLUGIN_EXPORTS = ["createBackend", "createStorage"] as const;

/** Vault storage-block settings that are about the cluster, not the storage itself. */
const VAULT_CLUSTER_KEYS = ["redirect_addr", "cluster_addr", "disable_clustering"] as const;

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
function wrapProviderError(kind: "storage" | "seal", block: ProviderBlock, err: unknown): ProviderError {
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

export class ProviderRegistry {
  readonly #storage = new Map<string, StorageDefinition>();
  readonly #seals = new Map<string, SealDefinition>();

  /** A registry with every built-in storage backend and seal. */
  static withBuiltins(): ProviderRegistry {
    const r = new ProviderRegistry();
    registerBuiltins(r);
    return r;
  }

  registerStorage(type: string, def: StorageDefinition): this {
    this.#storage.set(type, def);
    return this;
  }

  registerSeal(type: string, def: SealDefinition): this {
    this.#seals.set(type, def);
    return this;
  }

  storageTypes(): ReadonlyMap<string, StorageDefinition> {
    return this.#storage;
  }

  sealTypes(): ReadonlyMap<string, SealDefinition> {
    return this.#seals;
  }

  /** Builds the backend of a `storage` block (built-in or plugin) and decides whether its HA lock is used. */
  async createStorage(
    block: ProviderBlock,
    ctx: ProviderContext,
  ): Promise<{ backend: Backend; ha?: HABackend }> {
    const plugin = pluginOf("storage", block);
    let backend: Backend;
    let haByDefault: boolean;
    if (plugin !== undefined) {
      backend = await this.#fromPlugin<Backend>(
        "storage",
        block,
        plugin,
        ctx,
        STORAGE_PLUGIN_EXPORTS,
        (obj, name) => assertBackend(obj, name),
      );
      haByDefault = isHABackend(backend);
    } else {
      const def = this.#storage.get(block.type);
      if (def === undefined) throw unknownType("storage", block, [...this.#storage.keys()]);
      try {
        backend = await def.create(block, ctx);
      } catch (err) {
        throw wrapProviderError("storage", block, err);
      }
      haByDefault = def.haByDefault;
    }
    // Vault's `ha_enabled` in the storage block turns the backend's HA lock on or off.
    const haSetting = Object.hasOwn(block.options, "ha_enabled")
      ? parseBoolean(block.options.ha_enabled)
      : undefined;
    const wantHa = haSetting ?? haByDefault;
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
    const plugin = pluginOf("seal", block);
    if (plugin !== undefined) {
      const seal = await this.#fromPlugin<Seal>(
        "seal",
        block,
        plugin,
        ctx,
        SEAL_PLUGIN_EXPORTS,
        (obj, name) => assertSeal(obj, name),
      );
      if (seal.type !== block.type) {
        ctx.logger.info(
          `${describeBlock("seal", block)}: the plugin's seal reports type "${seal.type}"; seal-status shows that name`,
        );
      }
      return seal;
    }
    const def = this.#seals.get(block.type);
    if (def === undefined) throw unknownType("seal", block, [...this.#seals.keys()]);
    try {
      return await def.create(block, ctx);
    } catch (err) {
      throw wrapProviderError("seal", block, err);
    }
  }

  async #fromPlugin<T>(
    kind: "storage" | "seal",
    block: ProviderBlock,
    spec: string,
    ctx: ProviderContext,
    exportNames: readonly string[],
    check: (obj: unknown, name: string) => asserts obj is T,
  ): Promise<T> {
    const where = describeBlock(kind, block, "plugin");
    const iface = kind === "seal" ? "Seal (@bulwark/seal)" : "Backend (@bulwark/storage)";
    let mod: Record<string, unknown>;
    try {
      mod = await importPlugin(spec, ctx.pluginBaseDirs);
    } catch (err) {
      const code = (err as { code?: unknown })?.code;
      if (
        code === "ERR_MODULE_NOT_FOUND" ||
        code === "ERR_PACKAGE_PATH_NOT_EXPORTED" ||
        code === "MODULE_NOT_FOUND"
      ) {
        const fix = isPathSpecifier(spec)
          ? "check the path (relative paths start from the config file's directory)"
          : `install it where the config is (npm install ${spec}) or give a file path, e.g. plugin = "./plugins/${kind}.mjs"`;
        throw new ProviderError("plugin_not_found", `${where}: cannot find plugin "${spec}": ${fix}`, {
          cause: err,
          field: "plugin",
        });
      }
      throw new ProviderError(
        "plugin_invalid",
        `${where}: plugin "${spec}" failed to load: ${message(err)}`,
        {
          cause: err,
          field: "plugin",
        },
      );
    }
    const factory = findFactory(mod, exportNames);
    if (factory === undefined) {
      const found = Object.keys(mod).filter((k) => k !== "__esModule");
      throw new ProviderError(
        "plugin_invalid",
        `${where}: plugin "${spec}" exports no ${kind} factory: export function ${exportNames[0]}(config, env) returning a ${iface}` +
          ` (found exports: ${found.length > 0 ? found.join(", ") : "none"})`,
        { field: "plugin" },
      );
    }
    let made: unknown;
    try {
      made = await (factory as PluginFactory<unknown>)(withoutPlugin(block.options), ctx.env);
    } catch (err) {
      throw wrapProviderError(kind, block, err);
    }
    try {
      check(made, `the object from plugin "${spec}" ${exportNames[0]}()`);
    } catch (err) {
      throw new ProviderError(
        "plugin_invalid",
        `${where}: ${message(err)} — the factory must return a ${iface}${kind === "seal" ? "; extend BaseSeal to get the checks for free" : ""}`,
        { cause: err, field: "plugin" },
      );
    }
    return made;
  }
}

const PLUGIN_HINT = (kind: "storage" | "seal") =>
  `\`plugin\` must name an npm package or a file, e.g. plugin = "@acme/bulwark-${kind}"`;

function pluginOf(kind: "storage" | "seal", block: ProviderBlock): string | undefined {
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

function unknownType(kind: "storage" | "seal", block: ProviderBlock, known: string[]): ProviderError {
  return new ProviderError(
    "unknown_type",
    `${describeBlock(kind, block)}: "${block.type}" is not a built-in ${kind} type (${known.join(", ")}); ` +
      `for a third-party ${kind}, add plugin = "<npm package or path>" to the block`,
  );
}

// --------------------------------------------------------------------------- built-ins

const loudStaticWarning = (block: ProviderBlock) =>
  `${describeBlock("seal", block)}: THE STATIC SEAL IS FOR DEVELOPMENT AND TESTS ONLY. Its key sits in the config or ` +
  "the environment of this process, next to the data it protects: it adds no protection against anyone who can read " +
  "this server. Use pkcs11 or awskms in production.";

/** A package's own check result (setting + message) as issues of its block. */
function packageIssues(issues: ReadonlyArray<{ field: string; message: string }>): BlockIssue[] {
  return issues.map((i) => ({ field: i.field, message: `\`${i.field}\`: ${i.message}` }));
}

/** The file backend's settings; shared by building and checking so both read the same. */
function readFileSettings(o: BlockOptions): { path: string; fsync: boolean | undefined } {
  const path = o.string("path", true, 'the directory that holds the data, e.g. path = "./data"');
  if (typeof path === "string" && path.includes("\0")) o.problem("path", "must not contain NUL bytes");
  const fsync = o.boolean("fsync");
  o.boolean("ha_enabled");
  o.ignore(VAULT_CLUSTER_KEYS, "there is no cluster port");
  o.finish();
  return { path, fsync };
}

function readMemorySettings(o: BlockOptions): { maxValueSize: number | undefined } {
  const maxValueSize = o.integer("max_value_size", 1);
  o.boolean("ha_enabled");
  o.ignore(VAULT_CLUSTER_KEYS, "there is no cluster port");
  o.finish();
  return { maxValueSize };
}

function registerBuiltins(r: ProviderRegistry): void {
  r.registerStorage("file", {
    description: "files in a directory, Vault's layout (path)",
    haByDefault: false,
    settings: ["path", "fsync", "ha_enabled", ...VAULT_CLUSTER_KEYS],
    check(block) {
      const o = BlockOptions.collecting("storage", block);
      readFileSettings(o);
      return o.issues;
    },
    create(block, ctx) {
      const o = new BlockOptions("storage", block);
      const { path, fsync } = readFileSettings(o);
      for (const w of o.warnings) ctx.logger.warn(w);
      return new FileBackend(fsync === undefined ? { path } : { path, fsync });
    },
  });

  const memory: StorageDefinition = {
    description: "process memory, lost on exit (max_value_size; ha_enabled)",
    // Vault's `inmem` is not HA; `ha_enabled = true` turns on the in-process lock (tests).
    haByDefault: false,
    settings: ["max_value_size", "ha_enabled", ...VAULT_CLUSTER_KEYS],
    check(block) {
      const o = BlockOptions.collecting("storage", block);
      readMemorySettings(o);
      return o.issues;
    },
    create(block, ctx) {
      const o = new BlockOptions("storage", block);
      const { maxValueSize } = readMemorySettings(o);
      for (const w of o.warnings) ctx.logger.warn(w);
      return new MemoryBackend(maxValueSize === undefined ? {} : { maxValueSize });
    },
  };
  r.registerStorage("inmem", memory);
  r.registerStorage("memory", memory);

  r.registerStorage("consul", {
    description: "Consul KV with session-lock HA (Vault's consul settings)",
    haByDefault: true,
    async check(block, ctx) {
      const { checkConsulConfig } = await import("@bulwark/storage-consul");
      return packageIssues(checkConsulConfig(block.options, ctx.env));
    },
    async create(block, ctx) {
      const { ConsulBackend, parseConsulConfig } = await import("@bulwark/storage-consul");
      const parsed = parseConsulConfig(block.options, ctx.env);
      for (const key of parsed.ignored) {
        if (key === "ha_enabled") continue;
        ctx.logger.warn(
          `${describeBlock("storage", block, key)}: \`${key}\` has no effect in Bulwark (ignored)`,
        );
      }
      return new ConsulBackend(parsed.options);
    },
  });

  r.registerSeal("shamir", {
    description: "key shares (the default without a seal block)",
    settings: [],
    check(block) {
      const o = BlockOptions.collecting("seal", block);
      o.finish();
      return o.issues;
    },
    create(block) {
      new BlockOptions("seal", block).finish();
      return new ShamirSeal();
    },
  });

  r.registerSeal("pkcs11", {
    description:
      "PKCS#11 HSM auto-unseal (Vault's pkcs11 settings; VAULT_HSM_* / BULWARK_HSM_*); a CloudHSM library selects the CloudHSM profile",
    async check(block, ctx) {
      // The same choice as create(): a CloudHSM library means the CloudHSM profile's settings.
      if (isCloudHsmLibrary(block.options.lib ?? ctx.env.BULWARK_HSM_LIB ?? ctx.env.VAULT_HSM_LIB)) {
        const { checkCloudHsmConfig } = await import("@bulwark/seal-cloudhsm");
        return packageIssues(checkCloudHsmConfig(block.options, ctx.env));
      }
      const { checkPkcs11Config } = await import("@bulwark/seal-pkcs11");
      return packageIssues(checkPkcs11Config(block.options, ctx.env));
    },
    async create(block, ctx) {
      // Vault configures CloudHSM as a pkcs11 seal with CloudHSM's library: such a block gets the
      // CloudHSM profile (HSM-generated IVs, user:password PIN), and the stored seal type stays "pkcs11".
      if (isCloudHsmLibrary(block.options.lib ?? ctx.env.BULWARK_HSM_LIB ?? ctx.env.VAULT_HSM_LIB)) {
        const { createCloudHsmSeal } = await import("@bulwark/seal-cloudhsm");
        return createCloudHsmSeal({ ...block.options, logger: ctx.logger }, ctx.env);
      }
      const { createPkcs11Seal } = await import("@bulwark/seal-pkcs11");
      return createPkcs11Seal(block.options, ctx.env);
    },
  });

  r.registerSeal("cloudhsm", {
    description:
      "AWS CloudHSM (SDK 5) auto-unseal: Vault's pkcs11 settings plus cluster_id, region, user, password",
    async check(block, ctx) {
      const { checkCloudHsmConfig } = await import("@bulwark/seal-cloudhsm");
      return packageIssues(checkCloudHsmConfig(block.options, ctx.env));
    },
    async create(block, ctx) {
      const { createCloudHsmSeal } = await import("@bulwark/seal-cloudhsm");
      return createCloudHsmSeal({ ...block.options, logger: ctx.logger }, ctx.env);
    },
  });

  r.registerSeal("awskms", {
    description: "AWS KMS auto-unseal (Vault's awskms settings; AWSKMS_* / VAULT_AWSKMS_*)",
    async check(block, ctx) {
      const { checkAwsKmsSealConfig } = await import("@bulwark/seal-awskms");
      return packageIssues(checkAwsKmsSealConfig(block.options, ctx.env));
    },
    async create(block, ctx) {
      const { createAwsKmsSeal } = await import("@bulwark/seal-awskms");
      return createAwsKmsSeal(block.options, ctx.env);
    },
  });

  r.registerSeal("static", {
    description: "a fixed AES key from the config or BULWARK_STATIC_SEAL_KEY — development and tests only",
    settings: ["key", "key_id"],
    async check(block) {
      const o = BlockOptions.collecting("seal", block);
      const key = o.string("key");
      const keyId = o.string("key_id");
      o.finish();
      if (o.issues.some((i) => i.field === "key" || i.field === "key_id")) return o.issues;
      // Neither: the key comes from the environment, which the seal reads when it is built.
      if (key === undefined && keyId !== undefined)
        o.problem("key", "must be set with key_id (64 hex characters; `openssl rand -hex 32`)");
      else if (keyId === undefined && key !== undefined)
        o.problem("key_id", "must be set with key: a name for the key, changed whenever the key changes");
      else if (key !== undefined && keyId !== undefined) {
        try {
          await new StaticKeySeal({ key, keyId }).finalize();
        } catch (err) {
          if (!(err instanceof SealConfigError)) throw err;
          o.problem(err.field === "options" ? "key" : err.field, sealMessage(err));
        }
      }
      return o.issues;
    },
    create(block, ctx) {
      const o = new BlockOptions("seal", block);
      const key = o.string("key");
      const keyId = o.string("key_id");
      o.finish();
      ctx.logger.warn(loudStaticWarning(block));
      if (key === undefined && keyId === undefined) return StaticKeySeal.fromEnv(ctx.env);
      if (key === undefined)
        throw o.error("key", "must be set with key_id (64 hex characters; `openssl rand -hex 32`)");
      if (keyId === undefined)
        throw o.error("key_id", "must be set with key: a name for the key, changed whenever the key changes");
      return new StaticKeySeal({ key, keyId });
    },
  });
}

/** A SealConfigError's message without its `invalid seal configuration \`field\`: ` prefix. */
function sealMessage(err: SealConfigError): string {
  const prefix = `invalid seal configuration \`${err.field}\`: `;
  return err.message.startsWith(prefix) ? err.message.slice(prefix.length) : err.message;
}

// --------------------------------------------------------------------------- checking a config

/** The keys a built-in package type accepts, for "did you mean" (loaded with the package). */
async function packageSettings(kind: "storage" | "seal", block: ProviderBlock, env: Env) {
  if (kind === "storage" && block.type === "consul")
    return (await import("@bulwark/storage-consul")).CONSUL_CONFIG_KEYS;
  if (kind === "seal" && block.type === "awskms")
    return (await import("@bulwark/seal-awskms")).AWSKMS_CONFIG_KEYS;
  if (
    kind === "seal" &&
    (block.type === "cloudhsm" ||
      (block.type === "pkcs11" &&
        isCloudHsmLibrary(block.options.lib ?? env.BULWARK_HSM_LIB ?? env.VAULT_HSM_LIB)))
  )
    return (await import("@bulwark/seal-cloudhsm")).CLOUDHSM_CONFIG_KEYS;
  if (kind === "seal" && block.type === "pkcs11")
    return (await import("@bulwark/seal-pkcs11")).PKCS11_CONFIG_KEYS;
  return undefined;
}

/**
 * Every problem of one `storage`/`seal` block, as config problems: each at the setting's file
 * position (the block's when the setting is not written), naming the block and the setting. An
 * unknown setting close to a known one gets "did you mean"; then the problem the typo causes
 * (the known setting missing) is not reported a second time.
 */
export async function checkProviderBlock(
  kind: "storage" | "seal",
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
  const defs: ReadonlyMap<string, BlockChecks> =
    kind === "storage" ? registry.storageTypes() : registry.sealTypes();
  const def = defs.get(block.type);
  if (def === undefined) {
    const near = closest(block.type, defs.keys());
    return [
      problem(
        undefined,
        `"${block.type}" is not a built-in ${kind} type (${[...defs.keys()].join(", ")})` +
          (near !== undefined ? ` — did you mean ${kind} "${near}"?` : "") +
          `; for a third-party ${kind}, add plugin = "<npm package or path>" to the block`,
      ),
    ];
  }
  if (def.check === undefined) return [];
  let issues: BlockIssue[];
  try {
    issues = await def.check(block, { env });
  } catch (err) {
    // A check that cannot run (its package failed to load) is itself the problem to report.
    return [problem(undefined, `cannot check the settings: ${message(err)}`)];
  }
  const settings = def.settings ?? (await packageSettings(kind, block, env).catch(() => undefined));
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

async function closeQuietly(obj: unknown): Promise<void> {
  const close = (obj as { close?: unknown } | undefined)?.close;
  if (typeof close === "function") {
    try {
      await (close as () => Promise<void>).call(obj);
    } catch {
      // Best effort while reporting the original failure.
    }
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
  const built: unknown[] = [];
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
    for (const s of built) await finalizeQuietly(s as Seal);
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

/** CloudHSM Client SDK 5's PKCS#11 library, by file name (its default path is /opt/cloudhsm/lib/). */
export function isCloudHsmLibrary(lib: unknown): boolean {
  return typeof lib === "string" && /(^|\/)libcloudhsm_pkcs11\.so$/.test(lib.trim());
}

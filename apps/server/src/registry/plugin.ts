/**
 * Loading third-party providers named in config: `seal "acme" { plugin = "@acme/bulwark-seal" }`.
 *
 * A plugin is an npm package or a file. Bare names resolve from the config file's directory
 * upwards (its `node_modules`), then from the working directory, then from the server's own
 * install — so an operator installs the plugin next to the config, as with any Node app. Paths
 * (`./acme.mjs`, `/opt/acme/index.js`, a package directory `./plugins/acme`, `file:` URLs) are
 * relative to the config file.
 *
 * The module exports a provider module (`sealProvider` / `storageProvider`: the shape of
 * `SealProvider` / `StorageProvider`, the same as the built-in ones), or a factory
 * (`createSeal(config, env)`, `createBackend`/`createStorage`), which is served as a module. Either
 * way the registry then builds it exactly as it builds a built-in.
 */
import { existsSync, readFileSync } from "node:fs";
import { dirname, isAbsolute, join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { describeBlock } from "../config/source.js";
import type { ProviderBlock } from "../contracts.js";
import { ProviderError } from "./errors.js";
import { assertProviderModule, type TableModule } from "./provider-table.js";

/** Conditions a plugin's `exports` map is matched with (Node's for `import`). */
const CONDITIONS = new Set(["import", "node", "default"]);

function splitSpecifier(spec: string): { name: string; subpath: string } {
  const parts = spec.split("/");
  const n = spec.startsWith("@") ? 2 : 1;
  const name = parts.slice(0, n).join("/");
  const rest = parts.slice(n).join("/");
  return { name, subpath: rest === "" ? "." : `./${rest}` };
}

function pickTarget(target: unknown): string | undefined {
  if (typeof target === "string") return target;
  if (Array.isArray(target)) {
    for (const t of target) {
      const hit = pickTarget(t);
      if (hit !== undefined) return hit;
    }
    return undefined;
  }
  if (typeof target === "object" && target !== null) {
    for (const [cond, value] of Object.entries(target)) {
      if (!CONDITIONS.has(cond)) continue;
      const hit = pickTarget(value);
      if (hit !== undefined) return hit;
    }
  }
  return undefined;
}

/** The entry file of `subpath` in a package directory, following `exports`, then `main`. */
function packageEntry(pkgDir: string, subpath: string): string | undefined {
  let pkg: { exports?: unknown; main?: unknown };
  try {
    pkg = JSON.parse(readFileSync(join(pkgDir, "package.json"), "utf8")) as typeof pkg;
  } catch {
    return undefined;
  }
  if (pkg.exports !== undefined) {
    const exp = pkg.exports;
    const isSubpathMap =
      typeof exp === "object" &&
      exp !== null &&
      !Array.isArray(exp) &&
      Object.keys(exp).some((k) => k.startsWith("."));
    const target = isSubpathMap
      ? pickTarget((exp as Record<string, unknown>)[subpath])
      : subpath === "."
        ? pickTarget(exp)
        : undefined;
    return target === undefined ? undefined : join(pkgDir, target);
  }
  if (subpath !== ".") return join(pkgDir, subpath);
  const main = typeof pkg.main === "string" ? pkg.main : "index.js";
  for (const candidate of [main, `${main}.js`, join(main, "index.js")]) {
    const full = join(pkgDir, candidate);
    if (existsSync(full)) return full;
  }
  return undefined;
}

/** Finds a bare package specifier from `base` upwards through `node_modules` folders. */
function resolvePackage(spec: string, base: string): string | undefined {
  const { name, subpath } = splitSpecifier(spec);
  let dir = resolve(base);
  for (;;) {
    const pkgDir = join(dir, "node_modules", name);
    if (existsSync(join(pkgDir, "package.json"))) return packageEntry(pkgDir, subpath);
    const parent = dirname(dir);
    if (parent === dir) return undefined;
    dir = parent;
  }
}

function isPathSpecifier(spec: string): boolean {
  return spec.startsWith("./") || spec.startsWith("../") || spec.startsWith("file:") || isAbsolute(spec);
}

/** Where a plugin specifier points (a file URL), or undefined for "let Node resolve it". */
function locatePlugin(spec: string, baseDirs: readonly string[]): string | undefined {
  if (spec.startsWith("file:")) return spec;
  if (isPathSpecifier(spec)) {
    const full = resolve(baseDirs[0] ?? process.cwd(), spec);
    // A package directory (with package.json) loads through its entry point.
    const entry = existsSync(join(full, "package.json")) ? packageEntry(full, ".") : undefined;
    return pathToFileURL(entry ?? full).href;
  }
  for (const base of baseDirs) {
    const entry = resolvePackage(spec, base);
    if (entry !== undefined) return pathToFileURL(entry).href;
  }
  return undefined;
}

/** Imports a plugin module (see the file comment for the search order). */
async function importPlugin(spec: string, baseDirs: readonly string[]): Promise<Record<string, unknown>> {
  const located = locatePlugin(spec, baseDirs);
  // A variable specifier keeps bundlers from resolving the plugin at build time.
  const target: string = located ?? spec;
  return (await import(target)) as Record<string, unknown>;
}

/**
 * The factory a plugin module exports: `names` in order (e.g. `createSeal`), then a default
 * export that is a function or an object carrying one of `names` (CommonJS modules).
 */
function findFactory(
  mod: Record<string, unknown>,
  names: readonly string[],
): ((...args: unknown[]) => unknown) | undefined {
  for (const n of names) if (typeof mod[n] === "function") return mod[n] as (...args: unknown[]) => unknown;
  const def = mod.default;
  if (typeof def === "function") return def as (...args: unknown[]) => unknown;
  if (typeof def === "object" && def !== null) {
    for (const n of names) {
      const f = (def as Record<string, unknown>)[n];
      if (typeof f === "function") return f as (...args: unknown[]) => unknown;
    }
  }
  return undefined;
}

/** The factory shape a plugin may export instead of a module: Vault-style settings and the environment. */
export type PluginFactory<T> = (
  config: Record<string, unknown>,
  env: Record<string, string | undefined>,
) => T | Promise<T>;

/** Export names a plugin's factory is looked up by. */
export const SEAL_PLUGIN_EXPORTS = ["createSeal"] as const;
export const STORAGE_PLUGIN_EXPORTS = ["createBackend", "createStorage"] as const;
/** Export names a plugin's provider module is looked up by (first, before a factory). */
export const PROVIDER_EXPORTS = { seal: "sealProvider", storage: "storageProvider" } as const;

/** A plugin as the registry builds it: its module, and what to call the thing that made an object. */
export interface PluginProvider {
  module: TableModule;
  /** e.g. `createSeal()` or `sealProvider.create()`, for the error when the result has the wrong shape. */
  made: string;
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null;
}

/**
 * Imports the plugin `spec` of a block and returns its provider module: the `sealProvider` /
 * `storageProvider` export (also on a default export), else the factory wrapped as a module (its
 * `type` is the block's), else a default export object with `create`. Every failure is a
 * {@link ProviderError} about the block's `plugin` setting that says how to fix it.
 */
export async function loadPluginProvider(
  kind: "storage" | "seal",
  block: ProviderBlock,
  spec: string,
  baseDirs: readonly string[],
): Promise<PluginProvider> {
  const where = describeBlock(kind, block, "plugin");
  let mod: Record<string, unknown>;
  try {
    mod = await importPlugin(spec, baseDirs);
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
    throw new ProviderError("plugin_invalid", `${where}: plugin "${spec}" failed to load: ${message(err)}`, {
      cause: err,
      field: "plugin",
    });
  }
  const exportName = PROVIDER_EXPORTS[kind];
  const exported = mod[exportName] ?? (isObject(mod.default) ? mod.default[exportName] : undefined);
  if (exported !== undefined)
    return { module: checkedModule(exported, where, spec, exportName), made: `${exportName}.create()` };

  const names = kind === "seal" ? SEAL_PLUGIN_EXPORTS : STORAGE_PLUGIN_EXPORTS;
  const factory = findFactory(mod, names);
  if (factory !== undefined) {
    return {
      module: {
        type: block.type,
        description: `plugin ${spec}`,
        create: (config, env) => factory(config, env),
      },
      made: `${names[0]}()`,
    };
  }
  if (isObject(mod.default) && typeof mod.default.create === "function") {
    return { module: checkedModule(mod.default, where, spec, "default"), made: "default.create()" };
  }
  const found = Object.keys(mod).filter((k) => k !== "__esModule");
  const iface = kind === "seal" ? "Seal (@bulwark/seal)" : "Backend (@bulwark/storage)";
  const shape = kind === "seal" ? "SealProvider" : "StorageProvider";
  throw new ProviderError(
    "plugin_invalid",
    `${where}: plugin "${spec}" exports no ${kind} factory: export function ${names[0]}(config, env) returning a ${iface}` +
      ` (found exports: ${found.length > 0 ? found.join(", ") : "none"}); or export a ${shape} as ${exportName}`,
    { field: "plugin" },
  );
}

function checkedModule(obj: unknown, where: string, spec: string, exportName: string): TableModule {
  try {
    assertProviderModule(obj, `plugin "${spec}" ${exportName}`);
  } catch (err) {
    throw new ProviderError("plugin_invalid", `${where}: ${message(err)}`, { cause: err, field: "plugin" });
  }
  return obj;
}

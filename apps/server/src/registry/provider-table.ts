/**
 * The registry's table of provider modules, one per `storage`/`seal` block type. A module is a
 * `StorageProvider` (`@bulwark/storage`) or a `SealProvider` (`@bulwark/seal`): both are
 * `ProviderModule` from `@bulwark/settings`, so seals and backends, built-ins and plugins all go
 * through the same code.
 *
 * A module can be registered loaded, or lazily (`{ type, load }`): a provider package with heavy
 * or native dependencies (PKCS#11's addon, the AWS SDK) is imported only when a block needs it.
 */
import type { ProviderConfig, ProviderEnv, ProviderModule } from "@bulwark/settings";
import type { StorageProvider } from "@bulwark/storage";

/**
 * A module of either table, as the registry handles it: any `ProviderModule`, with the one
 * storage-only property (`StorageProvider.haByDefault`) that {@link assertProviderModule} checks
 * and the registry reads when it builds a backend.
 */
export type TableModule = ProviderModule<unknown> & Pick<StorageProvider, "haByDefault">;

/** A module registered by name and loaded when a block needs it. */
export interface LazyProvider<M> {
  readonly type: string;
  readonly aliases?: readonly string[];
  /** The block type the module claims some blocks of (its `claims.type`): it is loaded to be asked. */
  readonly claims?: string;
  load(): Promise<M>;
}

function describe(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "an array";
  return typeof v;
}

const isStringList = (v: unknown): boolean => Array.isArray(v) && v.every((s) => typeof s === "string");

/**
 * Checks that `obj` has the provider module shape (a plugin's `sealProvider`/`storageProvider`
 * export; every built-in module passes it too). Throws a `TypeError` naming `name` and the first
 * thing wrong.
 */
export function assertProviderModule(obj: unknown, name: string): asserts obj is TableModule {
  if (typeof obj !== "object" || obj === null) {
    throw new TypeError(`${name} is not a provider module: expected an object, got ${describe(obj)}`);
  }
  const rec = obj as Record<string, unknown>;
  const bad = (what: string, v: unknown) =>
    new TypeError(`${name} is not a provider module: ${what} (found ${describe(v)})`);
  if (typeof rec.type !== "string" || rec.type.trim() === "")
    throw bad("`type` must be a non-empty string", rec.type);
  if (typeof rec.description !== "string") throw bad("`description` must be a string", rec.description);
  if (typeof rec.create !== "function")
    throw bad("method create(config, env, context) is missing", rec.create);
  if (rec.check !== undefined && typeof rec.check !== "function")
    throw bad("`check` must be a method check(config, env, context) when present", rec.check);
  for (const list of ["settings", "aliases"] as const) {
    if (rec[list] !== undefined && !isStringList(rec[list]))
      throw bad(`\`${list}\` must be a list of strings when present`, rec[list]);
  }
  if (rec.haByDefault !== undefined && typeof rec.haByDefault !== "boolean")
    throw bad("`haByDefault` must be a boolean when present", rec.haByDefault);
  if (rec.claims !== undefined) {
    const c = rec.claims as Record<string, unknown> | null;
    if (typeof c !== "object" || c === null || typeof c.type !== "string" || typeof c.when !== "function")
      throw bad("`claims` must be { type, when(config, env) } when present", rec.claims);
  }
}

interface Entry<M> {
  readonly type: string;
  readonly claims: string | undefined;
  load(): Promise<M>;
}

function isLazy<M>(p: M | LazyProvider<M>): p is LazyProvider<M> {
  return typeof (p as Partial<LazyProvider<M>>).load === "function";
}

/** Block type → module, with claims asked first. */
export class ProviderTable<M extends ProviderModule<unknown>> {
  readonly #byType = new Map<string, Entry<M>>();
  readonly #entries: Entry<M>[] = [];

  /** Registers a module (or a lazy one) under its type and aliases. */
  register(provider: M | LazyProvider<M>): void {
    const type = provider.type;
    let entry: Entry<M>;
    if (isLazy(provider)) {
      let loading: Promise<M> | undefined;
      entry = {
        type,
        claims: provider.claims,
        load: () => {
          loading ??= provider.load().then((m) => checkLoaded(provider, m));
          return loading;
        },
      };
    } else {
      entry = { type, claims: provider.claims?.type, load: async () => provider };
    }
    this.#entries.push(entry);
    for (const name of [type, ...(provider.aliases ?? [])]) this.#byType.set(name, entry);
  }

  /** Every block type served, in registration order (aliases after their type). */
  types(): string[] {
    return [...this.#byType.keys()];
  }

  /**
   * The module for a block of `type`: a module that claims the block (by its settings), else the
   * type's own. Loads only the modules that may answer. Undefined for an unknown type.
   */
  async resolve(type: string, config: ProviderConfig, env: ProviderEnv): Promise<M | undefined> {
    for (const entry of this.#entries) {
      if (entry.claims !== type) continue;
      const module = await entry.load();
      if (module.claims?.type === type && module.claims.when(config, env)) return module;
    }
    return this.#byType.get(type)?.load();
  }
}

/** A lazily loaded module must be what its registration said: a mismatch is a wiring bug, said at once. */
function checkLoaded<M extends ProviderModule<unknown>>(lazy: LazyProvider<M>, module: M): M {
  assertProviderModule(module, `the module loaded for "${lazy.type}"`);
  if (module.type !== lazy.type || module.claims?.type !== lazy.claims) {
    throw new TypeError(
      `the module loaded for "${lazy.type}" is of type "${module.type}"${module.claims ? ` claiming "${module.claims.type}"` : ""}; ` +
        `its registration says "${lazy.type}"${lazy.claims ? ` claiming "${lazy.claims}"` : ""}`,
    );
  }
  return module;
}

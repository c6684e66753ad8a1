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
import type { ServerConfig } from "../contracts.js";
import { checkProviderBlocks } from "../registry/registry.js";
import { ConfigError, type ConfigProblem } from "./errors.js";
import { collectConfigFiles } from "./files.js";
import { finalizeCollect, isComplete } from "./finalize.js";
import type { LoadConfigOptions } from "./schema.js";

export { mergeFragments, readConfigFiles } from "./files.js";
// The loader's stages, one module each, exported from here as they always were.
export { CONFIG_ENV_VARS, finalizeConfig } from "./finalize.js";
export { checkListenAddress } from "./listener.js";
export { checkApiAddr, parseConfig, providerBlock } from "./read.js";
export {
  type ConfigFragment,
  DEFAULT_CLUSTER_NAME,
  DEFAULT_LISTENER_ADDRESS,
  DEFAULT_MAX_REQUEST_SIZE,
  type Env,
  IGNORED_LISTENER_SETTINGS,
  IGNORED_VAULT_SETTINGS,
  type LoadConfigOptions,
  type LogLevel,
} from "./schema.js";
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
  if (all.length > 0 || !isComplete(config)) throw new ConfigError(all);
  return config;
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

/**
 * Vault's `-config`: several files or directories read and merged in order (storage: the last one
 * wins; seals and listeners add up; settings: the last one set wins; in a directory, `*.hcl` and
 * `*.json` in name order with `override.*` / `*_override.*` last).
 */
import { readdir, readFile, stat } from "node:fs/promises";
import { basename, extname, join, resolve } from "node:path";
import { ConfigError, type ConfigProblem } from "./errors.js";
import { readConfig } from "./read.js";
import type { ConfigFragment, RequiredBlock } from "./schema.js";

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
  const noWrap = b.disableSealWrap ?? a.disableSealWrap;
  if (noWrap !== undefined) out.disableSealWrap = noWrap;
  // OpenBao's merge: audit blocks add up in file order; each switch is on when any file turns it on.
  if (a.audits !== undefined || b.audits !== undefined)
    out.audits = [...(a.audits ?? []), ...(b.audits ?? [])];
  const apiAudit = orTrue(a.unsafeAllowApiAuditCreation, b.unsafeAllowApiAuditCreation);
  if (apiAudit !== undefined) out.unsafeAllowApiAuditCreation = apiAudit;
  const prefixing = orTrue(a.allowAuditLogPrefixing, b.allowAuditLogPrefixing);
  if (prefixing !== undefined) out.allowAuditLogPrefixing = prefixing;
  return out;
}

/** OpenBao's merge of its audit switches: true when either file sets it true. */
function orTrue(a: boolean | undefined, b: boolean | undefined): boolean | undefined {
  if (a === undefined && b === undefined) return undefined;
  return a === true || b === true;
}

/** `override.hcl`, `x_override.json`: read after the other files of their directory. */
const isOverride = (file: string) => /(?:^|_)override$/.test(basename(file, extname(file)));

/** The config files of a directory, Vault's order: `*.hcl`/`*.json` by name, override files last. */
async function filesOf(dir: string): Promise<string[]> {
  const names = (await readdir(dir, { withFileTypes: true }))
    .filter((d) => d.isFile() && /\.(hcl|json)$/i.test(d.name) && !d.name.startsWith("."))
    .map((d) => join(dir, d.name))
    .sort();
  return [...names.filter((f) => !isOverride(f)), ...names.filter(isOverride)];
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
export interface FilesResult {
  fragment: ConfigFragment;
  problems: ConfigProblem[];
  /** Names as problems carry them, in the order the files were read (for sorting problems). */
  order: string[];
  /** Required blocks a file tried to write; `"all"` when a file could not be read at all. */
  attempted: Set<RequiredBlock> | "all";
}

/** {@link readConfigFiles} without throwing: every file's problems, and what could be read merged. */
export async function collectConfigFiles(
  paths: readonly string[],
  cwd = process.cwd(),
): Promise<FilesResult> {
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
      problems.push({ filename: p, message: `cannot read the config: ${messageOf(err)}` });
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
        problems.push({ filename: file, message: `cannot read the config: ${messageOf(err)}` });
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

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * One config file's text (HCL or JSON) read into a {@link ConfigFragment}: the top-level settings,
 * the `storage`/`seal` provider blocks and the listeners, every problem kept with its line and
 * column instead of stopping at the first.
 */
import { extname } from "node:path";
import {
  type HclBlockEntry,
  type HclDocument,
  HclParseError,
  type HclPosition,
  type HclValue,
  parseHcl,
  parseHclJson,
  parseHclOrJson,
  toPlain,
} from "@bulwark/hcl";
import type { ProviderBlock } from "../contracts.js";
import { parseAuditBlock } from "./audit.js";
import { ConfigError, type ConfigProblem } from "./errors.js";
import { parseListener } from "./listener.js";
import { entrySource, FileReader } from "./reader.js";
import {
  BLOCK_KEYS,
  type ConfigFragment,
  IGNORED_VAULT_SETTINGS,
  isSetting,
  LOG_LEVELS,
  type RequiredBlock,
  SETTINGS,
  type Setting,
} from "./schema.js";
import { closest, rememberSource, suggest } from "./source.js";

/**
 * Parses one config file's text. `format` defaults to JSON for `.json` files and to detection by
 * content otherwise. Throws {@link ConfigError} listing every problem with its line and column.
 */
export function parseConfig(source: string, filename: string, format?: "hcl" | "json"): ConfigFragment {
  const read = readConfig(source, filename, format);
  if (read.syntaxError !== undefined) throw read.syntaxError;
  if (read.problems.length > 0) throw new ConfigError(read.problems);
  return read.fragment;
}

/** One file read without stopping at its problems. */
export interface ReadResult {
  /** What the file sets, without the blocks that had problems. */
  fragment: ConfigFragment;
  problems: ConfigProblem[];
  /** The file is not HCL/JSON at all: nothing of it could be read. */
  syntaxError?: ConfigError;
  /**
   * Required blocks the file tried to write but that were rejected (or misspelt at the top
   * level): their absence is then not reported again as "no storage block".
   */
  attempted: Set<RequiredBlock>;
}

/** {@link parseConfig} without throwing: what the file sets, and every problem found in it. */
export function readConfig(source: string, filename: string, format?: "hcl" | "json"): ReadResult {
  const r = new FileReader(filename);
  const attempted = new Set<RequiredBlock>();
  const fragment: ConfigFragment = { files: [filename], seals: [], listeners: [], warnings: r.warnings };
  let doc: HclDocument;
  try {
    doc = parseDocument(source, filename, format);
  } catch (err) {
    if (err instanceof HclParseError) {
      const syntaxError = ConfigError.at(filename, err, err.detail, err);
      return {
        fragment,
        problems: [...syntaxError.problems],
        syntaxError,
        attempted: new Set(["storage", "listener"]),
      };
    }
    throw err;
  }
  readTopLevel(r, doc, fragment, attempted);
  readStorage(r, doc, fragment, attempted);
  for (const entry of [...r.blocks(doc, "ha_storage"), ...r.blocks(doc, "ha_backend")]) {
    r.warn(
      entry.pos,
      `${entry.type} "${entry.labels[0]}" is not supported (ignored): HA uses the storage backend's own lock — use storage "consul"`,
    );
  }
  readSeals(r, doc, fragment);
  for (const entry of r.blocks(doc, "listener")) {
    attempted.add("listener");
    const listener = parseListener(r, entry);
    if (listener !== undefined) fragment.listeners.push(listener);
  }
  const audits = r.blocksWith(doc, "audit", 2).map((entry) => parseAuditBlock(r, entry));
  if (audits.length > 0) fragment.audits = audits.filter((d) => d !== undefined);
  // A block the file wrote with a problem is missing from the fragment, not absent from the file.
  for (const p of r.problems) {
    if (/^`(storage|backend)` needs/.test(p.message)) attempted.add("storage");
    if (/^`listener` needs/.test(p.message)) attempted.add("listener");
  }
  return { fragment, problems: r.problems, attempted };
}

function parseDocument(source: string, filename: string, format?: "hcl" | "json"): HclDocument {
  const fmt = format ?? (extname(filename).toLowerCase() === ".json" ? "json" : undefined);
  return fmt === "json"
    ? parseHclJson(source, filename)
    : fmt === "hcl"
      ? parseHcl(source, filename)
      : parseHclOrJson(source, filename);
}

/** The top-level settings; blocks are read apart, and a misspelt block counts as attempted. */
function readTopLevel(
  r: FileReader,
  doc: HclDocument,
  fragment: ConfigFragment,
  attempted: Set<RequiredBlock>,
): void {
  const seen = new Map<string, HclPosition>();
  for (const item of doc.body.items) {
    const key = item.kind === "attribute" ? item.key : item.type;
    if (BLOCK_KEYS.has(key)) continue;
    if (isSetting(key)) {
      if (item.kind === "block") {
        r.problem(item.pos, `\`${key}\` is a setting, not a block: write ${key} = …`);
        continue;
      }
      const first = seen.get(key);
      if (first !== undefined) {
        r.problem(item.pos, `\`${key}\` is set twice (first at line ${first.line})`);
        continue;
      }
      seen.set(key, item.pos);
      readSetting(r, fragment, key, item.value);
    } else if (IGNORED_VAULT_SETTINGS.has(key)) {
      r.warn(
        item.pos,
        `\`${key}\` is a Vault setting with no effect in Bulwark (ignored: ${IGNORED_VAULT_SETTINGS.get(key)})`,
      );
    } else if (key === "kms") {
      r.problem(item.pos, 'unknown block `kms`: Bulwark reads Vault\'s name, seal "<type>" { … }');
    } else {
      const known = [...SETTINGS, ...BLOCK_KEYS, ...IGNORED_VAULT_SETTINGS.keys()];
      r.problem(item.pos, `unknown setting \`${key}\`${suggest(key, known)}`);
      const near = closest(key, known);
      if (near === "listener") attempted.add("listener");
      if (near === "storage" || near === "backend") attempted.add("storage");
    }
  }
}

/** At most one `storage` (or Vault's old `backend`) block. */
function readStorage(
  r: FileReader,
  doc: HclDocument,
  fragment: ConfigFragment,
  attempted: Set<RequiredBlock>,
): void {
  const storages = [...r.blocks(doc, "storage"), ...r.blocks(doc, "backend")];
  if (storages.length > 0) attempted.add("storage");
  storages.sort((a, b) => a.pos.offset - b.pos.offset);
  const [first, second] = storages;
  if (first === undefined) return;
  if (second !== undefined) {
    r.problem(second.pos, `only one storage block is allowed (the first is at line ${first.line})`);
    return;
  }
  const type = checkLabel(r, first, "storage");
  if (type !== undefined) fragment.storage = { type, options: providerOptions(first, new Set()) };
}

/** Every `seal` block; `disabled = true` marks the seal being migrated away from. */
function readSeals(r: FileReader, doc: HclDocument, fragment: ConfigFragment): void {
  for (const entry of r.blocks(doc, "seal")) {
    const type = checkLabel(r, entry, "seal");
    let disabled = false;
    for (const item of entry.body.items) {
      if (item.kind !== "attribute" || item.key !== "disabled") continue;
      const b = r.boolean("disabled", item.value);
      if (b !== undefined) disabled = b;
    }
    if (type !== undefined) {
      fragment.seals.push({ type, options: providerOptions(entry, new Set(["disabled"])), disabled });
    }
  }
}

function readSetting(r: FileReader, f: ConfigFragment, key: Setting, v: HclValue): void {
  switch (key) {
    case "api_addr": {
      const s = r.string(key, v);
      if (s === undefined) return;
      const bad = checkApiAddr(s);
      if (bad !== undefined) r.problem(v.pos, `api_addr ${bad}`);
      else f.apiAddr = s;
      return;
    }
    case "cluster_name": {
      const s = r.string(key, v);
      if (s !== undefined && s.trim() === "") r.problem(v.pos, "cluster_name must not be empty");
      else if (s !== undefined) f.clusterName = s;
      return;
    }
    case "log_level": {
      const s = r.string(key, v);
      if (s === undefined) return;
      const level = LOG_LEVELS.get(s.trim().toLowerCase());
      if (level === undefined)
        r.problem(v.pos, `log_level must be trace, debug, info, warn or error, found ${JSON.stringify(s)}`);
      else f.logLevel = level;
      return;
    }
    case "ui": {
      const b = r.boolean(key, v);
      if (b !== undefined) f.ui = b;
      return;
    }
    case "disable_unauthed_rekey_endpoints": {
      const b = r.boolean(key, v);
      if (b !== undefined) f.disableUnauthedRekeyEndpoints = b;
      return;
    }
    case "disable_sealwrap": {
      const b = r.boolean(key, v);
      if (b !== undefined) f.disableSealWrap = b;
      return;
    }
    case "unsafe_allow_api_audit_creation": {
      const b = r.boolean(key, v);
      if (b !== undefined) f.unsafeAllowApiAuditCreation = b;
      return;
    }
    case "allow_audit_log_prefixing": {
      const b = r.boolean(key, v);
      if (b !== undefined) f.allowAuditLogPrefixing = b;
      return;
    }
  }
}

/** `http(s)://host[:port]`; returns an error message or undefined. */
export function checkApiAddr(s: string): string | undefined {
  let url: URL;
  try {
    url = new URL(s);
  } catch {
    return `must be a URL like "https://bulwark.example.com:8200", found ${JSON.stringify(s)}`;
  }
  if (url.protocol !== "http:" && url.protocol !== "https:")
    return `must start with http:// or https://, found ${JSON.stringify(s)}`;
  return undefined;
}

/** A `storage`/`seal`-style block as a {@link ProviderBlock} whose options remember their positions. */
export function providerBlock(entry: HclBlockEntry): ProviderBlock {
  return { type: entry.labels[0] ?? entry.type, options: providerOptions(entry, new Set()) };
}

/** A provider block's options as plain values, remembering where each key was written. */
function providerOptions(entry: HclBlockEntry, omit: ReadonlySet<string>): Record<string, unknown> {
  const options: Record<string, unknown> = {};
  const plain = toPlain(entry.body);
  // A body is always an object; the check only tells the compiler so.
  for (const [k, v] of typeof plain === "object" && plain !== null ? Object.entries(plain) : []) {
    if (!omit.has(k))
      Object.defineProperty(options, k, { value: v, enumerable: true, writable: true, configurable: true });
  }
  rememberSource({ type: entry.labels[0] ?? entry.type, options }, entrySource(entry));
  return options;
}

/** A provider block's type label, when it is a valid name (`blocks(…, 1)` gives every entry one). */
function checkLabel(r: FileReader, entry: HclBlockEntry, kind: string): string | undefined {
  const type = entry.labels[0] ?? "";
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(type)) {
    r.problem(
      entry.labelPositions[0] ?? entry.pos,
      `${kind} type ${JSON.stringify(type)} is not a valid name: use letters, digits, "_", "-" or "." (like ${kind} "file")`,
    );
    return undefined;
  }
  return type;
}

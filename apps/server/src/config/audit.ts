/**
 * `audit "<type>" "<path>" { … }` blocks: OpenBao 2.6's declarative audit devices
 * (website/content/docs/configuration/audit.mdx, internal/command/server/config.go's
 * parseAuditDevices), and the rules across files (one block per path; the `prefix` option only
 * with `allow_audit_log_prefixing = true`), checked once the files are merged.
 *
 * Values as OpenBao's HCL decoding reads them into its `options map[string]string` and
 * `description string`: a string as written, an unquoted integer as its literal text (`mode = 0600`
 * → "0600"); a bool or a fraction is refused there ("unknown type for string"), so here too, with
 * the fix. `local` takes a bool only, as OpenBao's decoding does. OpenBao only warns about an
 * unknown key in a block; a misspelt `optons` would silently drop every option, so here it is an
 * error naming the key.
 */
import type { HclBlockEntry, HclItem, HclPosition, HclValue } from "@bulwark/hcl";
import type { AuditSettings, ConfigAuditDevice } from "@bulwark/vault";
import type { ConfigProblem } from "./errors.js";
import { describeValue, type FileReader } from "./reader.js";
import { type SourcePosition, suggest } from "./source.js";

/** The audit device types Bulwark has (OpenBao's builtins). */
export const AUDIT_TYPES: readonly string[] = ["file", "socket", "syslog"];

/** Keys of an `audit` block (`type`/`path` override the labels, as OpenBao's decoding lets them). */
export const AUDIT_BLOCK_KEYS: ReadonlySet<string> = new Set([
  "description",
  "local",
  "options",
  "type",
  "path",
]);

/** Where each audit block (and each of its options) was written, for the rules across files. */
interface AuditSource extends SourcePosition {
  options: ReadonlyMap<string, HclPosition>;
}

const SOURCES = new WeakMap<ConfigAuditDevice, AuditSource>();

/** Where an audit block (or one of its options) is written; undefined when it came from no file. */
export function auditSourceOf(device: ConfigAuditDevice, option?: string): SourcePosition | undefined {
  const src = SOURCES.get(device);
  if (src === undefined) return undefined;
  const pos = (option === undefined ? undefined : src.options.get(option)) ?? src;
  return { filename: src.filename, line: pos.line, column: pos.column };
}

/** `audit "file" "to-stdout"` — how messages name a block. */
export function auditBlockName(device: Pick<ConfigAuditDevice, "type" | "path">): string {
  return `audit ${JSON.stringify(device.type)} ${JSON.stringify(device.path.replace(/\/$/, ""))}`;
}

/** OpenBao's table path: with one trailing '/' ("to-stdout" → "to-stdout/"). */
export function auditPath(path: string): string {
  return path.endsWith("/") ? path : `${path}/`;
}

/**
 * A string the way OpenBao's `map[string]string` / `string` decoding takes it: a string, or an
 * integer literal as written. Reports anything else (naming `what`) and gives undefined.
 */
function stringOf(r: FileReader, what: string, v: HclValue): string | undefined {
  if (v.kind === "string") return v.value;
  if (v.kind === "number" && /^-?(?:0[xX][0-9a-fA-F]+|\d+)$/.test(v.raw)) return v.raw;
  const fix =
    v.kind === "bool" || v.kind === "number"
      ? `: write it quoted, ${JSON.stringify(v.kind === "bool" ? String(v.value) : v.raw)}`
      : "";
  r.problem(v.pos, `${what} must be a string, found ${describeValue(v)}${fix}`);
  return undefined;
}

/** The items of `options { … }` (a block) or `options = { … }` / JSON `"options": {…}` (an object). */
function optionItems(r: FileReader, name: string, item: HclItem): HclItem[] | undefined {
  if (item.kind === "block") {
    if (item.labels.length > 0) {
      r.problem(item.pos, `${name}: \`options\` takes no label: write options { file_path = "…" }`);
      return undefined;
    }
    return item.body.items;
  }
  if (item.value.kind === "object") return item.value.body.items;
  r.problem(
    item.value.pos,
    `${name}: \`options\` must be a map of strings, found ${describeValue(item.value)}: write options { file_path = "…" }`,
  );
  return undefined;
}

/**
 * One `audit` block as a {@link ConfigAuditDevice} (path with its trailing '/'), or undefined when
 * it has a problem (reported to `r`, naming the block and the key).
 */
export function parseAuditBlock(r: FileReader, entry: HclBlockEntry): ConfigAuditDevice | undefined {
  let type = entry.labels[0] ?? "";
  let path = entry.labels[1] ?? "";
  const name = `audit ${JSON.stringify(type)} ${JSON.stringify(path)}`;
  let ok = true;
  const fail = (pos: HclPosition, message: string) => {
    ok = false;
    r.problem(pos, message);
  };
  const seen = new Map<string, HclPosition>();
  let description = "";
  let local = false;
  const options: Record<string, string> = {};
  const optionPositions = new Map<string, HclPosition>();
  let typePos = entry.labelPositions[0] ?? entry.pos;
  let pathPos = entry.labelPositions[1] ?? entry.pos;
  // `audit "file" { options { … } }` (one label) reads as the path "options" holding the options.
  if (
    path === "options" &&
    entry.body.items.some((i) => i.kind === "attribute" && !AUDIT_BLOCK_KEYS.has(i.key))
  ) {
    r.problem(
      entry.labelPositions[1] ?? entry.pos,
      `audit ${JSON.stringify(type)} needs two labels, its type and its path: write audit ${JSON.stringify(type)} "<path>" { options { … } }`,
    );
    return undefined;
  }
  for (const item of entry.body.items) {
    const key = item.kind === "attribute" ? item.key : item.type;
    if (!AUDIT_BLOCK_KEYS.has(key)) {
      fail(
        item.pos,
        `${name}: unknown setting \`${key}\`${suggest(key, AUDIT_BLOCK_KEYS)} (an audit block takes description, local and options { … }; device options such as file_path go inside options)`,
      );
      continue;
    }
    const first = seen.get(key);
    if (first !== undefined) {
      fail(item.pos, `${name}: \`${key}\` is set twice (first at line ${first.line})`);
      continue;
    }
    seen.set(key, item.pos);
    if (key === "options") {
      const items = optionItems(r, name, item);
      if (items === undefined) {
        ok = false;
        continue;
      }
      for (const opt of items) {
        if (opt.kind === "block") {
          fail(opt.pos, `${name}: option \`${opt.type}\` must be a string, found a block`);
          continue;
        }
        if (optionPositions.has(opt.key)) {
          fail(
            opt.pos,
            `${name}: option \`${opt.key}\` is set twice (first at line ${optionPositions.get(opt.key)?.line})`,
          );
          continue;
        }
        optionPositions.set(opt.key, opt.pos);
        const s = stringOf(r, `${name}: option \`${opt.key}\``, opt.value);
        if (s === undefined) ok = false;
        // defineProperty: an option named __proto__ stays an own key.
        else
          Object.defineProperty(options, opt.key, {
            value: s,
            enumerable: true,
            writable: true,
            configurable: true,
          });
      }
      continue;
    }
    if (item.kind === "block") {
      fail(item.pos, `${name}: \`${key}\` is a setting, not a block: write ${key} = …`);
      continue;
    }
    if (key === "local") {
      if (item.value.kind === "bool") local = item.value.value;
      else
        fail(item.value.pos, `${name}: \`local\` must be true or false, found ${describeValue(item.value)}`);
      continue;
    }
    const s = stringOf(r, `${name}: \`${key}\``, item.value);
    if (s === undefined) {
      ok = false;
      continue;
    }
    if (key === "description") description = s;
    else if (key === "type") {
      type = s;
      typePos = item.value.pos;
    } else {
      path = s;
      pathPos = item.value.pos;
    }
  }
  if (!AUDIT_TYPES.includes(type)) {
    fail(
      typePos,
      `${name}: audit device type ${JSON.stringify(type)} is not supported: use ${AUDIT_TYPES.map((t) => `"${t}"`).join(", ")}`,
    );
  }
  if (path === "" || path === "/") {
    fail(pathPos, `${name}: the audit device needs a path: write audit "${type}" "<path>" { … }`);
  }
  if (!ok) return undefined;
  const device: ConfigAuditDevice = { type, path: auditPath(path), description, local, options };
  SOURCES.set(device, {
    filename: entry.filename,
    line: entry.line,
    column: entry.column,
    options: optionPositions,
  });
  return device;
}

/**
 * The merged files' audit settings: every block in config order; no two blocks with one path
 * (OpenBao's "two audit devices with same path (%v) exist in config"); the `prefix` option only
 * with `allow_audit_log_prefixing = true` (OpenBao refuses it: "audit log prefixing is not allowed").
 */
export function auditSettingsOf(
  devices: readonly ConfigAuditDevice[],
  unsafeAllowApiAuditCreation: boolean,
  allowAuditLogPrefixing: boolean,
  problems: ConfigProblem[],
): AuditSettings {
  const problem = (device: ConfigAuditDevice, message: string, option?: string) => {
    const p: ConfigProblem = { message, block: auditBlockName(device) };
    if (option !== undefined) p.setting = option;
    const pos = auditSourceOf(device, option);
    if (pos !== undefined) {
      p.filename = pos.filename;
      p.line = pos.line;
      p.column = pos.column;
    }
    problems.push(p);
  };
  const byPath = new Map<string, ConfigAuditDevice>();
  const kept: ConfigAuditDevice[] = [];
  for (const d of devices) {
    const first = byPath.get(d.path);
    if (first !== undefined) {
      const at = auditSourceOf(first);
      problem(
        d,
        `two audit devices with same path (${d.path}) exist in config${at === undefined ? "" : ` (the first at ${at.filename}:${at.line})`}: give each audit block its own path`,
      );
      continue;
    }
    byPath.set(d.path, d);
    if (d.options !== undefined && Object.hasOwn(d.options, "prefix") && !allowAuditLogPrefixing) {
      problem(
        d,
        `${auditBlockName(d)}: audit log prefixing is not allowed: remove the prefix option, or set allow_audit_log_prefixing = true at the top level of the config`,
        "prefix",
      );
      continue;
    }
    kept.push(d);
  }
  return { devices: kept, unsafeAllowApiAuditCreation, allowAuditLogPrefixing };
}

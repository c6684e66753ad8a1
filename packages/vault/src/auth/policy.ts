/**
 * ACL policy documents, HCL or JSON, Vault's syntax:
 *
 *     path "secret/data/app/*" { capabilities = ["read", "list"] }
 *     path "secret/+/team"     { capabilities = ["deny"] }
 *
 * plus Vault's older `policy = "read" | "write" | "deny" | "sudo"` shorthand, a per-path
 * `expiration` and `{{identity…}}` templates in paths. What OpenBao 2.6.2 refuses is refused here
 * too (a record Bulwark writes must load in OpenBao, where a policy that does not parse fails every
 * request of the tokens holding it). Parameter constraints (`allowed_parameters`, …), wrapping
 * TTLs, `pagination_limit`, list filters and `{{time…}}` templates, which OpenBao accepts, Bulwark
 * cannot enforce: they are refused with a clear message rather than silently ignored (a policy
 * that says less than its author meant must not load), and such a policy already stored grants
 * nothing.
 */
import { attributes, blocks, type HclBody, HclParseError, parseHclOrJson, toPlain } from "@bulwark/hcl";
import { PolicyError } from "../errors.js";

export const CAPABILITIES = [
  "create",
  "read",
  "update",
  "patch",
  "delete",
  "list",
  "sudo",
  "scan",
  "deny",
] as const;
export type Capability = (typeof CAPABILITIES)[number];

export interface PathRule {
  /** The pattern as written (one leading '/' dropped): exact, `prefix*`, and/or with `+` segments. */
  pattern: string;
  capabilities: ReadonlySet<Capability>;
  /**
   * The pattern holds `{{…}}` identity templates. OpenBao fills them from the token's entity and
   * drops the rule when it cannot; Bulwark's tokens have no entity, so such a rule never applies.
   */
  templated?: boolean;
}

export interface Policy {
  name: string;
  rules: PathRule[];
  /** The document as stored. */
  raw: string;
  /** Some path holds `{{…}}` templates (the record's `Templated`, which OpenBao before 2.6 trusts). */
  templated: boolean;
  /**
   * When this parse stops being right: the earliest future per-path `expiration` (that path then
   * drops out) or the record's own expiration (the policy then no longer exists).
   */
  expiration?: Date;
}

// PolicyError lives with the package's other errors; re-exported for the parser's callers.
export { PolicyError };

const LEGACY: Record<string, Capability[]> = {
  deny: ["deny"],
  read: ["read", "list"],
  write: ["create", "read", "update", "delete", "list"],
  sudo: ["create", "read", "update", "delete", "list", "sudo"],
};

/** Keys OpenBao accepts in a path block whose meaning Bulwark cannot enforce. */
const UNSUPPORTED = new Set([
  "allowed_parameters",
  "denied_parameters",
  "required_parameters",
  "min_wrapping_ttl",
  "max_wrapping_ttl",
  "mfa_methods",
  "pagination_limit",
  "list_scan_response_keys_filter_path",
]);

/** Vault Enterprise's keys: OpenBao refuses them as unknown, Bulwark names them. */
const ENTERPRISE = new Set(["control_group", "subscribe_event_types"]);

/** OpenBao's `identitytpl` check: `{{`/`}}` must pair up; returns the templates' trimmed bodies. */
function templatesOf(path: string, where: string): string[] {
  const pieces = path.split("{{");
  const unbalanced = () =>
    new PolicyError(
      `failed to parse policy: failed to validate policy templating: unbalanced templating characters (${where})`,
    );
  if ((pieces[0] as string).includes("}}")) throw unbalanced();
  const out: string[] = [];
  for (const piece of pieces.slice(1)) {
    const parts = piece.split("}}");
    if (parts.length !== 2) throw unbalanced();
    out.push((parts[0] as string).trim());
  }
  return out;
}

/** Go's `parseutil.ParseAbsoluteTime` for a string: RFC 3339 (with or without fraction) or epoch seconds. */
function absoluteTime(v: unknown, where: string): Date {
  const s = typeof v === "number" ? String(v) : v;
  if (typeof s === "string") {
    if (/^-?\d+$/.test(s)) return new Date(Number(s) * 1000);
    if (/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/i.test(s)) {
      const t = Date.parse(s);
      if (!Number.isNaN(t)) return new Date(t);
    }
  }
  throw new PolicyError(
    `failed to parse policy: ${where}: invalid expiration time ${JSON.stringify(v)}: give an RFC 3339 time (2030-01-01T00:00:00Z) or epoch seconds`,
  );
}

/**
 * Policy names as OpenBao keeps them: trimmed and lower-cased (`sanitizeName`), otherwise free
 * (spaces, ':', '/' nest the record one level down). Refused as OpenBao refuses them: empty, a
 * trailing '/', '..' (a parent reference in the storage key); and, since they would be storage keys
 * with an empty segment, a leading '/' or '//'.
 */
export function normalizePolicyName(name: string): string {
  const n = name.trim().toLowerCase();
  const bad = (why: string) => new PolicyError(`invalid policy name ${JSON.stringify(name)}: ${why}`);
  if (n.length === 0) throw bad("the name is empty");
  if (n.includes("..")) throw bad("it must not contain '..'");
  if (n.startsWith("/") || n.endsWith("/") || n.includes("//"))
    throw bad("'/' may only separate non-empty parts (team/app)");
  // biome-ignore lint/suspicious/noControlCharactersInRegex: the point is to refuse them
  if (/[\u0000-\u001f\u007f]/.test(n)) throw bad("control characters are not allowed");
  return n;
}

function capabilitiesOf(value: unknown, where: string): Capability[] {
  // OpenBao decodes a list only, and takes capabilities as written (case matters).
  if (!Array.isArray(value))
    throw new PolicyError(`${where}: capabilities must be a list of strings, e.g. ["read"]`);
  const out: Capability[] = [];
  for (const c of value) {
    const s = typeof c === "number" || typeof c === "boolean" ? String(c) : c;
    if (typeof s !== "string" || !(CAPABILITIES as readonly string[]).includes(s)) {
      throw new PolicyError(
        `${where}: invalid capability ${JSON.stringify(s)}; use ${CAPABILITIES.join(", ")} (lower case)`,
      );
    }
    out.push(s as Capability);
  }
  return out;
}

/** In a JSON document, a key whose value is `{}` is absent to OpenBao's hcl v1 decoder. */
function jsonAbsentDropped(body: HclBody, format: "hcl" | "json"): HclBody {
  if (format !== "json") return body;
  const items = body.items.filter(
    (i) => i.kind !== "attribute" || !(i.value.kind === "object" && i.value.body.items.length === 0),
  );
  return items.length === body.items.length ? body : { ...body, items };
}

/** Parses and validates a policy document (HCL or JSON) as OpenBao 2.6.2 does. Throws {@link PolicyError}. */
export function parsePolicy(name: string, raw: string): Policy {
  if (typeof raw !== "string") throw new PolicyError(`policy ${name}: the document must be a string`);
  const byPattern = new Map<string, { caps: Set<Capability>; templated: boolean }>();
  let templated = false;
  let expiration: Date | undefined;
  const now = Date.now();
  try {
    const doc = parseHclOrJson(raw, `policy ${name}`);
    const items = [];
    for (const item of doc.body.items) {
      const key = item.kind === "attribute" ? item.key : item.type;
      const at = `policy ${name}:${item.pos.line}:${item.pos.column}`;
      if (key !== "path" && key !== "name") {
        throw new PolicyError(`${at}: unknown key ${JSON.stringify(key)}; a policy holds path blocks`);
      }
      // What OpenBao's hcl v1 decoding refuses (a record Bulwark writes must load there).
      if (key === "name") {
        if (item.kind === "block" || item.value.kind === "list" || item.value.kind === "object")
          throw new PolicyError(`${at}: name must be a string`);
        continue;
      }
      if (item.kind === "attribute") {
        if (doc.format === "hcl")
          throw new PolicyError(`${at}: path must be a block: write path "<path>" { capabilities = [ … ] }`);
        // JSON: "path": {} holds no rules; "path": [] is refused like a list of nothing.
        if (item.value.kind === "object" && item.value.body.items.length === 0) continue;
        if (item.value.kind === "list" && item.value.items.length === 0)
          throw new PolicyError(`${at}: "path" must be an object of paths, not an empty list`);
      }
      items.push(item);
    }
    for (const entry of blocks({ ...doc.body, items }, "path", 1)) {
      const label = entry.labels[0] as string;
      const where = `policy ${name}:${entry.line}:${entry.column}: path ${JSON.stringify(label)}`;
      const templates = templatesOf(label, where);
      if (templates.length > 0) templated = true;
      // OpenBao's order: the keys and their types (hcl decoding) first, then the expiration, and an
      // expired path is skipped before anything else of it is checked (capability names included).
      let expiresAt: Date | undefined;
      const unsupported: string[] = [];
      const body = jsonAbsentDropped(entry.body, doc.format);
      for (const item of body.items) {
        const key = item.kind === "attribute" ? item.key : item.type;
        if (key === "comment") {
          // Free text, any value in HCL; hcl v1 flattens a JSON object here into keys of the path.
          if (doc.format === "json" && item.kind === "attribute" && item.value.kind === "object")
            throw new PolicyError(`${where}: comment must be a string`);
          continue;
        }
        if (ENTERPRISE.has(key))
          throw new PolicyError(`${where}: ${key} is not supported by Bulwark; remove it`);
        if (UNSUPPORTED.has(key)) {
          unsupported.push(key);
          continue;
        }
        if (key !== "capabilities" && key !== "policy" && key !== "expiration") {
          throw new PolicyError(`${where}: invalid key ${JSON.stringify(key)}; use capabilities`);
        }
        if (item.kind !== "attribute") throw new PolicyError(`${where}: ${key} must be a value, not a block`);
        const v = toPlain(item.value);
        if (key === "capabilities") {
          if (!Array.isArray(v) || v.some((c) => typeof c === "object" && c !== null))
            throw new PolicyError(`${where}: capabilities must be a list of strings, e.g. ["read"]`);
        } else if (key === "policy") {
          if (typeof v === "object")
            throw new PolicyError(`${where}: policy must be one of deny, read, write, sudo`);
        } else if (v !== "" && v !== null) {
          // OpenBao ignores an empty expiration (JSON null included).
          expiresAt = absoluteTime(v, where);
        }
      }
      // An expired path is left out, as OpenBao does (the record stays).
      if (expiresAt !== undefined) {
        if (now > expiresAt.getTime()) continue;
        if (expiration === undefined || expiresAt < expiration) expiration = expiresAt;
      }
      if (unsupported.length > 0)
        throw new PolicyError(`${where}: ${unsupported[0]} is not supported by Bulwark; remove it`);
      for (const t of templates) {
        // Resolved without an entity, so the rule would apply to Bulwark's tokens, differently at every second.
        if (t.startsWith("time."))
          throw new PolicyError(`${where}: the {{${t}}} template is not supported by Bulwark; remove it`);
      }
      // Vault strips one leading '/': API paths start after it.
      const pattern = label.startsWith("/") ? label.slice(1) : label;
      if (pattern.includes("+*"))
        throw new PolicyError(`${where}: invalid use of wildcards ('+*' is forbidden)`);
      const caps = new Set<Capability>();
      for (const attr of attributes(body, "policy")) {
        const v = toPlain(attr.value);
        if (v === "") continue; // OpenBao ignores an empty one
        const legacy = typeof v === "string" ? LEGACY[v] : undefined;
        if (legacy === undefined) {
          throw new PolicyError(
            `${where}: invalid policy ${JSON.stringify(v)}; use one of deny, read, write, sudo`,
          );
        }
        for (const c of legacy) caps.add(c);
      }
      for (const attr of attributes(body, "capabilities")) {
        for (const c of capabilitiesOf(toPlain(attr.value), where)) caps.add(c);
      }
      const merged = byPattern.get(pattern) ?? {
        caps: new Set<Capability>(),
        templated: templates.length > 0,
      };
      for (const c of caps) merged.caps.add(c);
      byPattern.set(pattern, merged);
    }
  } catch (e) {
    if (e instanceof PolicyError) throw e;
    if (e instanceof HclParseError) throw new PolicyError(`failed to parse policy: ${e.message}`);
    throw e;
  }
  const rules: PathRule[] = [];
  for (const [pattern, r] of byPattern) {
    rules.push(
      r.templated ? { pattern, capabilities: r.caps, templated: true } : { pattern, capabilities: r.caps },
    );
  }
  const policy: Policy = { name, raw, rules, templated };
  if (expiration !== undefined) policy.expiration = expiration;
  return policy;
}

/**
 * ACL policy documents, HCL or JSON, Vault's syntax:
 *
 *     path "secret/data/app/*" { capabilities = ["read", "list"] }
 *     path "secret/+/team"     { capabilities = ["deny"] }
 *
 * plus Vault's older `policy = "read" | "write" | "deny" | "sudo"` shorthand. Parameter
 * constraints (`allowed_parameters`, …) and wrapping TTLs are refused with a clear message rather
 * than silently ignored: a policy that says less than its author meant must not load.
 */
import { attributes, blocks, HclParseError, parseHclOrJson, toPlain } from "@bulwark/hcl";
import { PolicyError } from "../errors.js";

export const CAPABILITIES = ["create", "read", "update", "patch", "delete", "list", "sudo", "deny"] as const;
export type Capability = (typeof CAPABILITIES)[number];

export interface PathRule {
  /** The pattern as written: exact, `prefix*`, and/or with `+` segments. */
  pattern: string;
  capabilities: ReadonlySet<Capability>;
}

export interface Policy {
  name: string;
  rules: PathRule[];
  /** The document as stored. */
  raw: string;
}

// PolicyError lives with the package's other errors; re-exported for the parser's callers.
export { PolicyError };

const LEGACY: Record<string, Capability[]> = {
  deny: ["deny"],
  read: ["read", "list"],
  write: ["read", "list", "create", "update", "delete"],
  sudo: ["read", "list", "create", "update", "delete", "sudo"],
};

const UNSUPPORTED = new Set([
  "allowed_parameters",
  "denied_parameters",
  "required_parameters",
  "min_wrapping_ttl",
  "max_wrapping_ttl",
  "control_group",
  "mfa_methods",
  "subscribe_event_types",
]);

/** Policy names: Vault lower-cases them; we also keep them to one storage-safe segment. */
export function normalizePolicyName(name: string): string {
  const n = name.trim().toLowerCase();
  if (n.length === 0 || n.length > 128 || !/^[a-z0-9][a-z0-9_.@-]*$/.test(n) || n.includes("..")) {
    throw new PolicyError(
      `invalid policy name ${JSON.stringify(name)}: use letters, digits, '-', '_', '.', '@' (max 128)`,
    );
  }
  return n;
}

function capabilitiesOf(value: unknown, where: string): Capability[] {
  const list = typeof value === "string" ? [value] : value;
  if (!Array.isArray(list)) throw new PolicyError(`${where}: capabilities must be a list of strings`);
  const out: Capability[] = [];
  for (const c of list) {
    if (typeof c !== "string" || !(CAPABILITIES as readonly string[]).includes(c.toLowerCase())) {
      throw new PolicyError(
        `${where}: invalid capability ${JSON.stringify(c)}; use ${CAPABILITIES.join(", ")}`,
      );
    }
    out.push(c.toLowerCase() as Capability);
  }
  return out;
}

function validatePattern(pattern: string, where: string): void {
  if (pattern.includes("+*")) throw new PolicyError(`${where}: invalid use of wildcards ('+*' is forbidden)`);
  if (pattern.includes("*") && pattern.indexOf("*") !== pattern.length - 1) {
    throw new PolicyError(`${where}: '*' is only allowed at the end of a path (glob)`);
  }
  if (pattern.startsWith("/")) throw new PolicyError(`${where}: paths must not start with '/'`);
}

/** Parses and validates a policy document (HCL or JSON). Throws {@link PolicyError}. */
export function parsePolicy(name: string, raw: string): Policy {
  if (typeof raw !== "string" || raw.trim().length === 0) {
    throw new PolicyError(`policy ${name}: the document is empty; give at least one path block`);
  }
  const byPattern = new Map<string, Set<Capability>>();
  try {
    const doc = parseHclOrJson(raw, `policy ${name}`);
    for (const item of doc.body.items) {
      const key = item.kind === "attribute" ? item.key : item.type;
      if (key !== "path" && key !== "name") {
        throw new PolicyError(
          `policy ${name}:${item.pos.line}:${item.pos.column}: unknown key ${JSON.stringify(key)}; a policy holds path blocks`,
        );
      }
    }
    for (const entry of blocks(doc, "path", 1)) {
      const label = entry.labels[0] as string;
      const where = `policy ${name}:${entry.line}:${entry.column}: path ${JSON.stringify(label)}`;
      // Vault strips one leading '/': API paths start after it.
      const pattern = label.startsWith("/") ? label.slice(1) : label;
      validatePattern(pattern, where);
      const caps = byPattern.get(pattern) ?? new Set<Capability>();
      let any = false;
      for (const item of entry.body.items) {
        const key = item.kind === "attribute" ? item.key : item.type;
        if (UNSUPPORTED.has(key)) {
          throw new PolicyError(`${where}: ${key} is not supported by Bulwark; remove it`);
        }
        if (key === "comment") {
          // Vault accepts a free-text comment in a path block.
          if (item.kind !== "attribute" || typeof toPlain(item.value) !== "string")
            throw new PolicyError(`${where}: comment must be a string`);
          continue;
        }
        if (key !== "capabilities" && key !== "policy") {
          throw new PolicyError(`${where}: unknown key ${JSON.stringify(key)}; use capabilities`);
        }
      }
      for (const attr of attributes(entry.body, "capabilities")) {
        for (const c of capabilitiesOf(toPlain(attr.value), where)) caps.add(c);
        any = true;
      }
      for (const attr of attributes(entry.body, "policy")) {
        const v = toPlain(attr.value);
        const legacy = typeof v === "string" ? LEGACY[v.toLowerCase()] : undefined;
        if (legacy === undefined) {
          throw new PolicyError(`${where}: policy must be one of deny, read, write, sudo`);
        }
        for (const c of legacy) caps.add(c);
        any = true;
      }
      if (!any) throw new PolicyError(`${where}: give capabilities = [ … ]`);
      byPattern.set(pattern, caps);
    }
  } catch (e) {
    if (e instanceof PolicyError) throw e;
    if (e instanceof HclParseError) throw new PolicyError(`failed to parse policy: ${e.message}`);
    throw e;
  }
  if (byPattern.size === 0) {
    throw new PolicyError(`policy ${name}: no path blocks; write path "<path>" { capabilities = [ … ] }`);
  }
  return {
    name,
    raw,
    rules: [...byPattern].map(([pattern, capabilities]) => ({ pattern, capabilities })),
  };
}

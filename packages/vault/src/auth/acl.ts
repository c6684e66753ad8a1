/**
 * An ACL: the merged rules of a token's policies, evaluated per request path with Vault's rules.
 *
 * - Rules for the same pattern from several policies are merged (union of capabilities); if any
 *   says `deny`, the merged rule is `deny` only — deny beats everything.
 * - An exact pattern wins over every wildcard pattern. Otherwise, among the matching patterns the
 *   most specific one decides, by Vault's priority order (policies concept page): a pattern whose
 *   first `+`/`*` comes later wins; one not ending in `*` beats one that does; fewer `+`
 *   segments win; a longer pattern wins; then the lexicographically larger one.
 * - Only that one rule's capabilities apply: a broader rule does not add to a narrower one.
 */
import type { Capability, Policy } from "./policy.js";

export type Operation = "read" | "list" | "create" | "update" | "patch" | "delete";

interface Rule {
  pattern: string;
  caps: Set<Capability>;
  regex: RegExp;
  firstWildcard: number;
  endsInGlob: boolean;
  plusSegments: number;
}

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/**
 * OpenBao's `HasSegmentWildcards`: a `+` right after a '/' or at the start. Only whole `+`
 * segments match any segment; a `+` inside a segment (`a/+b`) is literal, but still makes the
 * rule a wildcard one for the priority order, as in OpenBao.
 */
function hasSegmentWildcards(pattern: string): boolean {
  return pattern === "+" || pattern.includes("/+") || pattern.startsWith("+/");
}

function compile(pattern: string, caps: Set<Capability>): Rule {
  const endsInGlob = pattern.endsWith("*");
  const body = endsInGlob ? pattern.slice(0, -1) : pattern;
  const segs = body.split("/");
  let plusSegments = 0;
  // OpenBao: the first '+' character of a segment-wildcard rule, else where the glob starts.
  const firstWildcard = hasSegmentWildcards(pattern) ? pattern.indexOf("+") : pattern.length - 1;
  const parts = segs.map((seg) => {
    const isPlus = seg === "+";
    if (isPlus) plusSegments++;
    return isPlus ? "[^/]*" : escapeRe(seg);
  });
  const regex = new RegExp(`^${parts.join("/")}${endsInGlob ? "[\\s\\S]*" : ""}$`);
  return { pattern, caps, regex, firstWildcard, endsInGlob, plusSegments };
}

/** True when `a` is more specific than `b` (Vault's priority order). */
function higher(a: Rule, b: Rule): boolean {
  if (a.firstWildcard !== b.firstWildcard) return a.firstWildcard > b.firstWildcard;
  if (a.endsInGlob !== b.endsInGlob) return !a.endsInGlob;
  if (a.plusSegments !== b.plusSegments) return a.plusSegments < b.plusSegments;
  if (a.pattern.length !== b.pattern.length) return a.pattern.length > b.pattern.length;
  return a.pattern > b.pattern;
}

/** Everything the root policy may do (one shared set: capabilities() is on the request path). */
const ROOT_CAPABILITIES: ReadonlySet<Capability> = new Set<Capability>([
  "create",
  "read",
  "update",
  "patch",
  "delete",
  "list",
  "sudo",
  "scan",
]);

export class Acl {
  readonly root: boolean;
  readonly policies: readonly string[];
  readonly #exact = new Map<string, Set<Capability>>();
  readonly #wild: Rule[] = [];
  /** Per pattern, per capability: the policies that grant it, in policy order (the audit's granting_policies). */
  readonly #grants = new Map<string, Map<Capability, string[]>>();

  constructor(policies: readonly Policy[], names: readonly string[] = policies.map((p) => p.name)) {
    this.policies = names;
    this.root = names.includes("root");
    const merged = new Map<string, Set<Capability>>();
    for (const p of policies) {
      for (const r of p.rules) {
        // Vault fills `{{identity…}}` templates from the token's entity and drops the path when it
        // cannot (no entity, or a bad template). Bulwark tokens have no entity: such paths never apply.
        if (r.templated === true) continue;
        const caps = merged.get(r.pattern) ?? new Set<Capability>();
        for (const c of r.capabilities) caps.add(c);
        merged.set(r.pattern, caps);
        const grants = this.#grants.get(r.pattern) ?? new Map<Capability, string[]>();
        this.#grants.set(r.pattern, grants);
        for (const c of r.capabilities) {
          const by = grants.get(c);
          if (by === undefined) grants.set(c, [p.name]);
          else if (!by.includes(p.name)) by.push(p.name);
        }
      }
    }
    for (const [pattern, caps] of merged) {
      const final = caps.has("deny") ? new Set<Capability>(["deny"]) : caps;
      // A '*' before the end is a literal character (OpenBao strips only a trailing one).
      if (!pattern.endsWith("*") && !hasSegmentWildcards(pattern)) this.#exact.set(pattern, final);
      else this.#wild.push(compile(pattern, final));
    }
  }

  #wildcard(path: string): Rule | undefined {
    let best: Rule | undefined;
    for (const r of this.#wild) {
      if (!r.regex.test(path)) continue;
      if (best === undefined || higher(r, best)) best = r;
    }
    return best;
  }

  /** The capabilities the token has on `path` (a request path without `/v1/`). */
  capabilities(path: string): ReadonlySet<Capability> {
    if (this.root) return ROOT_CAPABILITIES;
    return this.#exact.get(path) ?? this.#wildcard(path)?.caps ?? new Set();
  }

  /**
   * OpenBao's lookup for a LIST (also what `sys/capabilities-self` reports): an exact rule for the
   * path, then for it without its trailing '/', then the wildcard rules for the path, then for it
   * without the '/' (so `secret/+` governs a LIST of `secret/app/`).
   */
  #listCapabilities(path: string): ReadonlySet<Capability> {
    const trimmed = path.endsWith("/") ? path.slice(0, -1) : path;
    return (
      this.#exact.get(path) ??
      this.#exact.get(trimmed) ??
      this.#wildcard(path)?.caps ??
      (trimmed !== path ? this.#wildcard(trimmed)?.caps : undefined) ??
      new Set()
    );
  }

  /**
   * The policies that grant `op` on `path` (Vault's PolicyResults.GrantingPolicies, written to the
   * audit log): those that put the capability on the one rule that decides the path; `["root"]`
   * for root; empty when the operation is not allowed.
   */
  grantingPolicies(path: string, op: Operation): string[] {
    if (this.root) return ["root"];
    if (!this.allows(path, op)) return [];
    const trimmed = path.endsWith("/") ? path.slice(0, -1) : path;
    let pattern: string | undefined;
    if (this.#exact.has(path)) pattern = path;
    else if (op === "list" && this.#exact.has(trimmed)) pattern = trimmed;
    else pattern = (this.#wildcard(path) ?? (op === "list" ? this.#wildcard(trimmed) : undefined))?.pattern;
    return pattern === undefined ? [] : [...(this.#grants.get(pattern)?.get(op) ?? [])];
  }

  /** Whether `op` (and sudo, when asked) is allowed on `path`. */
  allows(path: string, op: Operation, opts: { sudo?: boolean } = {}): boolean {
    if (this.root) return true;
    const caps = op === "list" ? this.#listCapabilities(path) : this.capabilities(path);
    if (caps.has("deny")) return false;
    if (opts.sudo === true && !caps.has("sudo")) return false;
    return caps.has(op);
  }

  /**
   * Vault's `hasMountAccess`: whether any rule grants something at or below `mountPath` (with its
   * trailing '/'), so `sys/internal/ui/mounts` does not describe mounts the token cannot touch.
   */
  reachesInto(mountPath: string): boolean {
    if (this.root) return true;
    // OpenBao: what capabilities-self would say for the mount path (any but deny) …
    if (this.describe(mountPath)[0] !== "deny") return true;
    // … else an exact or glob rule below it granting anything …
    const grants = (caps: ReadonlySet<Capability>) => caps.size > 0 && !caps.has("deny");
    for (const [pattern, caps] of this.#exact) if (pattern.startsWith(mountPath) && grants(caps)) return true;
    const globs = this.#wild.filter((r) => !hasSegmentWildcards(r.pattern));
    for (const r of globs) if (r.pattern.slice(0, -1).startsWith(mountPath) && grants(r.caps)) return true;
    // … else its CheckAllowedFromNonExactPaths(path, bareMount): with no `+` rule at all, any glob
    // whose prefix the mount path starts with counts, whatever it grants (deny included) …
    const segmentRules = this.#wild.filter((r) => hasSegmentWildcards(r.pattern));
    if (segmentRules.length === 0) return globs.some((r) => mountPath.startsWith(r.pattern.slice(0, -1)));
    // … and otherwise only a `+` rule that reaches the mount path's segments and grants something.
    const parts = mountPath.split("/");
    for (const r of segmentRules) {
      const acl = (r.endsInGlob ? r.pattern.slice(0, -1) : r.pattern).split("/");
      const segments: string[] = [];
      for (let i = 0; i < acl.length; i++) {
        const a = acl[i] as string;
        const p = parts[i] as string;
        if (a === "+" || a === p) segments.push(p);
        else if (r.endsInGlob && i === acl.length - 1 && p.startsWith(a)) segments.push(...parts.slice(i));
        // A segment that differs is passed over, not a mismatch, in this mode (OpenBao's).
        if (i === parts.length - 2) {
          if (`${segments.join("/")}/`.startsWith(mountPath) && grants(r.caps)) return true;
          break;
        }
      }
    }
    return false;
  }

  /** Vault's `sys/capabilities-self` answer for one path. */
  describe(path: string): string[] {
    if (this.root) return ["root"];
    // OpenBao's Capabilities() asks as a LIST would.
    const caps = this.#listCapabilities(path);
    if (caps.size === 0 || caps.has("deny")) return ["deny"];
    return [...caps].sort();
  }
}

/**
 * ACL policies in the barrier at `sys/policy/<name>`, in Vault's stored shape
 * (`{"Version":2,"Name":…,"Raw":…,"Type":0}`), with the built-ins `root` (everything, not stored,
 * immutable) and `default` (what every token may do to itself; editable, never deletable).
 */
import type { Backend } from "@bulwark/storage";
import { Acl } from "./acl.js";
import { normalizePolicyName, type Policy, PolicyError, parsePolicy } from "./policy.js";

const PREFIX = "sys/policy/";

/** Vault's default policy, reduced to the endpoints Bulwark serves. */
export const DEFAULT_POLICY = `# Allow tokens to look up their own properties
path "auth/token/lookup-self" {
  capabilities = ["read"]
}

# Allow tokens to renew themselves
path "auth/token/renew-self" {
  capabilities = ["update"]
}

# Allow tokens to revoke themselves
path "auth/token/revoke-self" {
  capabilities = ["update"]
}

# Allow a token to look up its own capabilities on a path
path "sys/capabilities-self" {
  capabilities = ["update"]
}

# Allow a token to find out which secrets engine serves a path (used by kv clients)
path "sys/internal/ui/mounts/*" {
  capabilities = ["read"]
}
`;

interface Cached {
  policy: Policy | undefined;
  at: number;
  /** The store's active term when cached (`undefined`: not active). */
  term: number | undefined;
}

const enc = new TextEncoder();
const dec = new TextDecoder();

export class PolicyStore {
  readonly #storage: Backend;
  readonly #cache = new Map<string, Cached>();
  readonly #acls = new Map<string, { acl: Acl; at: number; gen: number; term: number | undefined }>();
  readonly #ttlMs: number;
  readonly #term: () => number | undefined;
  /** Bumped on every local write, so cached ACLs built from older documents are dropped. */
  #gen = 0;

  /**
   * `cacheTtlMs` bounds how long a parsed policy is reused without re-reading storage; writes
   * through this store invalidate at once (the bound matters for HA standbys, which see writes
   * made by the active node only through storage). `activeTerm` (the store's): nothing cached in
   * another term (before a step-down, or while standby) is reused once the term changes.
   */
  constructor(storage: Backend, opts: { cacheTtlMs?: number; activeTerm?: () => number | undefined } = {}) {
    this.#storage = storage;
    this.#ttlMs = opts.cacheTtlMs ?? 5000;
    this.#term = opts.activeTerm ?? (() => undefined);
  }

  async list(): Promise<string[]> {
    const names = new Set(["default", "root"]);
    for (const n of await this.#storage.list(PREFIX)) if (!n.endsWith("/")) names.add(n);
    return [...names].sort();
  }

  /** The raw document, or `undefined` when there is no such policy. `root` has an empty one. */
  async read(name: string): Promise<string | undefined> {
    const n = normalizePolicyName(name);
    if (n === "root") return "";
    const e = await this.#storage.get(PREFIX + n);
    if (e !== undefined) return (JSON.parse(dec.decode(e.value)) as { Raw: string }).Raw;
    return n === "default" ? DEFAULT_POLICY : undefined;
  }

  async write(name: string, raw: string): Promise<void> {
    const n = normalizePolicyName(name);
    if (n === "root") throw new PolicyError("cannot update the root policy");
    const policy = parsePolicy(n, raw);
    const doc = { Version: 2, Name: n, Raw: raw, Type: 0 };
    await this.#storage.put({ key: PREFIX + n, value: enc.encode(JSON.stringify(doc)) });
    this.#cache.set(n, { policy, at: Date.now(), term: this.#term() });
    this.#gen++;
  }

  async delete(name: string): Promise<void> {
    const n = normalizePolicyName(name);
    if (n === "root" || n === "default") throw new PolicyError(`cannot delete the ${n} policy`);
    await this.#storage.delete(PREFIX + n);
    this.#cache.delete(n);
    this.#gen++;
  }

  async #load(name: string): Promise<Policy | undefined> {
    const hit = this.#cache.get(name);
    const term = this.#term();
    if (hit !== undefined && Date.now() - hit.at < this.#ttlMs && hit.term === term) return hit.policy;
    // A write during the read below must not have its document replaced by the older one read here.
    const gen = this.#gen;
    let raw: string | undefined;
    try {
      raw = await this.read(name);
    } catch (e) {
      // A token may name a policy that cannot exist (Vault accepts any name): it grants nothing.
      if (!(e instanceof PolicyError)) throw e;
      raw = undefined;
    }
    let policy: Policy | undefined;
    if (raw !== undefined && name !== "root") {
      try {
        policy = parsePolicy(name, raw);
      } catch {
        // A stored document this version cannot parse grants nothing rather than failing requests.
        policy = undefined;
      }
    }
    if (gen === this.#gen) this.#cache.set(name, { policy, at: Date.now(), term });
    return policy;
  }

  /** The ACL for a token's policy names; names without a stored policy grant nothing (as in Vault). */
  async acl(names: readonly string[]): Promise<Acl> {
    const key = names.join("\0");
    const hit = this.#acls.get(key);
    const now = Date.now();
    const term = this.#term();
    if (hit !== undefined && hit.gen === this.#gen && now - hit.at < this.#ttlMs && hit.term === term)
      return hit.acl;
    // Cached under the generation it was built from: a write meanwhile makes it stale at once.
    const gen = this.#gen;
    const policies: Policy[] = [];
    for (const name of names) {
      if (name === "root") continue;
      const p = await this.#load(name);
      if (p !== undefined) policies.push(p);
    }
    const acl = new Acl(policies, names);
    // Bounded: token policy sets are few in practice; a flood of distinct sets just resets it.
    if (this.#acls.size > 1000) this.#acls.clear();
    this.#acls.set(key, { acl, at: now, gen, term });
    return acl;
  }

  invalidate(): void {
    this.#cache.clear();
    this.#acls.clear();
    this.#gen++;
  }
}

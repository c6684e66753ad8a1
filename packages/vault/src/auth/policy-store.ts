/**
 * ACL policies in the barrier at `sys/policy/<name>`, stored as OpenBao 2.6.2 stores them: the
 * uncompressed JSON of its `Policy` struct with Go field names (`DataVersion`, `CASRequired`, `Raw`,
 * `Type`, `Templated`, `Expiration`, `Modified`, `AllowWildcardsInIdentityTemplates`,
 * `AllowSlashesInIdentityTemplates`; docs/vault-storage-formats.md §3). Records of Vault and OpenBao
 * 2.0 (`{"Version":2,"Raw":…,"Templated":…,"Type":0}`) and 2.5 (both) read the same; a field this
 * version does not know is kept when the record is rewritten. Built-ins as OpenBao's
 * `LoadDefaultPolicies` makes them ({@link PolicyStore.setup}): `default` (editable, never
 * deletable), `response-wrapping` (immutable, not listed), `root` (everything; never stored).
 */
import type { Backend } from "@bulwark/storage";
import { Acl } from "./acl.js";
import { normalizePolicyName, type Policy, PolicyError, parsePolicy } from "./policy.js";

const PREFIX = "sys/policy/";

/**
 * OpenBao 2.6.2's `default` policy (`DefaultPolicy` in vault/policy/policy_store.go), byte for byte as
 * a fresh OpenBao stores it (fixtures/policies-builtin.json): the same text on both servers keeps
 * `setup()` from rewriting it and lets either read what the other created. Its templated
 * `identity/entity/…` rules apply to no Bulwark token (no entity), as in OpenBao for an entity-less token.
 */
export const DEFAULT_POLICY = `
# Allow tokens to look up their own properties
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

# Allow a token to look up its own entity by id or name
path "identity/entity/id/{{identity.entity.id}}" {
  capabilities = ["read"]
}
path "identity/entity/name/{{identity.entity.name}}" {
  capabilities = ["read"]
}


# Allow a token to look up its resultant ACL from all policies. This is useful
# for UIs. It is an internal path because the format may change at any time
# based on how the internal ACL features and capabilities change.
path "sys/internal/ui/resultant-acl" {
    capabilities = ["read"]
}

# Allow a token to renew a lease via lease_id in the request body; old path for
# old clients, new path for newer
path "sys/leases/renew" {
    capabilities = ["update"]
}

# Allow looking up lease properties. This requires knowing the lease ID ahead
# of time and does not divulge any sensitive information.
path "sys/leases/lookup" {
    capabilities = ["update"]
}

# Allow a token to manage its own cubbyhole
path "cubbyhole/*" {
    capabilities = ["create", "read", "update", "delete", "list"]
}

# Allow a token to wrap arbitrary values in a response-wrapping token
path "sys/wrapping/wrap" {
    capabilities = ["update"]
}

# Allow a token to look up the creation time and TTL of a given
# response-wrapping token
path "sys/wrapping/lookup" {
    capabilities = ["update"]
}

# Allow a token to unwrap a response-wrapping token. This is a convenience to
# avoid client token swapping since this is also part of the response wrapping
# policy.
path "sys/wrapping/unwrap" {
    capabilities = ["update"]
}

# Allow general purpose tools
path "sys/tools/hash" {
    capabilities = ["update"]
}
path "sys/tools/hash/*" {
    capabilities = ["update"]
}

# Allow a token to make requests to the Authorization Endpoint for OIDC providers.
path "identity/oidc/provider/+/authorize" {
    capabilities = ["read", "update"]
}
`;

/** OpenBao 2.6.2's `response-wrapping` policy, byte for byte (immutable: rewritten when it differs). */
export const RESPONSE_WRAPPING_POLICY = `
path "cubbyhole/response" {
    capabilities = ["create", "read"]
}

path "sys/wrapping/unwrap" {
    capabilities = ["update"]
}
`;

/** Policies nobody may write or delete (OpenBao's `immutablePolicies`). */
const IMMUTABLE = new Set(["root", "response-wrapping"]);
/** Policies stored but not listed nor assignable to tokens (OpenBao's `NonAssignablePolicies`). */
const NON_ASSIGNABLE = new Set(["response-wrapping"]);
/** Go's zero `time.Time` as `encoding/json` writes it: "no expiration". */
const GO_ZERO_TIME = "0001-01-01T00:00:00Z";

/** A `sys/policy/<name>` record, decoded. */
export interface PolicyRecord {
  /** CAS counter: 1 after the first write, +1 per write (0 in records of Vault and OpenBao < 2.5). */
  dataVersion: number;
  casRequired: boolean;
  /** The policy text exactly as submitted. */
  raw: string;
  /** Whether the text holds `{{identity…}}` templates (readers before OpenBao 2.6 trust this flag). */
  templated: boolean;
  /** When the policy stops existing; `undefined`: never. */
  expiration: Date | undefined;
  /** `Expiration` as stored (Go keeps ns): written back as is while `expiration` is that time. */
  expirationText?: string | undefined;
  /** As stored (RFC 3339, Go keeps ns); `undefined` in records without the field or with Go's zero time. */
  modified: string | undefined;
  allowWildcardsInIdentityTemplates: boolean;
  allowSlashesInIdentityTemplates: boolean;
  /** Fields this version does not know (e.g. `Version` of Vault's records): written back on rewrite. */
  extra: Record<string, unknown>;
}

const KNOWN_FIELDS = new Set([
  "DataVersion",
  "CASRequired",
  "Raw",
  "Type",
  "Templated",
  "Expiration",
  "Modified",
  "AllowWildcardsInIdentityTemplates",
  "AllowSlashesInIdentityTemplates",
]);

/** Go's `time.Time` JSON: RFC 3339 with up to 9 fraction digits, trailing zeros dropped. */
function goTime(d: Date): string {
  return d.toISOString().replace(/\.?0+Z$/, "Z");
}

function isGoZero(t: string): boolean {
  // Go's zero time in UTC; a non-UTC zone of year 1 is zero too (IsZero compares the instant).
  return (
    t.startsWith("0001-01-01T00:00:00") || Number.isNaN(Date.parse(t)) || Date.parse(t) <= -62135596800000
  );
}

/** Decodes a stored record; a record no OpenBao could have written is refused naming the field. */
export function decodePolicyRecord(name: string, bytes: Uint8Array): PolicyRecord {
  const where = `sys/policy/${name}`;
  let doc: unknown;
  try {
    doc = JSON.parse(dec.decode(bytes));
  } catch (e) {
    throw new PolicyError(`${where}: not a policy record (invalid JSON: ${(e as Error).message})`);
  }
  if (typeof doc !== "object" || doc === null || Array.isArray(doc))
    throw new PolicyError(`${where}: not a policy record (a JSON object is expected)`);
  const d = doc as Record<string, unknown>;
  const field = <T>(key: string, type: "string" | "number" | "boolean", fallback: T): T => {
    const v = d[key];
    // Go's encoding/json leaves a field at its zero value when it is missing or null.
    if (v === undefined || v === null) return fallback;
    if (typeof v !== type)
      throw new PolicyError(`${where}: field ${key} must be a ${type}, got ${JSON.stringify(v)}`);
    return v as T;
  };
  const type = field("Type", "number", 0);
  if (type !== 0)
    throw new PolicyError(`${where}: Type ${type} is not an ACL policy (0); only ACL policies exist`);
  const expiration = field<string>("Expiration", "string", GO_ZERO_TIME);
  const modified = field<string>("Modified", "string", GO_ZERO_TIME);
  if (!isGoZero(expiration) && Number.isNaN(Date.parse(expiration)))
    throw new PolicyError(
      `${where}: field Expiration must be an RFC 3339 time, got ${JSON.stringify(expiration)}`,
    );
  const extra: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(d)) if (!KNOWN_FIELDS.has(k)) extra[k] = v;
  return {
    dataVersion: field("DataVersion", "number", 0),
    casRequired: field("CASRequired", "boolean", false),
    raw: field("Raw", "string", ""),
    templated: field("Templated", "boolean", false),
    expiration: isGoZero(expiration) ? undefined : new Date(expiration),
    expirationText: isGoZero(expiration) ? undefined : expiration,
    modified: isGoZero(modified) ? undefined : modified,
    allowWildcardsInIdentityTemplates: field("AllowWildcardsInIdentityTemplates", "boolean", false),
    allowSlashesInIdentityTemplates: field("AllowSlashesInIdentityTemplates", "boolean", false),
    extra,
  };
}

/** The stored text while it still names `at` (to the ms), else `at` in Go's form. */
export function expirationText(at: Date, stored: string | undefined): string {
  return stored !== undefined && Date.parse(stored) === at.getTime() ? stored : goTime(at);
}

/** Encodes a record in OpenBao 2.6.2's field order, then the fields kept from an older record. */
export function encodePolicyRecord(r: PolicyRecord): Uint8Array {
  const doc: Record<string, unknown> = {
    DataVersion: r.dataVersion,
    CASRequired: r.casRequired,
    Raw: r.raw,
    Type: 0,
    Templated: r.templated,
    Expiration: r.expiration === undefined ? GO_ZERO_TIME : expirationText(r.expiration, r.expirationText),
    Modified: r.modified ?? GO_ZERO_TIME,
    AllowWildcardsInIdentityTemplates: r.allowWildcardsInIdentityTemplates,
    AllowSlashesInIdentityTemplates: r.allowSlashesInIdentityTemplates,
  };
  for (const [k, v] of Object.entries(r.extra)) if (!(k in doc)) doc[k] = v;
  return enc.encode(JSON.stringify(doc));
}

/** What a policy write may set besides the text (`sys/policies/acl/<name>`'s parameters). */
export interface PolicyWriteOptions {
  /**
   * Check-and-set: the record's current `DataVersion` (0 for a record of Vault/OpenBao < 2.5), or
   * -1 for "must not exist yet". Required when the stored record or this write has `casRequired`.
   */
  cas?: number;
  casRequired?: boolean;
  expiration?: Date;
  allowWildcardsInIdentityTemplates?: boolean;
  allowSlashesInIdentityTemplates?: boolean;
}

/** A policy as `sys/policies/acl/<name>` answers it. */
export interface PolicyInfo {
  name: string;
  raw: string;
  version: number;
  casRequired: boolean;
  expiration: Date | undefined;
  /** `expiration` as OpenBao answers it (the stored text, ns kept). */
  expirationText: string | undefined;
  modified: string | undefined;
  allowWildcardsInIdentityTemplates: boolean;
  allowSlashesInIdentityTemplates: boolean;
}

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
  readonly #acls = new Map<
    string,
    { acl: Acl; at: number; gen: number; term: number | undefined; policies: readonly Policy[] }
  >();
  readonly #ttlMs: number;
  readonly #term: () => number | undefined;
  /** Bumped on every local write, so cached ACLs built from older documents are dropped. */
  #gen = 0;
  /** Writes and deletes one at a time (OpenBao's modify lock): a CAS check and its write are one step. */
  #writing: Promise<unknown> = Promise.resolve();

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

  #serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#writing.then(fn, fn);
    this.#writing = run.catch(() => undefined);
    return run;
  }

  /**
   * OpenBao's `LoadDefaultPolicies`, for the active node after unseal: writes `default` only when
   * it is missing (operators may edit it), and `response-wrapping` whenever its text differs from
   * the built-in (it is immutable). `root` is never stored.
   */
  async setup(): Promise<void> {
    await this.#serial(async () => {
      const now = goTime(new Date());
      const def = await this.#record("default");
      if (def === undefined) await this.#put("default", this.#fresh(DEFAULT_POLICY, now, undefined));
      const rw = await this.#record("response-wrapping");
      // OpenBao 2.6.2 rewrites it with cas 0, which fails on its own records (DataVersion ≥ 1):
      // a changed response-wrapping would stop its unseal. Here it is simply put back.
      if (rw === undefined || rw.raw !== RESPONSE_WRAPPING_POLICY)
        await this.#put("response-wrapping", this.#fresh(RESPONSE_WRAPPING_POLICY, now, rw));
    });
  }

  #fresh(raw: string, now: string | undefined, old: PolicyRecord | undefined): PolicyRecord {
    return {
      dataVersion: (old?.dataVersion ?? 0) + 1,
      casRequired: false,
      raw,
      templated: parsePolicy("builtin", raw).templated,
      expiration: undefined,
      modified: now,
      allowWildcardsInIdentityTemplates: false,
      allowSlashesInIdentityTemplates: false,
      extra: old?.extra ?? {},
    };
  }

  async #put(name: string, record: PolicyRecord): Promise<void> {
    await this.#storage.put({ key: PREFIX + name, value: encodePolicyRecord(record) });
    this.#cache.delete(name);
    this.#gen++;
  }

  /** The stored record, expired ones included (OpenBao checks a write's CAS against those too). */
  async #record(name: string): Promise<PolicyRecord | undefined> {
    const e = await this.#storage.get(PREFIX + name);
    return e === undefined ? undefined : decodePolicyRecord(name, e.value);
  }

  /**
   * The stored record, or `undefined` when there is none or it has expired (OpenBao: gone). Nothing
   * is synthesised: `default` exists once setup() (or OpenBao) stored it.
   */
  async #live(name: string): Promise<PolicyRecord | undefined> {
    const r = await this.#record(name);
    if (r?.expiration !== undefined && Date.now() > r.expiration.getTime()) return undefined;
    return r;
  }

  /**
   * Policy names as OpenBao lists them: the stored ones but `response-wrapping`, then `root`. The
   * order is its `CollectKeys` walk: a level's names in storage order, then the folders met, last first.
   */
  async list(): Promise<string[]> {
    const names: string[] = [];
    const folders = [""];
    for (let folder = folders.pop(); folder !== undefined; folder = folders.pop()) {
      for (const n of [...(await this.#storage.list(PREFIX + folder))].sort()) {
        if (n.endsWith("/")) folders.push(folder + n);
        else if (!NON_ASSIGNABLE.has(folder + n)) names.push(folder + n);
      }
    }
    names.push("root");
    return names;
  }

  /** The policy with what `sys/policies/acl/<name>` shows of it, or `undefined` when there is none. */
  async info(name: string): Promise<PolicyInfo | undefined> {
    const n = normalizePolicyName(name);
    if (n === "root") {
      return {
        name: n,
        raw: "",
        version: 0,
        casRequired: false,
        expiration: undefined,
        expirationText: undefined,
        modified: undefined,
        allowWildcardsInIdentityTemplates: false,
        allowSlashesInIdentityTemplates: false,
      };
    }
    const r = await this.#live(n);
    if (r === undefined) return undefined;
    return {
      name: n,
      raw: r.raw,
      version: r.dataVersion,
      casRequired: r.casRequired,
      expiration: r.expiration,
      expirationText: r.expiration === undefined ? undefined : expirationText(r.expiration, r.expirationText),
      modified: r.modified,
      allowWildcardsInIdentityTemplates: r.allowWildcardsInIdentityTemplates,
      allowSlashesInIdentityTemplates: r.allowSlashesInIdentityTemplates,
    };
  }

  /** The policy text, or `undefined` when there is no such policy. `root` has an empty one. */
  async read(name: string): Promise<string | undefined> {
    return (await this.info(name))?.raw;
  }

  /**
   * Writes a policy as OpenBao's `SetPolicy` does: the text must parse (and hold only what Bulwark
   * enforces), `root` and `response-wrapping` are refused, CAS is checked against the stored
   * `DataVersion`, which goes up by one.
   */
  async write(name: string, raw: string, opts: PolicyWriteOptions = {}): Promise<void> {
    const n = normalizePolicyName(name);
    if (IMMUTABLE.has(n)) throw new PolicyError(`cannot update ${JSON.stringify(n)} policy`);
    const policy = parsePolicy(n, raw);
    await this.#serial(async () => {
      const existing = await this.#record(n);
      const casRequired = existing?.casRequired === true || opts.casRequired === true;
      if (opts.cas === undefined && casRequired)
        throw new PolicyError("check-and-set parameter required for this call");
      if (opts.cas !== undefined) {
        if (opts.cas === -1 && existing !== undefined)
          throw new PolicyError("check-and-set parameter set to -1 on existing entry");
        if (opts.cas !== -1 && opts.cas !== (existing?.dataVersion ?? 0))
          throw new PolicyError("check-and-set parameter did not match the current version");
      }
      const record: PolicyRecord = {
        dataVersion: (existing?.dataVersion ?? 0) + 1,
        casRequired: opts.casRequired === true,
        raw,
        templated: policy.templated,
        expiration: opts.expiration,
        expirationText: existing?.expirationText,
        modified: goTime(new Date()),
        allowWildcardsInIdentityTemplates: opts.allowWildcardsInIdentityTemplates === true,
        allowSlashesInIdentityTemplates: opts.allowSlashesInIdentityTemplates === true,
        extra: existing?.extra ?? {},
      };
      await this.#storage.put({ key: PREFIX + n, value: encodePolicyRecord(record) });
      this.#cache.set(n, { policy: applicable(policy, record), at: Date.now(), term: this.#term() });
      this.#gen++;
    });
  }

  async delete(name: string): Promise<void> {
    const n = normalizePolicyName(name);
    if (IMMUTABLE.has(n)) throw new PolicyError(`cannot delete ${JSON.stringify(n)} policy`);
    if (n === "default") throw new PolicyError("cannot delete default policy");
    await this.#serial(async () => {
      await this.#storage.delete(PREFIX + n);
      this.#cache.delete(n);
      this.#gen++;
    });
  }

  async #load(name: string): Promise<Policy | undefined> {
    const hit = this.#cache.get(name);
    const term = this.#term();
    if (
      hit !== undefined &&
      Date.now() - hit.at < this.#ttlMs &&
      hit.term === term &&
      current(hit.policy, Date.now())
    )
      return hit.policy;
    // A write during the read below must not have its document replaced by the older one read here.
    const gen = this.#gen;
    let record: PolicyRecord | undefined;
    try {
      // A token may name a policy that cannot exist (Vault accepts any name): it grants nothing.
      record = await this.#live(normalizePolicyName(name));
    } catch (e) {
      if (!(e instanceof PolicyError)) throw e;
      record = undefined;
    }
    let policy: Policy | undefined;
    if (record !== undefined) {
      try {
        policy = applicable(parsePolicy(name, record.raw), record);
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
    if (
      hit !== undefined &&
      hit.gen === this.#gen &&
      now - hit.at < this.#ttlMs &&
      hit.term === term &&
      hit.policies.every((p) => current(p, now))
    )
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
    this.#acls.set(key, { acl, at: now, gen, term, policies });
    return acl;
  }

  invalidate(): void {
    this.#cache.clear();
    this.#acls.clear();
    this.#gen++;
  }
}

/** The parsed policy, due for a reload at the record's expiration if that comes before a path's. */
function applicable(policy: Policy, record: PolicyRecord): Policy {
  const e = record.expiration;
  if (e === undefined || (policy.expiration !== undefined && policy.expiration <= e)) return policy;
  return { ...policy, expiration: e };
}

/** Whether a parse is still right at `now` (no path or record expiration passed since). */
function current(policy: Policy | undefined, now: number): boolean {
  return policy?.expiration === undefined || now <= policy.expiration.getTime();
}

/**
 * The token store's records exactly as Vault/OpenBao 2.6 keeps them (docs/vault-storage-formats.md
 * §4), so that one data set serves tokens from either server:
 *
 *   sys/token/salt                               plain UUID string (the salt of every storage name)
 *   sys/token/id/<salted id>                     token entry JSON (`logical.TokenEntry`)
 *   sys/token/accessor/<salted accessor>         {"token_id","accessor_id","namespace_id"}
 *   sys/token/parent/<salted parent>/<salted id> empty: the child index
 *   sys/expire/id/<entry path>/<salted id>       the token's lease (`leaseEntry`), which is what
 *                                                gives a TTL'd token its expiry in Vault
 *
 * Records are written with Go's field order and types (durations in nanoseconds, times as
 * RFC 3339 with nanoseconds) and Go's JSON escaping; fields Bulwark does not use are kept as they
 * were read, so rewriting an OpenBao entry (use counting, renewal, revoke-orphan) loses nothing.
 */
import { createHash, createHmac } from "node:crypto";
import { ProtoReader, WireType } from "../encoding/protobuf.js";
import { VaultError } from "../errors.js";
import { JsonNumber, parseJson, stringify } from "../json/lossless.js";

export const SALT_PATH = "sys/token/salt";
export const ID_PREFIX = "sys/token/id/";
export const ACCESSOR_PREFIX = "sys/token/accessor/";
export const PARENT_PREFIX = "sys/token/parent/";
export const LEASE_PREFIX = "sys/expire/id/";

/** `logical.TokenType`: the value written for service tokens (entries and lease `auth.token_type`). */
export const TOKEN_TYPE_SERVICE = 1;
export const TOKEN_TYPE_BATCH = 2;
/** Vault's marker for a token whose revocation is under way (`tokenRevocationPending`). */
export const REVOCATION_PENDING = -1;
const NS_PER_S = 1_000_000_000;

/**
 * `TokenStore.SaltID` in the root namespace: ids with a '.' (every `s.`/`hvs.` token) are
 * `"h" + hex(HMAC-SHA256(salt, id))`; dot-less ids (legacy tokens, custom ids, all accessors) are
 * `hex(SHA1(salt + id))`.
 */
export function saltId(salt: string, id: string): string {
  if (id.includes(".")) return `h${createHmac("sha256", salt).update(id, "utf8").digest("hex")}`;
  return createHash("sha1")
    .update(salt + id, "utf8")
    .digest("hex");
}

/**
 * The cubbyhole of a token without a `cubbyhole_id` (legacy, dot-less ids): Vault names it
 * `hex(SHA1(cubbyhole mount uuid + salted token id))`.
 */
export function legacyCubbyholeKey(cubbyholeUuid: string, saltedId: string): string {
  return createHash("sha1")
    .update(cubbyholeUuid + saltedId, "utf8")
    .digest("hex");
}

/** A stored record that is not what Vault writes there (corrupt or foreign data). */
export class TokenRecordError extends VaultError {
  static override readonly kind: string = "@bulwark/vault:TokenRecordError";
  override name = "TokenRecordError";
  constructor(path: string, problem: string) {
    super("internal", `token store record ${path}: ${problem}`);
  }
}

// ------------------------------------------------------------------ JSON as Go writes it

/** Go's encoding/json escapes these inside strings; the rest of the text is the same as JS's. */
const GO_ESCAPES: Record<string, string> = {
  "<": "\\u003c",
  ">": "\\u003e",
  "&": "\\u0026",
  "\u2028": "\\u2028",
  "\u2029": "\\u2029",
};

const enc = new TextEncoder();
const dec = new TextDecoder("utf-8", { fatal: true });

/** JSON bytes as Go's `json.Marshal` writes them (the characters above only occur inside strings). */
export function goJson(v: unknown): Uint8Array {
  return enc.encode(stringify(v).replace(/[<>&\u2028\u2029]/g, (c) => GO_ESCAPES[c] as string));
}

function parseObject(path: string, bytes: Uint8Array): Record<string, unknown> {
  let v: unknown;
  try {
    v = parseJson(dec.decode(bytes));
  } catch (e) {
    throw new TokenRecordError(path, `not JSON (${(e as Error).message})`);
  }
  if (typeof v !== "object" || v === null || Array.isArray(v))
    throw new TokenRecordError(path, "not a JSON object");
  return v as Record<string, unknown>;
}

/** A record's fields in `order`, then any others it had (kept as they were). */
function ordered(order: readonly string[], fields: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const k of order) out[k] = fields[k] ?? null;
  for (const k of Object.keys(fields)) if (!(k in out)) out[k] = fields[k];
  return out;
}

function num(path: string, r: Record<string, unknown>, key: string): number {
  const v = r[key];
  if (v === undefined || v === null) return 0;
  if (v instanceof JsonNumber) return v.toNumber();
  if (typeof v !== "number") throw new TokenRecordError(path, `${key} must be a number`);
  return v;
}

function str(path: string, r: Record<string, unknown>, key: string): string {
  const v = r[key];
  if (v === undefined || v === null) return "";
  if (typeof v !== "string") throw new TokenRecordError(path, `${key} must be a string`);
  return v;
}

function strings(path: string, r: Record<string, unknown>, key: string): string[] {
  const v = r[key];
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v) || v.some((x) => typeof x !== "string"))
    throw new TokenRecordError(path, `${key} must be a list of strings`);
  return v as string[];
}

function stringMap(path: string, r: Record<string, unknown>, key: string): Record<string, string> | null {
  const v = r[key];
  if (v === undefined || v === null) return null;
  if (typeof v !== "object" || Array.isArray(v) || Object.values(v).some((x) => typeof x !== "string"))
    throw new TokenRecordError(path, `${key} must be a map of strings`);
  return v as Record<string, string>;
}

/** Seconds → a Go `time.Duration` (ns). Whole seconds stay exact in a float64 up to ~146 years. */
export function nsFromSeconds(s: number): number {
  return Math.round(s * NS_PER_S);
}
/** A Go `time.Duration` (ns) → whole seconds, truncated as Go's `int64(d.Seconds())`. */
export function secondsFromNs(ns: number): number {
  return Math.trunc(ns / NS_PER_S);
}

// ------------------------------------------------------------------ times

export const GO_ZERO_TIME = "0001-01-01T00:00:00Z";
const RFC3339 = /^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d)$/;

/** Epoch ms → Go's RFC 3339 with nanoseconds (`time.RFC3339Nano`: trailing zeros dropped), UTC. */
export function goTime(ms: number): string {
  if (ms === 0) return GO_ZERO_TIME;
  const iso = new Date(ms).toISOString(); // …T23:57:42.300Z
  return iso.replace(/\.(\d{3})Z$/, (_, f: string) => {
    const t = f.replace(/0+$/, "");
    return t === "" ? "Z" : `.${t}Z`;
  });
}

/** A Go time (RFC 3339, any offset, up to ns) → epoch ms (truncated); Go's zero time → 0. */
export function parseGoTime(path: string, key: string, text: string): number {
  const m = RFC3339.exec(text);
  if (m === null)
    throw new TokenRecordError(path, `${key} must be an RFC 3339 time, not ${JSON.stringify(text)}`);
  const [, y, mo, d, h, mi, s, frac, zone] = m as unknown as string[];
  if (y === "0001" && mo === "01" && d === "01" && h === "00" && mi === "00" && s === "00" && zone === "Z")
    return 0;
  let ms = Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s));
  ms += frac === undefined ? 0 : Math.trunc(Number(`0.${frac}`) * 1000);
  if (zone !== "Z") {
    const sign = zone?.startsWith("-") ? -1 : 1;
    const [oh, om] = (zone as string).slice(1).split(":").map(Number) as [number, number];
    ms -= sign * (oh * 60 + om) * 60_000;
  }
  return ms;
}

// ------------------------------------------------------------------ token entry

/** `logical.TokenEntry` JSON field order (sdk/logical/token.go, v2.6.2). */
export const TOKEN_FIELDS = [
  "type",
  "id",
  "accessor",
  "parent",
  "policies",
  "inline_policy",
  "path",
  "meta",
  "internal_meta",
  "display_name",
  "num_uses",
  "creation_time",
  "ttl",
  "explicit_max_ttl",
  "role",
  "period",
  "DisplayName",
  "NumUses",
  "CreationTime",
  "ExplicitMaxTTL",
  "entity_id",
  "no_identity_policies",
  "bound_cidrs",
  "namespace_id",
  "cubbyhole_id",
] as const;

/** What the store reads of a token entry; `raw` is the whole record, rewritten with changes only. */
export interface TokenRecord {
  raw: Record<string, unknown>;
  type: number;
  id: string;
  accessor: string;
  /** The parent's token id ("" for an orphan). */
  parent: string;
  policies: string[];
  path: string;
  meta: Record<string, string> | null;
  display_name: string;
  num_uses: number;
  /** Unix seconds. */
  creation_time: number;
  /** Nanoseconds. */
  ttl: number;
  explicit_max_ttl: number;
  period: number;
  role: string;
  entity_id: string;
  bound_cidrs: string[];
  namespace_id: string;
  cubbyhole_id: string;
}

export function parseTokenRecord(path: string, bytes: Uint8Array): TokenRecord {
  const r = parseObject(path, bytes);
  // Vault upgrades entries written before 0.9 (capitalised duplicates) on read; so does this.
  const creation = num(path, r, "creation_time") || num(path, r, "CreationTime");
  const uses = num(path, r, "num_uses");
  const usesOld = num(path, r, "NumUses");
  return {
    raw: r,
    type: num(path, r, "type"),
    id: str(path, r, "id"),
    accessor: str(path, r, "accessor"),
    parent: str(path, r, "parent"),
    policies: strings(path, r, "policies"),
    path: str(path, r, "path"),
    meta: stringMap(path, r, "meta"),
    display_name: str(path, r, "display_name") || str(path, r, "DisplayName"),
    num_uses: usesOld !== 0 && (uses === 0 || usesOld < uses) ? usesOld : uses,
    creation_time: creation,
    ttl: num(path, r, "ttl"),
    explicit_max_ttl: num(path, r, "explicit_max_ttl") || num(path, r, "ExplicitMaxTTL"),
    period: num(path, r, "period"),
    role: str(path, r, "role"),
    entity_id: str(path, r, "entity_id"),
    bound_cidrs: strings(path, r, "bound_cidrs"),
    namespace_id: str(path, r, "namespace_id") || "root",
    cubbyhole_id: str(path, r, "cubbyhole_id"),
  };
}

/** A new token entry as OpenBao 2.6.2 writes it (every field, zero values included). */
export function newTokenRecord(f: {
  id: string;
  accessor: string;
  parent: string;
  policies: string[];
  path: string;
  meta: Record<string, string> | null;
  display_name: string;
  num_uses: number;
  creation_time: number;
  ttlS: number;
  explicitMaxTtlS: number;
  periodS: number;
  cubbyhole_id: string;
  entity_id?: string;
  bound_cidrs?: string[] | null;
}): Record<string, unknown> {
  return ordered(TOKEN_FIELDS, {
    type: TOKEN_TYPE_SERVICE,
    id: f.id,
    accessor: f.accessor,
    parent: f.parent,
    policies: f.policies,
    inline_policy: "",
    path: f.path,
    meta: f.meta,
    internal_meta: null,
    display_name: f.display_name,
    num_uses: f.num_uses,
    creation_time: f.creation_time,
    ttl: nsFromSeconds(f.ttlS),
    explicit_max_ttl: nsFromSeconds(f.explicitMaxTtlS),
    role: "",
    period: nsFromSeconds(f.periodS),
    DisplayName: "",
    NumUses: 0,
    CreationTime: 0,
    ExplicitMaxTTL: 0,
    entity_id: f.entity_id ?? "",
    no_identity_policies: false,
    bound_cidrs: f.bound_cidrs ?? null,
    namespace_id: "root",
    cubbyhole_id: f.cubbyhole_id,
  });
}

/** `raw` with `changes` applied, in Vault's order (deprecated duplicates folded in, as Vault does). */
export function encodeTokenRecord(
  raw: Record<string, unknown>,
  changes: Record<string, unknown> = {},
): Uint8Array {
  const next: Record<string, unknown> = { ...raw, ...changes };
  if (next.DisplayName !== undefined && next.DisplayName !== "") {
    if (next.display_name === "" || next.display_name === undefined) next.display_name = next.DisplayName;
    next.DisplayName = "";
  }
  for (const [old, now] of [
    ["CreationTime", "creation_time"],
    ["ExplicitMaxTTL", "explicit_max_ttl"],
  ] as const) {
    if (typeof next[old] === "number" && next[old] !== 0) {
      if (next[now] === 0 || next[now] === undefined) next[now] = next[old];
      next[old] = 0;
    }
  }
  if (typeof next.NumUses === "number" && next.NumUses !== 0 && !("num_uses" in changes)) {
    const u = typeof next.num_uses === "number" ? next.num_uses : 0;
    if (u === 0 || next.NumUses < u) next.num_uses = next.NumUses;
    next.NumUses = 0;
  }
  if (next.type === 0 || next.type === undefined) next.type = TOKEN_TYPE_SERVICE;
  if (next.namespace_id === "" || next.namespace_id === undefined) next.namespace_id = "root";
  // Defaults for fields an older writer left out (null where Go's zero value is nil).
  return goJson(
    ordered(TOKEN_FIELDS, {
      inline_policy: "",
      internal_meta: null,
      role: "",
      DisplayName: "",
      NumUses: 0,
      CreationTime: 0,
      ExplicitMaxTTL: 0,
      entity_id: "",
      no_identity_policies: false,
      cubbyhole_id: "",
      ttl: 0,
      explicit_max_ttl: 0,
      period: 0,
      num_uses: 0,
      ...next,
    }),
  );
}

// ------------------------------------------------------------------ accessor index

export interface AccessorRecord {
  token_id: string;
  accessor_id: string;
  namespace_id: string;
}

export function encodeAccessorRecord(tokenId: string, accessor: string): Uint8Array {
  return goJson({ token_id: tokenId, accessor_id: accessor, namespace_id: "root" });
}

export function parseAccessorRecord(path: string, bytes: Uint8Array): AccessorRecord {
  const r = parseObject(path, bytes);
  return {
    token_id: str(path, r, "token_id"),
    accessor_id: str(path, r, "accessor_id"),
    namespace_id: str(path, r, "namespace_id") || "root",
  };
}

// ------------------------------------------------------------------ lease

/** `leaseEntry` JSON field order (vault/expiration.go, v2.6.2). */
export const LEASE_FIELDS = [
  "lease_id",
  "client_token",
  "token_type",
  "path",
  "data",
  "secret",
  "auth",
  "issue_time",
  "expire_time",
  "last_renewal_time",
  "login_role",
  "version",
  "revokeErr",
] as const;

/** `logical.Auth` JSON field order (sdk/logical/auth.go with the embedded LeaseOptions first). */
export const AUTH_FIELDS = [
  "lease",
  "max_ttl",
  "renewable",
  "internal_data",
  "display_name",
  "policies",
  "token_policies",
  "identity_policies",
  "external_namespace_policies",
  "no_default_policy",
  "metadata",
  "client_token",
  "accessor",
  "period",
  "explicit_max_ttl",
  "num_uses",
  "entity_id",
  "alias",
  "group_aliases",
  "bound_cidrs",
  "creation_path",
  "token_type",
  "orphan",
  "policy_results",
  "mfa_requirement",
  "entity_created",
  "list_scan_response_keys_filter_path",
] as const;

export interface LeaseRecord {
  raw: Record<string, unknown>;
  lease_id: string;
  client_token: string;
  /** A token lease has an `auth` block; a secret's lease (another engine's) has none. */
  auth: Record<string, unknown> | null;
  /** `auth.lease`, ns. */
  leaseNs: number;
  renewable: boolean;
  /** Epoch ms; 0 for Go's zero time. */
  issue: number;
  expire: number;
  lastRenewal: number;
  issue_time: string;
  expire_time: string;
  last_renewal_time: string;
  revokeErr: string;
}

/** The lease id (and path under sys/expire/id/) of a root-namespace token: `<entry path>/<salted id>`. */
export function leaseId(entryPath: string, salted: string): string {
  return `${entryPath.replace(/\/+$/, "")}/${salted}`;
}

export function parseLeaseRecord(path: string, bytes: Uint8Array): LeaseRecord {
  const r = parseObject(path, bytes);
  const auth = r.auth;
  if (auth !== null && auth !== undefined && (typeof auth !== "object" || Array.isArray(auth)))
    throw new TokenRecordError(path, "auth must be an object or null");
  const a = (auth ?? null) as Record<string, unknown> | null;
  const issue_time = str(path, r, "issue_time") || GO_ZERO_TIME;
  const expire_time = str(path, r, "expire_time") || GO_ZERO_TIME;
  const last_renewal_time = str(path, r, "last_renewal_time") || GO_ZERO_TIME;
  return {
    raw: r,
    lease_id: str(path, r, "lease_id"),
    client_token: str(path, r, "client_token"),
    auth: a,
    leaseNs: a === null ? 0 : num(path, a, "lease"),
    renewable: a !== null && a.renewable === true,
    issue: parseGoTime(path, "issue_time", issue_time),
    expire: parseGoTime(path, "expire_time", expire_time),
    lastRenewal: parseGoTime(path, "last_renewal_time", last_renewal_time),
    issue_time,
    expire_time,
    last_renewal_time,
    revokeErr: str(path, r, "revokeErr"),
  };
}

/** The lease OpenBao registers for a service token created through `auth/token/…`. */
export function newLeaseRecord(f: {
  leaseId: string;
  token: string;
  accessor: string;
  path: string;
  policies: string[];
  meta: Record<string, string> | null;
  display_name: string;
  ttlS: number;
  renewable: boolean;
  periodS: number;
  explicitMaxTtlS: number;
  num_uses: number;
  orphan: boolean;
  nowMs: number;
  entity_id?: string;
}): Uint8Array {
  const auth = ordered(AUTH_FIELDS, {
    lease: nsFromSeconds(f.ttlS),
    max_ttl: 0,
    renewable: f.renewable,
    internal_data: null,
    display_name: f.display_name,
    policies: f.policies,
    token_policies: f.policies,
    identity_policies: null,
    external_namespace_policies: null,
    no_default_policy: false,
    metadata: f.meta,
    client_token: f.token,
    accessor: f.accessor,
    period: nsFromSeconds(f.periodS),
    explicit_max_ttl: nsFromSeconds(f.explicitMaxTtlS),
    num_uses: f.num_uses,
    entity_id: f.entity_id ?? "",
    alias: null,
    group_aliases: null,
    bound_cidrs: null,
    creation_path: f.path,
    token_type: TOKEN_TYPE_SERVICE,
    orphan: f.orphan,
    policy_results: null,
    mfa_requirement: null,
    entity_created: false,
    list_scan_response_keys_filter_path: "",
  });
  return goJson(
    ordered(LEASE_FIELDS, {
      lease_id: f.leaseId,
      client_token: f.token,
      token_type: 0,
      path: f.path,
      data: null,
      secret: null,
      auth,
      issue_time: goTime(f.nowMs),
      expire_time: f.ttlS > 0 ? goTime(f.nowMs + f.ttlS * 1000) : GO_ZERO_TIME,
      last_renewal_time: GO_ZERO_TIME,
      login_role: "",
      version: 1,
      revokeErr: "",
    }),
  );
}

/** A lease record with `changes`, in Vault's order (fields it does not know kept, after them). */
export function encodeLeaseRecord(
  raw: Record<string, unknown>,
  changes: Record<string, unknown> = {},
): Uint8Array {
  const next = { ...raw, ...changes };
  if (next.auth !== null && typeof next.auth === "object")
    next.auth = ordered(AUTH_FIELDS, next.auth as Record<string, unknown>);
  return goJson(ordered(LEASE_FIELDS, next));
}

/** A renewal as the expiration manager records it: new expiry, renewal time and `auth.lease`. */
export function renewedLeaseRecord(lease: LeaseRecord, ttlS: number, nowMs: number): Uint8Array {
  return encodeLeaseRecord(lease.raw, {
    auth: { ...(lease.auth ?? {}), lease: nsFromSeconds(ttlS) },
    expire_time: goTime(nowMs + ttlS * 1000),
    last_renewal_time: goTime(nowMs),
  });
}

// ------------------------------------------------------------------ batch tokens

/** The `pb.TokenEntry` a batch token carries (sdk/plugin/pb/backend.proto), as the store needs it. */
export interface BatchTokenEntry {
  parent: string;
  policies: string[];
  path: string;
  meta: Record<string, string> | null;
  display_name: string;
  /** Unix seconds. */
  creation_time: number;
  /** Nanoseconds. */
  ttl: number;
  role: string;
  entity_id: string;
  bound_cidrs: string[];
  namespace_id: string;
  type: number;
  inline_policy: string;
}

/**
 * Decodes the protobuf `TokenEntry` inside a batch token (after the barrier decrypted it). Fields
 * a batch token never fills (id, accessor, num_uses, …) are read past; malformed bytes throw.
 */
export function parseBatchTokenEntry(bytes: Uint8Array): BatchTokenEntry {
  const r = new ProtoReader(bytes, "batch token TokenEntry");
  const out: BatchTokenEntry = {
    parent: "",
    policies: [],
    path: "",
    meta: null,
    display_name: "",
    creation_time: 0,
    ttl: 0,
    role: "",
    entity_id: "",
    bound_cidrs: [],
    namespace_id: "",
    type: 0,
    inline_policy: "",
  };
  const mapEntry = (b: Uint8Array): [string, string] => {
    const m = new ProtoReader(b, "batch token TokenEntry map entry");
    let k = "";
    let v = "";
    while (!m.done) {
      const start = m.pos;
      const { field, wire } = m.tag();
      if (field === 1 && wire === WireType.LEN) k = m.string();
      else if (field === 2 && wire === WireType.LEN) v = m.string();
      else m.skip(field, wire, start);
    }
    return [k, v];
  };
  while (!r.done) {
    const start = r.pos;
    const { field, wire } = r.tag();
    const len = wire === WireType.LEN;
    const varint = wire === WireType.VARINT;
    if (field === 3 && len) out.parent = r.string();
    else if (field === 4 && len) out.policies.push(r.string());
    else if (field === 5 && len) out.path = r.string();
    else if (field === 6 && len) {
      const [k, v] = mapEntry(r.bytes());
      out.meta = { ...(out.meta ?? {}), [k]: v };
    } else if (field === 7 && len) out.display_name = r.string();
    else if (field === 9 && varint) out.creation_time = r.int64();
    else if (field === 10 && varint) out.ttl = r.int64();
    else if (field === 12 && len) out.role = r.string();
    else if (field === 14 && len) out.entity_id = r.string();
    else if (field === 15 && len) out.bound_cidrs.push(r.string());
    else if (field === 16 && len) out.namespace_id = r.string();
    else if (field === 18 && varint) out.type = r.uint32();
    else if (field === 20 && len) out.inline_policy = r.string();
    else r.skip(field, wire, start);
  }
  return out;
}

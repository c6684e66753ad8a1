/**
 * The token store (Vault's token auth method, service tokens), in Vault/OpenBao 2.6's own records
 * (token-records.ts): a data set OpenBao wrote is served here with its tokens, and tokens made here
 * work on OpenBao, with the same expiries.
 *
 *   sys/token/salt                               the salt of every storage name below
 *   sys/token/id/<salted id>                     the token entry (the token id is inside it)
 *   sys/token/accessor/<salted accessor>         accessor → token id
 *   sys/token/parent/<salted parent>/<salted id> revoking a parent revokes its children
 *   sys/expire/id/<path>/<salted id>             the token's lease: its expiry and renewals
 *
 * As in Vault, a token's expiry lives in its lease, not in its entry. Vault's expiration manager
 * revokes a token when its lease runs out; here an expired token is refused at once and revoked on
 * its next use, and {@link TokenStore.tidyExpired} (called on a timer by the active node) revokes
 * the ones nobody uses.
 */
import { createHmac, randomUUID } from "node:crypto";
import type { Backend } from "@bulwark/storage";
import { TokenError, VaultStateError } from "../errors.js";
import { randomBase62 } from "../ids.js";
import {
  decodeSscToken,
  digestsEqual,
  generateAccessor,
  generateToken,
  isBatchTokenId,
  isServiceTokenId,
  plausibleToken,
} from "./token-id.js";
import {
  ACCESSOR_PREFIX,
  type BatchTokenEntry,
  encodeAccessorRecord,
  encodeTokenRecord,
  goJson,
  goTime,
  ID_PREFIX,
  LEASE_PREFIX,
  type LeaseRecord,
  leaseId,
  legacyCubbyholeKey,
  newLeaseRecord,
  newTokenRecord,
  PARENT_PREFIX,
  parseAccessorRecord,
  parseBatchTokenEntry,
  parseLeaseRecord,
  parseTokenRecord,
  REVOCATION_PENDING,
  renewedLeaseRecord,
  SALT_PATH,
  saltId,
  secondsFromNs,
  TOKEN_TYPE_BATCH,
  type TokenRecord,
} from "./token-records.js";

/** Vault's system default and maximum token TTL: 768h (32 days). */
export const SYSTEM_MAX_TTL_S = 768 * 3600;

export interface TokenEntry {
  /** `batch`: a token carrying its own (barrier-encrypted) entry; nothing of it is stored. */
  type: "service" | "batch";
  /** The salted id: the entry's storage name (`sys/token/id/<hash>`); "" for a batch token. */
  hash: string;
  /** The token itself (Vault keeps it inside the entry, under the barrier). Never answered by accessor. */
  id: string;
  accessor: string;
  /** The parent's salted id; "" for an orphan. */
  parent: string;
  policies: string[];
  meta: Record<string, string> | null;
  display_name: string;
  /** Remaining uses; 0 = unlimited. */
  num_uses: number;
  /** Unix seconds. */
  creation_time: number;
  /** The TTL the token was created with, seconds (0 = never expires). */
  creation_ttl: number;
  /** Epoch milliseconds, from the lease; 0 = never. */
  expire_time: number;
  explicit_max_ttl: number;
  period: number;
  /** The lease's `auth.renewable` (false without a lease). */
  renewable: boolean;
  path: string;
  /** RFC 3339, the lease's issue time ("" for a token without a lease: init/generate-root's root). */
  issue_time: string;
  /** Unix seconds of the last renewal, when renewed. */
  last_renewal_time?: number;
  /** Seconds the current lease grants (`auth.lease`): a create or renew answer's lease_duration. */
  lease_ttl: number;
  role: string;
  entity_id: string;
  bound_cidrs: string[];
  /** The records as stored: rewrites keep every field Bulwark does not change. */
  record: TokenRecord;
  lease: LeaseRecord | undefined;
}

export interface CreateTokenRequest {
  id?: string;
  policies?: string[];
  meta?: Record<string, string>;
  noParent?: boolean;
  noDefaultPolicy?: boolean;
  renewable?: boolean;
  /** Seconds. */
  ttl?: number;
  explicitMaxTtl?: number;
  period?: number;
  displayName?: string;
  numUses?: number;
}

// TokenError (`invalid_request`, or `permission_denied` for revoked/expired tokens) lives with the
// package's other errors; re-exported for the store's callers.
export { TokenError };

const dec = new TextDecoder();
const ID = ID_PREFIX;
/** How old a full lease scan may get before a poll scans again (leases other writers added). */
const RESCAN_MS = 60_000;
/** Vault's key for the HMAC of server-side consistent tokens (a UUID string, created by Vault). */
const INDEX_HMAC_KEY_PATH = "core/index-header-hmac-key";

/** OpenBao's warning when a custom id is given (it is salted with SHA1, not HMAC-SHA256). */
const CUSTOM_ID_WARNING =
  "Supplying a custom ID for the token uses the weaker SHA1 hashing instead of the more secure SHA2-256 HMAC for token obfuscation. SHA1 hashed tokens on the wire leads to less secure lookups.";

function sortedUnique(xs: Iterable<string>): string[] {
  return [...new Set(xs)].sort();
}

/**
 * A duration of whole seconds as Vault's TTL warnings write it (`humanDuration`: Go's
 * `Duration.String()` without zero minutes or seconds: "768h", "1m40s", "1h0m5s", "48s").
 */
export function goDuration(seconds: number): string {
  const s = Math.max(0, Math.trunc(seconds));
  if (s === 0) return "0s";
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const r = s % 60;
  let out = h > 0 ? `${h}h${m}m${r}s` : m > 0 ? `${m}m${r}s` : `${r}s`;
  if (out.endsWith("m0s")) out = out.slice(0, -2);
  const i = out.indexOf("h0m");
  if (i > 0) out = out.slice(0, i + 1) + out.slice(i + 3);
  return out;
}

export interface IssuedToken {
  token: string;
  entry: TokenEntry;
  warnings: string[];
}

export interface TokenStoreOptions {
  /** How long a looked-up entry is reused without reading storage (default 1000 ms). */
  cacheMs?: number;
  now?: () => number;
  /**
   * The store's active term. When given, only a node with a term (the active one) creates the
   * salt, and an entry cached in another term is not reused.
   */
  activeTerm?: () => number | undefined;
  /**
   * The uuid of the cubbyhole mount (`logical/<uuid>/`), whose per-token storage a revocation
   * destroys as Vault does; `undefined` (or no option): there is no cubbyhole to destroy.
   */
  cubbyholeUuid?: () => Promise<string | undefined>;
  /**
   * Opens a barrier ciphertext written for path "" (Vault's `barrier.Decrypt(ctx, "", blob)`):
   * a batch token (`b.…`, `hvb.…`) is base64url of one, holding a protobuf TokenEntry. Without it
   * batch tokens are refused by name.
   */
  decryptBatch?: (ciphertext: Uint8Array) => Uint8Array | Promise<Uint8Array>;
}

export class TokenStore {
  readonly #storage: Backend;
  readonly #cache = new Map<string, { entry: TokenEntry; at: number; term: number | undefined }>();
  readonly #cacheMs: number;
  readonly #now: () => number;
  readonly #term: () => number | undefined;
  readonly #termGiven: boolean;
  readonly #cubbyholeUuid: () => Promise<string | undefined>;
  readonly #decryptBatch: TokenStoreOptions["decryptBatch"];
  /** The salt and the term it was read in (read again when the term changes). */
  #salt: { value: string; term: number | undefined } | undefined;
  readonly #saltedMemo = new Map<string, string>();
  #saltLoading: Promise<string> | undefined;
  /**
   * Bumped whenever an entry is written or removed. A lookup caches what it read only when no
   * write or removal happened while it was reading, so a read racing a revoke cannot put the
   * revoked entry back into the cache.
   */
  #epoch = 0;
  /** Per-token serialisation of read-modify-write (use counting, renew, revoke), by salted id. */
  readonly #tails = new Map<string, Promise<unknown>>();

  /**
   * Revocations and renewals through this store apply at once; on an HA standby a revocation made
   * by the active node is seen within `cacheMs`, or at once when the term changes.
   */
  constructor(storage: Backend, opts: TokenStoreOptions = {}) {
    this.#storage = storage;
    this.#cacheMs = opts.cacheMs ?? 1000;
    this.#now = opts.now ?? Date.now;
    this.#term = opts.activeTerm ?? (() => undefined);
    this.#termGiven = opts.activeTerm !== undefined;
    this.#cubbyholeUuid = opts.cubbyholeUuid ?? (async () => undefined);
    this.#decryptBatch = opts.decryptBatch;
  }

  // ------------------------------------------------------------------ salt

  /**
   * `sys/token/salt`, read once. Missing, it is created — by the active node only (a standby
   * writing its own would fork every storage name) and once: concurrent first callers share one
   * load, and the value is only cached once it is stored.
   */
  async #saltValue(): Promise<string> {
    // Vault never changes a salt; it is read again once per term all the same, so a node that was
    // away (or a data set restored under it) does not go on with names from another salt.
    if (this.#salt !== undefined && this.#salt.term === this.#term()) return this.#salt.value;
    this.#saltLoading ??= (async () => {
      const term = this.#term();
      const e = await this.#storage.get(SALT_PATH);
      // Vault treats an empty salt as missing, and so does this.
      let salt = e === undefined ? "" : dec.decode(e.value);
      if (salt === "") {
        if (this.#termGiven && this.#term() === undefined) {
          throw new VaultStateError(
            "not_active",
            "the token store has no salt yet (sys/token/salt): only the active node creates it, on its first token operation; send the request to the active node",
          );
        }
        salt = randomUUID();
        await this.#storage.put({ key: SALT_PATH, value: new TextEncoder().encode(salt) });
      }
      if (this.#salt !== undefined && this.#salt.value !== salt) {
        this.#saltedMemo.clear();
        this.#cache.clear();
      }
      this.#salt = { value: salt, term };
      return salt;
    })().finally(() => {
      this.#saltLoading = undefined;
    });
    return this.#saltLoading;
  }

  /** The storage name of a token id or accessor (`TokenStore.SaltID`, root namespace). */
  async saltId(id: string): Promise<string> {
    return saltId(await this.#saltValue(), id);
  }

  // ------------------------------------------------------------------ issue

  /** A root token: policy `root`, no TTL, no parent, no lease (init, generate-root, `server -dev`). */
  async createRoot(id?: string): Promise<IssuedToken> {
    const nowMs = this.#now();
    if (id !== undefined) {
      if (!plausibleToken(id) || id.includes(".")) {
        throw new TokenError(
          "invalid_request",
          "a root token id must be 1 to 256 printable ASCII characters without spaces or '.'",
        );
      }
      if ((await this.#storage.get(ID + (await this.saltId(id)))) !== undefined)
        throw new TokenError("invalid_request", "a token with this id already exists");
    }
    const token = id ?? generateToken();
    const record = newTokenRecord({
      id: token,
      accessor: generateAccessor(),
      parent: "",
      policies: ["root"],
      path: "auth/token/root",
      meta: null,
      display_name: "root",
      num_uses: 0,
      creation_time: Math.floor(nowMs / 1000),
      ttlS: 0,
      explicitMaxTtlS: 0,
      periodS: 0,
      cubbyhole_id: isServiceTokenId(token) ? randomBase62(24) : "",
    });
    const entry = await this.#writeNew(record, undefined, undefined);
    return { token, entry, warnings: [] };
  }

  /**
   * A child of `parent` (Vault's `auth/token/create` rules): policies default to the parent's and
   * must be a subset of them unless the caller has sudo; `root` only from a root token; custom
   * ids, orphans (outside create-orphan) and periodic tokens need root or sudo; the TTL defaults
   * to 768h and is capped by explicit_max_ttl and 768h. As in Vault, a child's TTL is not capped
   * by its parent's: the child is revoked with its parent instead.
   */
  async create(
    parent: TokenEntry,
    req: CreateTokenRequest,
    ctx: { sudo: boolean; orphanPath?: boolean; path?: string },
  ): Promise<IssuedToken> {
    const warnings: string[] = [];
    if (parent.type === "batch")
      throw new TokenError("invalid_request", "batch tokens cannot create more tokens");
    // Vault's rule: a use-limited token must not mint tokens that escape its use limit.
    // (A token on its last use, num_uses -1, is being revoked: no children either.)
    if (parent.num_uses !== 0) {
      throw new TokenError("invalid_request", "restricted use token cannot generate child tokens");
    }
    const parentIsRoot = parent.policies.includes("root");
    const privileged = parentIsRoot || ctx.sudo;
    if (req.id !== undefined) {
      if (!privileged)
        throw new TokenError("invalid_request", "root or sudo privileges required to specify token id");
      if (!plausibleToken(req.id) || req.id.includes(".")) {
        throw new TokenError(
          "invalid_request",
          "token id must be printable ASCII without '.', at most 256 characters",
        );
      }
      if ((await this.#storage.get(ID + (await this.saltId(req.id)))) !== undefined) {
        throw new TokenError("invalid_request", "cannot create a token with a duplicate ID");
      }
    }
    if (req.noParent === true && !privileged && ctx.orphanPath !== true) {
      throw new TokenError("invalid_request", "root or sudo privileges required to create orphan token");
    }
    if ((req.period ?? 0) > 0 && !privileged) {
      throw new TokenError("invalid_request", "root or sudo privileges required to create periodic token");
    }
    // Vault: no policies (or an empty list) inherits the parent's as they are; named policies must
    // be held by the parent (default included) unless the caller has root or sudo, and default is
    // added only when the parent has it or the caller is privileged.
    const named = req.policies !== undefined && req.policies.length > 0;
    let policies = (named ? (req.policies as string[]) : parent.policies)
      .map((p) => p.trim().toLowerCase())
      .filter((p) => p.length > 0);
    if (policies.includes("root") && !parentIsRoot) {
      throw new TokenError("invalid_request", "root tokens may only be created by a root token");
    }
    let addDefault = false;
    if (named && !privileged) {
      const allowed = new Set(parent.policies);
      const extra = policies.filter((p) => !allowed.has(p));
      if (extra.length > 0) {
        throw new TokenError(
          "invalid_request",
          `child policies must be subset of parent: ${extra.join(", ")} not held by the parent`,
        );
      }
      addDefault = allowed.has("default");
    } else if (named) addDefault = true;
    if (policies.includes("root")) policies = ["root"];
    else if (req.noDefaultPolicy === true) policies = policies.filter((p) => p !== "default");
    else if (addDefault) policies.push("default");
    policies = sortedUnique(policies);

    const nowMs = this.#now();
    const explicitMax = req.explicitMaxTtl ?? 0;
    const period = req.period ?? 0;
    let ttl = period > 0 ? period : (req.ttl ?? 0);
    const isRootChild = policies.length === 1 && policies[0] === "root";
    if (
      ttl === 0 &&
      !(isRootChild && req.ttl === undefined && explicitMax === 0 && period === 0 && parent.expire_time === 0)
    ) {
      ttl = SYSTEM_MAX_TTL_S;
    }
    if (explicitMax > 0 && (ttl === 0 || ttl > explicitMax)) ttl = explicitMax;
    if (ttl > SYSTEM_MAX_TTL_S) {
      // Vault caps a period, too, at the system max (it only escapes the overall maximum).
      const what = period > 0 ? "period" : "TTL";
      warnings.push(
        `${what} of "${goDuration(ttl)}" exceeded the effective max_ttl of "${goDuration(SYSTEM_MAX_TTL_S)}"; ${what} value is capped accordingly`,
      );
      ttl = SYSTEM_MAX_TTL_S;
    }
    if (req.id !== undefined) warnings.push(CUSTOM_ID_WARNING);
    const orphan = req.noParent === true || ctx.orphanPath === true;
    const token = req.id ?? generateToken();
    const display = req.displayName ?? "";
    const path = ctx.path ?? "auth/token/create";
    const accessor = generateAccessor();
    const meta = req.meta === undefined || Object.keys(req.meta).length === 0 ? null : { ...req.meta };
    // Vault's sanitising: every character outside [a-zA-Z0-9-] becomes '-', one trailing '-' goes.
    const displayName =
      display.length > 0 ? `token-${display}`.replace(/[^A-Za-z0-9-]/g, "-").replace(/-$/, "") : "token";
    const record = newTokenRecord({
      id: token,
      accessor,
      parent: orphan ? "" : parent.id,
      // Vault: a child (not an orphan) inherits its parent's entity and CIDR binding.
      entity_id: orphan ? "" : parent.entity_id,
      bound_cidrs: orphan || parent.bound_cidrs.length === 0 ? null : parent.bound_cidrs,
      policies,
      path,
      meta,
      display_name: displayName,
      num_uses: req.numUses ?? 0,
      creation_time: Math.floor(nowMs / 1000),
      ttlS: ttl,
      explicitMaxTtlS: explicitMax,
      periodS: period,
      // OpenBao gives a cubbyhole id to s./hvs. tokens only (custom ids keep the legacy naming).
      cubbyhole_id: isServiceTokenId(token) ? randomBase62(24) : "",
    });
    const salted = await this.saltId(token);
    // OpenBao registers a lease for every service token made through auth/token/… (a root child
    // without a TTL gets one that never expires).
    const lease = newLeaseRecord({
      leaseId: leaseId(path, salted),
      token,
      accessor,
      path,
      policies,
      meta,
      display_name: displayName,
      ttlS: ttl,
      renewable: ttl > 0 && (req.renewable ?? true),
      periodS: period,
      explicitMaxTtlS: explicitMax,
      num_uses: req.numUses ?? 0,
      orphan,
      nowMs,
      entity_id: orphan ? "" : parent.entity_id,
    });
    // A custom id is checked again under its own lock: two callers creating the same id at once
    // would otherwise both pass the check above, the second overwriting the first.
    const save = async (): Promise<TokenEntry> => {
      if (req.id === undefined) return this.#writeNew(record, lease, orphan ? undefined : parent.hash);
      return this.#serial(salted, async () => {
        if ((await this.#storage.get(ID + salted)) !== undefined) {
          throw new TokenError("invalid_request", "cannot create a token with a duplicate ID");
        }
        return this.#writeNew(record, lease, orphan ? undefined : parent.hash);
      });
    };
    let entry: TokenEntry;
    if (orphan) entry = await save();
    else {
      // Under the parent's lock, which a revoke holds while it collects the children: a child
      // written after that collection would outlive its revoked parent.
      entry = await this.#serial(parent.hash, async () => {
        if ((await this.#storage.get(ID + parent.hash)) === undefined) {
          throw new TokenError("permission_denied", "bad token: the parent token was revoked");
        }
        return save();
      });
    }
    return { token, entry, warnings };
  }

  /**
   * Writes a new token: accessor index, parent index and lease first, the entry last — a crash
   * leaves at most orphaned indexes (which Vault's tidy removes too), never a token that cannot be
   * found by accessor, revoked with its parent, or that has no expiry.
   */
  async #writeNew(
    record: Record<string, unknown>,
    lease: Uint8Array | undefined,
    parentHash: string | undefined,
  ): Promise<TokenEntry> {
    const salt = await this.#saltValue();
    const id = record.id as string;
    const accessor = record.accessor as string;
    const salted = saltId(salt, id);
    await this.#storage.put({
      key: ACCESSOR_PREFIX + saltId(salt, accessor),
      value: encodeAccessorRecord(id, accessor),
    });
    if (parentHash !== undefined)
      await this.#storage.put({ key: `${PARENT_PREFIX}${parentHash}/${salted}`, value: new Uint8Array(0) });
    const leasePath = LEASE_PREFIX + leaseId(record.path as string, salted);
    const parsedLease = lease === undefined ? undefined : parseLeaseRecord(leasePath, lease);
    if (lease !== undefined) {
      await this.#storage.put({ key: leasePath, value: lease });
      this.#noteExpiry(parsedLease?.expire ?? 0);
    }
    const bytes = goJson(record);
    await this.#storage.put({ key: ID + salted, value: bytes });
    this.#cache.delete(salted);
    this.#epoch++;
    return this.#toEntry(salt, salted, parseTokenRecord(ID + salted, bytes), parsedLease);
  }

  #toEntry(salt: string, salted: string, r: TokenRecord, lease: LeaseRecord | undefined): TokenEntry {
    return {
      type: "service",
      hash: salted,
      id: r.id,
      accessor: r.accessor,
      parent: r.parent === "" ? "" : saltId(salt, r.parent),
      policies: r.policies,
      meta: r.meta,
      display_name: r.display_name,
      num_uses: r.num_uses,
      creation_time: r.creation_time,
      creation_ttl: secondsFromNs(r.ttl),
      expire_time: lease?.expire ?? 0,
      explicit_max_ttl: secondsFromNs(r.explicit_max_ttl),
      period: secondsFromNs(r.period),
      renewable: lease?.renewable ?? false,
      path: r.path,
      issue_time: lease?.issue_time ?? "",
      ...(lease !== undefined && lease.lastRenewal !== 0
        ? { last_renewal_time: Math.floor(lease.lastRenewal / 1000) }
        : {}),
      lease_ttl: lease === undefined ? 0 : secondsFromNs(lease.leaseNs),
      role: r.role,
      entity_id: r.entity_id,
      bound_cidrs: r.bound_cidrs,
      record: r,
      lease,
    };
  }

  // ------------------------------------------------------------------ look up

  /**
   * A batch token: its TokenEntry is inside it, barrier-encrypted for path "" (nothing is stored).
   * Live while creation_time + ttl has not passed and its parent (if any) is live, as in OpenBao.
   */
  async #lookupBatch(token: string): Promise<TokenEntry | undefined> {
    const decrypt = this.#decryptBatch;
    if (decrypt === undefined) {
      throw new TokenError(
        "invalid_request",
        "batch tokens (b.…, hvb.…) are not supported by this Bulwark server: it has no barrier access to open them; use a service token",
      );
    }
    const body = token.slice(token.startsWith("hvb.") ? 4 : 2);
    // `<token>.<namespace id>`: a namespace's token (Bulwark serves the root namespace only).
    if (!/^[A-Za-z0-9_-]+$/.test(body)) return undefined;
    let b: BatchTokenEntry;
    try {
      b = parseBatchTokenEntry(await decrypt(new Uint8Array(Buffer.from(body, "base64url"))));
    } catch {
      return undefined; // not a ciphertext of this keyring, or not a TokenEntry: a bad token
    }
    if (b.namespace_id !== "" && b.namespace_id !== "root") return undefined;
    const expire = b.creation_time * 1000 + Math.trunc(b.ttl / 1_000_000);
    if (this.#now() > expire) return undefined;
    let parentHash = "";
    if (b.parent !== "") {
      const parent = await this.lookup(b.parent);
      if (parent === undefined) return undefined;
      parentHash = parent.hash;
    }
    const ttl = secondsFromNs(b.ttl);
    const record: TokenRecord = {
      raw: {},
      type: TOKEN_TYPE_BATCH,
      id: token,
      accessor: "",
      parent: b.parent,
      policies: b.policies,
      path: b.path,
      meta: b.meta,
      display_name: b.display_name,
      num_uses: 0,
      creation_time: b.creation_time,
      ttl: b.ttl,
      explicit_max_ttl: 0,
      period: 0,
      role: b.role,
      entity_id: b.entity_id,
      bound_cidrs: b.bound_cidrs,
      namespace_id: "root",
      cubbyhole_id: "",
    };
    return {
      type: "batch",
      hash: "",
      id: token,
      accessor: "",
      parent: parentHash,
      policies: b.policies,
      meta: b.meta,
      display_name: b.display_name,
      num_uses: 0,
      creation_time: b.creation_time,
      creation_ttl: ttl,
      expire_time: expire,
      explicit_max_ttl: 0,
      period: 0,
      renewable: false,
      path: b.path,
      // OpenBao's lease times of a batch token: issued at creation_time, expiring at + ttl.
      issue_time: goTime(b.creation_time * 1000),
      lease_ttl: ttl,
      role: b.role,
      entity_id: b.entity_id,
      bound_cidrs: b.bound_cidrs,
      record,
      lease: undefined,
    };
  }

  /** The live entry for a token string, or `undefined` (unknown, malformed, expired or revoked). */
  async lookup(token: string): Promise<TokenEntry | undefined> {
    if (isBatchTokenId(token)) {
      // Longer than service tokens (the entry is inside), still bounded work for junk.
      return token.length <= 8192 && /^[A-Za-z0-9._-]+$/.test(token) ? this.#lookupBatch(token) : undefined;
    }
    if (!plausibleToken(token)) return undefined;
    // The salted id of a token seen before is remembered: HMAC-SHA256 costs ~4 µs, and every
    // request authenticates (the salt never changes once created).
    await this.#saltValue(); // first: a new salt (new term) clears the memo
    let salted = this.#saltedMemo.get(token);
    if (salted === undefined) {
      const id = await this.#storedId(token);
      if (id === undefined) return undefined;
      salted = await this.saltId(id);
      if (this.#saltedMemo.size >= 10_000) this.#saltedMemo.clear();
      this.#saltedMemo.set(token, salted);
    }
    return this.#bySalted(salted);
  }

  /**
   * The id a token is stored under: itself, or for a Vault ≥ 1.10 server-side consistent token
   * (`hvs.` + a signed protobuf) the inner id, once its HMAC checks out with the key Vault keeps
   * at core/index-header-hmac-key (Vault's checkSSCTokenInternal).
   */
  async #storedId(token: string): Promise<string | undefined> {
    const ssc = decodeSscToken(token);
    if (ssc === undefined) return token;
    const key = await this.#storage.get(INDEX_HMAC_KEY_PATH);
    if (key === undefined) return undefined;
    const mac = createHmac("sha256", key.value).update(ssc.signed).digest();
    return digestsEqual(mac.toString("hex"), Buffer.from(ssc.hmac).toString("hex")) ? ssc.inner : undefined;
  }

  async lookupAccessor(accessor: string): Promise<TokenEntry | undefined> {
    if (!plausibleToken(accessor)) return undefined;
    const path = ACCESSOR_PREFIX + (await this.saltId(accessor));
    const e = await this.#storage.get(path);
    if (e === undefined) return undefined;
    const a = parseAccessorRecord(path, e.value);
    if (a.token_id === "" || !plausibleToken(a.token_id) || isBatchTokenId(a.token_id)) return undefined;
    const entry = await this.#bySalted(await this.saltId(a.token_id));
    return entry !== undefined && digestsEqual(entry.accessor, accessor) ? entry : undefined;
  }

  /**
   * Authenticates a request: the live entry, with one use consumed for limited-use tokens. The
   * entry returned is as OpenBao's UseToken leaves it, so the request sees what OpenBao's does:
   * `num_uses` one lower, or -1 (revocation pending) on the last use, which revokes the token
   * after this request is authorised.
   */
  async authenticate(token: string): Promise<TokenEntry | undefined> {
    const entry = await this.lookup(token);
    if (entry === undefined) return undefined;
    // OpenBao lets a token bound to CIDRs in only from those addresses. The store does not see the
    // client's address, so such a token (made by OpenBao or Vault) is refused rather than let in
    // from anywhere — OpenBao's answer to an address outside the CIDRs is the same 403.
    if (entry.bound_cidrs.length > 0) {
      throw new TokenError(
        "permission_denied",
        "this token is bound to CIDRs (bound_cidrs), which Bulwark does not check: use a token without bound_cidrs",
      );
    }
    if (entry.num_uses === 0) return entry;
    // Consume the use under the token's lock from a fresh read: concurrent requests must not
    // both spend the same remaining use.
    return this.#serial(entry.hash, async () => {
      const current = await this.#readLive(entry.hash);
      if (current === undefined) return undefined;
      const left = current.num_uses === 1 ? REVOCATION_PENDING : current.num_uses - 1;
      if (left === REVOCATION_PENDING) await this.#revokeLocked(current.hash);
      else await this.#rewrite(current, { num_uses: left });
      return { ...current, num_uses: left };
    });
  }

  /** Runs `fn` after every earlier `#serial` call for the same salted id has settled. */
  async #serial<T>(hash: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.#tails.get(hash) ?? Promise.resolve();
    const run = prev.then(fn, fn);
    const tail = run.catch(() => undefined);
    this.#tails.set(hash, tail);
    try {
      return await run;
    } finally {
      if (this.#tails.get(hash) === tail) this.#tails.delete(hash);
    }
  }

  /**
   * Reads an entry and its lease. `undefined`: missing, swapped (the id inside does not salt to
   * the storage name), revocation pending; `"dead"`: expired, or a TTL'd token without its lease
   * (which OpenBao revokes on sight).
   */
  async #read(salted: string): Promise<TokenEntry | "dead" | undefined> {
    const path = ID + salted;
    const e = await this.#storage.get(path);
    if (e === undefined) return undefined;
    const r = parseTokenRecord(path, e.value);
    const salt = await this.#saltValue();
    if (r.id === "" || !digestsEqual(saltId(salt, r.id), salted)) return undefined;
    if (r.num_uses < 0) return undefined; // -1: revocation pending (Vault's tokenRevocationPending)
    const leasePath = LEASE_PREFIX + leaseId(r.path, salted);
    const l = await this.#storage.get(leasePath);
    const lease = l === undefined ? undefined : parseLeaseRecord(leasePath, l.value);
    const nonExpiringRoot = r.policies.length === 1 && r.policies[0] === "root" && r.ttl === 0;
    if (lease === undefined && !nonExpiringRoot) return "dead";
    if (lease !== undefined && lease.expire !== 0 && lease.expire <= this.#now()) return "dead";
    return this.#toEntry(salt, salted, r, lease);
  }

  /** The stored entry, uncached; an expired one is revoked (caller holds the token's lock). */
  async #readLive(salted: string): Promise<TokenEntry | undefined> {
    const entry = await this.#read(salted);
    if (entry === "dead") {
      await this.#revokeLocked(salted);
      return undefined;
    }
    return entry;
  }

  async #bySalted(salted: string): Promise<TokenEntry | undefined> {
    const now = this.#now();
    const hit = this.#cache.get(salted);
    const term = this.#term();
    let entry: TokenEntry | undefined;
    if (hit !== undefined && now - hit.at < this.#cacheMs && hit.term === term) {
      entry = hit.entry;
    } else {
      const epoch = this.#epoch;
      const read = await this.#read(salted);
      if (read === undefined) {
        this.#cache.delete(salted);
        return undefined;
      }
      if (read === "dead") {
        this.#cache.delete(salted);
        await this.revoke(salted).catch(() => undefined);
        return undefined;
      }
      entry = read;
      if (entry.num_uses === 0 && epoch === this.#epoch && term === this.#term())
        this.#cache.set(salted, { entry, at: now, term });
      if (this.#cache.size > 10_000) this.#cache.clear();
    }
    if (entry.expire_time !== 0 && entry.expire_time <= now) {
      this.#cache.delete(salted);
      await this.revoke(salted).catch(() => undefined);
      return undefined;
    }
    return entry;
  }

  /** Rewrites an entry with `changes`, every other field as stored. */
  async #rewrite(entry: TokenEntry, changes: Record<string, unknown>): Promise<void> {
    await this.#storage.put({ key: ID + entry.hash, value: encodeTokenRecord(entry.record.raw, changes) });
    this.#cache.delete(entry.hash);
    this.#epoch++;
  }

  // ------------------------------------------------------------------ renew, revoke

  /**
   * Extends a token's lease as Vault's expiration manager does (`framework.CalculateTTL`): by
   * `increment` seconds, else by the lease's current TTL (periodic tokens: their period), never
   * past explicit_max_ttl or 768h after the lease was issued.
   */
  async renew(given: TokenEntry, increment?: number): Promise<{ entry: TokenEntry; warnings: string[] }> {
    if (given.type === "batch") throw new TokenError("invalid_request", "batch tokens cannot be renewed");
    // Work on the stored entry under the token's lock: renewing a copy read earlier would write
    // back a spent use count, or re-create a token revoked in the meantime.
    return this.#serial(given.hash, async () => {
      const entry = await this.#readLive(given.hash);
      if (entry === undefined)
        throw new TokenError("permission_denied", "bad token: it was revoked or has expired");
      return this.#renewLocked(entry, increment);
    });
  }

  async #renewLocked(
    entry: TokenEntry,
    increment?: number,
  ): Promise<{ entry: TokenEntry; warnings: string[] }> {
    const lease = entry.lease;
    // OpenBao's texts: a token without a lease (init's root) has no lease id to renew.
    if (lease === undefined) throw new TokenError("invalid_request", "invalid lease ID");
    if (lease.expire === 0) throw new TokenError("invalid_request", "lease is not renewable");
    if (lease.revokeErr !== "")
      throw new TokenError("invalid_request", "lease is expired and has failed previous revocation attempts");
    if (!lease.renewable) throw new TokenError("invalid_request", "lease is not renewable");
    const warnings: string[] = [];
    const nowMs = this.#now();
    // CalculateTTL works in whole seconds: now and the start are truncated.
    const nowS = Math.floor(nowMs / 1000);
    const startS = Math.floor(lease.issue / 1000);
    let maxTtl = SYSTEM_MAX_TTL_S;
    const backendMax = secondsFromNs(Number(lease.auth?.max_ttl ?? 0) || 0);
    if (backendMax > 0 && backendMax < maxTtl) maxTtl = backendMax;
    if (entry.explicit_max_ttl > 0 && entry.explicit_max_ttl < maxTtl) maxTtl = entry.explicit_max_ttl;
    let ttl: number;
    let maxValidS = 0;
    if (entry.period > 0) {
      ttl = entry.period;
      if (ttl > maxTtl) {
        warnings.push(
          `period of "${goDuration(ttl)}" exceeded the effective max_ttl of "${goDuration(maxTtl)}"; period value is capped accordingly`,
        );
        ttl = maxTtl;
      }
      if (entry.explicit_max_ttl > 0) maxValidS = startS + entry.explicit_max_ttl;
    } else {
      ttl =
        increment !== undefined && increment > 0
          ? increment
          : entry.lease_ttl > 0
            ? entry.lease_ttl
            : SYSTEM_MAX_TTL_S;
      maxValidS = startS + maxTtl;
    }
    if (maxValidS !== 0) {
      const left = maxValidS - nowS;
      if (left <= 0) throw new TokenError("invalid_request", "past the max TTL, cannot renew");
      if (left < ttl) {
        warnings.push(
          `TTL of "${goDuration(ttl)}" exceeded the effective max_ttl of "${goDuration(left)}"; TTL value is capped accordingly`,
        );
        ttl = left;
      }
    }
    const leasePath = LEASE_PREFIX + leaseId(entry.path, entry.hash);
    const bytes = renewedLeaseRecord(lease, ttl, nowMs);
    await this.#storage.put({ key: leasePath, value: bytes });
    this.#noteExpiry(nowMs + ttl * 1000);
    this.#cache.delete(entry.hash);
    this.#epoch++;
    const next = this.#toEntry(
      await this.#saltValue(),
      entry.hash,
      entry.record,
      parseLeaseRecord(leasePath, bytes),
    );
    return { entry: next, warnings };
  }

  /** Revokes a token (by salted id) and, recursively, every token it created. Unknown ids are a no-op. */
  async revoke(hash: string): Promise<void> {
    if (hash === "") return; // a batch token: nothing stored, nothing to revoke
    await this.#serial(hash, () => this.#revokeLocked(hash));
  }

  async #revokeLocked(hash: string): Promise<void> {
    for (const child of await this.#children(hash)) await this.revoke(child);
    await this.#remove(hash);
  }

  /** Revokes only the token; its children become orphans (Vault's revoke-orphan). */
  async revokeOrphan(hash: string): Promise<void> {
    await this.#serial(hash, async () => {
      for (const child of await this.#children(hash)) {
        await this.#serial(child, async () => {
          const path = ID + child;
          const e = await this.#storage.get(path);
          if (e !== undefined) {
            const r = parseTokenRecord(path, e.value);
            await this.#storage.put({ key: path, value: encodeTokenRecord(r.raw, { parent: "" }) });
            this.#cache.delete(child);
            this.#epoch++;
          }
        });
        await this.#storage.delete(`${PARENT_PREFIX}${hash}/${child}`);
      }
      await this.#remove(hash);
    });
  }

  async #children(hash: string): Promise<string[]> {
    return (await this.#storage.list(`${PARENT_PREFIX}${hash}/`)).filter((n) => !n.endsWith("/"));
  }

  async #remove(hash: string): Promise<void> {
    this.#cache.delete(hash);
    this.#epoch++;
    const path = ID + hash;
    const e = await this.#storage.get(path);
    if (e === undefined) return;
    const r = parseTokenRecord(path, e.value);
    const salt = await this.#saltValue();
    // The entry goes first: once it is gone the token no longer authenticates, whatever follows.
    await this.#storage.delete(path);
    // Again after the delete: a lookup that started in between read the entry still present.
    this.#cache.delete(hash);
    this.#epoch++;
    await this.#destroyCubbyhole(r, hash);
    await this.#storage.delete(LEASE_PREFIX + leaseId(r.path, hash));
    if (r.parent !== "") await this.#storage.delete(`${PARENT_PREFIX}${saltId(salt, r.parent)}/${hash}`);
    if (r.accessor !== "") await this.#storage.delete(ACCESSOR_PREFIX + saltId(salt, r.accessor));
  }

  /** Vault destroys a revoked token's cubbyhole (`logical/<cubbyhole uuid>/<cubbyhole id>/…`). */
  async #destroyCubbyhole(r: TokenRecord, salted: string): Promise<void> {
    const uuid = await this.#cubbyholeUuid();
    if (uuid === undefined || uuid === "") return;
    const key = isServiceTokenId(r.id) ? r.cubbyhole_id : legacyCubbyholeKey(uuid, salted);
    if (key === "") return;
    await this.#clear(`logical/${uuid}/${key}/`);
  }

  async #clear(prefix: string): Promise<void> {
    for (const n of await this.#storage.list(prefix)) {
      if (n.endsWith("/")) await this.#clear(prefix + n);
      else await this.#storage.delete(prefix + n);
    }
  }

  // ------------------------------------------------------------------ expiration

  /**
   * Revokes every token whose lease has expired (with its children, as Vault's expiration manager
   * does), whether anyone uses it or not. Leases of other engines, of other namespaces, and of
   * tokens not yet expired are left alone. Returns how many leases were acted on. For the active
   * node only (it writes).
   */
  async tidyExpired(): Promise<number> {
    const now = this.#now();
    const term = this.#term();
    let count = 0;
    let next = Number.POSITIVE_INFINITY;
    for (const key of await this.#listAll(LEASE_PREFIX)) {
      const path = LEASE_PREFIX + key;
      const e = await this.#storage.get(path);
      if (e === undefined) continue;
      let lease: LeaseRecord;
      try {
        lease = parseLeaseRecord(path, e.value);
      } catch {
        continue; // not a record this store understands: leave it to its owner
      }
      if (lease.auth === null || lease.expire === 0) continue;
      const salted = key.slice(key.lastIndexOf("/") + 1);
      // `<salted>.<namespace id>`: a token of a namespace Bulwark does not serve.
      if (salted.includes(".")) continue;
      if (lease.expire > now) {
        next = Math.min(next, lease.expire);
        continue;
      }
      await this.revoke(salted);
      // The token may be gone already (revoked without its lease): the lease goes in any case.
      await this.#storage.delete(path);
      count++;
    }
    this.#due = { term, next, at: now };
    return count;
  }

  /**
   * The earliest expiry the last full scan left (lowered by every lease this store writes since):
   * a poll before it, in the same term and within {@link RESCAN_MS}, has nothing to revoke.
   */
  #due: { term: number | undefined; next: number; at: number } | undefined;

  #noteExpiry(expireMs: number): void {
    if (this.#due !== undefined && expireMs !== 0) this.#due.next = Math.min(this.#due.next, expireMs);
  }

  /** {@link tidyExpired} when something may be due; a poll in between reads nothing. */
  async #sweep(): Promise<number> {
    const due = this.#due;
    const now = this.#now();
    if (due !== undefined && due.term === this.#term() && now < due.next && now - due.at < RESCAN_MS)
      return 0;
    return this.tidyExpired();
  }

  /**
   * Runs {@link tidyExpired} every `intervalMs` (default 1 s) while `isActive()` (the active node,
   * unsealed): Vault's expiration manager, polled. A poll reads storage only when a lease may be
   * due (the earliest expiry of the last scan, lowered by leases this store writes) or the last
   * full scan is a minute old (leases another writer added). Runs never overlap; the timer does
   * not keep the process alive. Returns `stop`, which resolves once a run in progress has finished.
   */
  startExpiration(opts: {
    isActive: () => boolean;
    intervalMs?: number;
    onRevoked?: (count: number) => void;
    onError?: (err: unknown) => void;
  }): () => Promise<void> {
    const interval = opts.intervalMs ?? 1000;
    let stopped = false;
    let running: Promise<void> = Promise.resolve();
    let timer: NodeJS.Timeout | undefined;
    const tick = () => {
      running = (async () => {
        if (stopped || !opts.isActive()) return;
        try {
          const n = await this.#sweep();
          if (n > 0) opts.onRevoked?.(n);
        } catch (err) {
          opts.onError?.(err);
        }
      })().finally(() => {
        if (!stopped) {
          timer = setTimeout(tick, interval);
          timer.unref();
        }
      });
    };
    timer = setTimeout(tick, interval);
    timer.unref();
    return async () => {
      stopped = true;
      if (timer !== undefined) clearTimeout(timer);
      await running;
    };
  }

  async #listAll(prefix: string): Promise<string[]> {
    const out: string[] = [];
    const walk = async (sub: string) => {
      for (const n of await this.#storage.list(prefix + sub)) {
        if (n.endsWith("/")) await walk(sub + n);
        else out.push(sub + n);
      }
    };
    await walk("");
    return out;
  }
}

/**
 * Remaining TTL in seconds as Vault reports it (`leaseEntry.ttl()`: the expiry minus now rounded
 * to the second, truncated); 0 for tokens that never expire.
 */
export function remainingTtl(entry: TokenEntry, nowMs = Date.now()): number {
  if (entry.expire_time === 0) return 0;
  return Math.max(0, Math.trunc((entry.expire_time - Math.round(nowMs / 1000) * 1000) / 1000));
}

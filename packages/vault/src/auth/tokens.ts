/**
 * The token store (Vault's token auth method, service tokens).
 *
 * Storage (inside the barrier, so encrypted at rest):
 *   sys/token/id/<sha256(token)>                → the token entry (JSON)
 *   sys/token/accessor/<sha256(accessor)>       → { hash } of the token the accessor names
 *   sys/token/parent/<parent hash>/<child hash> → marker: revoking a parent revokes its children
 *
 * The token string is never stored; a lookup hashes the presented token and re-checks the stored
 * hash with a constant-time compare. Expired tokens are refused at once and deleted on their next
 * use (there is no background expiration manager).
 */
import type { Backend } from "@bulwark/storage";
import { TokenError } from "../errors.js";
import { digestsEqual, generateAccessor, generateToken, hashSecret, plausibleToken } from "./token-id.js";

const ID = "sys/token/id/";
const ACCESSOR = "sys/token/accessor/";
const PARENT = "sys/token/parent/";

/** Vault's system default and maximum token TTL: 768h (32 days). */
export const SYSTEM_MAX_TTL_S = 768 * 3600;

export interface TokenEntry {
  hash: string;
  accessor: string;
  /** Hash of the parent token; "" for an orphan. */
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
  /** Epoch milliseconds; 0 = never. */
  expire_time: number;
  explicit_max_ttl: number;
  period: number;
  renewable: boolean;
  path: string;
  /** RFC 3339: when the token was issued (or last renewed). */
  issue_time: string;
  last_renewal_time?: number;
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

const enc = new TextEncoder();
const dec = new TextDecoder();

function sortedUnique(xs: Iterable<string>): string[] {
  return [...new Set(xs)].sort();
}

export interface IssuedToken {
  token: string;
  entry: TokenEntry;
  warnings: string[];
}

export class TokenStore {
  readonly #storage: Backend;
  readonly #cache = new Map<string, { entry: TokenEntry; at: number; term: number | undefined }>();
  readonly #cacheMs: number;
  readonly #now: () => number;
  readonly #term: () => number | undefined;
  /**
   * Bumped whenever an entry is written or removed. A lookup caches what it read only when no
   * write or removal happened while it was reading, so a read racing a revoke cannot put the
   * revoked entry back into the cache.
   */
  #epoch = 0;
  /** Per-token serialisation of read-modify-write (use counting, renew, revoke). */
  readonly #tails = new Map<string, Promise<unknown>>();

  /**
   * `cacheMs` (default 1000): how long a looked-up entry is reused without reading storage.
   * Revocations and renewals through this store apply at once; on an HA standby a revocation made
   * by the active node is seen within this bound. `activeTerm` (the store's): an entry cached in
   * another term (before a step-down, or while standby) is not reused once the term changes.
   */
  constructor(
    storage: Backend,
    opts: { cacheMs?: number; now?: () => number; activeTerm?: () => number | undefined } = {},
  ) {
    this.#storage = storage;
    this.#cacheMs = opts.cacheMs ?? 1000;
    this.#now = opts.now ?? Date.now;
    this.#term = opts.activeTerm ?? (() => undefined);
  }

  // ------------------------------------------------------------------ issue

  /** A root token: policy `root`, no TTL, no parent (init, generate-root, `server -dev`). */
  async createRoot(id?: string): Promise<IssuedToken> {
    const nowMs = this.#now();
    if (id !== undefined) {
      if (!plausibleToken(id) || id.includes(".")) {
        throw new TokenError(
          "invalid_request",
          "a root token id must be 1 to 256 printable ASCII characters without spaces or '.'",
        );
      }
      if ((await this.#storage.get(ID + hashSecret(id))) !== undefined)
        throw new TokenError("invalid_request", "a token with this id already exists");
    }
    const token = id ?? generateToken();
    const entry: TokenEntry = {
      hash: hashSecret(token),
      accessor: generateAccessor(),
      parent: "",
      policies: ["root"],
      meta: null,
      display_name: "root",
      num_uses: 0,
      creation_time: Math.floor(nowMs / 1000),
      creation_ttl: 0,
      expire_time: 0,
      explicit_max_ttl: 0,
      period: 0,
      renewable: false,
      path: "auth/token/root",
      issue_time: new Date(nowMs).toISOString(),
    };
    await this.#save(entry, true);
    return { token, entry, warnings: [] };
  }

  /**
   * A child of `parent` (Vault's `auth/token/create` rules): policies default to the parent's and
   * must be a subset of them unless the caller has sudo; `root` only from a root token; custom
   * ids, orphans (outside create-orphan) and periodic tokens need root or sudo; the TTL defaults
   * to 768h and is capped by explicit_max_ttl, 768h and the parent's remaining life.
   */
  async create(
    parent: TokenEntry,
    req: CreateTokenRequest,
    ctx: { sudo: boolean; orphanPath?: boolean; path?: string },
  ): Promise<IssuedToken> {
    const warnings: string[] = [];
    // Vault's rule: a use-limited token must not mint tokens that escape its use limit.
    if (parent.num_uses > 0) {
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
      if ((await this.#storage.get(ID + hashSecret(req.id))) !== undefined) {
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
      warnings.push(
        `${period > 0 ? "period" : "TTL"} of ${ttl}s exceeded the effective max_ttl of ${SYSTEM_MAX_TTL_S}s; ${period > 0 ? "period" : "TTL"} value is capped accordingly`,
      );
      ttl = SYSTEM_MAX_TTL_S;
    }
    let expire = ttl > 0 ? nowMs + ttl * 1000 : 0;
    const orphan = req.noParent === true || ctx.orphanPath === true;
    if (!orphan && parent.expire_time > 0 && (expire === 0 || expire > parent.expire_time)) {
      expire = parent.expire_time;
      ttl = Math.max(0, Math.floor((expire - nowMs) / 1000));
      warnings.push("TTL capped by the parent token's remaining TTL");
    }
    const token = req.id ?? generateToken();
    const display = req.displayName ?? "";
    const entry: TokenEntry = {
      hash: hashSecret(token),
      accessor: generateAccessor(),
      parent: orphan ? "" : parent.hash,
      policies,
      meta: req.meta === undefined || Object.keys(req.meta).length === 0 ? null : { ...req.meta },
      // Vault's sanitising: every character outside [a-zA-Z0-9-] becomes '-', one trailing '-' goes.
      display_name:
        display.length > 0 ? `token-${display}`.replace(/[^A-Za-z0-9-]/g, "-").replace(/-$/, "") : "token",
      num_uses: req.numUses ?? 0,
      creation_time: Math.floor(nowMs / 1000),
      creation_ttl: ttl,
      expire_time: expire,
      explicit_max_ttl: explicitMax,
      period,
      renewable: req.renewable ?? true,
      path: ctx.path ?? "auth/token/create",
      issue_time: new Date(nowMs).toISOString(),
    };
    // A custom id is checked again under its own lock: two callers creating the same id at once
    // would otherwise both pass the check above, the second overwriting the first.
    const save = async () => {
      if (req.id === undefined) return this.#save(entry, true);
      await this.#serial(entry.hash, async () => {
        if ((await this.#storage.get(ID + entry.hash)) !== undefined) {
          throw new TokenError("invalid_request", "cannot create a token with a duplicate ID");
        }
        await this.#save(entry, true);
      });
    };
    if (orphan) await save();
    else {
      // Under the parent's lock, which a revoke holds while it collects the children: a child
      // written after that collection would outlive its revoked parent.
      await this.#serial(parent.hash, async () => {
        if ((await this.#storage.get(ID + parent.hash)) === undefined) {
          throw new TokenError("permission_denied", "bad token: the parent token was revoked");
        }
        await save();
      });
    }
    return { token, entry, warnings };
  }

  // ------------------------------------------------------------------ look up

  /** The live entry for a token string, or `undefined` (unknown, malformed or expired). */
  async lookup(token: string): Promise<TokenEntry | undefined> {
    if (!plausibleToken(token)) return undefined;
    return this.#byHash(hashSecret(token));
  }

  async lookupAccessor(accessor: string): Promise<TokenEntry | undefined> {
    if (!plausibleToken(accessor)) return undefined;
    const e = await this.#storage.get(ACCESSOR + hashSecret(accessor));
    if (e === undefined) return undefined;
    const { hash } = JSON.parse(dec.decode(e.value)) as { hash: string };
    const entry = await this.#byHash(hash);
    return entry !== undefined && digestsEqual(entry.accessor, accessor) ? entry : undefined;
  }

  /**
   * Authenticates a request: the live entry, with one use consumed for limited-use tokens (the
   * last use revokes the token after this request is authorised).
   */
  async authenticate(token: string): Promise<TokenEntry | undefined> {
    const entry = await this.lookup(token);
    if (entry === undefined || entry.num_uses === 0) return entry;
    // Consume the use under the token's lock from a fresh read: concurrent requests must not
    // both spend the same remaining use.
    return this.#serial(entry.hash, async () => {
      const current = await this.#readLive(entry.hash);
      if (current === undefined) return undefined;
      if (current.num_uses === 1) await this.#revokeLocked(current.hash);
      else if (current.num_uses > 1) await this.#save({ ...current, num_uses: current.num_uses - 1 }, false);
      return current;
    });
  }

  /** Runs `fn` after every earlier `#serial` call for the same token hash has settled. */
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

  /** The stored entry, uncached; an expired one is removed (caller holds the token's lock). */
  async #readLive(hash: string): Promise<TokenEntry | undefined> {
    const e = await this.#storage.get(ID + hash);
    if (e === undefined) return undefined;
    const entry = JSON.parse(dec.decode(e.value)) as TokenEntry;
    if (!digestsEqual(entry.hash, hash)) return undefined;
    if (entry.expire_time !== 0 && entry.expire_time <= this.#now()) {
      await this.#revokeLocked(hash);
      return undefined;
    }
    return entry;
  }

  async #byHash(hash: string): Promise<TokenEntry | undefined> {
    const now = this.#now();
    const hit = this.#cache.get(hash);
    const term = this.#term();
    let entry: TokenEntry | undefined;
    if (hit !== undefined && now - hit.at < this.#cacheMs && hit.term === term) {
      entry = hit.entry;
    } else {
      const epoch = this.#epoch;
      const e = await this.#storage.get(ID + hash);
      if (e === undefined) {
        this.#cache.delete(hash);
        return undefined;
      }
      entry = JSON.parse(dec.decode(e.value)) as TokenEntry;
      // The storage name is the hash; the copy inside must agree (a swapped record is refused).
      if (!digestsEqual(entry.hash, hash)) return undefined;
      if (entry.num_uses === 0 && epoch === this.#epoch && term === this.#term())
        this.#cache.set(hash, { entry, at: now, term });
      if (this.#cache.size > 10_000) this.#cache.clear();
    }
    if (entry.expire_time !== 0 && entry.expire_time <= now) {
      this.#cache.delete(hash);
      await this.revoke(hash).catch(() => undefined);
      return undefined;
    }
    return entry;
  }

  // ------------------------------------------------------------------ renew, revoke

  /**
   * Extends a token's life by `increment` seconds (default: its creation TTL; periodic tokens:
   * their period), never past explicit_max_ttl or 768h after creation.
   */
  async renew(given: TokenEntry, increment?: number): Promise<{ entry: TokenEntry; warnings: string[] }> {
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
    if (entry.expire_time === 0)
      throw new TokenError("invalid_request", "lease is not renewable: the token has no TTL");
    if (!entry.renewable) throw new TokenError("invalid_request", "lease is not renewable");
    const warnings: string[] = [];
    const nowMs = this.#now();
    const ttl =
      entry.period > 0
        ? Math.min(entry.period, SYSTEM_MAX_TTL_S)
        : increment !== undefined && increment > 0
          ? increment
          : entry.creation_ttl;
    const createdMs = entry.creation_time * 1000;
    const limits: number[] = [];
    if (entry.explicit_max_ttl > 0) limits.push(createdMs + entry.explicit_max_ttl * 1000);
    if (entry.period === 0) limits.push(createdMs + SYSTEM_MAX_TTL_S * 1000);
    let expire = nowMs + ttl * 1000;
    for (const l of limits) {
      if (expire > l) {
        expire = l;
        warnings.push("TTL capped by the token's maximum TTL");
      }
    }
    if (expire <= nowMs)
      throw new TokenError("invalid_request", "lease is not renewable: past its maximum TTL");
    // A child dies with its parent (Vault's expiration manager revokes the tree; there is none
    // here), so a renewal must not carry it past the parent's current expiry.
    if (entry.parent !== "") {
      const p = await this.#storage.get(ID + entry.parent);
      if (p === undefined) throw new TokenError("permission_denied", "bad token: its parent was revoked");
      const parentExpire = (JSON.parse(dec.decode(p.value)) as TokenEntry).expire_time;
      if (parentExpire !== 0 && expire > parentExpire) {
        expire = parentExpire;
        warnings.push("TTL capped by the parent token's remaining TTL");
      }
      if (expire <= nowMs)
        throw new TokenError("invalid_request", "lease is not renewable: the parent token has expired");
    }
    const next: TokenEntry = {
      ...entry,
      expire_time: expire,
      last_renewal_time: Math.floor(nowMs / 1000),
      creation_ttl: entry.period > 0 ? Math.min(entry.period, SYSTEM_MAX_TTL_S) : entry.creation_ttl,
    };
    await this.#save(next, false);
    return { entry: { ...next }, warnings };
  }

  /** Revokes a token and, recursively, every token it created. Unknown hashes are a no-op. */
  async revoke(hash: string): Promise<void> {
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
          const e = await this.#storage.get(ID + child);
          if (e !== undefined) {
            const entry = JSON.parse(dec.decode(e.value)) as TokenEntry;
            await this.#save({ ...entry, parent: "" }, false);
          }
        });
        await this.#storage.delete(`${PARENT}${hash}/${child}`);
      }
      await this.#remove(hash);
    });
  }

  async #children(hash: string): Promise<string[]> {
    return (await this.#storage.list(`${PARENT}${hash}/`)).filter((n) => !n.endsWith("/"));
  }

  async #remove(hash: string): Promise<void> {
    this.#cache.delete(hash);
    this.#epoch++;
    const e = await this.#storage.get(ID + hash);
    if (e === undefined) return;
    const entry = JSON.parse(dec.decode(e.value)) as TokenEntry;
    // The entry goes first: once it is gone the token no longer authenticates, whatever follows.
    await this.#storage.delete(ID + hash);
    // Again after the delete: a lookup that started in between read the entry still present.
    this.#cache.delete(hash);
    this.#epoch++;
    await this.#storage.delete(ACCESSOR + hashSecret(entry.accessor));
    if (entry.parent !== "") await this.#storage.delete(`${PARENT}${entry.parent}/${hash}`);
  }

  async #save(entry: TokenEntry, isNew: boolean): Promise<void> {
    if (isNew) {
      // Index entries first: a crash leaves at most an orphaned index, never a token that cannot
      // be found by accessor or revoked with its parent.
      await this.#storage.put({
        key: ACCESSOR + hashSecret(entry.accessor),
        value: enc.encode(JSON.stringify({ hash: entry.hash })),
      });
      if (entry.parent !== "")
        await this.#storage.put({ key: `${PARENT}${entry.parent}/${entry.hash}`, value: new Uint8Array(0) });
    }
    await this.#storage.put({ key: ID + entry.hash, value: enc.encode(JSON.stringify(entry)) });
    this.#cache.delete(entry.hash);
    this.#epoch++;
  }
}

/** Remaining TTL in seconds (0 for tokens that never expire). */
export function remainingTtl(entry: TokenEntry, nowMs = Date.now()): number {
  return entry.expire_time === 0 ? 0 : Math.max(0, Math.ceil((entry.expire_time - nowMs) / 1000));
}

/**
 * The mount and auth tables, in Vault's/OpenBao's own records (docs/vault-storage-formats.md §2):
 * `core/mounts` (secrets mounts), `core/local-mounts` (local ones), `core/auth`, `core/local-auth`,
 * each one record `'G' + gzip({"type":…,"entries":[MountEntry…]|null})`. OpenBao ≥ 2.1 on a
 * transactional backend (raft, postgresql) keeps one uncompressed record per entry at
 * `core/mounts/<uuid>` … instead; that layout is read when the single record is absent, and the
 * next write stores the single record (which every OpenBao and Vault reads, and which OpenBao on a
 * transactional backend migrates itself) and removes the per-entry records.
 *
 * Only `kv` (v1 and v2; Vault's alias `generic` = kv) secrets mounts are served. Every other entry
 * (system, identity, cubbyhole, pki, userpass, …) is carried: kept as it is, fields Bulwark does not
 * know included, and a request under it is refused naming its engine. A mount's data lives below
 * `logical/<uuid>/`, as in Vault. `seal_wrap` makes the engine's SealWrapStorage paths go through
 * the seal a second time: for KV v2 its versions, key policy and key archive, for KV v1 (Vault's
 * passthrough backend, SealWrapStorage "*") every entry.
 */

import { randomBytes, randomUUID } from "node:crypto";
import {
  AUTH_TABLE_PATH,
  LOCAL_AUTH_TABLE_PATH,
  LOCAL_MOUNT_TABLE_PATH,
  MOUNT_TABLE_PATH,
} from "@bulwark/barrier";
import type { Backend } from "@bulwark/storage";
import { SYSTEM_MAX_TTL_S } from "../auth/tokens.js";
import { compressJson, decompressRecord } from "../encoding/compression.js";
import { RouteError, VaultError } from "../errors.js";
import { JsonNumber, parseJson, stringify } from "../json/lossless.js";
import { type KvEngine, KvError, type KvRequest, type KvResponse, PrefixView } from "./common.js";
import { KvV1 } from "./kv-v1.js";
import { KvV2 } from "./kv-v2.js";
import { TermCell } from "./term-cell.js";

/** Paths no mount may take (Vault's protected paths and Bulwark's own storage roots). */
const RESERVED = ["sys/", "auth/", "audit/", "cubbyhole/", "identity/", "core/", "logical/"];
/** Vault refuses to tune these but for their audit HMAC keys (`untunableMounts`). */
const UNTUNABLE = ["cubbyhole/", "sys/", "audit/", "identity/"];
/** Vault refuses to unmount these (`protectedMounts`). */
const PROTECTED = ["audit/", "auth/", "sys/", "cubbyhole/", "identity/"];

/**
 * `running_plugin_version` OpenBao 2.6.2 writes for its built-in engines (an unstamped build
 * writes `v2.0.0+builtin.bao`). Vault writes `v<version>+builtin.vault`; both read any value.
 */
export const BUILTIN_RUNNING_VERSION = "v2.6.2+builtin.bao";

/**
 * `MountConfig` as stored (Go's struct, every field omitempty): TTLs are Go durations in
 * **nanoseconds** (a {@link JsonNumber} beyond 2^53). Fields Bulwark does not act on are kept.
 */
export interface StoredMountConfig {
  default_lease_ttl?: number | JsonNumber;
  max_lease_ttl?: number | JsonNumber;
  force_no_cache?: boolean;
  listing_visibility?: string;
  passthrough_request_headers?: string[];
  allowed_response_headers?: string[];
  audit_non_hmac_request_keys?: string[];
  audit_non_hmac_response_keys?: string[];
  /** logical.TokenType: 0 default, 1 service, 2 batch, 3 default-service, 4 default-batch. */
  token_type?: number;
  [field: string]: unknown;
}

/**
 * One entry of a mount or auth table: OpenBao 2.6.2's `MountEntry` JSON. Fields not listed here
 * (`mount_state` of 2.5, future ones) are kept as read and written back unchanged.
 */
export interface MountEntry {
  /** "mounts" or "auth": the table the entry is in. */
  table: string;
  /** With a trailing '/', e.g. "secret/"; auth entries without "auth/" ("userpass/"). */
  path: string;
  /** Plugin name: kv, system, identity, cubbyhole, token, userpass, pki, … */
  type: string;
  description: string;
  /** The barrier view's id: the mount's data is below `logical/<uuid>/` (`auth/<uuid>/`). */
  uuid: string;
  /** Handed to the backend; KV v2 keeps everything below `<backend_aware_uuid>/` of its view. */
  backend_aware_uuid: string;
  accessor: string;
  config: StoredMountConfig;
  /** KV: {"version":"1"|"2"}; null when none were given (kv = version 1). */
  options: Record<string, string> | null;
  local: boolean;
  seal_wrap: boolean;
  external_entropy_access?: boolean;
  tainted?: boolean;
  namespace_id: string;
  plugin_version?: string;
  running_plugin_version?: string;
  running_sha256?: string;
  [field: string]: unknown;
}

export interface MountRequest {
  type: string;
  description?: string;
  /** Vault's options map; undefined = none given (stored as null, as OpenBao does). */
  options?: Record<string, unknown>;
  sealWrap?: boolean;
  local?: boolean;
  externalEntropyAccess?: boolean;
  /** Seconds. */
  config?: { defaultLeaseTtl?: number; maxLeaseTtl?: number };
}

export interface TunePatch {
  description?: string;
  /** Seconds; 0 = the system default. */
  defaultLeaseTtl?: number;
  maxLeaseTtl?: number;
  /** Vault's tune of options: for kv only `version`, and only upwards (1 → 2: `kv enable-versioning`). */
  options?: Record<string, string>;
}

type TableKey = "mounts" | "localMounts" | "auth" | "localAuth";

const TABLES: Record<TableKey, { path: string; type: "mounts" | "auth"; local: boolean }> = {
  mounts: { path: MOUNT_TABLE_PATH, type: "mounts", local: false },
  localMounts: { path: LOCAL_MOUNT_TABLE_PATH, type: "mounts", local: true },
  auth: { path: AUTH_TABLE_PATH, type: "auth", local: false },
  localAuth: { path: LOCAL_AUTH_TABLE_PATH, type: "auth", local: true },
};

/** One table as read: its entries, and where they came from. */
interface LoadedTable {
  entries: MountEntry[];
  /** "absent": neither layout holds it; "perEntry": read from `<path>/<uuid>` records. */
  layout: "single" | "perEntry" | "absent";
  /** The per-entry keys read (removed once the single record is written). */
  perEntryKeys: string[];
  /** Fields Vault fills on load were missing (setup() persists the table, as Vault does). */
  filled: boolean;
}

type Tables = Record<TableKey, LoadedTable>;

// ------------------------------------------------------------------ encoding

/**
 * Go's `encoding/json` escapes `<`, `>`, `&`, U+2028 and U+2029 inside strings; these characters
 * appear in JSON text only inside strings, so escaping them in the whole text is the same.
 */
function goJson(value: unknown): string {
  return stringify(value).replace(
    /[<>&\u2028\u2029]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`,
  );
}

/** A table record as OpenBao writes it: `'G'` + gzip of json.Encoder's output (a trailing newline). */
export function encodeTable(type: "mounts" | "auth" | "audit", entries: readonly MountEntry[]): Uint8Array {
  return compressJson(`${goJson({ type, entries: entries.length === 0 ? null : entries })}\n`);
}

function checkEntry(e: unknown, what: string): MountEntry {
  if (typeof e !== "object" || e === null || Array.isArray(e))
    throw new VaultError("internal", `${what} is not a JSON object: the table is damaged`);
  const m = e as MountEntry;
  if (typeof m.path !== "string" || typeof m.type !== "string")
    throw new VaultError("internal", `${what} has no path or type: the table is damaged`);
  return m;
}

/** Decodes a table record (any compression canary Vault reads; `what` names it in errors). */
export function decodeTable(bytes: Uint8Array, what: string): { type: string; entries: MountEntry[] } {
  const { text } = decompressRecord(bytes, what);
  let doc: unknown;
  try {
    doc = parseJson(text);
  } catch (e) {
    throw new VaultError("internal", `${what} is not valid JSON: ${(e as Error).message}`, { cause: e });
  }
  if (typeof doc !== "object" || doc === null || Array.isArray(doc))
    throw new VaultError("internal", `${what} is not a mount table ({"type":…,"entries":[…]})`);
  const t = doc as { type?: unknown; entries?: unknown };
  if (t.entries !== null && t.entries !== undefined && !Array.isArray(t.entries))
    throw new VaultError("internal", `${what}: "entries" is not a list`);
  const entries = ((t.entries as unknown[] | null | undefined) ?? []).map((e, i) =>
    checkEntry(e, `${what} entry ${i}`),
  );
  return { type: typeof t.type === "string" ? t.type : "", entries };
}

/** Go duration (ns) → whole seconds, as Vault's `int64(d.Seconds())`. */
export function nsToSeconds(v: unknown): number {
  if (v instanceof JsonNumber) return Number(BigInt(v.text) / 1_000_000_000n);
  if (typeof v === "number") return Math.trunc(v / 1e9);
  return 0;
}

/** Seconds → Go duration (ns); beyond 2^53 ns as a {@link JsonNumber} so no digit is lost. */
function secondsToNs(s: number): number | JsonNumber {
  const ns = BigInt(Math.trunc(s)) * 1_000_000_000n;
  return ns <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(ns) : new JsonNumber(ns.toString());
}

/** The mount's lease TTLs in seconds (0 = the system default). */
export function leaseTtls(m: MountEntry): { defaultLeaseTtl: number; maxLeaseTtl: number } {
  return {
    defaultLeaseTtl: nsToSeconds(m.config?.default_lease_ttl),
    maxLeaseTtl: nsToSeconds(m.config?.max_lease_ttl),
  };
}

// ------------------------------------------------------------------ what is served

/** The KV version of a served mount, or why the entry is carried without being served. */
export function kvVersionOf(m: MountEntry): { version: "1" | "2" } | { carried: string } {
  if (m.table === "auth") return { carried: `\`${m.type}\` auth method` };
  if (m.type !== "kv" && m.type !== "generic") return { carried: `\`${m.type}\` mount` };
  const v = m.options?.version;
  if (v === undefined || v === "" || v === "1" || v === "0") return { version: "1" };
  if (v === "2") return { version: "2" };
  return { carried: `kv mount of version ${JSON.stringify(v)}` };
}

/** Whether Bulwark serves requests under this entry (a kv v1/v2 secrets mount). */
export function serves(m: MountEntry): boolean {
  return "version" in kvVersionOf(m);
}

/** An engine for a carried mount: it has no existence check, and refuses every request naming the engine. */
function carriedEngine(m: MountEntry, what: string): KvEngine {
  const where = m.table === "auth" ? `auth/${m.path}` : m.path;
  const refuse = (): never => {
    throw new RouteError(
      "unsupported_path",
      `${where} is an OpenBao/Vault ${what} Bulwark keeps but does not serve (Bulwark serves kv v1 and v2 mounts and the token auth method)`,
    );
  };
  return { handle: async () => refuse(), exists: async () => undefined };
}

// ------------------------------------------------------------------ requests

/** Normalises a mount path: no leading '/', exactly one trailing '/'. */
export function normalizeMountPath(path: string): string {
  const p = `${path.replace(/^\/+/, "").replace(/\/+$/, "")}/`;
  if (p === "/") throw new KvError("invalid_request", "missing mount path: give e.g. sys/mounts/secret");
  for (const seg of p.slice(0, -1).split("/")) {
    if (seg === "" || seg === "." || seg === ".." || seg.includes("\0")) {
      throw new KvError(
        "invalid_request",
        `invalid mount path ${JSON.stringify(path)}: empty, '.' or '..' segment`,
      );
    }
  }
  if (p.length > 256) throw new KvError("invalid_request", "mount path is longer than 256 characters");
  return p;
}

function kvVersion(type: string, options: Record<string, unknown> | undefined): "1" | "2" {
  const t = type.toLowerCase();
  if (t === "kv-v2") return "2";
  if (t === "kv-v1" || t === "generic") return "1";
  if (t !== "kv")
    throw new KvError("invalid_request", `plugin not found in the catalog: ${type} (Bulwark serves kv only)`);
  const v = options?.version;
  if (v === undefined || v === "" || v === "1" || v === 1) return "1";
  if (v === "2" || v === 2) return "2";
  throw new KvError("invalid_request", `invalid kv version ${JSON.stringify(v)}: use "1" or "2"`);
}

/**
 * The options as OpenBao stores them: as given (strings), null when none were given (`secrets
 * enable kv` without -version: kv version 1); the alias types kv-v1/kv-v2/generic name the version.
 */
function storedOptions(req: MountRequest, version: "1" | "2"): Record<string, string> | null {
  if (req.type.toLowerCase() !== "kv") return { ...stringOptions(req.options), version };
  return req.options === undefined ? null : stringOptions(req.options);
}

function stringOptions(options: Record<string, unknown> | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(options ?? {})) out[k] = String(v);
  return out;
}

/** Vault's checks of a mount's lease TTLs (seconds, 0 = the system default). */
function checkLeaseTtls(defaultTtl: number, maxTtl: number): void {
  if (defaultTtl !== 0 && maxTtl !== 0 && defaultTtl > maxTtl)
    throw new KvError(
      "invalid_request",
      `given default lease TTL greater than given max lease TTL (${defaultTtl} > ${maxTtl} seconds): lower default_lease_ttl or raise max_lease_ttl`,
    );
  if (maxTtl === 0 && defaultTtl > SYSTEM_MAX_TTL_S)
    throw new KvError(
      "invalid_request",
      `given default lease TTL greater than system max lease TTL of ${SYSTEM_MAX_TTL_S} seconds: lower default_lease_ttl or set max_lease_ttl`,
    );
}

/** Vault's accessor: `<type>_<8 hex>` (`auth_<type>_<8 hex>` in the auth table). */
function accessorFor(table: "mounts" | "auth", type: string): string {
  return `${table === "auth" ? "auth_" : ""}${type}_${randomBytes(4).toString("hex")}`;
}

/** A new entry with OpenBao's fields in its order (Go writes struct order). */
function newEntry(
  table: "mounts" | "auth",
  f: {
    path: string;
    type: string;
    description: string;
    config: StoredMountConfig;
    options: Record<string, string> | null;
    local: boolean;
    sealWrap: boolean;
    externalEntropyAccess?: boolean;
    builtinVersion?: boolean;
  },
): MountEntry {
  return {
    table,
    path: f.path,
    type: f.type,
    description: f.description,
    uuid: randomUUID(),
    backend_aware_uuid: randomUUID(),
    accessor: accessorFor(table, f.type),
    config: f.config,
    options: f.options,
    local: f.local,
    seal_wrap: f.sealWrap,
    // omitempty in Go's struct: written only when true.
    ...(f.externalEntropyAccess === true ? { external_entropy_access: true } : {}),
    namespace_id: "root",
    ...(f.builtinVersion === false ? {} : { running_plugin_version: BUILTIN_RUNNING_VERSION }),
  };
}

/**
 * What OpenBao creates at init (and Vault's loadMounts adds when one is missing): `sys/` and
 * `identity/` in core/mounts, `cubbyhole/` in core/local-mounts, `token/` in core/auth.
 */
function requiredMounts(): MountEntry[] {
  return [
    newEntry("mounts", {
      path: "sys/",
      type: "system",
      description: "system endpoints used for control, policy and debugging",
      config: { passthrough_request_headers: ["Accept"] },
      options: null,
      local: false,
      sealWrap: true,
    }),
    newEntry("mounts", {
      path: "identity/",
      type: "identity",
      description: "identity store",
      config: { passthrough_request_headers: ["Authorization"] },
      options: null,
      local: false,
      sealWrap: false,
    }),
    newEntry("mounts", {
      path: "cubbyhole/",
      type: "cubbyhole",
      description: "per-token private secret storage",
      config: {},
      options: null,
      local: true,
      sealWrap: false,
    }),
  ];
}

function tokenAuthEntry(): MountEntry {
  return newEntry("auth", {
    path: "token/",
    type: "token",
    description: "token based credentials",
    config: {},
    options: null,
    local: false,
    sealWrap: false,
    builtinVersion: false,
  });
}

/** What `setup()` found: the entries carried without being served (for the server's log). */
export interface SetupResult {
  carried: { path: string; type: string; table: string }[];
  /** Records `setup()` wrote (missing required entries or tables). */
  wrote: string[];
}

export class MountTable {
  readonly #storage: Backend;
  readonly #activeTerm: (() => number | undefined) | undefined;
  readonly #engines = new Map<string, KvEngine>();
  /** The four tables, cached for `cacheTtlMs` within one active term (another node may change them between terms). */
  readonly #tables: TermCell<Tables>;
  /** Engine calls running per mount uuid, so unmount can let them finish before deleting data. */
  readonly #inflight = new Map<string, { count: number; idle: (() => void) | undefined }>();
  /** Mounts removed by this node: their engines refuse work (nothing may land after the delete). */
  readonly #removed = new Set<string>();
  /** Serialises mount/unmount/tune/setup: each rewrites a whole table. */
  #queue: Promise<unknown> = Promise.resolve();

  /**
   * @param opts.activeTerm the store's `activeTerm`, handed to the KV v2 engines for their
   *   metadata cache (without it they cache nothing).
   */
  constructor(storage: Backend, opts: { cacheTtlMs?: number; activeTerm?: () => number | undefined } = {}) {
    this.#storage = storage;
    this.#activeTerm = opts.activeTerm;
    this.#tables = new TermCell(opts.cacheTtlMs ?? 5000, () => this.#activeTerm?.());
  }

  async #loadTable(key: TableKey): Promise<LoadedTable> {
    const { path } = TABLES[key];
    const single = await this.#storage.get(path);
    if (single !== undefined)
      return {
        ...fill(decodeTable(single.value, path).entries, TABLES[key].type),
        layout: "single",
        perEntryKeys: [],
      };
    // OpenBao's transactional layout: one uncompressed entry per `<path>/<uuid>`.
    const names = (await this.#storage.list(`${path}/`)).filter((n) => !n.endsWith("/"));
    if (names.length === 0) return { entries: [], layout: "absent", perEntryKeys: [], filled: false };
    const entries: MountEntry[] = [];
    const keys: string[] = [];
    for (const name of names) {
      const k = `${path}/${name}`;
      const e = await this.#storage.get(k);
      if (e === undefined) continue; // removed while listing
      const { text } = decompressRecord(e.value, k);
      let parsed: unknown;
      try {
        parsed = parseJson(text);
      } catch (err) {
        throw new VaultError("internal", `${k} is not valid JSON: ${(err as Error).message}`, { cause: err });
      }
      const m = checkEntry(parsed, k);
      // As OpenBao: the key is the entry's uuid (an empty uuid is taken from it).
      if (m.uuid === "" || m.uuid === undefined) m.uuid = name;
      else if (m.uuid !== name)
        throw new VaultError("internal", `${k} holds the entry of uuid ${m.uuid}: the table is damaged`);
      entries.push(m);
      keys.push(k);
    }
    return { ...fill(entries, TABLES[key].type), layout: "perEntry", perEntryKeys: keys };
  }

  async #load(): Promise<Tables> {
    const [mounts, localMounts, auth, localAuth] = await Promise.all([
      this.#loadTable("mounts"),
      this.#loadTable("localMounts"),
      this.#loadTable("auth"),
      this.#loadTable("localAuth"),
    ]);
    return { mounts, localMounts, auth, localAuth };
  }

  async #all(): Promise<Tables> {
    return this.#tables.get(() => this.#load());
  }

  /** Every secrets mount (core/mounts, then core/local-mounts), served or carried. */
  async all(): Promise<MountEntry[]> {
    const t = await this.#all();
    return [...t.mounts.entries, ...t.localMounts.entries];
  }

  /** Every auth method (core/auth, then core/local-auth); paths without "auth/". */
  async auths(): Promise<MountEntry[]> {
    const t = await this.#all();
    return [...t.auth.entries, ...t.localAuth.entries];
  }

  /** The secrets mount at `path` (longest prefix; served or carried) and the rest of the path below it. */
  async resolve(path: string): Promise<{ mount: MountEntry; rest: string; engine: KvEngine } | undefined> {
    const best = longestPrefix(await this.all(), path);
    if (best === undefined) return undefined;
    return { mount: best, rest: path.slice(best.path.length), engine: this.#engine(best) };
  }

  /** The auth method at `path` (below "auth/", e.g. "userpass/login/bob") and the rest of the path. */
  async resolveAuth(
    path: string,
  ): Promise<{ mount: MountEntry; rest: string; engine: KvEngine } | undefined> {
    const best = longestPrefix(await this.auths(), path);
    if (best === undefined) return undefined;
    return { mount: best, rest: path.slice(best.path.length), engine: this.#engine(best) };
  }

  #engine(m: MountEntry): KvEngine {
    const kind = kvVersionOf(m);
    if ("carried" in kind) return carriedEngine(m, kind.carried);
    const version = kind.version;
    const key = `${m.uuid}:${version}:${m.seal_wrap}`;
    let e = this.#engines.get(key);
    if (e === undefined) {
      const uuid = m.uuid;
      const bu = m.backend_aware_uuid;
      let inner: KvEngine;
      if (version === "2") {
        // Vault's KV v2 SealWrapStorage: its versions, key policy and key archive, below the
        // backend-aware uuid.
        const wrapped = [`${bu}/versions/`, `${bu}/policy/`, `${bu}/archive/`];
        const view = new PrefixView(this.#storage, `logical/${uuid}/`, (k) =>
          m.seal_wrap ? wrapped.some((p) => k.startsWith(p)) : false,
        );
        const opts = {
          backendUuid: bu,
          ...(this.#activeTerm === undefined ? {} : { activeTerm: this.#activeTerm }),
        };
        inner = new KvV2(view, opts);
      } else {
        // Vault's passthrough backend seal-wraps "*": every entry.
        const view = new PrefixView(this.#storage, `logical/${uuid}/`, m.seal_wrap);
        // The mount's current default_lease_ttl (tune changes it), not the one at first use.
        const fallback = leaseTtls(m).defaultLeaseTtl;
        inner = new KvV1(view, () => this.#leaseTtlOf(uuid, fallback));
      }
      e = {
        handle: (r: KvRequest): Promise<KvResponse> => this.#tracked(uuid, () => inner.handle(r)),
        exists: (p: string): Promise<boolean | undefined> => this.#tracked(uuid, () => inner.exists(p)),
      };
      this.#engines.set(key, e);
    }
    return e;
  }

  #leaseTtlOf(uuid: string, fallback: number): number {
    const t = this.#tables.peek();
    const m =
      t === undefined
        ? undefined
        : [...t.mounts.entries, ...t.localMounts.entries].find((e) => e.uuid === uuid);
    return m === undefined ? fallback : leaseTtls(m).defaultLeaseTtl;
  }

  /** Runs an engine call of mount `uuid`, counted so that unmount can wait for it. */
  async #tracked<T>(uuid: string, fn: () => Promise<T>): Promise<T> {
    if (this.#removed.has(uuid))
      throw new KvError("not_found", "no handler for route: the mount was removed while the request ran");
    let f = this.#inflight.get(uuid);
    if (f === undefined) {
      f = { count: 0, idle: undefined };
      this.#inflight.set(uuid, f);
    }
    f.count++;
    try {
      return await fn();
    } finally {
      f.count--;
      if (f.count === 0) {
        this.#inflight.delete(uuid);
        f.idle?.();
      }
    }
  }

  /** Resolves when no engine call of mount `uuid` is running. */
  async #drained(uuid: string): Promise<void> {
    const f = this.#inflight.get(uuid);
    if (f === undefined) return;
    await new Promise<void>((resolve) => {
      const prev = f.idle;
      f.idle = () => {
        prev?.();
        resolve();
      };
    });
  }

  /**
   * Ensures what OpenBao creates at init, on an initialised, active store: the required mounts
   * (`sys/`, `identity/`, local `cubbyhole/`), the `token/` auth method, and the (empty) local
   * auth table. Like Vault's loadMounts, an existing table is rewritten only to add a missing
   * required entry or to fill fields Vault fills on load (table, accessor, backend_aware_uuid,
   * namespace_id); nothing else in it changes. The audit tables are the audit broker's
   * (audit/broker.ts), which creates and serves them.
   */
  async setup(): Promise<SetupResult> {
    return this.#serial(async () => {
      let t = await this.#fresh();
      const wrote: string[] = [];
      const all = [...t.mounts.entries, ...t.localMounts.entries];
      const addMounts: MountEntry[] = [];
      for (const req of requiredMounts()) {
        if (!all.some((e) => e.type === req.type)) addMounts.push(req);
      }
      const addGlobal = addMounts.filter((e) => !e.local);
      const addLocal = addMounts.filter((e) => e.local);
      const write = async (key: TableKey, add: MountEntry[]): Promise<void> => {
        if (add.length === 0 && !t[key].filled && t[key].layout !== "absent") return;
        t = await this.#putTable(t, key, [...t[key].entries, ...add]);
        wrote.push(TABLES[key].path);
      };
      await write("mounts", addGlobal);
      await write("localMounts", addLocal);
      const hasToken = [...t.auth.entries, ...t.localAuth.entries].some((e) => e.type === "token");
      await write("auth", hasToken ? [] : [tokenAuthEntry()]);
      await write("localAuth", []);
      // The audit tables (core/audit, core/local-audit) are the audit broker's: it creates them
      // when it loads them, as OpenBao's loadAudits does, and serves their devices.
      const carried = [
        ...t.mounts.entries,
        ...t.localMounts.entries,
        ...t.auth.entries,
        ...t.localAuth.entries,
      ]
        .filter((e) => !serves(e) && !(e.table === "auth" && e.type === "token") && e.type !== "system")
        .map((e) => ({ path: e.table === "auth" ? `auth/${e.path}` : e.path, type: e.type, table: e.table }));
      return { carried, wrote };
    });
  }

  async mount(rawPath: string, req: MountRequest): Promise<MountEntry> {
    const path = normalizeMountPath(rawPath);
    const version = kvVersion(req.type, req.options);
    const defaultTtl = req.config?.defaultLeaseTtl ?? 0;
    const maxTtl = req.config?.maxLeaseTtl ?? 0;
    checkLeaseTtls(defaultTtl, maxTtl);
    for (const r of RESERVED) {
      if (path.startsWith(r) || r.startsWith(path)) {
        throw new KvError("invalid_request", `cannot mount at ${JSON.stringify(path)}: ${r} is reserved`);
      }
    }
    return this.#serial(async () => {
      const t = await this.#fresh();
      for (const m of [...t.mounts.entries, ...t.localMounts.entries]) {
        if (m.path.startsWith(path) || path.startsWith(m.path)) {
          throw new KvError("invalid_request", `path is already in use at ${m.path}`);
        }
      }
      const config: StoredMountConfig = {};
      if (defaultTtl !== 0) config.default_lease_ttl = secondsToNs(defaultTtl);
      if (maxTtl !== 0) config.max_lease_ttl = secondsToNs(maxTtl);
      const local = req.local ?? false;
      const entry = newEntry("mounts", {
        path,
        type: "kv",
        description: req.description ?? "",
        config,
        options: storedOptions(req, version),
        local,
        sealWrap: req.sealWrap ?? false,
        externalEntropyAccess: req.externalEntropyAccess ?? false,
      });
      const key: TableKey = local ? "localMounts" : "mounts";
      await this.#putTable(t, key, [...t[key].entries, entry]);
      return entry;
    });
  }

  /**
   * Removes a secrets mount and its data (`logical/<uuid>/`), data first and entry last as in
   * Vault. Returns false when nothing is mounted there. Vault's protected mounts (sys/, identity/,
   * cubbyhole/) are refused as Vault refuses them. A carried mount is removed only when it holds no
   * leases: Vault revokes them through the engine first (a database engine drops the users it
   * created), which Bulwark cannot do, and deleting them unrevoked would leave credentials alive.
   */
  async unmount(rawPath: string): Promise<boolean> {
    const path = normalizeMountPath(rawPath);
    for (const p of PROTECTED) {
      if (path.startsWith(p)) throw new KvError("invalid_request", `cannot unmount ${JSON.stringify(path)}`);
    }
    return this.#serial(async () => {
      const t = await this.#fresh();
      const key: TableKey | undefined = t.mounts.entries.some((e) => e.path === path)
        ? "mounts"
        : t.localMounts.entries.some((e) => e.path === path)
          ? "localMounts"
          : undefined;
      if (key === undefined) return false;
      const m = t[key].entries.find((e) => e.path === path) as MountEntry;
      if (!serves(m)) {
        const leases = await this.#storage.list(`sys/expire/id/${path}`);
        if (leases.length > 0)
          throw new KvError(
            "invalid_request",
            `cannot unmount ${path}: it is a \`${m.type}\` mount Bulwark does not serve, and it holds leases that only its engine can revoke; unmount it with OpenBao/Vault`,
          );
      }
      // As in Vault, the data goes first and the table entry last: if deleting fails, the mount
      // (what is left of it) stays and the unmount can be retried, instead of its remaining
      // entries outliving it unreachable. Engine calls of the mount are refused from here on;
      // running ones (which resolved the mount earlier) finish before anything is deleted.
      this.#removed.add(m.uuid);
      try {
        await this.#drained(m.uuid);
        await this.#deleteTree(`logical/${m.uuid}/`);
        await this.#putTable(
          t,
          key,
          t[key].entries.filter((e) => e !== m),
        );
      } catch (e) {
        this.#removed.delete(m.uuid);
        throw e;
      }
      return true;
    });
  }

  /**
   * Vault's sys/mounts/<path>/tune for a secrets mount: description, lease TTLs, and options
   * (`version` of a kv mount may only go up: 1 → 2 upgrades the mount in place, the KV v2 engine
   * converts the v1 data on first use, and the answer carries Vault's warning).
   */
  async tune(rawPath: string, patch: TunePatch): Promise<{ entry: MountEntry; warnings: string[] }> {
    const path = normalizeMountPath(rawPath);
    if (UNTUNABLE.some((p) => path.startsWith(p))) {
      const fields: [keyof TunePatch, string][] = [
        ["description", "description"],
        ["defaultLeaseTtl", "default_lease_ttl"],
        ["maxLeaseTtl", "max_lease_ttl"],
        ["options", "options"],
      ];
      const given = fields.find(([k]) => patch[k] !== undefined);
      if (given !== undefined)
        throw new KvError("invalid_request", `cannot tune parameter ${given[1]} of ${path}`);
    }
    return this.#serial(async () => {
      const t = await this.#fresh();
      const key: TableKey | undefined = t.mounts.entries.some((e) => e.path === path)
        ? "mounts"
        : t.localMounts.entries.some((e) => e.path === path)
          ? "localMounts"
          : undefined;
      if (key === undefined) throw new KvError("invalid_request", `no mount at ${path}`);
      const m = t[key].entries.find((e) => e.path === path) as MountEntry;
      const ttls = leaseTtls(m);
      const defaultTtl = patch.defaultLeaseTtl ?? ttls.defaultLeaseTtl;
      const maxTtl = patch.maxLeaseTtl ?? ttls.maxLeaseTtl;
      checkLeaseTtls(defaultTtl, maxTtl);
      const warnings: string[] = [];
      let options = m.options;
      if (patch.options !== undefined && Object.keys(patch.options).length > 0) {
        const next: Record<string, string> = { ...(m.options ?? {}) };
        const v = patch.options.version;
        if (v !== undefined) {
          if (!serves(m))
            throw new KvError(
              "invalid_request",
              `the version option applies to kv mounts only; ${path} is a \`${m.type}\` mount`,
            );
          const from = Number.parseInt(m.options?.version || "0", 10);
          const to = Number.parseInt(v, 10);
          if (String(to) !== v.trim() || (to !== 1 && to !== 2))
            throw new KvError("invalid_request", `invalid version provided: ${v}`);
          if (from > to) throw new KvError("invalid_request", `cannot downgrade mount from version ${from}`);
          if (from < to)
            warnings.push(
              `Upgrading mount from version ${from} to version ${to}. This mount will be unavailable for a brief period and will resume service shortly.`,
            );
        }
        for (const [k, val] of Object.entries(patch.options)) {
          if (val === "" && k !== "version") delete next[k];
          else next[k] = val;
        }
        options = next;
      }
      const config: StoredMountConfig = { ...m.config };
      setTtl(config, "default_lease_ttl", patch.defaultLeaseTtl);
      setTtl(config, "max_lease_ttl", patch.maxLeaseTtl);
      // Same object shape and key order; only the tuned fields change.
      const next: MountEntry = { ...m, description: patch.description ?? m.description, config, options };
      await this.#putTable(
        t,
        key,
        t[key].entries.map((e) => (e === m ? next : e)),
      );
      return { entry: next, warnings };
    });
  }

  async #deleteTree(prefix: string): Promise<void> {
    for (const name of await this.#storage.list(prefix)) {
      if (name.endsWith("/")) await this.#deleteTree(prefix + name);
      else await this.#storage.delete(prefix + name);
    }
  }

  async #fresh(): Promise<Tables> {
    this.#tables.clear();
    return this.#all();
  }

  /**
   * Writes one table as its single record; per-entry records it was read from are removed after
   * (the single record is what every Vault and OpenBao reads first).
   */
  async #putTable(t: Tables, key: TableKey, entries: MountEntry[]): Promise<Tables> {
    const { path, type } = TABLES[key];
    const was = t[key];
    const next: Tables = { ...t, [key]: { entries, layout: "single", perEntryKeys: [], filled: false } };
    await this.#tables.write(next, async () => {
      await this.#storage.put({ key: path, value: encodeTable(type, entries) });
      for (const k of was.perEntryKeys) await this.#storage.delete(k);
    });
    // Engines of removed mounts go; the others stay (their per-key locks must not be split).
    const live = new Set([...next.mounts.entries, ...next.localMounts.entries].map((e) => e.uuid));
    for (const k of this.#engines.keys()) if (!live.has(k.split(":")[0] as string)) this.#engines.delete(k);
    return next;
  }

  async #serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(fn, fn);
    this.#queue = run.catch(() => undefined);
    return run;
  }
}

function setTtl(
  config: StoredMountConfig,
  field: "default_lease_ttl" | "max_lease_ttl",
  seconds: number | undefined,
): void {
  if (seconds === undefined) return;
  if (seconds === 0)
    delete config[field]; // omitempty: 0 is not written
  else config[field] = secondsToNs(seconds);
}

function longestPrefix(entries: readonly MountEntry[], path: string): MountEntry | undefined {
  let best: MountEntry | undefined;
  const withSlash = path.endsWith("/") ? path : `${path}/`;
  for (const m of entries) {
    if (
      (path.startsWith(m.path) || withSlash === m.path) &&
      (best === undefined || m.path.length > best.path.length)
    ) {
      best = m;
    }
  }
  return best;
}

/**
 * Vault's load-time upgrades of entries (runMountUpdates): a missing table, accessor,
 * backend_aware_uuid or namespace_id is filled. The table remembers that it changed (`filled`),
 * so setup() persists it as Vault does.
 */
function fill(entries: MountEntry[], table: "mounts" | "auth"): { entries: MountEntry[]; filled: boolean } {
  let filled = false;
  for (const e of entries) {
    if (typeof e.table !== "string" || e.table === "") {
      e.table = table;
      filled = true;
    }
    if (typeof e.accessor !== "string" || e.accessor === "") {
      e.accessor = accessorFor(table, e.type);
      filled = true;
    }
    if (typeof e.backend_aware_uuid !== "string" || e.backend_aware_uuid === "") {
      e.backend_aware_uuid = randomUUID();
      filled = true;
    }
    if (typeof e.namespace_id !== "string" || e.namespace_id === "") {
      e.namespace_id = "root";
      filled = true;
    }
    if (typeof e.config !== "object" || e.config === null) {
      e.config = {};
      filled = true;
    }
  }
  return { entries, filled };
}

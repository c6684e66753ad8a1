/**
 * KV version 2 (versioned secrets), Vault's API: `data/`, `metadata/`, `delete/`, `undelete/`,
 * `destroy/`, `config`, with check-and-set, max_versions and delete_version_after.
 *
 * Layout below the mount's `logical/<uuid>/`:
 *   config                      → { max_versions, cas_required, delete_version_after }
 *   metadata/<key>              → the key's metadata (versions map, current/oldest version, …)
 *   versions/<sha256(key)>/<n>  → { data } of version n
 *
 * Versions are keyed by a hash of the key so that listing `metadata/` shows exactly the secrets
 * and folders. A version's data is written before the metadata that makes it visible; a crash in
 * between leaves an unreferenced version, never metadata pointing at nothing.
 */
import { StorageError } from "@bulwark/storage";
import { sha256Hex } from "../ids.js";
import { goFloat, parseLossless, scanNumbers, stringify } from "../json/lossless.js";
import { formatGoDuration, parseFields } from "../request/fields.js";
import {
  checkKey,
  KeyedMutex,
  type KvEngine,
  KvError,
  type KvRequest,
  type KvResponse,
  listPrefix,
  type PrefixView,
} from "./common.js";
import { cloneMetadata, type Metadata, MetadataCache, type VersionMeta } from "./metadata-cache.js";
import { TermCell } from "./term-cell.js";

interface Config {
  max_versions: number;
  cas_required: boolean;
  delete_version_after: number;
}

const DEFAULT_MAX_VERSIONS = 10;
/** How #write serializes a version: `{"data":<the secret's JSON>}`. */
const VERSION_PREFIX = '{"data":';
const SUBPATHS = ["data", "metadata", "delete", "undelete", "destroy", "config"];

function nowIso(): string {
  return new Date().toISOString();
}

/** The metadata of a key that has none stored yet. */
function newMetadata(now: string): Metadata {
  return {
    created_time: now,
    updated_time: now,
    current_version: 0,
    oldest_version: 0,
    max_versions: 0,
    cas_required: false,
    delete_version_after: 0,
    custom_metadata: null,
    versions: {},
  };
}

function isDeleted(v: VersionMeta, now = Date.now()): boolean {
  return v.deletion_time !== "" && Date.parse(v.deletion_time) <= now;
}

function metaResponse(m: Metadata): Record<string, unknown> {
  return {
    cas_required: m.cas_required,
    created_time: m.created_time,
    current_version: m.current_version,
    custom_metadata: m.custom_metadata,
    delete_version_after: formatGoDuration(m.delete_version_after * 1000),
    max_versions: m.max_versions,
    oldest_version: m.oldest_version,
    updated_time: m.updated_time,
    versions: m.versions,
  };
}

function versionResponse(m: Metadata, n: number): Record<string, unknown> {
  const v = m.versions[String(n)] as VersionMeta;
  return {
    created_time: v.created_time,
    custom_metadata: m.custom_metadata,
    deletion_time: v.deletion_time,
    destroyed: v.destroyed,
    version: n,
  };
}

function checkCustomMetadata(cm: Record<string, string>): void {
  const entries = Object.entries(cm);
  if (entries.length > 64) throw new KvError("invalid_request", "custom_metadata can hold at most 64 keys");
  for (const [k, v] of entries) {
    if (k.length === 0 || k.length > 128)
      throw new KvError("invalid_request", "custom_metadata keys must be 1 to 128 characters");
    if (v.length > 512)
      throw new KvError(
        "invalid_request",
        `custom_metadata value for ${JSON.stringify(k)} exceeds 512 characters`,
      );
  }
}

/** How long the mount's config is reused without reading storage (writes here refresh it). */
const CONFIG_CACHE_MS = 5000;
/** The lock of config writes in the per-key mutex (no secret key contains NUL). */
const CONFIG_LOCK = "\0config";

export class KvV2 implements KvEngine {
  readonly #view: PrefixView;
  readonly #locks = new KeyedMutex();
  /** key → sha256(key): the versions folder name, hashed once per key. */
  readonly #hashes = new Map<string, string>();
  /** The mount's config; another node may change it while this one is not active (a new term). */
  readonly #config: TermCell<Config>;
  readonly #cache: MetadataCache;

  /**
   * @param opts.activeTerm the store's `activeTerm`: while it is defined and unchanged, decoded
   *   metadata records are cached (see {@link MetadataCache}); without it nothing is cached.
   */
  constructor(
    view: PrefixView,
    opts: { activeTerm?: () => number | undefined; metadataCacheEntries?: number } = {},
  ) {
    this.#view = view;
    const term = opts.activeTerm ?? (() => undefined);
    this.#config = new TermCell(CONFIG_CACHE_MS, term);
    this.#cache = new MetadataCache(term, opts.metadataCacheEntries);
  }

  async exists(path: string): Promise<boolean | undefined> {
    const { sub, key } = this.#split(path);
    if (sub === "config") return true;
    if (sub !== "data" && sub !== "metadata") return undefined;
    if (key === "") return false;
    checkKey(key);
    return (await this.#meta(key)) !== undefined;
  }

  #split(path: string): { sub: string; key: string } {
    const i = path.indexOf("/");
    const sub = i < 0 ? path : path.slice(0, i);
    const key = i < 0 ? "" : path.slice(i + 1);
    if (!SUBPATHS.includes(sub))
      throw new KvError(
        "not_found",
        `no handler for route ${JSON.stringify(path)}: use data/, metadata/, delete/, undelete/, destroy/ or config`,
      );
    return { sub, key };
  }

  async handle(req: KvRequest): Promise<KvResponse> {
    const { sub, key } = this.#split(req.path);
    const op = req.operation;
    const unsupported = () => new KvError("unsupported_operation", `unsupported operation ${op} on ${sub}/`);
    switch (sub) {
      case "config":
        if (key !== "") throw new KvError("not_found", "no handler for route: config takes no sub-path");
        if (op === "read") return { data: this.#configResponse(await this.#readConfig()) };
        if (op === "write") return this.#writeConfig(req.body);
        throw unsupported();
      case "data":
        if (op === "read") return this.#read(key, req.query);
        if (op === "write") return this.#write(key, req.body);
        if (op === "delete") return this.#deleteLatest(key);
        throw unsupported();
      case "metadata":
        if (op === "list") {
          const keys = await this.#view.list(`metadata/${listPrefix(key)}`);
          if (keys.length === 0) throw new KvError("not_found", "");
          return { data: { keys } };
        }
        if (op === "read") return this.#readMeta(key);
        if (op === "write") return this.#writeMeta(key, req.body);
        if (op === "delete") return this.#deleteMeta(key);
        throw unsupported();
      default:
        if (op !== "write") throw unsupported();
        return this.#versionsOp(sub as "delete" | "undelete" | "destroy", key, req.body);
    }
  }

  // ------------------------------------------------------------------ config

  async #readConfig(): Promise<Config> {
    return this.#config.get(
      async () =>
        (await this.#view.getJson<Config>("config")) ?? {
          max_versions: 0,
          cas_required: false,
          delete_version_after: 0,
        },
    );
  }

  #configResponse(c: Config): Record<string, unknown> {
    return {
      cas_required: c.cas_required,
      delete_version_after: formatGoDuration(c.delete_version_after * 1000),
      max_versions: c.max_versions,
    };
  }

  async #writeConfig(body: unknown): Promise<KvResponse> {
    const f = parseFields(body, {
      max_versions: "int",
      cas_required: "bool",
      delete_version_after: "duration",
    });
    if (f.max_versions !== undefined && f.max_versions < 0)
      throw new KvError("invalid_request", "max_versions must not be negative");
    // One config write at a time (each merges into the stored config: no field may be lost).
    return this.#locks.run(CONFIG_LOCK, async () => {
      this.#config.clear();
      const c = await this.#readConfig();
      const next: Config = {
        max_versions: f.max_versions ?? c.max_versions,
        cas_required: f.cas_required ?? c.cas_required,
        delete_version_after: f.delete_version_after ?? c.delete_version_after,
      };
      await this.#config.write(next, () => this.#view.putJson("config", next));
      return {};
    });
  }

  // ------------------------------------------------------------------ data

  #versionKey(key: string, n: number): string {
    let h = this.#hashes.get(key);
    if (h === undefined) {
      h = sha256Hex(key);
      // Bounded: a flood of distinct keys only costs re-hashing.
      if (this.#hashes.size >= 10_000) this.#hashes.clear();
      this.#hashes.set(key, h);
    }
    return `versions/${h}/${n}`;
  }

  /** The key's metadata for reading (frozen when it comes from the cache: never change it). */
  async #meta(key: string): Promise<Metadata | undefined> {
    const hit = this.#cache.get(key);
    if (hit !== undefined) return hit;
    const at = this.#cache.snapshot();
    return this.#cache.fill(key, await this.#view.getJson<Metadata>(`metadata/${key}`), at);
  }

  /**
   * Runs a change of `key`'s metadata under the key's lock. `fn` gets a copy it may change and
   * returns its result and the record storage holds afterwards (`undefined` when deleted or not
   * known); the cache is kept coherent whether `fn` succeeds or throws.
   */
  async #change<T>(
    key: string,
    fn: (current: Metadata | undefined) => Promise<{ result: T; stored: Metadata | undefined }>,
  ): Promise<T> {
    return this.#locks.run(key, async () => {
      const cached = this.#cache.get(key);
      const { term } = this.#cache.snapshot();
      this.#cache.beginWrite(key);
      let stored: Metadata | undefined;
      try {
        const current =
          cached !== undefined
            ? cloneMetadata(cached)
            : await this.#view.getJson<Metadata>(`metadata/${key}`);
        const out = await fn(current);
        stored = out.stored;
        return out.result;
      } finally {
        this.#cache.endWrite(key, stored, term);
      }
    });
  }

  async #read(key: string, query: Record<string, string | undefined>): Promise<KvResponse> {
    checkKey(key);
    let version = 0;
    if (query.version !== undefined) {
      if (!/^\d{1,15}$/.test(query.version))
        throw new KvError("invalid_request", "version must be a non-negative integer");
      version = Number(query.version);
    }
    const m = await this.#meta(key);
    if (m === undefined) throw new KvError("not_found", "");
    const n = version === 0 ? m.current_version : version;
    const vm = m.versions[String(n)];
    if (vm === undefined) throw new KvError("not_found", "");
    if (vm.destroyed || isDeleted(vm)) {
      return { status: 404, data: { data: null, metadata: versionResponse(m, n) } };
    }
    const stored = await this.#view.getText(this.#versionKey(key, n));
    if (stored === undefined) throw new KvError("not_found", "");
    // Versions are stored as JSON.stringify({ data }) by #write and authenticated by the barrier:
    // the secret's JSON text is spliced into the response without a parse/serialize round trip.
    const inner =
      stored.startsWith(VERSION_PREFIX) && stored.endsWith("}")
        ? stored.slice(VERSION_PREFIX.length, -1)
        : undefined;
    let dataJson = inner ?? stringify((parseLossless(stored) as { data: unknown }).data);
    // OpenBao's KV v2 stores a version's numbers as sent but decodes them into float64 when
    // reading (unlike KV v1): 2^53+1 reads back as 9007199254740992, 1E+2 as 100, -0 as -0.
    // Only data holding such a number is parsed; the rest is spliced as stored.
    if (scanNumbers(dataJson) === "lossless") dataJson = stringify(goFloat(parseLossless(dataJson)));
    return { rawData: `{"data":${dataJson},"metadata":${JSON.stringify(versionResponse(m, n))}}` };
  }

  async #write(key: string, body: unknown): Promise<KvResponse> {
    checkKey(key);
    const f = parseFields(body, { data: "object", options: "object" });
    if (f.data === undefined) throw new KvError("invalid_request", "no data provided");
    const opts = parseFields(f.options ?? {}, { cas: "int" });
    if (opts.cas !== undefined && opts.cas < 0)
      throw new KvError("invalid_request", "cas must not be negative");
    return this.#change(key, async (current) => {
      const cfg = await this.#readConfig();
      const now = nowIso();
      const m: Metadata = current ?? newMetadata(now);
      if ((cfg.cas_required || m.cas_required) && opts.cas === undefined) {
        throw new KvError("invalid_request", "check-and-set parameter required for this call");
      }
      if (opts.cas !== undefined && opts.cas !== m.current_version) {
        throw new KvError("invalid_request", "check-and-set parameter did not match the current version");
      }
      const n = m.current_version + 1;
      // Stored with every number's exact text (as OpenBao stores it); see #read for what is returned.
      await this.#view.putJson(this.#versionKey(key, n), { data: f.data });
      const dva = m.delete_version_after > 0 ? m.delete_version_after : cfg.delete_version_after;
      m.versions[String(n)] = {
        created_time: now,
        deletion_time: dva > 0 ? new Date(Date.parse(now) + dva * 1000).toISOString() : "",
        destroyed: false,
      };
      m.current_version = n;
      if (m.oldest_version === 0) m.oldest_version = n;
      m.updated_time = now;
      const max =
        m.max_versions > 0 ? m.max_versions : cfg.max_versions > 0 ? cfg.max_versions : DEFAULT_MAX_VERSIONS;
      const pruned: number[] = [];
      const nums = Object.keys(m.versions)
        .map(Number)
        .sort((a, b) => a - b);
      while (nums.length > max) {
        const old = nums.shift() as number;
        delete m.versions[String(old)];
        pruned.push(old);
      }
      m.oldest_version = nums[0] ?? n;
      try {
        await this.#view.putJson(`metadata/${key}`, m);
      } catch (e) {
        // A refusal the storage is sure of (the key cannot exist, the value is too large) wrote
        // nothing: take the version back so a refused write leaves nothing behind. Any other
        // failure may have landed, and metadata without its version would be worse than an
        // unreferenced version.
        if (e instanceof StorageError && (e.code === "invalid_key" || e.code === "value_too_large")) {
          await this.#view.delete(this.#versionKey(key, n)).catch(() => undefined);
        }
        throw e;
      }
      // The write is done once the metadata is stored: failing to delete pruned versions must not
      // turn it into an error (a client would retry and write another version). Vault answers
      // with a warning as well.
      const result: KvResponse = { data: versionResponse(m, n) };
      try {
        for (const old of pruned) await this.#view.delete(this.#versionKey(key, old));
      } catch (e) {
        result.warnings = [
          `the new version was written, but deleting old versions beyond max_versions failed: ${(e as Error).message}`,
        ];
      }
      return { result, stored: m };
    });
  }

  async #deleteLatest(key: string): Promise<KvResponse> {
    checkKey(key);
    return this.#change(key, async (m) => {
      if (m === undefined) return { result: {}, stored: undefined };
      const vm = m.versions[String(m.current_version)];
      if (vm === undefined || vm.destroyed || isDeleted(vm)) return { result: {}, stored: m };
      vm.deletion_time = nowIso();
      m.updated_time = vm.deletion_time;
      await this.#view.putJson(`metadata/${key}`, m);
      return { result: {}, stored: m };
    });
  }

  async #versionsOp(op: "delete" | "undelete" | "destroy", key: string, body: unknown): Promise<KvResponse> {
    checkKey(key);
    const f = parseFields(body, { versions: "intList" });
    if (f.versions === undefined || f.versions.length === 0)
      throw new KvError("invalid_request", "no version number provided");
    for (const v of f.versions)
      if (v <= 0) throw new KvError("invalid_request", `invalid version ${v}: versions start at 1`);
    return this.#change(key, async (m) => {
      if (m === undefined) return { result: {}, stored: undefined };
      const now = nowIso();
      for (const v of f.versions as number[]) {
        const vm = m.versions[String(v)];
        if (vm === undefined || vm.destroyed) continue;
        if (op === "delete" && !isDeleted(vm)) vm.deletion_time = now;
        if (op === "undelete") vm.deletion_time = "";
        if (op === "destroy") {
          await this.#view.delete(this.#versionKey(key, v));
          vm.destroyed = true;
        }
      }
      m.updated_time = now;
      await this.#view.putJson(`metadata/${key}`, m);
      return { result: {}, stored: m };
    });
  }

  // ------------------------------------------------------------------ metadata

  async #readMeta(key: string): Promise<KvResponse> {
    checkKey(key);
    const m = await this.#meta(key);
    if (m === undefined) throw new KvError("not_found", "");
    return { data: metaResponse(m) };
  }

  async #writeMeta(key: string, body: unknown): Promise<KvResponse> {
    checkKey(key);
    const f = parseFields(body, {
      max_versions: "int",
      cas_required: "bool",
      delete_version_after: "duration",
      custom_metadata: "stringMap",
    });
    if (f.max_versions !== undefined && f.max_versions < 0)
      throw new KvError("invalid_request", "max_versions must not be negative");
    if (f.custom_metadata !== undefined) checkCustomMetadata(f.custom_metadata);
    return this.#change(key, async (current) => {
      const now = nowIso();
      const m: Metadata = current ?? newMetadata(now);
      if (f.max_versions !== undefined) m.max_versions = f.max_versions;
      if (f.cas_required !== undefined) m.cas_required = f.cas_required;
      if (f.delete_version_after !== undefined) m.delete_version_after = f.delete_version_after;
      if (f.custom_metadata !== undefined) m.custom_metadata = { ...f.custom_metadata };
      m.updated_time = now;
      await this.#view.putJson(`metadata/${key}`, m);
      return { result: {}, stored: m };
    });
  }

  async #deleteMeta(key: string): Promise<KvResponse> {
    checkKey(key);
    return this.#change(key, async (m) => {
      if (m === undefined) return { result: {}, stored: undefined };
      // Versions first, metadata last (Vault's order): if a delete fails, the metadata still
      // names every version, so a retry deletes what is left. (The other way round, a failure
      // left version data no request could reach or delete any more.)
      for (const v of Object.keys(m.versions)) await this.#view.delete(this.#versionKey(key, Number(v)));
      await this.#view.delete(`metadata/${key}`);
      return { result: {}, stored: undefined };
    });
  }
}

/**
 * KV version 2 (versioned secrets), Vault's API: `data/`, `metadata/`, `detailed-metadata/`,
 * `delete/`, `undelete/`, `destroy/`, `config`, with check-and-set (data and OpenBao's metadata
 * check-and-set), max_versions and delete_version_after — answering as OpenBao 2.6.2 does.
 *
 * Storage is OpenBao's KV v2 plugin's own (docs/vault-storage-formats.md §6), so either server
 * reads what the other wrote. Below the mount's `logical/<uuid>/`, everything sits under the
 * mount's `backend_aware_uuid` (`<bu>`), keeping v1 keys left at the view root apart during an
 * upgrade:
 *   <bu>/config                  protobuf Configuration (absent until config is written)
 *   <bu>/salt                    a UUID string salting the version paths
 *   <bu>/upgrading               protobuf UpgradeInfo (done=true once the mount is in use)
 *   <bu>/policy/metadata, <bu>/archive/metadata   the key encrypting metadata paths
 *   <bu>/metadata/<e1>/<e2>/…    protobuf KeyMetadata, each path segment encrypted
 *   <bu>/versions/<3>/<61>       protobuf Version (`data` = the secret's JSON as Go marshals it)
 *
 * A version's data is written before the metadata that makes it visible; a crash in between
 * leaves an unreferenced version, never metadata pointing at nothing.
 */
import { randomUUID } from "node:crypto";
import { formatGoDurationNs } from "@bulwark/settings";
import { StorageError } from "@bulwark/storage";
import { goFloat, JsonNumber, parseLossless, scanNumbers } from "../json/lossless.js";
import { parseField, parseFields } from "../request/fields.js";
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
import { MetadataPaths, versionPath } from "./encrypted-paths.js";
import { cloneMetadata, MetadataCache } from "./metadata-cache.js";
import { TermCell } from "./term-cell.js";
import {
  type Configuration,
  decodeConfiguration,
  decodeKeyMetadata,
  decodeUpgradeInfo,
  decodeVersion,
  encodeConfiguration,
  encodeKeyMetadata,
  encodeUpgradeInfo,
  encodeVersion,
  formatTime,
  type KeyMetadata,
  nowTime,
  type PbTime,
  type VersionMeta,
} from "./v2-records.js";

/** OpenBao's default when neither the key nor the mount sets max_versions. */
const DEFAULT_MAX_VERSIONS = 10;
const SUBPATHS = [
  "data",
  "metadata",
  "detailed-metadata",
  "subkeys",
  "delete",
  "undelete",
  "destroy",
  "config",
];
const NS_PER_S = 1_000_000_000;
/** The mount's delete_version_after meaning "disabled for every key" (OpenBao stores -1s). */
const DISABLED_DVA: PbTime = { seconds: -1, nanos: 0 };

const UPGRADING_MESSAGE =
  "Upgrading from non-versioned to versioned data. This backend will be unavailable for a brief period and will resume service shortly.";

const enc = new TextEncoder();
const dec = new TextDecoder();

// ------------------------------------------------------------------ times and durations

function nanosOf(t: PbTime): bigint {
  return BigInt(t.seconds) * BigInt(NS_PER_S) + BigInt(t.nanos);
}

function addDuration(t: PbTime, d: PbTime): PbTime {
  let seconds = t.seconds + d.seconds;
  let nanos = t.nanos + d.nanos;
  if (nanos >= NS_PER_S) {
    seconds += 1;
    nanos -= NS_PER_S;
  } else if (nanos < 0) {
    seconds -= 1;
    nanos += NS_PER_S;
  }
  return { seconds, nanos };
}

/** Go's `t.Before(now)`: a deletion time strictly in the past. */
function isPast(t: PbTime, now: PbTime): boolean {
  return t.seconds < now.seconds || (t.seconds === now.seconds && t.nanos < now.nanos);
}

function isDeleted(v: VersionMeta, now?: PbTime): boolean {
  return v.deletion_time !== undefined && isPast(v.deletion_time, now ?? nowTime());
}

function dvaNanos(d: PbTime | undefined): bigint {
  return d === undefined ? 0n : nanosOf(d);
}

function formatDuration(d: PbTime | undefined): string {
  return formatGoDurationNs(dvaNanos(d));
}

function isDvaDisabled(c: Configuration): boolean {
  return dvaNanos(c.delete_version_after) === nanosOf(DISABLED_DVA);
}

/**
 * OpenBao's `deletionTime`: the shorter of the mount's and the key's delete_version_after that is
 * set (non-zero) after `from`, or none when neither is.
 */
function deletionTime(from: PbTime, mount: PbTime | undefined, meta: PbTime | undefined): PbTime | undefined {
  const m = dvaNanos(mount);
  const k = dvaNanos(meta);
  if (m === 0n && k === 0n) return undefined;
  let min = k;
  let pick = meta;
  if ((m !== 0n && m < min) || min === 0n) {
    min = m;
    pick = mount;
  }
  return addDuration(from, pick as PbTime);
}

// ------------------------------------------------------------------ Go's encoding/json

/** Go's json.Marshal escapes these beyond what JSON.stringify does. */
const GO_ESCAPE_TEST = /[<>&\u2028\u2029]/;
const GO_ESCAPE = /[<>&\u2028\u2029]/g;
const GO_ESCAPES: Record<string, string> = {
  "<": "\\u003c",
  ">": "\\u003e",
  "&": "\\u0026",
  "\u2028": "\\u2028",
  "\u2029": "\\u2029",
};
const SURROGATE = /[\uD800-\uDFFF]/;
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

function goString(s: string): string {
  // Go holds UTF-8: a lone surrogate cannot be represented and becomes U+FFFD.
  const wellFormed = SURROGATE.test(s) ? s.replace(LONE_SURROGATE, "\uFFFD") : s;
  const j = JSON.stringify(wellFormed);
  return GO_ESCAPE_TEST.test(j) ? j.replace(GO_ESCAPE, (c) => GO_ESCAPES[c] as string) : j;
}

/** Go's string order (UTF-8 bytes), which differs from UTF-16's for characters beyond U+FFFF. */
function goCompare(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x === y) continue;
    const xs = x >= 0xd800 && x <= 0xdfff;
    const ys = y >= 0xd800 && y <= 0xdfff;
    // A surrogate (a code point above U+FFFF) sorts after every BMP character in UTF-8.
    if (xs !== ys && (x >= 0xe000 || y >= 0xe000)) return xs ? 1 : -1;
    return x - y;
  }
  return a.length - b.length;
}

/** An object whose keys are written in this order (a merge patch's result), not sorted. */
class Ordered {
  readonly entries: [string, unknown][] = [];
}

/**
 * `value` as Go's `json.Marshal` writes it (what OpenBao stores as a version's data, and what its
 * API answers): object keys sorted, `<`, `>`, `&`, U+2028 and U+2029 escaped, {@link JsonNumber}s
 * as their exact text.
 */
export function goJson(value: unknown): string {
  // The usual request body (keys already in Go's order, no number kept as text) goes through the
  // native serializer, then gets Go's extra escapes.
  if (plainAndSorted(value, 0)) {
    const j = JSON.stringify(value);
    // A lone surrogate comes out as an escape in \ud800..\udfff; Go would have replaced it (the careful path).
    if (!LONE_ESCAPE.test(j))
      return GO_ESCAPE_TEST.test(j) ? j.replace(GO_ESCAPE, (c) => GO_ESCAPES[c] as string) : j;
  }
  return goJsonSlow(value);
}

/** `\ud800`–`\udfff` as JSON.stringify writes a lone surrogate. */
const LONE_ESCAPE = /\\u[dD][89a-fA-F]/;

/** No JsonNumber anywhere and every object's keys already in Go's order (bounded depth). */
function plainAndSorted(v: unknown, depth: number): boolean {
  if (typeof v !== "object" || v === null) return true;
  if (depth > 64 || v instanceof JsonNumber || v instanceof Ordered) return false;
  if (Array.isArray(v)) {
    for (const x of v) if (!plainAndSorted(x, depth + 1)) return false;
    return true;
  }
  let prev: string | undefined;
  for (const k in v) {
    if (prev !== undefined && goCompare(prev, k) >= 0) return false;
    if (!plainAndSorted((v as Record<string, unknown>)[k], depth + 1)) return false;
    prev = k;
  }
  return true;
}

function goJsonSlow(value: unknown): string {
  if (value === null || value === undefined) return "null";
  if (value instanceof JsonNumber) return value.text;
  switch (typeof value) {
    case "string":
      return goString(value);
    case "number":
    case "boolean":
      return JSON.stringify(value);
    case "object":
      break;
    default:
      return "null";
  }
  if (Array.isArray(value)) return `[${value.map(goJsonSlow).join(",")}]`;
  if (value instanceof Ordered)
    return `{${value.entries.map(([k, v]) => `${goString(k)}:${goJsonSlow(v)}`).join(",")}}`;
  const o = value as Record<string, unknown>;
  const parts: string[] = [];
  for (const k of Object.keys(o).sort(goCompare)) {
    if (o[k] !== undefined) parts.push(`${goString(k)}:${goJsonSlow(o[k])}`);
  }
  return `{${parts.join(",")}}`;
}

// ------------------------------------------------------------------ responses

function customMetadata(m: KeyMetadata): Record<string, string> | null {
  if (m.custom_metadata.size === 0) return null;
  const out: Record<string, string> = {};
  for (const k of [...m.custom_metadata.keys()].sort(goCompare)) out[k] = m.custom_metadata.get(k) as string;
  return out;
}

function metaResponse(m: KeyMetadata): Record<string, unknown> {
  const versions: Record<string, unknown> = {};
  for (const n of [...m.versions.keys()].sort((a, b) => a - b)) {
    const v = m.versions.get(n) as VersionMeta;
    versions[String(n)] = {
      created_time: formatTime(v.created_time),
      deletion_time: formatTime(v.deletion_time),
      destroyed: v.destroyed,
    };
  }
  return {
    cas_required: m.cas_required,
    created_time: formatTime(m.created_time),
    current_metadata_version: m.current_metadata_version,
    current_version: m.current_version,
    custom_metadata: customMetadata(m),
    delete_version_after: formatDuration(m.delete_version_after),
    max_versions: m.max_versions,
    metadata_cas_required: m.metadata_cas_required,
    oldest_version: m.oldest_version,
    updated_time: formatTime(m.updated_time),
    versions,
  };
}

/**
 * The JSON of {@link versionResponse} for a frozen (cached) record, built once per version: a
 * cached record never changes, and every read of a secret answers it.
 */
const versionJsonMemo = new WeakMap<KeyMetadata, Map<number, string>>();

function versionResponseJson(m: KeyMetadata, n: number): string {
  if (!Object.isFrozen(m)) return JSON.stringify(versionResponse(m, n));
  let perVersion = versionJsonMemo.get(m);
  if (perVersion === undefined) {
    perVersion = new Map();
    versionJsonMemo.set(m, perVersion);
  }
  let json = perVersion.get(n);
  if (json === undefined) {
    json = JSON.stringify(versionResponse(m, n));
    perVersion.set(n, json);
  }
  return json;
}

function versionResponse(m: KeyMetadata, n: number): Record<string, unknown> {
  const v = m.versions.get(n) as VersionMeta;
  return {
    created_time: formatTime(v.created_time),
    custom_metadata: customMetadata(m),
    deletion_time: formatTime(v.deletion_time),
    destroyed: v.destroyed,
    version: n,
  };
}

/**
 * OpenBao's `KeyMetadata.AddVersion`: appends version current+1 and slides the window of kept
 * versions (the larger of the key's and the mount's max_versions, 10 when neither is set).
 * oldest_version stays 0 until the window first moves. Returns the versions it dropped.
 */
function addVersion(m: KeyMetadata, vm: VersionMeta, configMax: number): number[] {
  m.current_version += 1;
  m.versions.set(m.current_version, vm);
  if (vm.created_time !== undefined) {
    m.updated_time = vm.created_time;
    if (m.created_time === undefined) m.created_time = vm.created_time;
  }
  const larger = Math.max(m.max_versions, configMax);
  const max = larger > 0 ? larger : DEFAULT_MAX_VERSIONS;
  const dropped: number[] = [];
  if (m.current_version - m.oldest_version >= max) {
    const last = m.current_version - max;
    for (const n of [...m.versions.keys()].sort((a, b) => a - b)) {
      if (n >= m.oldest_version && n <= last) {
        m.versions.delete(n);
        dropped.push(n);
      }
    }
    m.oldest_version = last + 1;
  }
  return dropped;
}

/** go-multierror's text, which OpenBao answers for custom_metadata refusals. */
function multiError(errs: string[]): string {
  if (errs.length === 1) return `1 error occurred:\n\t* ${errs[0]}\n\n`;
  return `${errs.length} errors occurred:\n\t${errs.map((e) => `* ${e}`).join("\n\t")}\n\n`;
}

const CM_PREFIX = "custom_metadata validation failed";
/** Go's unicode.IsPrint: letters, marks, numbers, punctuation, symbols and the ASCII space. */
const PRINTABLE = /^[\p{L}\p{M}\p{N}\p{P}\p{S} ]*$/u;

/** custom_metadata as OpenBao reads it: values weakly decoded to strings, then validated. */
function parseCustomMetadata(raw: Record<string, unknown>): Map<string, string> {
  const out = new Map<string, string>();
  for (const [k, v] of Object.entries(raw)) {
    let s: string;
    if (typeof v === "string") s = v;
    else if (typeof v === "boolean") s = v ? "1" : "0";
    else if (typeof v === "number") s = String(v);
    else if (v instanceof JsonNumber) s = v.text;
    else if (v === null) s = "";
    else
      throw new KvError(
        "invalid_request",
        `${CM_PREFIX}: the value of ${JSON.stringify(k)} must be a string, number or boolean`,
      );
    out.set(k, s);
  }
  if (out.size > 64)
    throw new KvError(
      "invalid_request",
      multiError([`${CM_PREFIX}: payload must contain at most 64 keys, provided ${out.size}`]),
    );
  const errs: string[] = [];
  for (const k of [...out.keys()].sort(goCompare)) {
    const v = out.get(k) as string;
    const kl = Buffer.byteLength(k);
    const vl = Buffer.byteLength(v);
    if (kl === 0 || kl > 128)
      errs.push(`${CM_PREFIX}: length of key ${JSON.stringify(k)} is ${kl} but must be 0 < len(key) <= 128`);
    if (vl === 0 || vl > 512)
      errs.push(
        `${CM_PREFIX}: length of value for key ${JSON.stringify(k)} is ${vl} but must be 0 < len(value) <= 512`,
      );
    if (!PRINTABLE.test(k))
      errs.push(`${CM_PREFIX}: key ${JSON.stringify(k)} (${k}) contains unprintable characters`);
    if (!PRINTABLE.test(v))
      errs.push(`${CM_PREFIX}: value for key ${JSON.stringify(k)} contains unprintable characters`);
  }
  if (errs.length > 0) throw new KvError("invalid_request", multiError(errs));
  return out;
}

/**
 * A signed duration in whole seconds (OpenBao's TypeSignedDurationSecond for the mount's
 * delete_version_after, where a negative value disables deletion on every key).
 */
function parseSignedDuration(field: string, raw: unknown): number {
  const v = raw instanceof JsonNumber ? raw.toNumber() : raw;
  if (typeof v === "number" && Number.isFinite(v) && v < 0) return Math.ceil(v);
  if (typeof v === "string" && v.trim().startsWith("-")) {
    const d = parseField(field, "duration", v.trim().slice(1)) as number;
    return d === 0 ? 0 : -d;
  }
  return parseField(field, "duration", v) as number;
}

/** OpenBao's validateCheckAndSetOption. */
function checkCas(cas: number | undefined, cfg: Configuration, m: KeyMetadata): void {
  if (cas !== undefined) {
    if (cas !== m.current_version)
      throw new KvError("invalid_request", "check-and-set parameter did not match the current version");
  } else if (cfg.cas_required || m.cas_required) {
    throw new KvError("invalid_request", "check-and-set parameter required for this call");
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v) && !(v instanceof JsonNumber);
}

/**
 * JSON merge patch as OpenBao applies it (evanphx/json-patch v5 MergePatch on Go-marshalled
 * documents): the current object's keys keep their (sorted) places, null removes a key, objects
 * merge, anything else replaces; new keys are appended (in Go's order among themselves, where Go
 * iterates a map) with their nulls pruned.
 */
function mergePatch(target: unknown, patch: unknown): unknown {
  if (!isObject(patch)) return patch;
  if (!isObject(target)) return pruneNulls(patch);
  const out = new Ordered();
  for (const k of Object.keys(target).sort(goCompare)) {
    if (!Object.hasOwn(patch, k)) out.entries.push([k, target[k]]);
    else if (patch[k] === null) continue;
    else if (target[k] === null) out.entries.push([k, pruneNulls(patch[k])]);
    else out.entries.push([k, mergePatch(target[k], patch[k])]);
  }
  for (const k of Object.keys(patch).sort(goCompare)) {
    if (!Object.hasOwn(target, k) && patch[k] !== null) out.entries.push([k, pruneNulls(patch[k])]);
  }
  return out;
}

/** evanphx's pruneNulls: null members of objects go, at every depth (arrays keep theirs). */
function pruneNulls(v: unknown): unknown {
  if (Array.isArray(v)) return v.map((x) => (x === null ? null : pruneNulls(x)));
  if (!isObject(v)) return v;
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v)) if (x !== null) out[k] = pruneNulls(x);
  return out;
}

/** An integer query parameter (absent or empty: 0). */
function intQuery(query: Record<string, string | undefined>, name: string): number {
  const q = query[name];
  if (q === undefined || q === "") return 0;
  if (!/^-?\d{1,15}$/.test(q)) throw new KvError("invalid_request", `${name} must be an integer`);
  return Number(q);
}

/** OpenBao's subkeys: values become null; non-empty objects within `max` levels (0 = all) are walked. */
function keysOnly(o: Record<string, unknown>, max: number, depth: number): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(o)) {
    const nested = typeof v === "object" && v !== null && !Array.isArray(v) && Object.keys(v).length > 0;
    out[k] =
      nested && (max === 0 || depth + 1 <= max)
        ? keysOnly(v as Record<string, unknown>, max, depth + 1)
        : null;
  }
  return out;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** How long the mount's config is reused without reading storage (writes here refresh it). */
const CONFIG_CACHE_MS = 5000;
/** The lock of config writes in the per-key mutex (no secret key contains NUL). */
const CONFIG_LOCK = "\0config";

export interface KvV2Options {
  /** The mount entry's `backend_aware_uuid`: every record lives below `<backendUuid>/`. */
  backendUuid: string;
  /**
   * The store's `activeTerm`: while it is defined and unchanged, decoded metadata records are
   * cached (see {@link MetadataCache}); without it nothing is cached.
   */
  activeTerm?: () => number | undefined;
  metadataCacheEntries?: number;
}

export class KvV2 implements KvEngine {
  readonly #view: PrefixView;
  readonly #bu: string;
  readonly #locks = new KeyedMutex();
  /** The mount's config; another node may change it while this one is not active (a new term). */
  readonly #config: TermCell<Configuration>;
  readonly #cache: MetadataCache;
  /** The mount's `upgrading` record says done (it never goes back). */
  #ready = false;
  /** The check of the upgrade marker on first use, shared by the requests that arrive meanwhile. */
  #setup: Promise<void> | undefined;
  /** A v1 → v2 upgrade running in the background; requests answer OpenBao's "upgrading" error. */
  #upgrade: Promise<void> | undefined;
  /** Upgrades started by this engine: a failed one is started again by the next request. */
  #upgradeRuns = 0;
  /** The salt never changes once stored; one promise so concurrent first writes create one. */
  #salt: Promise<string> | undefined;
  #paths: MetadataPaths | undefined;
  #pathsCreating: Promise<MetadataPaths | undefined> | undefined;

  /** @param view the mount's `logical/<uuid>/` view. */
  constructor(view: PrefixView, opts: KvV2Options) {
    // Empty would put the records at the view root, where KV v1 keys live (and get "upgraded").
    if (opts.backendUuid === "" || opts.backendUuid.includes("/"))
      throw new RangeError(
        `backendUuid must be the mount entry's backend_aware_uuid (a UUID), got ${JSON.stringify(opts.backendUuid)}`,
      );
    this.#view = view;
    this.#bu = opts.backendUuid;
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
    await this.#whenReady();
    return (await this.#meta(key)) !== undefined;
  }

  #split(path: string): { sub: string; key: string } {
    const i = path.indexOf("/");
    const sub = i < 0 ? path : path.slice(0, i);
    const key = i < 0 ? "" : path.slice(i + 1);
    if (!SUBPATHS.includes(sub))
      throw new KvError(
        "not_found",
        `no handler for route ${JSON.stringify(path)}: use data/, metadata/, detailed-metadata/, subkeys/, delete/, undelete/, destroy/ or config`,
      );
    return { sub, key };
  }

  async handle(req: KvRequest): Promise<KvResponse> {
    const { sub, key } = this.#split(req.path);
    // "patch" (HTTP PATCH, OpenBao's `kv patch`) is not in KvOperation yet: the router maps it
    // once the mount table passes it (see the issue-13 report).
    const op = req.operation as KvRequest["operation"] | "patch";
    const unsupported = () => new KvError("unsupported_operation", `unsupported operation ${op} on ${sub}/`);
    if (!this.#ready) await this.#whenReady();
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
        if (op === "patch") return this.#patch(key, req.body);
        throw unsupported();
      case "metadata":
        if (op === "list") return this.#list(key, req.query, false);
        if (op === "read") return this.#readMeta(key);
        if (op === "write") return this.#writeMeta(key, req.body);
        if (op === "delete") return this.#deleteMeta(key);
        if (op === "patch") return this.#writeMeta(key, req.body, true);
        throw unsupported();
      case "detailed-metadata":
        if (op === "list") return this.#list(key, req.query, true);
        throw unsupported();
      case "subkeys":
        if (op === "read") return this.#read(key, req.query, true);
        throw unsupported();
      default:
        if (op !== "write") throw unsupported();
        return this.#versionsOp(sub as "delete" | "undelete" | "destroy", key, req.body);
    }
  }

  // ------------------------------------------------------------------ upgrade marker

  /**
   * Resolves once the mount's upgrade marker says done. On first use the marker is checked; a
   * fresh mount gets it at once, a mount holding KV v1 keys at its root (a v1 mount tuned to v2)
   * is upgraded first as OpenBao does, and meanwhile requests answer OpenBao's "upgrading" error.
   */
  async #whenReady(): Promise<void> {
    if (this.#ready) return;
    if (this.#upgrade === undefined) {
      this.#setup ??= this.#checkUpgrade().finally(() => {
        this.#setup = undefined;
      });
      await this.#setup;
      if (this.#ready) return;
    }
    // OpenBao waits a moment first, so a request sent right after enabling likely succeeds.
    await sleep(15);
    if (this.#ready) return;
    // The failure itself is not sent: a storage error names keys of the mount.
    const failed = this.#upgradeRuns > 1 ? ` (attempt ${this.#upgradeRuns}: the earlier ones failed)` : "";
    throw new KvError("invalid_request", `${UPGRADING_MESSAGE}${failed}`);
  }

  async #checkUpgrade(): Promise<void> {
    const marker = `${this.#bu}/upgrading`;
    const raw = await this.#view.get(marker);
    if (raw !== undefined && decodeUpgradeInfo(raw).done) {
      this.#ready = true;
      return;
    }
    const legacy = await this.#legacyKeys("");
    const started = nowTime();
    if (legacy.length === 0) {
      // Nothing to upgrade: what OpenBao leaves after its (empty) upgrade, the path key and the
      // marker. Without the marker OpenBao would "upgrade" whatever later sits at the view root.
      await this.#metadataPaths(true);
      await this.#view.put(marker, encodeUpgradeInfo({ started_time: started, done: true }));
      this.#ready = true;
      return;
    }
    // The first write happens in the request, so a standby's refusal reaches the client (and
    // the request is forwarded to the active node, which runs the upgrade).
    await this.#view.put(marker, encodeUpgradeInfo({ started_time: started, done: false }));
    this.#upgradeRuns += 1;
    this.#upgrade = this.#runUpgrade(legacy, started)
      .then(
        () => {
          this.#ready = true;
        },
        // The next request starts it again: keys already moved are gone from the root.
        () => undefined,
      )
      .finally(() => {
        this.#upgrade = undefined;
      });
  }

  /** Every key below `prefix` of the view except this engine's own `<bu>/` records. */
  async #legacyKeys(prefix: string): Promise<string[]> {
    const out: string[] = [];
    for (const name of await this.#view.list(prefix)) {
      const path = prefix + name;
      if (prefix === "" && name === `${this.#bu}/`) continue;
      if (name.endsWith("/")) out.push(...(await this.#legacyKeys(path)));
      else out.push(path);
    }
    return out;
  }

  /** OpenBao's upgrade: each v1 key becomes version 1 of a v2 key, then the marker says done. */
  async #runUpgrade(keys: string[], started: PbTime): Promise<void> {
    for (const key of keys) {
      await this.#locks.run(key, async () => {
        const data = await this.#view.get(key);
        if (data === undefined) return;
        const created = nowTime();
        await this.#view.put(await this.#versionKey(key, 1), encodeVersion({ data, created_time: created }));
        const meta = emptyMetadata(key);
        addVersion(meta, { created_time: created, destroyed: false }, 1);
        this.#cache.beginWrite(key);
        try {
          await this.#putMeta(key, meta);
        } finally {
          this.#cache.endWrite(key, undefined, undefined);
        }
        await this.#view.delete(key);
      });
    }
    await this.#metadataPaths(true);
    await this.#view.put(`${this.#bu}/upgrading`, encodeUpgradeInfo({ started_time: started, done: true }));
  }

  // ------------------------------------------------------------------ config

  async #readConfig(): Promise<Configuration> {
    return this.#config.get(async () => {
      const raw = await this.#view.get(`${this.#bu}/config`);
      return raw === undefined
        ? { max_versions: 0, cas_required: false, metadata_cas_required: false }
        : decodeConfiguration(raw);
    });
  }

  #configResponse(c: Configuration): Record<string, unknown> {
    return {
      cas_required: c.cas_required,
      delete_version_after: formatDuration(c.delete_version_after),
      max_versions: c.max_versions,
      metadata_cas_required: c.metadata_cas_required,
    };
  }

  async #writeConfig(body: unknown): Promise<KvResponse> {
    const f = parseFields(body, {
      max_versions: "int",
      cas_required: "bool",
      metadata_cas_required: "bool",
      delete_version_after: "any",
    });
    if (f.max_versions !== undefined && f.max_versions < 0)
      throw new KvError("invalid_request", "max_versions must not be negative");
    const dva =
      f.delete_version_after === undefined
        ? undefined
        : parseSignedDuration("delete_version_after", f.delete_version_after);
    if (
      f.max_versions === undefined &&
      f.cas_required === undefined &&
      f.metadata_cas_required === undefined &&
      dva === undefined
    )
      return {};
    // One config write at a time (each merges into the stored config: no field may be lost).
    return this.#locks.run(CONFIG_LOCK, async () => {
      this.#config.clear();
      const next: Configuration = { ...(await this.#readConfig()) };
      if (f.max_versions !== undefined) next.max_versions = f.max_versions;
      if (f.cas_required !== undefined) next.cas_required = f.cas_required;
      if (f.metadata_cas_required !== undefined) next.metadata_cas_required = f.metadata_cas_required;
      if (dva !== undefined) {
        // Negative disables delete_version_after on every key; zero clears the setting.
        if (dva < 0) next.delete_version_after = DISABLED_DVA;
        else if (dva === 0) delete next.delete_version_after;
        else next.delete_version_after = { seconds: dva, nanos: 0 };
      }
      await this.#config.write(next, () => this.#view.put(`${this.#bu}/config`, encodeConfiguration(next)));
      return {};
    });
  }

  // ------------------------------------------------------------------ paths

  async #saltValue(): Promise<string> {
    this.#salt ??= (async () => {
      const key = `${this.#bu}/salt`;
      const stored = await this.#view.getText(key);
      if (stored !== undefined && stored !== "") return stored;
      const salt = randomUUID();
      await this.#view.put(key, enc.encode(salt));
      return salt;
    })().catch((e: unknown) => {
      this.#salt = undefined;
      throw e;
    });
    return this.#salt;
  }

  async #versionKey(key: string, n: number): Promise<string> {
    return versionPath(this.#bu, await this.#saltValue(), key, n);
  }

  /**
   * The mount's metadata path key: loaded once; with `create`, made when missing (concurrent
   * creators share one attempt). Without it, `undefined` while the mount has none (no key yet).
   */
  async #metadataPaths(create: boolean): Promise<MetadataPaths | undefined> {
    if (this.#paths !== undefined) return this.#paths;
    if (!create && this.#pathsCreating === undefined) {
      const p = await MetadataPaths.open(this.#view, this.#bu, false);
      if (p !== undefined) this.#paths ??= p;
      return this.#paths;
    }
    this.#pathsCreating ??= MetadataPaths.open(this.#view, this.#bu, true)
      .then((p) => {
        if (p !== undefined) this.#paths ??= p;
        return this.#paths;
      })
      .finally(() => {
        this.#pathsCreating = undefined;
      });
    return this.#pathsCreating;
  }

  /** The storage path of `key`'s metadata, or `undefined` when the mount has no path key yet. */
  async #metaPath(key: string, create: boolean): Promise<string | undefined> {
    // keyPath caches what it encrypted (bounded), so a key's path is derived once.
    return (this.#paths ?? (await this.#metadataPaths(create)))?.keyPath(key);
  }

  async #loadMeta(key: string): Promise<KeyMetadata | undefined> {
    const path = await this.#metaPath(key, false);
    if (path === undefined) return undefined;
    const raw = await this.#view.get(path);
    return raw === undefined ? undefined : decodeKeyMetadata(raw);
  }

  async #putMeta(key: string, m: KeyMetadata): Promise<void> {
    const path = (await this.#metaPath(key, true)) as string;
    await this.#view.put(path, encodeKeyMetadata(m));
  }

  /** The key's metadata for reading (frozen when it comes from the cache: never change it). */
  async #meta(key: string): Promise<KeyMetadata | undefined> {
    const hit = this.#cache.get(key);
    if (hit !== undefined) return hit;
    const at = this.#cache.snapshot();
    return this.#cache.fill(key, await this.#loadMeta(key), at);
  }

  /**
   * Runs a change of `key`'s metadata under the key's lock. `fn` gets a copy it may change and
   * returns its result and the record storage holds afterwards (`undefined` when deleted or not
   * known); the cache is kept coherent whether `fn` succeeds or throws.
   */
  async #change<T>(
    key: string,
    fn: (current: KeyMetadata | undefined) => Promise<{ result: T; stored: KeyMetadata | undefined }>,
  ): Promise<T> {
    return this.#locks.run(key, async () => {
      const cached = this.#cache.get(key);
      const { term } = this.#cache.snapshot();
      this.#cache.beginWrite(key);
      let stored: KeyMetadata | undefined;
      try {
        const current = cached !== undefined ? cloneMetadata(cached) : await this.#loadMeta(key);
        const out = await fn(current);
        stored = out.stored;
        return out.result;
      } finally {
        this.#cache.endWrite(key, stored, term);
      }
    });
  }

  // ------------------------------------------------------------------ data

  /**
   * A version's data, or with `subkeys` (OpenBao's `subkeys/` path) its keys only: every value
   * null except non-empty objects, down to `depth` levels (0 = all).
   */
  async #read(key: string, query: Record<string, string | undefined>, subkeys = false): Promise<KvResponse> {
    if (key === "") throw new KvError("not_found", "");
    checkKey(key);
    const version = intQuery(query, "version");
    const depth = subkeys ? intQuery(query, "depth") : 0;
    const m = await this.#meta(key);
    if (m === undefined) throw new KvError("not_found", "");
    // OpenBao: a version of 0 or below reads the current one.
    const n = version > 0 ? version : m.current_version;
    const vm = m.versions.get(n);
    if (vm === undefined) throw new KvError("not_found", "");
    if (vm.destroyed || isDeleted(vm)) {
      // Keys in Go's order, as OpenBao answers.
      const metadata = versionResponse(m, n);
      return { status: 404, data: subkeys ? { metadata, subkeys: null } : { data: null, metadata } };
    }
    const stored = await this.#view.get(await this.#versionKey(key, n));
    if (stored === undefined) throw new KvError("not_found", "");
    if (subkeys) {
      const data = JSON.parse(dec.decode(decodeVersion(stored).data)) as Record<string, unknown>;
      return { data: { metadata: versionResponse(m, n), subkeys: keysOnly(data, depth, 1) } };
    }
    // The version's data is the secret's JSON as Go marshals it (authenticated by the barrier): it
    // is spliced into the response without a parse/serialize round trip.
    let dataJson = dec.decode(decodeVersion(stored).data);
    // OpenBao stores a version's numbers as sent but decodes them into float64 when reading
    // (unlike KV v1): 2^53+1 reads back as 9007199254740992, 1E+2 as 100, -0 as -0. Only data
    // holding such a number is parsed; the rest is spliced as stored.
    if (scanNumbers(dataJson) === "lossless") dataJson = goJson(goFloat(parseLossless(dataJson)));
    return { rawData: `{"data":${dataJson},"metadata":${versionResponseJson(m, n)}}` };
  }

  /** The data and options of a data write or patch. */
  #dataBody(body: unknown): { data: Record<string, unknown>; cas: number | undefined } {
    const f = parseFields(body, { data: "object", options: "object" });
    if (f.data === undefined) throw new KvError("invalid_request", "no data provided");
    const opts = parseFields(f.options ?? {}, { cas: "int" });
    if (opts.cas !== undefined && opts.cas < 0)
      throw new KvError("invalid_request", "cas must not be negative");
    return { data: f.data, cas: opts.cas };
  }

  async #write(key: string, body: unknown): Promise<KvResponse> {
    checkKey(key);
    const { data, cas } = this.#dataBody(body);
    // Stored with every number's exact text, as OpenBao stores it (see #read for what is returned).
    const bytes = enc.encode(goJson(data));
    const cfg = await this.#readConfig();
    return this.#change(key, async (current) => {
      const m = current ?? emptyMetadata(key);
      checkCas(cas, cfg, m);
      return this.#appendVersion(key, m, cfg, bytes);
    });
  }

  /**
   * OpenBao's PATCH of `data/<key>`: the current version's data with the request's data merged in
   * (JSON merge patch, RFC 7396: null removes a key) becomes a new version. The current data goes
   * through float64 first, as in OpenBao, which decodes it into a Go map before merging.
   */
  async #patch(key: string, body: unknown): Promise<KvResponse> {
    checkKey(key);
    const { data, cas } = this.#dataBody(body);
    const cfg = await this.#readConfig();
    return this.#change(key, async (m) => {
      if (m === undefined) throw new KvError("not_found", "");
      checkCas(cas, cfg, m);
      const n = m.current_version;
      const vm = m.versions.get(n);
      if (vm === undefined) throw new KvError("not_found", "");
      if (vm.destroyed || isDeleted(vm))
        return { result: { status: 404, data: versionResponse(m, n) }, stored: m };
      const stored = await this.#view.get(await this.#versionKey(key, n));
      if (stored === undefined) throw new KvError("not_found", "");
      const current = goFloat(parseLossless(dec.decode(decodeVersion(stored).data)));
      const merged = mergePatch(current, data);
      return this.#appendVersion(key, m, cfg, enc.encode(goJson(merged)));
    });
  }

  /**
   * Writes `data` as version current+1 of `key` and then the metadata `m` naming it (OpenBao's
   * order: a crash in between leaves an unreferenced version, never metadata pointing at nothing),
   * then deletes the versions max_versions dropped.
   */
  async #appendVersion(
    key: string,
    m: KeyMetadata,
    cfg: Configuration,
    data: Uint8Array,
  ): Promise<{ result: KvResponse; stored: KeyMetadata }> {
    const created = nowTime();
    const vm: VersionMeta = { created_time: created, destroyed: false };
    if (!isDvaDisabled(cfg)) {
      const dt = deletionTime(created, cfg.delete_version_after, m.delete_version_after);
      if (dt !== undefined) vm.deletion_time = dt;
    }
    const version = m.current_version + 1;
    const versionKey = await this.#versionKey(key, version);
    const record: { data: Uint8Array; created_time: PbTime; deletion_time?: PbTime } = {
      data,
      created_time: created,
    };
    if (vm.deletion_time !== undefined) record.deletion_time = vm.deletion_time;
    await this.#view.put(versionKey, encodeVersion(record));
    const dropped = addVersion(m, vm, cfg.max_versions);
    try {
      await this.#putMeta(key, m);
    } catch (e) {
      // A refusal the storage is sure of (the key cannot exist, the value is too large) wrote
      // nothing: take the version back so a refused write leaves nothing behind. Any other
      // failure may have landed, and metadata without its version would be worse than an
      // unreferenced version.
      if (e instanceof StorageError && (e.code === "invalid_key" || e.code === "value_too_large")) {
        await this.#view.delete(versionKey).catch(() => undefined);
      }
      throw e;
    }
    // The write is done once the metadata is stored: failing to delete pruned versions must not
    // turn it into an error (a client would retry and write another version). OpenBao answers
    // with a warning as well.
    const result: KvResponse = { data: versionResponse(m, version) };
    try {
      for (const old of dropped) await this.#view.delete(await this.#versionKey(key, old));
    } catch (e) {
      result.warnings = [
        `error occurred when cleaning up old versions, these will be cleaned up on next write: ${(e as Error).message}`,
      ];
    }
    return { result, stored: m };
  }

  async #deleteLatest(key: string): Promise<KvResponse> {
    if (key === "") return {};
    checkKey(key);
    return this.#change(key, async (m) => {
      if (m === undefined) return { result: {}, stored: undefined };
      const vm = m.versions.get(m.current_version);
      const now = nowTime();
      if (vm === undefined || vm.destroyed || isDeleted(vm, now)) return { result: {}, stored: m };
      vm.deletion_time = now;
      await this.#putMeta(key, m);
      return { result: {}, stored: m };
    });
  }

  async #versionsOp(op: "delete" | "undelete" | "destroy", key: string, body: unknown): Promise<KvResponse> {
    checkKey(key);
    const f = parseFields(body, { versions: "intList" });
    if (f.versions === undefined || f.versions.length === 0)
      throw new KvError(
        "invalid_request",
        op === "destroy" ? "no version number provided" : "No version number provided",
      );
    const versions = f.versions;
    const cfg = op === "undelete" ? await this.#readConfig() : undefined;
    return this.#change(key, async (m) => {
      if (m === undefined) return { result: {}, stored: undefined };
      if (op === "destroy") {
        // Data first, metadata last: a destroy that fails part-way never leaves data behind that
        // the metadata already calls destroyed. (Versions the metadata no longer lists are deleted
        // too, as OpenBao does: that is how a leftover of a failed pruning goes.)
        for (const n of versions) if (n > 0) await this.#view.delete(await this.#versionKey(key, n));
      }
      for (const n of versions) {
        const vm = m.versions.get(n);
        if (vm === undefined || vm.destroyed) continue;
        const now = nowTime();
        if (op === "delete") {
          if (!isDeleted(vm, now)) vm.deletion_time = now;
        } else if (op === "undelete") {
          delete vm.deletion_time;
          // An undeleted version gets a fresh delete_version_after deadline, as in OpenBao.
          if (cfg !== undefined && !isDvaDisabled(cfg)) {
            const dt = deletionTime(now, cfg.delete_version_after, m.delete_version_after);
            if (dt !== undefined) vm.deletion_time = dt;
          }
        } else {
          vm.destroyed = true;
        }
      }
      await this.#putMeta(key, m);
      return { result: {}, stored: m };
    });
  }

  // ------------------------------------------------------------------ metadata

  async #list(
    path: string,
    query: Record<string, string | undefined>,
    detailed: boolean,
  ): Promise<KvResponse> {
    const prefix = listPrefix(path);
    let limit = 0;
    if (query.limit !== undefined && query.limit !== "") {
      if (!/^-?\d{1,15}$/.test(query.limit)) throw new KvError("invalid_request", "limit must be an integer");
      limit = Number(query.limit);
    }
    const after = query.after ?? "";
    const paths = await this.#metadataPaths(false);
    if (paths === undefined) throw new KvError("not_found", "");
    const names = await this.#view.list(paths.folderPath(prefix));
    let keys = names.map((n) => paths.listedName(prefix, n)).sort(goCompare);
    if (after !== "") {
      const i = keys.findIndex((k) => goCompare(k, after) > 0);
      keys = i < 0 ? [] : keys.slice(i);
    }
    if (limit > 0) keys = keys.slice(0, limit);
    if (keys.length === 0) throw new KvError("not_found", "");
    if (!detailed) return { data: { keys } };
    const keyInfo: Record<string, unknown> = {};
    for (const k of keys) {
      const m = k.endsWith("/") ? undefined : await this.#meta(prefix + k);
      keyInfo[k] = m === undefined ? {} : metaResponse(m);
    }
    return { data: { key_info: keyInfo, keys } };
  }

  async #readMeta(key: string): Promise<KvResponse> {
    if (key === "") throw new KvError("not_found", "");
    checkKey(key);
    const m = await this.#meta(key);
    if (m === undefined) throw new KvError("not_found", "");
    return { data: metaResponse(m) };
  }

  /**
   * A metadata write, or with `patch` OpenBao's metadata PATCH: only on an existing key, and
   * custom_metadata is merged into the key's (a null value removes that key).
   */
  async #writeMeta(key: string, body: unknown, patch = false): Promise<KvResponse> {
    checkKey(key);
    const f = parseFields(
      body,
      {
        max_versions: "int",
        cas_required: "bool",
        metadata_cas_required: "bool",
        metadata_cas: "int",
        delete_version_after: "duration",
        custom_metadata: "object",
      },
      // OpenBao's metadata path also declares the list parameters; a write ignores them.
      { allow: ["after", "limit"] },
    );
    if (f.max_versions !== undefined && f.max_versions < 0)
      throw new KvError("invalid_request", "max_versions must not be negative");
    // OpenBao: a write setting none of these changes nothing (not even creating the key).
    if (
      f.max_versions === undefined &&
      f.cas_required === undefined &&
      f.delete_version_after === undefined &&
      f.custom_metadata === undefined &&
      f.metadata_cas_required === undefined
    )
      return {};
    const removed: string[] = [];
    let custom: Map<string, string> | undefined;
    if (f.custom_metadata !== undefined) {
      let given = f.custom_metadata;
      if (patch) {
        given = {};
        for (const [k, v] of Object.entries(f.custom_metadata)) {
          if (v === null) removed.push(k);
          else given[k] = v;
        }
      }
      custom = parseCustomMetadata(given);
    }
    const cfg = await this.#readConfig();
    const warnings: string[] = [];
    if (f.cas_required === false && cfg.cas_required)
      warnings.push(
        '"cas_required" set to false, but is mandated by backend config. This value will be ignored.',
      );
    if (f.metadata_cas_required === false && cfg.metadata_cas_required)
      warnings.push(
        '"metadata_cas_required" set to false, but is mandated by backend config. This value will be ignored.',
      );
    return this.#change(key, async (current) => {
      if (current === undefined && patch) throw new KvError("not_found", "");
      const mcas = f.metadata_cas;
      if (((current?.metadata_cas_required ?? false) || cfg.metadata_cas_required) && mcas === undefined)
        throw new KvError("invalid_request", "metadata check-and-set parameter required for this call");
      const now = nowTime();
      let m: KeyMetadata;
      if (current === undefined) {
        if (mcas !== undefined && mcas !== 0)
          throw new KvError("invalid_request", "metadata_cas must be 0 when creating new metadata");
        m = emptyMetadata(key);
        m.created_time = now;
        m.updated_time = now;
        m.current_metadata_version = 1;
      } else {
        if (mcas !== undefined && mcas !== current.current_metadata_version)
          throw new KvError(
            "invalid_request",
            "metadata check-and-set parameter does not match the current version",
          );
        m = current;
        m.current_metadata_version += 1;
        m.updated_time = now;
      }
      if (f.max_versions !== undefined) m.max_versions = f.max_versions;
      if (f.cas_required !== undefined) m.cas_required = f.cas_required;
      if (f.metadata_cas_required !== undefined) m.metadata_cas_required = f.metadata_cas_required;
      if (f.delete_version_after !== undefined)
        m.delete_version_after = { seconds: f.delete_version_after, nanos: 0 };
      if (custom !== undefined && patch) {
        for (const k of removed) m.custom_metadata.delete(k);
        for (const [k, v] of custom) m.custom_metadata.set(k, v);
      } else if (custom !== undefined) {
        m.custom_metadata = custom;
      }
      await this.#putMeta(key, m);
      return { result: warnings.length > 0 ? { data: null, warnings } : {}, stored: m };
    });
  }

  async #deleteMeta(key: string): Promise<KvResponse> {
    if (key === "") return {};
    checkKey(key);
    return this.#change(key, async (m) => {
      if (m === undefined) return { result: {}, stored: undefined };
      // Versions first, metadata last (OpenBao's order): if a delete fails, the metadata still
      // names every version, so a retry deletes what is left. (The other way round, a failure
      // left version data no request could reach or delete any more.)
      for (const n of m.versions.keys()) await this.#view.delete(await this.#versionKey(key, n));
      await this.#view.delete((await this.#metaPath(key, true)) as string);
      return { result: {}, stored: undefined };
    });
  }
}

/** The metadata of a key that has none stored yet (OpenBao's `&KeyMetadata{Key, Versions}`). */
function emptyMetadata(key: string): KeyMetadata {
  return {
    key,
    versions: new Map(),
    current_version: 0,
    oldest_version: 0,
    max_versions: 0,
    cas_required: false,
    custom_metadata: new Map(),
    metadata_cas_required: false,
    current_metadata_version: 0,
  };
}

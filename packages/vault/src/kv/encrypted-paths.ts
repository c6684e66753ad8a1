/**
 * KV v2's storage paths as OpenBao 2.6.2 (and Vault's vault-plugin-secrets-kv) lays them out
 * (docs/vault-storage-formats.md §6.3–§6.4):
 *
 * - metadata records live at `<bu>/metadata/<e1>/<e2>/…`, each plaintext segment encrypted with
 *   keysutil's convergent AES-256-GCM under the per-mount policy key `<bu>/policy/metadata`
 *   (`sdk/helper/keysutil/encrypted_key_storage.go`), so equal keys give equal paths and a LIST
 *   can be decrypted back to names;
 * - versions live at `<bu>/versions/<h[0:3]>/<h[3:]>`, h = hex(SHA256(salt + key + "|" + n)).
 *
 * `<bu>` is the mount's backend_aware_uuid.
 */
import { createCipheriv, createDecipheriv, createHmac } from "node:crypto";
import { randomBytes } from "@bulwark/crypto";
import { VaultError } from "../errors.js";
import { sha256Hex } from "../ids.js";
import { KeyedMutex, type PrefixView } from "./common.js";
import { formatTime, nowTime } from "./v2-records.js";

/** Go's big.Int.Text(62) digits. */
const BASE62 = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
const BASE62_VALUE = new Map([...BASE62].map((c, i) => [c, i]));

/** keysutil's current convergent scheme: nonce = HMAC-SHA256(derived hmac key, plaintext)[0:12]. */
const CONVERGENT_VERSION = 3;
/** keysutil KeyType_AES256_GCM96 and Kdf_hkdf_sha256. */
const KEY_TYPE_AES256_GCM96 = 0;
const KDF_HKDF_SHA256 = 1;
const NONCE_BYTES = 12;
const TAG_BYTES = 16;
/** What KV v2 passes as the policy's VersionTemplate (keysutil.EncryptedKeyPolicyVersionTpl). */
const VERSION_TEMPLATE = "{{version}}:";
/** keysutil's default when a policy has none. */
const DEFAULT_VERSION_TEMPLATE = "vault:v{{version}}:";
/** Go's encrypted_key_storage.DefaultCacheSize (OpenBao caches as many paths per mount). */
const PATH_CACHE_ENTRIES = 16 * 1024;
/** Folder segments and listed names: fewer distinct ones than keys. */
const SEGMENT_CACHE_ENTRIES = 4 * 1024;
const DERIVED_CACHE_ENTRIES = 1024;

const utf8 = new TextEncoder();
const utf8Decoder = new TextDecoder("utf-8", { fatal: true });

/** A key entry of a keysutil policy, as Go's KeyEntry marshals it (field order kept). */
interface KeyEntryJson {
  key: string | null;
  hmac_key: string | null;
  time: string;
  ec_x: null;
  ec_y: null;
  ec_d: null;
  rsa_key: null;
  rsa_public_key: null;
  public_key: string;
  convergent_version: number;
  creation_time: number;
  certificate_chain: null;
}

interface PolicyKey {
  /** HKDF-Extract(salt = none, ikm = the key): the PRK every context's key is expanded from. */
  prk: Buffer;
  convergentVersion: number;
}

const ONE = Uint8Array.of(1);
const TWO = Uint8Array.of(2);
/** HKDF with no salt uses HashLen zero bytes (RFC 5869 §2.2). */
const ZERO_SALT = new Uint8Array(32);

/** A tiny LRU: a Map keeps insertion order, a hit moves the entry to the end. */
class Lru<V> {
  readonly #max: number;
  readonly #map = new Map<string, V>();
  constructor(max: number) {
    this.#max = max;
  }
  get(k: string): V | undefined {
    const v = this.#map.get(k);
    if (v !== undefined) {
      this.#map.delete(k);
      this.#map.set(k, v);
    }
    return v;
  }
  set(k: string, v: V): void {
    this.#map.delete(k);
    this.#map.set(k, v);
    if (this.#map.size > this.#max) this.#map.delete(this.#map.keys().next().value as string);
  }
}

// Serialises first-time creation of a policy key per storage path, so concurrent first writes to
// a fresh mount create one key, not one each (the later would make the earlier's paths unreadable).
const creating = new KeyedMutex();

function damaged(path: string, detail: string): VaultError {
  return new VaultError(
    "internal",
    `KV v2 metadata key ${path} cannot be used: ${detail} (the record is damaged or was not written by KV v2)`,
  );
}

/** The per-mount key that encrypts KV v2 metadata paths (Vault's keysutil policy "metadata"). */
export class MetadataPaths {
  readonly #prefix: string;
  readonly #keys: ReadonlyMap<number, PolicyKey>;
  readonly #latest: number;
  readonly #minDecryption: number;
  readonly #tplPrefix: string;
  readonly #tplSuffix: string;
  readonly #paths = new Lru<string>(PATH_CACHE_ENTRIES);
  readonly #names = new Lru<string>(SEGMENT_CACHE_ENTRIES);
  readonly #segments = new Lru<string>(SEGMENT_CACHE_ENTRIES);
  readonly #derived = new Lru<Buffer>(DERIVED_CACHE_ENTRIES);

  private constructor(backendUuid: string, policy: ParsedPolicy) {
    this.#prefix = `${backendUuid}/metadata`;
    this.#keys = policy.keys;
    this.#latest = policy.latest;
    this.#minDecryption = policy.minDecryption;
    [this.#tplPrefix, this.#tplSuffix] = policy.template;
  }

  /**
   * Reads `<backendUuid>/policy/metadata` below `view` (the mount's `logical/<uuid>/` view); when
   * missing and `create` is true, creates it and `<backendUuid>/archive/metadata` exactly as
   * OpenBao does (random 32-byte key and hmac_key, convergent_version 3, …). Returns undefined
   * when missing and !create.
   */
  static async open(
    view: PrefixView,
    backendUuid: string,
    create: boolean,
  ): Promise<MetadataPaths | undefined> {
    const policyKey = `${backendUuid}/policy/metadata`;
    const found = await MetadataPaths.#load(view, backendUuid, policyKey);
    if (found !== undefined || !create) return found;
    return creating.run(view.pathOf(policyKey), async () => {
      const again = await MetadataPaths.#load(view, backendUuid, policyKey);
      if (again !== undefined) return again;
      const { policy, archive } = newPolicyRecords(backendUuid);
      // keysutil's Persist order: the archive first, then the policy, so a policy on disk always
      // has its archive (a crash in between leaves an archive that the next creation overwrites).
      await view.put(`${backendUuid}/archive/metadata`, utf8.encode(JSON.stringify(archive)));
      await view.put(policyKey, utf8.encode(JSON.stringify(policy)));
      return new MetadataPaths(backendUuid, parsePolicy(view.pathOf(policyKey), policy));
    });
  }

  static async #load(
    view: PrefixView,
    backendUuid: string,
    policyKey: string,
  ): Promise<MetadataPaths | undefined> {
    const raw = await view.get(policyKey);
    if (raw === undefined) return undefined;
    let json: unknown;
    try {
      json = JSON.parse(utf8Decoder.decode(raw));
    } catch (e) {
      throw damaged(view.pathOf(policyKey), `not JSON (${(e as Error).message})`);
    }
    return new MetadataPaths(backendUuid, parsePolicy(view.pathOf(policyKey), json));
  }

  /** "app/db" → "<backendUuid>/metadata/<e1>/<e2>" (the key below the view). Cached (bounded LRU). */
  keyPath(key: string): string {
    const cached = this.#paths.get(key);
    if (cached !== undefined) return cached;
    const segments = cleanSegments(key);
    if (segments.length === 0) throw new VaultError("invalid_request", "missing path: give a secret path");
    const out = this.#encryptSegments(segments);
    this.#paths.set(key, out);
    return out;
  }

  /** A LIST prefix: "" → "<backendUuid>/metadata/", "app/" → "<backendUuid>/metadata/<e1>/". */
  folderPath(prefix: string): string {
    const segments = cleanSegments(prefix);
    return `${this.#encryptSegments(segments)}/`;
  }

  /**
   * One name returned by listing folderPath(prefix) ("<enc>" or "<enc>/") → its plaintext ("db" or
   * "db/"). Throws a clear error for a name that does not decrypt.
   */
  listedName(prefix: string, name: string): string {
    const context = [this.#prefix, ...cleanSegments(prefix)].join("/");
    const folder = name.endsWith("/");
    const enc = folder ? name.slice(0, -1) : name;
    // The encrypted name depends on its context, so the pair is the cache key.
    const cacheKey = `${context}\0${enc}`;
    let plain = this.#names.get(cacheKey);
    if (plain === undefined) {
      plain = this.#decryptSegment(context, enc);
      this.#names.set(cacheKey, plain);
    }
    return folder ? `${plain}/` : plain;
  }

  #encryptSegments(segments: readonly string[]): string {
    let out = this.#prefix;
    let context = this.#prefix;
    for (const seg of segments) {
      // Folders repeat across keys ("app/" of every "app/…"): their segments are cached too.
      const cacheKey = `${context}\0${seg}`;
      let enc = this.#segments.get(cacheKey);
      if (enc === undefined) {
        enc = this.#encryptSegment(context, seg);
        this.#segments.set(cacheKey, enc);
      }
      out += `/${enc}`;
      context += `/${seg}`;
    }
    return out;
  }

  /** keysutil Policy.Encrypt with convergent version 3, then Go's big.Int.Text(62) of the text. */
  #encryptSegment(context: string, segment: string): string {
    const version = this.#latest;
    const km = this.#derive(context, version);
    const plaintext = utf8.encode(segment);
    const nonce = createHmac("sha256", km.subarray(32, 64))
      .update(plaintext)
      .digest()
      .subarray(0, NONCE_BYTES);
    const cipher = createCipheriv("aes-256-gcm", km.subarray(0, 32), nonce);
    const ct = Buffer.concat([nonce, cipher.update(plaintext), cipher.final(), cipher.getAuthTag()]);
    const text = `${this.#tplPrefix}${version}${this.#tplSuffix}${ct.toString("base64")}`;
    return toBase62(Buffer.from(text, "utf8"));
  }

  #decryptSegment(context: string, enc: string): string {
    const fail = (why: string): VaultError =>
      new VaultError(
        "internal",
        `KV v2 metadata path segment ${JSON.stringify(enc)} below ${context} does not decrypt: ${why} (a foreign or damaged storage key)`,
      );
    const bytes = fromBase62(enc);
    if (bytes === undefined || bytes.length === 0) throw fail("not a base62 number");
    const text = bytes.toString("latin1");
    if (!text.startsWith(this.#tplPrefix)) throw fail("no key version prefix");
    const rest = text.slice(this.#tplPrefix.length);
    const sep = rest.indexOf(this.#tplSuffix);
    if (sep < 0) throw fail("no key version separator");
    const verText = rest.slice(0, sep);
    if (!/^[0-9]{1,9}$/.test(verText)) throw fail("key version is not a number");
    // keysutil reads version 0 as 1 (keys once started at zero).
    const version = Number(verText) === 0 ? 1 : Number(verText);
    if (version > this.#latest)
      throw fail(`key version ${version} is newer than the policy's ${this.#latest}`);
    if (version < this.#minDecryption) throw fail(`key version ${version} is below min_decryption_version`);
    const b64 = rest.slice(sep + this.#tplSuffix.length);
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(b64) || b64.length % 4 !== 0) throw fail("ciphertext is not base64");
    const ct = Buffer.from(b64, "base64");
    if (ct.length < NONCE_BYTES + TAG_BYTES) throw fail("ciphertext is too short");
    const km = this.#derive(context, version);
    const decipher = createDecipheriv("aes-256-gcm", km.subarray(0, 32), ct.subarray(0, NONCE_BYTES));
    decipher.setAuthTag(ct.subarray(ct.length - TAG_BYTES));
    let plain: Buffer;
    try {
      plain = Buffer.concat([
        decipher.update(ct.subarray(NONCE_BYTES, ct.length - TAG_BYTES)),
        decipher.final(),
      ]);
    } catch {
      throw fail("authentication failed (another mount's key, or a changed name)");
    }
    try {
      return utf8Decoder.decode(plain);
    } catch {
      throw fail("plaintext is not UTF-8");
    }
  }

  /** HKDF-SHA256(key, no salt, info = context): 32 bytes AES key + 32 bytes nonce HMAC key. */
  #derive(context: string, version: number): Buffer {
    const cacheKey = `${version}\0${context}`;
    const hit = this.#derived.get(cacheKey);
    if (hit !== undefined) return hit;
    const k = this.#keys.get(version);
    if (k === undefined) throw new VaultError("internal", `KV v2 metadata key has no version ${version}`);
    if (k.convergentVersion !== CONVERGENT_VERSION) {
      // keysutil refuses the old convergent schemes (1, 2) too.
      throw new VaultError(
        "internal",
        `KV v2 metadata key version ${version} uses convergent_version ${k.convergentVersion}; only ${CONVERGENT_VERSION} is supported (as in OpenBao)`,
      );
    }
    // RFC 5869 by hand: Node's hkdfSync costs about 5× two HMACs, and the extract step (no salt, so
    // a zero key) depends on the policy key only, computed once per key.
    const info = utf8.encode(context);
    const t1 = createHmac("sha256", k.prk).update(info).update(ONE).digest();
    const t2 = createHmac("sha256", k.prk).update(t1).update(info).update(TWO).digest();
    const km = Buffer.concat([t1, t2]);
    this.#derived.set(cacheKey, km);
    return km;
  }
}

/** "<backendUuid>/versions/<h[0:3]>/<h[3:]>", h = hex(SHA256(salt + key + "|" + n)). */
export function versionPath(backendUuid: string, salt: string, key: string, n: number): string {
  const h = sha256Hex(`${salt}${key}|${n}`);
  return `${backendUuid}/versions/${h.slice(0, 3)}/${h.slice(3)}`;
}

/**
 * The segments encryptPath encrypts: Go's path.Clean drops empty segments and a leading '/';
 * '.' and '..' are refused (logical.IsRelativePath) rather than resolved.
 */
function cleanSegments(path: string): string[] {
  const segments = path.split("/").filter((s) => s !== "");
  if (segments.some((s) => s === "." || s === "..")) {
    throw new VaultError("invalid_request", `path ${JSON.stringify(path)} has a '.' or '..' segment`);
  }
  return segments;
}

// Base 62 through BigInt, eight digits per division: 62^8 < 2^53, so each chunk's digits come from
// plain number arithmetic (about 3× faster than one BigInt division per digit).
const CHUNK_DIGITS = 8;
const CHUNK = 62 ** CHUNK_DIGITS;
const CHUNK_N = BigInt(CHUNK);

function toBase62(b: Uint8Array): string {
  let n = BigInt(`0x${Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString("hex") || "0"}`);
  const chunks: string[] = [];
  while (n >= CHUNK_N) {
    let r = Number(n % CHUNK_N);
    n /= CHUNK_N;
    let s = "";
    for (let k = 0; k < CHUNK_DIGITS; k++) {
      s = BASE62[r % 62] + s;
      r = Math.floor(r / 62);
    }
    chunks.push(s);
  }
  let r = Number(n);
  let head = r === 0 && chunks.length === 0 ? "0" : "";
  while (r > 0) {
    head = BASE62[r % 62] + head;
    r = Math.floor(r / 62);
  }
  return head + chunks.reverse().join("");
}

function fromBase62(s: string): Buffer | undefined {
  if (s === "") return undefined;
  let n = 0n;
  // Leading partial chunk first, then whole chunks of eight digits.
  for (
    let i = 0, take = s.length % CHUNK_DIGITS || CHUNK_DIGITS;
    i < s.length;
    i += take, take = CHUNK_DIGITS
  ) {
    let chunk = 0;
    for (let j = i; j < i + take; j++) {
      const v = BASE62_VALUE.get(s[j] as string);
      if (v === undefined) return undefined;
      chunk = chunk * 62 + v;
    }
    n = n * (take === CHUNK_DIGITS ? CHUNK_N : BigInt(62 ** take)) + BigInt(chunk);
  }
  if (n === 0n) return Buffer.alloc(0);
  const hex = n.toString(16);
  return Buffer.from(hex.length % 2 === 0 ? hex : `0${hex}`, "hex");
}

interface ParsedPolicy {
  keys: Map<number, PolicyKey>;
  latest: number;
  minDecryption: number;
  template: [string, string];
}

/** Checks what KV v2's path encryption relies on, naming the field that does not hold. */
function parsePolicy(path: string, json: unknown): ParsedPolicy {
  if (typeof json !== "object" || json === null || Array.isArray(json))
    throw damaged(path, "not a JSON object");
  const p = json as Record<string, unknown>;
  if (p.derived !== true) throw damaged(path, "`derived` is not true");
  if (p.convergent_encryption !== true) throw damaged(path, "`convergent_encryption` is not true");
  if (p.type !== KEY_TYPE_AES256_GCM96)
    throw damaged(path, `\`type\` ${String(p.type)} is not 0 (aes256-gcm96)`);
  if (p.kdf !== KDF_HKDF_SHA256) throw damaged(path, `\`kdf\` ${String(p.kdf)} is not 1 (hkdf_sha256)`);
  if (p.soft_deleted === true) throw damaged(path, "the key is soft-deleted");
  const latest = p.latest_version;
  if (typeof latest !== "number" || !Number.isSafeInteger(latest) || latest < 1) {
    throw damaged(path, "`latest_version` is not a positive integer");
  }
  const minDecryption = typeof p.min_decryption_version === "number" ? p.min_decryption_version : 0;
  const tpl =
    typeof p.version_template === "string" && p.version_template !== ""
      ? p.version_template
      : DEFAULT_VERSION_TEMPLATE;
  const parts = tpl.split("{{version}}");
  if (parts.length !== 2)
    throw damaged(path, `\`version_template\` ${JSON.stringify(tpl)} has no single {{version}}`);
  const rawKeys = p.keys;
  if (typeof rawKeys !== "object" || rawKeys === null) throw damaged(path, "`keys` is not an object");
  const keys = new Map<number, PolicyKey>();
  for (const [ver, entry] of Object.entries(rawKeys as Record<string, unknown>)) {
    const e = entry as Partial<KeyEntryJson> | null;
    const key = typeof e?.key === "string" ? Buffer.from(e.key, "base64") : undefined;
    if (key === undefined || key.length !== 32)
      throw damaged(path, `\`keys.${ver}.key\` is not 32 bytes of base64`);
    const policyConvergent = typeof p.convergent_version === "number" ? p.convergent_version : 0;
    // keysutil's convergentVersion(): the key's own version, else the policy's (0 reads as 1).
    const cv = e?.convergent_version || (policyConvergent === 0 ? 1 : policyConvergent);
    keys.set(Number(ver), {
      prk: createHmac("sha256", ZERO_SALT).update(key).digest(),
      convergentVersion: cv,
    });
  }
  if (!keys.has(latest)) throw damaged(path, `\`keys\` has no entry for latest_version ${latest}`);
  return { keys, latest, minDecryption, template: [parts[0] as string, parts[1] as string] };
}

/** The JSON keysutil writes for a fresh "metadata" policy and its archive (Go field order). */
function newPolicyRecords(backendUuid: string): {
  policy: Record<string, unknown>;
  archive: { keys: KeyEntryJson[] };
} {
  const now = nowTime();
  const entry: KeyEntryJson = {
    key: Buffer.from(randomBytes(32)).toString("base64"),
    hmac_key: Buffer.from(randomBytes(32)).toString("base64"),
    time: formatTime(now),
    ec_x: null,
    ec_y: null,
    ec_d: null,
    rsa_key: null,
    rsa_public_key: null,
    public_key: "",
    convergent_version: CONVERGENT_VERSION,
    creation_time: now.seconds,
    certificate_chain: null,
  };
  const policy = {
    name: "metadata",
    keys: { "1": entry },
    derived: true,
    kdf: KDF_HKDF_SHA256,
    convergent_encryption: true,
    exportable: false,
    min_decryption_version: 1,
    min_encryption_version: 0,
    latest_version: 1,
    archive_version: 1,
    archive_min_version: 0,
    min_available_version: 0,
    deletion_allowed: false,
    convergent_version: -1,
    type: KEY_TYPE_AES256_GCM96,
    backup_info: null,
    restore_info: null,
    allow_plaintext_backup: false,
    version_template: VERSION_TEMPLATE,
    storage_prefix: backendUuid,
    auto_rotate_period: 0,
    Imported: false,
    AllowImportedKeyRotation: false,
    soft_deleted: false,
  };
  // The archive holds every key by version, slot 0 being Go's zero KeyEntry.
  const zero: KeyEntryJson = {
    key: null,
    hmac_key: null,
    time: "0001-01-01T00:00:00Z",
    ec_x: null,
    ec_y: null,
    ec_d: null,
    rsa_key: null,
    rsa_public_key: null,
    public_key: "",
    convergent_version: 0,
    creation_time: 0,
    certificate_chain: null,
  };
  return { policy, archive: { keys: [zero, entry] } };
}

/**
 * Vault/OpenBao audit records, byte for byte as OpenBao 2.6's JSON writer writes them
 * (internal/audit/format.go FormatRequest/FormatResponse, format_json.go): the entry structs'
 * field order, Go's `omitempty`, map keys sorted as Go's encoding/json sorts them, Go's string
 * escaping (json.Encoder: HTML-safe) and float formatting, and the hashing of FormatRequest /
 * FormatResponse (tokens, accessors with `hmac_accessor`, HashStructure over the data).
 *
 * The JSON text is built directly from the LogInput, hashing strings as they are written: no copy
 * of the request/response data is made (OpenBao deep-copies it through a JSON round trip, whose
 * effects — numbers become float64 — are reproduced by how numbers are written).
 */

import { JsonNumber } from "../json/lossless.js";
import { compareUtf8, isGoTimeText } from "./hash.js";
import { toJsonx } from "./jsonx.js";
import {
  type AuditAuthInput,
  AuditOptionError,
  type AuditPolicyInfo,
  type AuditRequestInput,
  type FormatConfig,
  type Hasher,
  type LogInput,
} from "./types.js";

// ---------------------------------------------------------------------------------------------
// Options

const TRUE_WORDS = new Set(["1", "t", "T", "TRUE", "true", "True"]);
const FALSE_WORDS = new Set(["0", "f", "F", "FALSE", "false", "False"]);

/** A boolean option as Go's strconv.ParseBool reads it (what OpenBao's backends use). */
function parseBoolOption(
  options: Readonly<Record<string, string>>,
  name: string,
  fallback: boolean,
): boolean {
  if (!Object.hasOwn(options, name)) return fallback;
  const raw = options[name];
  if (typeof raw === "string") {
    if (TRUE_WORDS.has(raw)) return true;
    if (FALSE_WORDS.has(raw)) return false;
  }
  throw new AuditOptionError(
    name,
    `invalid value for audit option "${name}": ${JSON.stringify(raw)} is not a boolean (use "true" or "false"; also accepted: 1, t, T, TRUE, True, 0, f, F, FALSE, False)`,
  );
}

/**
 * The format options of a device's options map: format ("json" default | "jsonx"), prefix,
 * log_raw, hmac_accessor (default true), elide_list_responses. Throws BadRequestError
 * (an AuditOptionError) naming the option and the accepted values on a bad value (booleans as
 * Go's strconv.ParseBool accepts).
 */
export function parseFormatOptions(options: Readonly<Record<string, string>>): FormatConfig {
  let format: FormatConfig["format"] = "json";
  if (Object.hasOwn(options, "format")) {
    const raw = options.format;
    // As OpenBao: a format option present but empty is an unknown format, not the default.
    if (raw === "json" || raw === "jsonx") format = raw;
    else
      throw new AuditOptionError(
        "format",
        `invalid value for audit option "format": ${JSON.stringify(raw)} is not a format (use "json", the default, or "jsonx")`,
      );
  }
  let prefix = "";
  if (Object.hasOwn(options, "prefix")) {
    const raw = options.prefix;
    if (typeof raw !== "string")
      throw new AuditOptionError("prefix", 'invalid value for audit option "prefix": it must be a string');
    prefix = raw;
  }
  return {
    format,
    prefix,
    raw: parseBoolOption(options, "log_raw", false),
    hmacAccessor: parseBoolOption(options, "hmac_accessor", true),
    elideListResponses: parseBoolOption(options, "elide_list_responses", false),
  };
}

// ---------------------------------------------------------------------------------------------
// Go's JSON text

const HEX = "0123456789abcdef";
// Everything JSON.stringify writes differently from Go's json.Encoder (HTML escaping on):
// '<', '>', '&', U+2028, U+2029 and lone surrogates (Go has none: its JSON decoder made them U+FFFD).
const GO_DIFFERS = /[<>&\u2028\u2029\ud800-\udfff]/;

// What needs more than the quotes: JSON's escapes (controls, '"', '\\') and GO_DIFFERS. Most audited
// strings (ids, paths, hashes, names) have none of these, and are written as `"${s}"` after one test.
// biome-ignore lint/suspicious/noControlCharactersInRegex: the control characters are what JSON escapes
const NEEDS_ESCAPE = /[\u0000-\u001f"\\<>&\u2028\u2029\ud800-\udfff]/;

/** A string as Go's json.Encoder writes it (quotes included). */
export function goJsonString(s: string): string {
  if (!NEEDS_ESCAPE.test(s)) return `"${s}"`;
  if (!GO_DIFFERS.test(s)) return JSON.stringify(s);
  let out = '"';
  let last = 0;
  const n = s.length;
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    let rep: string | undefined;
    if (c < 0x20 || c === 0x22 || c === 0x5c) {
      // JSON.stringify's escapes of these are Go's (\b \f \n \r \t short forms, \u00xx lower-case).
      rep = JSON.stringify(s[i]).slice(1, -1);
    } else if (c === 0x3c || c === 0x3e || c === 0x26 || c === 0x2028 || c === 0x2029) {
      rep = `\\u${HEX[c >> 12]}${HEX[(c >> 8) & 15]}${HEX[(c >> 4) & 15]}${HEX[c & 15]}`;
    } else if (c >= 0xd800 && c <= 0xdfff) {
      const d = i + 1 < n ? s.charCodeAt(i + 1) : 0;
      if (c <= 0xdbff && d >= 0xdc00 && d <= 0xdfff) {
        i++; // a valid pair: written as is
        continue;
      }
      // A lone surrogate comes from a JSON "\ud800" escape: Go's decoder made that U+FFFD, which its
      // encoder then writes as the character itself.
      rep = "\ufffd";
    }
    if (rep !== undefined) {
      out += s.slice(last, i) + rep;
      last = i + 1;
    }
  }
  return `${out}${s.slice(last)}"`;
}

/** A float64 as Go's encoding/json writes it (JavaScript's shortest form, but `-0` stays). */
function goFloat(n: number): string {
  if (!Number.isFinite(n)) return "null"; // Go refuses these; no JSON value can hold one
  if (n === 0 && 1 / n < 0) return "-0";
  return String(n);
}

/** How the data maps are written: raw, or hashed as HashStructure after Go's JSON round trip. */
interface DataMode {
  hash: Hasher | undefined;
  nonHmacKeys: readonly string[] | undefined;
}

function sortedKeys(obj: object): string[] {
  const keys = Object.keys(obj);
  if (keys.length < 2) return keys;
  keys.sort();
  // Only a key with a surrogate pair can sort differently in UTF-8 (Go) than in UTF-16.
  for (const k of keys) {
    if (/[\ud800-\udfff]/.test(k)) return keys.sort(compareUtf8);
  }
  return keys;
}

/** A JSON value of request/response data under map key `key` (the key HashStructure consults). */
function dataValue(v: unknown, key: string, mode: DataMode): string {
  switch (typeof v) {
    case "string": {
      const hash = mode.hash;
      if (hash === undefined) return goJsonString(v);
      if (mode.nonHmacKeys?.includes(key)) return goJsonString(v);
      if (isGoTimeText(v)) return goJsonString(v);
      // The hash is "hmac-sha256:" and hex digits: nothing to escape.
      return `"${hash(v)}"`;
    }
    case "number":
      return goFloat(v);
    case "boolean":
      return v ? "true" : "false";
    case "bigint":
      return mode.hash === undefined ? v.toString() : goFloat(Number(v));
    case "object":
      break;
    default:
      return "null";
  }
  if (v === null) return "null";
  if (v instanceof JsonNumber) {
    // Raw: Go writes a json.Number's text as it came. Hashed: the JSON round trip made it a float64.
    if (mode.hash === undefined) return v.text;
    const n = v.toNumber();
    return Number.isFinite(n) ? goFloat(n) : v.text;
  }
  if (Array.isArray(v)) {
    if (v.length === 0) return "[]";
    let out = "[";
    for (let i = 0; i < v.length; i++) {
      if (i > 0) out += ",";
      out += dataValue(v[i], key, mode);
    }
    return `${out}]`;
  }
  if (v instanceof Uint8Array) {
    // Go marshals a []byte as base64 text (and the round trip leaves it a string to hash).
    return dataValue(Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString("base64"), key, mode);
  }
  const toJSON = (v as { toJSON?: unknown }).toJSON;
  if (typeof toJSON === "function") return dataValue(toJSON.call(v), key, mode);
  return dataObject(v as Record<string, unknown>, mode) ?? "{}";
}

/** A data map, its keys sorted; undefined when it has no entries (Go's omitempty on the field). */
function dataObject(obj: Record<string, unknown>, mode: DataMode): string | undefined {
  let out = "";
  for (const k of sortedKeys(obj)) {
    const v = obj[k];
    if (v === undefined) continue;
    out += `${out === "" ? "{" : ","}${goJsonString(k)}:${dataValue(v, k, mode)}`;
  }
  return out === "" ? undefined : `${out}}`;
}

/**
 * Vault's doElideListResponseData: a list response's `keys` (an array) becomes its length and
 * `key_info` (a map) its number of entries. A shallow copy: only top-level keys change.
 */
function elideListData(data: Record<string, unknown>): Record<string, unknown> {
  const keys = data.keys;
  const keyInfo = data.key_info;
  const elideKeys = Array.isArray(keys);
  const elideInfo = isPlainMap(keyInfo);
  if (!elideKeys && !elideInfo) return data;
  const out = { ...data };
  if (elideKeys) out.keys = keys.length;
  if (elideInfo) out.key_info = Object.keys(keyInfo).filter((k) => keyInfo[k] !== undefined).length;
  return out;
}

function isPlainMap(v: unknown): v is Record<string, unknown> {
  return (
    typeof v === "object" &&
    v !== null &&
    !Array.isArray(v) &&
    !(v instanceof JsonNumber) &&
    !(v instanceof Uint8Array) &&
    typeof (v as { toJSON?: unknown }).toJSON !== "function"
  );
}

// ---------------------------------------------------------------------------------------------
// The entry structs

/** Appends `"name":value` to an object body being built. */
class Obj {
  body = "";
  raw(name: string, json: string): void {
    this.body += `${this.body === "" ? "" : ","}"${name}":${json}`;
  }
  /** A string field with `omitempty`. */
  str(name: string, v: string | undefined): void {
    if (v) this.raw(name, goJsonString(v));
  }
  /** An int field with `omitempty` (Go's int: fractions cut toward zero). */
  int(name: string, v: number | undefined): void {
    if (v) {
      const n = Math.trunc(v);
      if (n !== 0) this.raw(name, String(n));
    }
  }
  /** A bool field with `omitempty`. */
  bool(name: string, v: boolean | undefined): void {
    if (v) this.raw(name, "true");
  }
  /** A []string field with `omitempty`. */
  strings(name: string, v: readonly string[] | undefined): void {
    if (v && v.length > 0) this.raw(name, stringArray(v));
  }
  /** A map[string]string / map[string][]string field with `omitempty` (keys sorted). */
  map(name: string, v: Readonly<Record<string, string | readonly string[] | null>> | null | undefined): void {
    if (!v) return;
    let out = "";
    for (const k of sortedKeys(v)) {
      const x = v[k];
      if (x === undefined) continue;
      const json = typeof x === "string" ? goJsonString(x) : x === null ? "null" : stringArray(x);
      out += `${out === "" ? "{" : ","}${goJsonString(k)}:${json}`;
    }
    if (out !== "") this.raw(name, `${out}}`);
  }
  /** The object, `{}` when empty. */
  toString(): string {
    return `{${this.body}}`;
  }
}

function stringArray(v: readonly string[]): string {
  let out = "[";
  for (let i = 0; i < v.length; i++) out += (i > 0 ? "," : "") + goJsonString(v[i] ?? "");
  return `${out}]`;
}

/** Which AuditAuth an auth input is written as (the three differ in the fields Go sets). */
type AuthRole = "request" | "response" | "issued";

/** HashAuth's work on one string field: the token always, the accessor only with hmac_accessor. */
function hashed(v: string | undefined, hash: Hasher | undefined): string | undefined {
  return v && hash !== undefined ? hash(v) : v;
}

/**
 * An AuditAuth: the caller's (`request`/`response` record) or the one a response issued
 * (`issued`: response.auth, which has num_uses but no policy_results / remaining_uses).
 */
function authJson(
  auth: AuditAuthInput | undefined,
  role: AuthRole,
  hash: Hasher | undefined,
  hmacAccessor: boolean,
): string {
  // Go formats a missing auth as a zero logical.Auth: only its token type ("default") shows.
  if (auth === undefined) return '{"token_type":"default"}';
  const o = new Obj();
  o.str("client_token", hashed(auth.clientToken, hash));
  o.str("accessor", hmacAccessor ? hashed(auth.accessor, hash) : auth.accessor);
  o.str("display_name", auth.displayName);
  o.strings("policies", auth.policies);
  o.strings("token_policies", auth.tokenPolicies);
  o.strings("identity_policies", auth.identityPolicies);
  o.bool("no_default_policy", auth.noDefaultPolicy);
  if (role !== "issued" && auth.policyResults) {
    const pr = auth.policyResults;
    let granting = "";
    for (const p of pr.grantingPolicies) {
      const g = new Obj();
      g.str("name", p.name);
      g.str("namespace_id", p.namespaceId);
      // namespace_path: the root namespace's is "" (omitted); `type` has no omitempty.
      g.raw("type", goJsonString(p.type));
      granting += (granting === "" ? "" : ",") + g.toString();
    }
    o.raw(
      "policy_results",
      `{"allowed":${pr.allowed ? "true" : "false"}${granting === "" ? "" : `,"granting_policies":[${granting}]`}}`,
    );
  }
  o.map("metadata", auth.metadata);
  if (role === "issued") o.int("num_uses", auth.numUses);
  else o.int("remaining_uses", auth.remainingUses);
  o.str("entity_id", auth.entityId);
  o.str("token_type", auth.tokenType);
  o.int("token_ttl", auth.tokenTtl);
  o.str("token_issue_time", auth.tokenIssueTime);
  return o.toString();
}

// ---------------------------------------------------------------------------------------------
// The auth and request objects, memoized
//
// A request's two records (request, then response) repeat its `auth` and `request` objects, which
// are most of their text and all of their hashing; the HTTP pipeline passes the same AuditAuthInput
// and AuditRequestInput objects to both calls. So their JSON text is kept per object (a WeakMap:
// nothing outlives the request) and per device (its FormatConfig and hasher), and served again only
// while every field it was built from still holds the same value. The caller does change the
// request between the calls (OpenBao's router sets the mount accessor after the request record;
// the existence check turns `update` into `create`), so each memo holds the fields it was made from.
//
// The auth is compared by content (its arrays and maps copied into the memo, element by element
// after), so it can also be kept across requests: a token's requests give the same auth text, and
// a small per-device map by token serves it. The request's maps (data, headers) and the mount's
// nonHmacKeys are compared by identity: a caller that wants a change in them to show must give a new
// object (Bulwark's handlers never change a request's body in place).

interface AuthMemo {
  clientToken: string | undefined;
  accessor: string | undefined;
  displayName: string | undefined;
  policies: string[] | undefined;
  tokenPolicies: string[] | undefined;
  identityPolicies: string[] | undefined;
  noDefaultPolicy: boolean | undefined;
  allowed: boolean | undefined;
  /** The granting policies, [name, namespaceId, type] flat; undefined without policyResults. */
  granting: string[] | undefined;
  /** The metadata's [key, value] flat in key order; null for a null map, undefined for none. */
  metadata: unknown[] | null | undefined;
  remainingUses: number | undefined;
  entityId: string | undefined;
  tokenType: string;
  tokenTtl: number | undefined;
  tokenIssueTime: string | undefined;
  json: string;
}

/** The request object in two parts around `mount_accessor` (the field most often set between records). */
interface RequestMemo {
  // Before mount_accessor.
  id: string;
  clientId: string | undefined;
  operation: string;
  mountPoint: string | undefined;
  mountType: string | undefined;
  head: string;
  // After it.
  mountRunningVersion: string | undefined;
  mountClass: string | undefined;
  clientToken: string | undefined;
  clientTokenAccessor: string | undefined;
  path: string;
  data: AuditRequestInput["data"];
  remoteAddress: string | undefined;
  remotePort: number | undefined;
  headers: AuditRequestInput["headers"];
  nonHmacKeys: readonly string[] | undefined;
  tail: string;
}

/** How many tokens' auth text a device keeps across requests (all dropped when full). */
const AUTH_BY_TOKEN_MAX = 64;

/** One device's memos: valid for one hasher and hmac_accessor setting. */
interface Memos {
  hash: Hasher | undefined;
  hmacAccessor: boolean;
  auth: WeakMap<AuditAuthInput, AuthMemo>;
  authByToken: Map<string, AuthMemo>;
  request: WeakMap<AuditRequestInput, RequestMemo>;
}

const memosByConfig = new WeakMap<FormatConfig, Memos>();

function memosFor(config: FormatConfig, hash: Hasher | undefined): Memos {
  let m = memosByConfig.get(config);
  if (m === undefined || m.hash !== hash || m.hmacAccessor !== config.hmacAccessor) {
    m = {
      hash,
      hmacAccessor: config.hmacAccessor,
      auth: new WeakMap(),
      authByToken: new Map(),
      request: new WeakMap(),
    };
    memosByConfig.set(config, m);
  }
  return m;
}

function copyStrings(v: readonly string[] | undefined): string[] | undefined {
  return v === undefined ? undefined : v.slice();
}

function sameStrings(kept: readonly unknown[] | undefined, v: readonly unknown[] | undefined): boolean {
  if (kept === undefined || v === undefined) return kept === v;
  if (kept.length !== v.length) return false;
  for (let i = 0; i < v.length; i++) if (kept[i] !== v[i]) return false;
  return true;
}

function grantingOf(pr: AuditAuthInput["policyResults"]): string[] | undefined {
  if (pr === undefined) return undefined;
  const out: string[] = [];
  for (const p of pr.grantingPolicies) out.push(p.name, p.namespaceId, p.type);
  return out;
}

function sameGranting(kept: string[] | undefined, pr: AuditAuthInput["policyResults"]): boolean {
  if (kept === undefined || pr === undefined) return kept === undefined && pr === undefined;
  const g = pr.grantingPolicies;
  if (kept.length !== g.length * 3) return false;
  for (let i = 0; i < g.length; i++) {
    const p = g[i] as AuditPolicyInfo;
    if (kept[3 * i] !== p.name || kept[3 * i + 1] !== p.namespaceId || kept[3 * i + 2] !== p.type)
      return false;
  }
  return true;
}

function metadataOf(m: AuditAuthInput["metadata"]): unknown[] | null | undefined {
  if (m === undefined || m === null) return m;
  const out: unknown[] = [];
  // Insertion order: a map with the same entries in another order is a miss (then rebuilt), never stale.
  for (const k of Object.keys(m)) out.push(k, m[k]);
  return out;
}

function sameMetadata(kept: unknown[] | null | undefined, m: AuditAuthInput["metadata"]): boolean {
  if (kept === undefined || kept === null || m === undefined || m === null) return kept === m;
  const keys = Object.keys(m);
  if (keys.length * 2 !== kept.length) return false;
  for (let i = 0; i < keys.length; i++) {
    const k = keys[i] as string;
    if (kept[2 * i] !== k || kept[2 * i + 1] !== m[k]) return false;
  }
  return true;
}

function sameAuth(m: AuthMemo, auth: AuditAuthInput): boolean {
  return (
    m.clientToken === auth.clientToken &&
    m.accessor === auth.accessor &&
    m.displayName === auth.displayName &&
    m.noDefaultPolicy === auth.noDefaultPolicy &&
    m.remainingUses === auth.remainingUses &&
    m.entityId === auth.entityId &&
    m.tokenType === auth.tokenType &&
    m.tokenTtl === auth.tokenTtl &&
    m.tokenIssueTime === auth.tokenIssueTime &&
    m.allowed === auth.policyResults?.allowed &&
    sameStrings(m.policies, auth.policies) &&
    sameStrings(m.tokenPolicies, auth.tokenPolicies) &&
    sameStrings(m.identityPolicies, auth.identityPolicies) &&
    sameGranting(m.granting, auth.policyResults) &&
    sameMetadata(m.metadata, auth.metadata)
  );
}

/** The caller's AuditAuth (the same in the request and the response record). */
function callerAuthJson(auth: AuditAuthInput | undefined, memos: Memos): string {
  // Go formats a missing auth as a zero logical.Auth: only its token type ("default") shows.
  if (auth === undefined) return '{"token_type":"default"}';
  let m = memos.auth.get(auth);
  if (m !== undefined && sameAuth(m, auth)) return m.json;
  const token = auth.clientToken ?? "";
  m = memos.authByToken.get(token);
  if (m !== undefined && sameAuth(m, auth)) {
    memos.auth.set(auth, m);
    return m.json;
  }
  const json = authJson(auth, "request", memos.hash, memos.hmacAccessor);
  m = {
    clientToken: auth.clientToken,
    accessor: auth.accessor,
    displayName: auth.displayName,
    policies: copyStrings(auth.policies),
    tokenPolicies: copyStrings(auth.tokenPolicies),
    identityPolicies: copyStrings(auth.identityPolicies),
    noDefaultPolicy: auth.noDefaultPolicy,
    allowed: auth.policyResults?.allowed,
    granting: grantingOf(auth.policyResults),
    metadata: metadataOf(auth.metadata),
    remainingUses: auth.remainingUses,
    entityId: auth.entityId,
    tokenType: auth.tokenType,
    tokenTtl: auth.tokenTtl,
    tokenIssueTime: auth.tokenIssueTime,
    json,
  };
  memos.auth.set(auth, m);
  if (memos.authByToken.size >= AUTH_BY_TOKEN_MAX) memos.authByToken.clear();
  memos.authByToken.set(token, m);
  return json;
}

// Field names, quoted once: `,"name":` (each field's text starts with its comma).
const K_ID = ',"id":';
const K_CLIENT_ID = ',"client_id":';
const K_OPERATION = ',"operation":';
const K_MOUNT_POINT = ',"mount_point":';
const K_MOUNT_TYPE = ',"mount_type":';
const K_MOUNT_ACCESSOR = ',"mount_accessor":';
const K_MOUNT_RUNNING_VERSION = ',"mount_running_version":';
const K_MOUNT_RUNNING_PLUGIN_VERSION = ',"mount_running_plugin_version":';
const K_MOUNT_CLASS = ',"mount_class":';
const K_CLIENT_TOKEN = ',"client_token":';
const K_CLIENT_TOKEN_ACCESSOR = ',"client_token_accessor":';
// Bulwark has the root namespace only; OpenBao writes it on every request.
const K_NAMESPACE_ROOT = ',"namespace":{"id":"root"}';
const K_PATH = ',"path":';
const K_DATA = ',"data":';
const K_REMOTE_ADDRESS = ',"remote_address":';
const K_REMOTE_PORT = ',"remote_port":';

/** A string field with `omitempty`, as `,"name":value` (or nothing). */
function field(key: string, v: string | undefined): string {
  return v ? key + goJsonString(v) : "";
}

/** The request object's fields before mount_accessor. */
function requestHead(req: AuditRequestInput): string {
  return (
    field(K_ID, req.id) +
    field(K_CLIENT_ID, req.clientId) +
    field(K_OPERATION, req.operation) +
    field(K_MOUNT_POINT, req.mountPoint) +
    field(K_MOUNT_TYPE, req.mountType)
  );
}

/** The request object's fields after mount_accessor (never empty: the namespace is always there). */
function requestTail(
  req: AuditRequestInput,
  hash: Hasher | undefined,
  hmacAccessor: boolean,
  nonHmacKeys: readonly string[] | undefined,
): string {
  let out =
    field(K_MOUNT_RUNNING_VERSION, req.mountRunningVersion) +
    field(K_MOUNT_CLASS, req.mountClass) +
    field(K_CLIENT_TOKEN, hashed(req.clientToken, hash)) +
    field(
      K_CLIENT_TOKEN_ACCESSOR,
      hmacAccessor ? hashed(req.clientTokenAccessor, hash) : req.clientTokenAccessor,
    ) +
    K_NAMESPACE_ROOT +
    field(K_PATH, req.path);
  if (req.data) {
    const data = dataObject(req.data, { hash, nonHmacKeys });
    if (data !== undefined) out += K_DATA + data;
  }
  out += field(K_REMOTE_ADDRESS, req.remoteAddress);
  if (req.remotePort) {
    const n = Math.trunc(req.remotePort);
    if (n !== 0) out += K_REMOTE_PORT + String(n);
  }
  const o = new Obj();
  o.map("headers", req.headers);
  if (o.body !== "") out += `,${o.body}`;
  return out;
}

/** An AuditRequest (mount_running_version here; the response has mount_running_plugin_version). */
function requestJson(
  req: AuditRequestInput,
  memos: Memos,
  nonHmacKeys: readonly string[] | undefined,
): string {
  let m = memos.request.get(req);
  if (m === undefined) {
    m = {
      id: req.id,
      clientId: req.clientId,
      operation: req.operation,
      mountPoint: req.mountPoint,
      mountType: req.mountType,
      head: requestHead(req),
      mountRunningVersion: req.mountRunningVersion,
      mountClass: req.mountClass,
      clientToken: req.clientToken,
      clientTokenAccessor: req.clientTokenAccessor,
      path: req.path,
      data: req.data,
      remoteAddress: req.remoteAddress,
      remotePort: req.remotePort,
      headers: req.headers,
      nonHmacKeys,
      tail: requestTail(req, memos.hash, memos.hmacAccessor, nonHmacKeys),
    };
    memos.request.set(req, m);
  } else {
    if (
      m.id !== req.id ||
      m.clientId !== req.clientId ||
      m.operation !== req.operation ||
      m.mountPoint !== req.mountPoint ||
      m.mountType !== req.mountType
    ) {
      m.id = req.id;
      m.clientId = req.clientId;
      m.operation = req.operation;
      m.mountPoint = req.mountPoint;
      m.mountType = req.mountType;
      m.head = requestHead(req);
    }
    if (
      m.mountRunningVersion !== req.mountRunningVersion ||
      m.mountClass !== req.mountClass ||
      m.clientToken !== req.clientToken ||
      m.clientTokenAccessor !== req.clientTokenAccessor ||
      m.path !== req.path ||
      m.data !== req.data ||
      m.remoteAddress !== req.remoteAddress ||
      m.remotePort !== req.remotePort ||
      m.headers !== req.headers ||
      m.nonHmacKeys !== nonHmacKeys
    ) {
      m.mountRunningVersion = req.mountRunningVersion;
      m.mountClass = req.mountClass;
      m.clientToken = req.clientToken;
      m.clientTokenAccessor = req.clientTokenAccessor;
      m.path = req.path;
      m.data = req.data;
      m.remoteAddress = req.remoteAddress;
      m.remotePort = req.remotePort;
      m.headers = req.headers;
      m.nonHmacKeys = nonHmacKeys;
      m.tail = requestTail(req, memos.hash, memos.hmacAccessor, nonHmacKeys);
    }
  }
  // mount_accessor is written fresh: OpenBao's router sets it between a read's two records.
  const head = m.head + field(K_MOUNT_ACCESSOR, req.mountAccessor);
  // Every part starts with its comma: the object's first field drops it.
  return head === "" ? `{${m.tail.slice(1)}}` : `{${head.slice(1)}${m.tail}}`;
}

// ---------------------------------------------------------------------------------------------
// Records

/** Go's fraction of a second for each millisecond (trailing zeros trimmed), with the 'Z'. */
const FRACTIONS: string[] = Array.from({ length: 1000 }, (_, ms) => {
  if (ms === 0) return "Z";
  return `.${String(ms).padStart(3, "0").replace(/0+$/, "")}Z`;
});
// The "YYYY-MM-DDTHH:MM:SS" of the last second formatted (records come in bursts within a second).
let timeSecond = Number.NaN;
let timeSecondText = "";

/** RFC3339Nano of a UTC instant (Go trims the fraction's trailing zeros; JavaScript has ms). */
function goTime(now: Date): string {
  const t = now.getTime();
  if (!Number.isFinite(t)) return now.toISOString(); // throws RangeError, as before
  const ms = ((t % 1000) + 1000) % 1000;
  const second = t - ms;
  if (second !== timeSecond) {
    const iso = new Date(second).toISOString(); // 2026-12-08T02:28:01.000Z
    timeSecondText = iso.slice(0, iso.length - 5);
    timeSecond = second;
  }
  return timeSecondText + FRACTIONS[ms];
}

function finish(json: string, config: FormatConfig): Uint8Array {
  // OpenBao's JSON writer: the prefix, then json.Encoder's line. Vault's JSONx writer: the prefix,
  // then the XML fragment, with no newline (it never had one).
  const text = config.format === "jsonx" ? config.prefix + toJsonx(json) : `${config.prefix}${json}\n`;
  // Buffer.from: UTF-8 into Node's pooled slab (records are a few KiB), cheaper than TextEncoder.
  return Buffer.from(text, "utf8");
}

/** One request record exactly as OpenBao's JSON writer writes it: prefix + JSON + "\n" (or jsonx). */
export function formatRequestRecord(
  input: LogInput,
  config: FormatConfig,
  hash: Hasher,
  now?: Date,
): Uint8Array {
  const memos = memosFor(config, config.raw ? undefined : hash);
  const req = input.request;
  const type = input.type;
  let json = `{"time":"${goTime(now ?? new Date())}","type":${type ? goJsonString(type) : '"request"'}`;
  json += `,"auth":${callerAuthJson(input.auth, memos)}`;
  json += `,"request":${requestJson(req, memos, input.nonHmacRequestKeys)}`;
  if (input.error) json += `,"error":${goJsonString(input.error)}`;
  if (req.forwardedFrom) json += `,"forwarded_from":${goJsonString(req.forwardedFrom)}`;
  return finish(`${json}}`, config);
}

/** One response record. */
export function formatResponseRecord(
  input: LogInput,
  config: FormatConfig,
  hash: Hasher,
  now?: Date,
): Uint8Array {
  const memos = memosFor(config, config.raw ? undefined : hash);
  const h = memos.hash;
  const req = input.request;
  const resp = input.response;
  const type = input.type;
  let json = `{"time":"${goTime(now ?? new Date())}","type":${type ? goJsonString(type) : '"response"'}`;
  json += `,"auth":${callerAuthJson(input.auth, memos)}`;
  json += `,"request":${requestJson(req, memos, input.nonHmacRequestKeys)}`;

  // The response object, each field with its leading comma (dropped for the first).
  let body = "";
  if (resp?.auth) body += `,"auth":${authJson(resp.auth, "issued", h, memos.hmacAccessor)}`;
  body +=
    field(K_MOUNT_POINT, req.mountPoint) +
    field(K_MOUNT_TYPE, req.mountType) +
    field(K_MOUNT_ACCESSOR, req.mountAccessor) +
    field(K_MOUNT_RUNNING_PLUGIN_VERSION, req.mountRunningVersion) +
    field(K_MOUNT_CLASS, req.mountClass);
  const o = new Obj();
  if (resp?.secret) {
    const s = new Obj();
    s.str("lease_id", resp.secret.leaseId);
    o.raw("secret", s.toString());
  }
  if (resp?.data) {
    // OpenBao elides before hashing (and on a shallow copy when raw): counts are never hashed.
    const source =
      config.elideListResponses && req.operation === "list" ? elideListData(resp.data) : resp.data;
    const data = dataObject(source, { hash: h, nonHmacKeys: input.nonHmacResponseKeys });
    if (data !== undefined) o.raw("data", data);
  }
  o.strings("warnings", resp?.warnings);
  o.str("redirect", resp?.redirect);
  o.map("headers", resp?.headers);
  if (o.body !== "") body += `,${o.body}`;
  json += `,"response":{${body.slice(1)}}`;

  if (input.error) json += `,"error":${goJsonString(input.error)}`;
  if (req.forwardedFrom) json += ',"forwarded":true';
  return finish(`${json}}`, config);
}

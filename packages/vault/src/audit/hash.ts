/**
 * The hashing of Vault/OpenBao audit records: the salted HMAC every audited secret is written as
 * (`salt.GetIdentifiedHMAC`), the client id of a token without an entity (`CreateClientID`), and
 * OpenBao's `HashStructure` over request/response data (internal/audit/hashstructure.go).
 */

import { createHash, createHmac, createSecretKey, type KeyObject } from "node:crypto";
import { JsonNumber } from "../json/lossless.js";
import type { Hasher } from "./types.js";

const HMAC_PREFIX = "hmac-sha256:";

/** "hmac-sha256:" + hex(HMAC-SHA256(key = salt as UTF-8, value as UTF-8)) — OpenBao's salt.GetIdentifiedHMAC. */
export function identifiedHmac(salt: string, value: string): string {
  return HMAC_PREFIX + createHmac("sha256", salt).update(value, "utf8").digest("hex");
}

/** How many recent results a hasher remembers, and the longest value it remembers one for. */
const CACHE_MAX = 128;
const CACHE_MAX_LENGTH = 256;

/** A Hasher bound to one salt (keep it cheap per call: it runs for every string of every record). */
export function hasherFor(salt: string): Hasher {
  // A KeyObject spares each call the key import (about a quarter of the cost of a short value's
  // HMAC). An empty key cannot be a KeyObject on every Node version: keep the string then.
  let key: KeyObject | string = salt;
  if (salt.length > 0) key = createSecretKey(Buffer.from(salt, "utf8"));
  // A request's token and accessor are hashed four times each (auth and request, in the request and
  // the response record): a small memo of recent results spares most HMACs. Bounded, and dropped
  // whole when full, so a flood of distinct values costs one Map.clear() per CACHE_MAX.
  const memo = new Map<string, string>();
  return (value) => {
    let h = memo.get(value);
    if (h === undefined) {
      h = HMAC_PREFIX + createHmac("sha256", key).update(value, "utf8").digest("hex");
      if (value.length <= CACHE_MAX_LENGTH) {
        if (memo.size >= CACHE_MAX) memo.clear();
        memo.set(value, h);
      }
    }
    return h;
  };
}

/**
 * Vault's client id: the entity id when set, else base64(SHA-256(sorted policies joined by '\x7f'
 * + '\x00' + namespace id "root")) as sdk/logical/token.go CreateClientID (note its "remove first
 * char" step).
 */
export function clientIdOf(entry: { entityId?: string; policies: readonly string[] }): string {
  if (entry.entityId) return entry.entityId;
  // Vault writes a '\x7f' before every policy and a '\x00' before the namespace id, then drops
  // the first character (the leading delimiter): with no policies that drops the '\x00'.
  let input = "";
  for (const policy of [...entry.policies].sort(compareUtf8)) input += `\x7f${policy}`;
  input += "\x00root";
  return createHash("sha256").update(input.slice(1), "utf8").digest("base64");
}

/**
 * Compares two strings in UTF-8 byte order (Go's `sort.Strings`, and the order Go's encoding/json
 * writes map keys in). JavaScript's `<` compares UTF-16 code units, which differs only where a
 * surrogate pair (U+10000 and up) meets a code unit in U+E000–U+FFFF.
 */
export function compareUtf8(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x !== y) return utf8Rank(x) - utf8Rank(y);
  }
  return a.length - b.length;
}

function utf8Rank(unit: number): number {
  // Surrogates (astral characters, 4 UTF-8 bytes) sort after U+E000–U+FFFF (3 bytes).
  if (unit < 0xd800) return unit;
  return unit >= 0xe000 ? unit - 0x800 : unit + 0x2000;
}

function isDigits(s: string, from: number, to: number): boolean {
  for (let i = from; i < to; i++) {
    const c = s.charCodeAt(i); // NaN past the end: not a digit
    if (!(c >= 0x30 && c <= 0x39)) return false;
  }
  return true;
}

function num(s: string, from: number, to: number): number {
  let x = 0;
  for (let i = from; i < to; i++) x = x * 10 + s.charCodeAt(i) - 0x30;
  return x;
}

function daysIn(month: number, year: number): number {
  if (month === 2) return (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0 ? 29 : 28;
  return month === 4 || month === 6 || month === 9 || month === 11 ? 30 : 31;
}

/**
 * Whether Go's `time.Time.UnmarshalText` accepts the string: OpenBao leaves such strings unhashed.
 * Its Go falls back to `time.Parse(time.RFC3339, s)` with the stricter RFC 3339 checks off
 * (observed on OpenBao 2.6.2: "2024-01-02T3:04:05Z", a ",5" fraction and a "+24:00" offset are all
 * kept), so this is that parse: `YYYY-MM-DDTH[H]:MM:SS`, an optional fraction after '.' or ',',
 * then `Z` or `±hh:mm` with hh ≤ 24 and mm ≤ 60; hour < 24, minute and second < 60, and the
 * date must exist.
 */
export function isGoTimeText(s: string): boolean {
  const len = s.length;
  // The shortest: "2006-01-02T1:04:05Z". Cheap rejection first: most audited strings fail here.
  if (len < 19 || s.charCodeAt(4) !== 0x2d || s.charCodeAt(7) !== 0x2d || s.charCodeAt(10) !== 0x54)
    return false;
  if (!isDigits(s, 0, 4) || !isDigits(s, 5, 7) || !isDigits(s, 8, 10)) return false;
  const year = num(s, 0, 4);
  const month = num(s, 5, 7);
  const day = num(s, 8, 10);
  if (month < 1 || month > 12 || day < 1 || day > daysIn(month, year)) return false;
  // The hour takes one or two digits ("15" in Go's layout is not zero-padded).
  let i = 11;
  if (!isDigits(s, i, i + 1)) return false;
  const hourDigits = isDigits(s, i + 1, i + 2) ? 2 : 1;
  if (num(s, i, i + hourDigits) > 23) return false;
  i += hourDigits;
  if (len < i + 7 || s.charCodeAt(i) !== 0x3a || s.charCodeAt(i + 3) !== 0x3a) return false;
  if (!isDigits(s, i + 1, i + 3) || !isDigits(s, i + 4, i + 6)) return false;
  if (num(s, i + 1, i + 3) > 59 || num(s, i + 4, i + 6) > 59) return false;
  i += 6;
  const sep = s.charCodeAt(i);
  if (len - i >= 2 && (sep === 0x2e || sep === 0x2c) && isDigits(s, i + 1, i + 2)) {
    i += 2;
    while (i < len && isDigits(s, i, i + 1)) i++;
  }
  const rest = len - i;
  if (rest === 1) return s.charCodeAt(i) === 0x5a;
  if (rest !== 6) return false;
  const sign = s.charCodeAt(i);
  if ((sign !== 0x2b && sign !== 0x2d) || s.charCodeAt(i + 3) !== 0x3a) return false;
  if (!isDigits(s, i + 1, i + 3) || !isDigits(s, i + 4, i + 6)) return false;
  return num(s, i + 1, i + 3) <= 24 && num(s, i + 4, i + 6) <= 60;
}

/**
 * Whether HashStructure hashes a string found under map key `key`: not when it is Go time text,
 * nor when `key` is one of the mount's non-HMAC keys.
 */
export function shouldHash(value: string, key: string, nonHmacKeys: readonly string[] | undefined): boolean {
  if (nonHmacKeys?.includes(key)) return false;
  return !isGoTimeText(value);
}

/**
 * OpenBao's HashStructure over JSON data (internal/audit/hashstructure.go): every string value (not
 * map keys) becomes hash(value), except strings that parse as Go time.Time text (RFC 3339) and
 * values under a key listed in nonHmacKeys (matched on the immediate key; an array's elements count
 * as under the key holding the array); numbers/booleans/null unchanged. Returns a new value; the
 * input is not changed. Like Go's JSON round trip before the hashing, a JsonNumber becomes the
 * nearest float64.
 */
export function hashData(
  data: Record<string, unknown>,
  hash: Hasher,
  nonHmacKeys?: readonly string[],
): Record<string, unknown> {
  return hashObject(data, hash, nonHmacKeys);
}

function hashObject(
  obj: Record<string, unknown>,
  hash: Hasher,
  nonHmacKeys: readonly string[] | undefined,
): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(obj)) {
    const v = obj[key];
    if (v === undefined) continue;
    out[key] = hashValue(v, key, hash, nonHmacKeys);
  }
  return out;
}

function hashValue(
  v: unknown,
  key: string,
  hash: Hasher,
  nonHmacKeys: readonly string[] | undefined,
): unknown {
  if (typeof v === "string") return shouldHash(v, key, nonHmacKeys) ? hash(v) : v;
  if (v === null || typeof v !== "object") return v;
  if (v instanceof JsonNumber) {
    const n = v.toNumber();
    return Number.isFinite(n) ? n : v;
  }
  if (Array.isArray(v)) return v.map((e) => (e === undefined ? null : hashValue(e, key, hash, nonHmacKeys)));
  return hashObject(v as Record<string, unknown>, hash, nonHmacKeys);
}

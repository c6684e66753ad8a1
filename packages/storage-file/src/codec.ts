import { constants as bufferConstants } from "node:buffer";

/**
 * The on-disk record format of Vault's file backend: Go's `json.Encoder` writing
 * `struct{ Value []byte }`, i.e. `{"Value":"<standard base64 with padding>"}` and a newline.
 * Base64 never contains `<`, `>` or `&`, so Go's HTML escaping never changes these bytes.
 */
const PREFIX = Buffer.from('{"Value":"', "latin1");
const SUFFIX = Buffer.from('"}\n', "latin1");

/** Standard alphabet, `=` padding only at the end; the length is checked separately (multiple of 4). */
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/**
 * The largest value we can encode: its base64 text has to fit in one V8 string. This is the
 * JavaScript engine's limit (about 384 MiB on 64-bit Node), not a policy of this backend.
 */
export const MAX_VALUE_BYTES: number = Math.floor(bufferConstants.MAX_STRING_LENGTH / 4) * 3;

/** The complete file content for `value`, built in one buffer so `put` issues a single write. */
export function encodeEntryFile(value: Uint8Array): Buffer {
  const b64 = Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString("base64");
  const out = Buffer.allocUnsafe(PREFIX.length + b64.length + SUFFIX.length);
  PREFIX.copy(out, 0);
  out.write(b64, PREFIX.length, "latin1");
  SUFFIX.copy(out, PREFIX.length + b64.length);
  return out;
}

export type DecodeResult = { ok: true; value: Uint8Array } | { ok: false; reason: string };

/**
 * Parses a file written by Vault or by `encodeEntryFile`. The common case (exactly the bytes Go
 * writes) skips `JSON.parse`; anything else goes through a full JSON parse that accepts what Go's
 * decoder accepts for this struct (escapes, whitespace, other fields, `null`, a case-insensitive
 * field name). Never throws: a malformed file is reported as `{ ok: false, reason }`.
 */
export function decodeEntryFile(bytes: Uint8Array): DecodeResult {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const inner = buf.length - SUFFIX.length;
  if (
    inner >= PREFIX.length &&
    buf.compare(PREFIX, 0, PREFIX.length, 0, PREFIX.length) === 0 &&
    buf.compare(SUFFIX, 0, SUFFIX.length, inner) === 0
  ) {
    const b64 = buf.toString("latin1", PREFIX.length, inner);
    // A base64 body has no `"` or `\`, so when it matches, the file is exactly one JSON object.
    if (BASE64.test(b64)) return decodeBase64(b64);
  }
  return decodeJson(buf);
}

function decodeJson(buf: Buffer): DecodeResult {
  let doc: unknown;
  try {
    doc = JSON.parse(buf.toString("utf8"));
  } catch (err) {
    return { ok: false, reason: `not valid JSON (${(err as Error).message})` };
  }
  if (typeof doc !== "object" || doc === null || Array.isArray(doc)) {
    return { ok: false, reason: 'not a JSON object of the form {"Value":"<base64>"}' };
  }
  const record = doc as Record<string, unknown>;
  // Go matches the exact field name first, then any case-insensitive spelling.
  const field = "Value" in record ? "Value" : Object.keys(record).find((k) => k.toLowerCase() === "value");
  if (field === undefined) return { ok: false, reason: 'the JSON object has no "Value" field' };
  const v = record[field];
  // Go encodes a nil []byte as null; reading it back yields an empty value.
  if (v === null) return { ok: true, value: new Uint8Array(0) };
  if (typeof v !== "string") return { ok: false, reason: `"Value" is a ${typeof v}, not a base64 string` };
  if (!BASE64.test(v)) return { ok: false, reason: '"Value" is not standard padded base64' };
  return decodeBase64(v);
}

function decodeBase64(b64: string): DecodeResult {
  if (b64.length % 4 !== 0) {
    return { ok: false, reason: `"Value" is ${b64.length} base64 characters, not a multiple of 4` };
  }
  const pad = b64.endsWith("==") ? 2 : b64.endsWith("=") ? 1 : 0;
  const size = (b64.length / 4) * 3 - pad;
  // A fresh ArrayBuffer, not Node's shared pool: callers may hand `value.buffer` to anyone.
  const value = new Uint8Array(size);
  const written = Buffer.from(value.buffer, 0, size).write(b64, 0, size, "base64");
  if (written !== size) return { ok: false, reason: '"Value" is not valid base64' };
  return { ok: true, value };
}

/**
 * Lossless JSON: numbers keep their exact source text.
 *
 * `JSON.parse` turns every number into a float64: `9007199254740993` becomes `…992`, `1E+2`
 * becomes `100`, `-0` becomes `0`. Vault decodes request bodies with Go's `UseNumber`, so a KV v1
 * secret comes back exactly as it was sent; clients (hvac, node-vault, the bao CLI) rely on that.
 *
 * Here a number whose text JavaScript would not write back identically is parsed into a
 * {@link JsonNumber} holding that text, and {@link stringify} writes the text verbatim. Numbers
 * JavaScript reproduces exactly (`42`, `0.5`, `-3`) stay plain `number`s, so most values stay
 * plain JSON and go through the native `JSON.parse`/`JSON.stringify` (the fast path:
 * {@link parseJson} only runs the JavaScript parser when the text holds a number that needs it).
 */

import type { CodedErrorOptions } from "@bulwark/errors";
import { VaultError } from "../errors.js";

/** A JSON number kept as its source text (only for numbers `JSON.stringify` would not reproduce). */
export class JsonNumber {
  readonly text: string;
  constructor(text: string) {
    this.text = text;
  }
  /** The nearest float64 (what `JSON.parse` would have given). */
  toNumber(): number {
    return Number(this.text);
  }
  toString(): string {
    return this.text;
  }
  /**
   * If a value holding a JsonNumber reaches the native `JSON.stringify` by mistake, it degrades
   * to the float64 (the old behaviour) instead of writing `{"text":…}`.
   */
  toJSON(): number | null {
    const n = this.toNumber();
    return Number.isFinite(n) ? n : null;
  }
}

/**
 * A body refused on purpose (not a syntax error: a `__proto__` key, a number beyond float64, too
 * deep a nesting): the message is safe to show. A `VaultError` with code `invalid_request`, so it
 * answers Vault's 400 wherever it is thrown; it is no longer a `SyntaxError` (the server's body
 * parser tells the two apart by this class).
 */
export class JsonRefusedError extends VaultError {
  static override readonly kind: string = "@bulwark/vault:JsonRefusedError";
  override name = "JsonRefusedError";
  declare readonly code: "invalid_request";
  constructor(message: string, options?: CodedErrorOptions) {
    super("invalid_request", message, options);
  }
}

/** What the numbers in a JSON text need. */
export type NumberScan = "plain" | "lossless";

/**
 * Scans the number tokens of `text` outside strings: "plain" when `JSON.parse` keeps every one of
 * them exactly, "lossless" when one needs {@link parseLossless}. Throws {@link JsonRefusedError}
 * for a number too large for a float64 (`1e400`), which Vault refuses with a 400 as well. Does
 * not validate the JSON (the parser does).
 */
export function scanNumbers(text: string): NumberScan {
  let result: NumberScan = "plain";
  const n = text.length;
  let i = 0;
  while (i < n) {
    const c = text.charCodeAt(i);
    if (c === 0x22) {
      // Skip the string: the next '"' not escaped by an odd number of backslashes.
      let j = i + 1;
      for (;;) {
        j = text.indexOf('"', j);
        if (j < 0) return result; // unterminated: the parser reports it
        let bs = 0;
        while (text.charCodeAt(j - 1 - bs) === 0x5c) bs++;
        if (bs % 2 === 0) break;
        j++;
      }
      i = j + 1;
    } else if (c === 0x2d || (c >= 0x30 && c <= 0x39)) {
      let j = i + 1;
      while (j < n) {
        const d = text.charCodeAt(j);
        // digits . e E + -
        if ((d >= 0x30 && d <= 0x39) || d === 0x2e || d === 0x65 || d === 0x45 || d === 0x2b || d === 0x2d)
          j++;
        else break;
      }
      const token = text.slice(i, j);
      const v = Number(token);
      if (!Number.isFinite(v)) {
        // Not quoted in the message: the body may be a secret.
        if (!Number.isNaN(v))
          throw new JsonRefusedError(
            "a number in the body is too large for a 64-bit float: send it as a string",
          );
      } else if (String(v) !== token) result = "lossless";
      i = j;
    } else i++;
  }
  return result;
}

const NUMBER = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;

/**
 * Parses JSON like `JSON.parse`, except that numbers `JSON.stringify` would not write back with
 * the same text become {@link JsonNumber}s. A `"__proto__"` key is refused (no prototype tricks
 * through later copies of the value). Syntax errors name the offset, never the input.
 */
export function parseLossless(text: string): unknown {
  let i = 0;
  const n = text.length;
  const fail = (what: string): never => {
    throw new SyntaxError(`${what} at offset ${i}`);
  };
  const ws = () => {
    while (i < n) {
      const c = text.charCodeAt(i);
      if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) i++;
      else break;
    }
  };
  const str = (): string => {
    const start = i; // at the opening quote
    let j = i + 1;
    let escaped = false;
    for (;;) {
      if (j >= n) fail("unterminated string");
      const c = text.charCodeAt(j);
      if (c === 0x22) break;
      if (c === 0x5c) {
        escaped = true;
        j += 2;
        continue;
      }
      if (c < 0x20) {
        i = j;
        fail("control character in a string");
      }
      j++;
    }
    i = j + 1;
    if (!escaped) return text.slice(start + 1, j);
    try {
      return JSON.parse(text.slice(start, j + 1)) as string;
    } catch {
      i = start;
      return fail("invalid escape in a string");
    }
  };
  const value = (): unknown => {
    ws();
    const c = text.charCodeAt(i);
    if (c === 0x7b) {
      i++;
      const obj: Record<string, unknown> = {};
      ws();
      if (text.charCodeAt(i) === 0x7d) {
        i++;
        return obj;
      }
      for (;;) {
        ws();
        if (text.charCodeAt(i) !== 0x22) fail("expected a string key");
        const key = str();
        if (key === "__proto__") throw new JsonRefusedError('the key "__proto__" is not allowed');
        ws();
        if (text.charCodeAt(i) !== 0x3a) fail("expected ':'");
        i++;
        obj[key] = value();
        ws();
        const d = text.charCodeAt(i);
        i++;
        if (d === 0x7d) return obj;
        if (d !== 0x2c) {
          i--;
          fail("expected ',' or '}'");
        }
      }
    }
    if (c === 0x5b) {
      i++;
      const arr: unknown[] = [];
      ws();
      if (text.charCodeAt(i) === 0x5d) {
        i++;
        return arr;
      }
      for (;;) {
        arr.push(value());
        ws();
        const d = text.charCodeAt(i);
        i++;
        if (d === 0x5d) return arr;
        if (d !== 0x2c) {
          i--;
          fail("expected ',' or ']'");
        }
      }
    }
    if (c === 0x22) return str();
    if (c === 0x2d || (c >= 0x30 && c <= 0x39)) {
      NUMBER.lastIndex = i;
      const m = NUMBER.exec(text);
      if (m === null) return fail("invalid number");
      const token = m[0];
      i += token.length;
      const v = Number(token);
      if (!Number.isFinite(v))
        throw new JsonRefusedError(
          "a number in the body is too large for a 64-bit float: send it as a string",
        );
      return String(v) === token ? v : new JsonNumber(token);
    }
    if (text.startsWith("true", i)) {
      i += 4;
      return true;
    }
    if (text.startsWith("false", i)) {
      i += 5;
      return false;
    }
    if (text.startsWith("null", i)) {
      i += 4;
      return null;
    }
    return fail(i >= n ? "unexpected end of input" : "unexpected character");
  };
  const out = value();
  ws();
  if (i < n) fail("unexpected text after the value");
  return out;
}

/**
 * Parses JSON text losslessly, taking the native `JSON.parse` whenever no number needs
 * {@link JsonNumber} (the usual case: secrets are mostly strings). `JSON.parse` is given a
 * reviver refusing `"__proto__"` keys when the text could contain one.
 */
export function parseJson(text: string): unknown {
  if (scanNumbers(text) === "lossless") return parseLossless(text);
  // A key can also be spelled with JSON escapes ("\u005f_proto__"), so any escape needs the check.
  if (!text.includes("__proto__") && !text.includes("\\u")) return JSON.parse(text);
  return JSON.parse(text, (k, v) => {
    if (k === "__proto__") throw new JsonRefusedError('the key "__proto__" is not allowed');
    return v;
  });
}

/** Whether `v` holds a {@link JsonNumber} anywhere (plain objects and arrays are searched). */
export function hasJsonNumber(v: unknown): boolean {
  if (typeof v !== "object" || v === null) return false;
  if (v instanceof JsonNumber) return true;
  if (Array.isArray(v)) {
    for (const x of v) if (hasJsonNumber(x)) return true;
    return false;
  }
  if (typeof (v as { toJSON?: unknown }).toJSON === "function") return false;
  for (const k in v) if (hasJsonNumber((v as Record<string, unknown>)[k])) return true;
  return false;
}

/**
 * `JSON.stringify(v, null, indent)`, writing {@link JsonNumber}s as their text. Values without
 * one go to the native serializer.
 */
export function stringify(v: unknown, indent?: number): string {
  if (!hasJsonNumber(v)) return JSON.stringify(v, null, indent) as string;
  return write(v, indent === undefined || indent <= 0 ? "" : " ".repeat(indent), "") ?? "null";
}

function write(v: unknown, step: string, pad: string): string | undefined {
  if (v instanceof JsonNumber) return v.text;
  if (typeof v !== "object" || v === null) return JSON.stringify(v);
  if (typeof (v as { toJSON?: unknown }).toJSON === "function") return JSON.stringify(v);
  const inner = pad + step;
  const sep = step === "" ? "," : `,\n${inner}`;
  const open = step === "" ? "" : `\n${inner}`;
  const close = step === "" ? "" : `\n${pad}`;
  const colon = step === "" ? ":" : ": ";
  if (Array.isArray(v)) {
    if (v.length === 0) return "[]";
    return `[${open}${v.map((x) => write(x, step, inner) ?? "null").join(sep)}${close}]`;
  }
  const parts: string[] = [];
  for (const k of Object.keys(v)) {
    const s = write((v as Record<string, unknown>)[k], step, inner);
    if (s !== undefined) parts.push(`${JSON.stringify(k)}${colon}${s}`);
  }
  if (parts.length === 0) return "{}";
  return `{${open}${parts.join(sep)}${close}}`;
}

/**
 * Go's float64 JSON text for a number (what Vault's KV v2 returns: it decodes a version's data
 * into float64 when reading). Identical to JavaScript's except that negative zero stays `-0`.
 */
export function goFloat(v: unknown): unknown {
  if (v instanceof JsonNumber) {
    const n = v.toNumber();
    return Object.is(n, -0) ? new JsonNumber("-0") : n;
  }
  if (typeof v !== "object" || v === null) return v;
  if (Array.isArray(v)) return v.map(goFloat);
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(v)) out[k] = goFloat((v as Record<string, unknown>)[k]);
  return out;
}

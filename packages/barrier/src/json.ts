/**
 * A small strict JSON reader and writer over bytes, for the keyring and key records.
 *
 * Why not `JSON.parse`/`JSON.stringify`: those turn the base64 key values into JavaScript
 * strings, which are immutable and stay in the heap until the garbage collector runs. Here every
 * string value is decoded into a `Uint8Array` of its own that the caller wipes with
 * {@link wipeJson}, base64 is decoded byte to byte, and the writer encodes key bytes straight
 * into the output buffer, so no key material ever becomes a string.
 */

import { BarrierError } from "./errors.js";

/** A parsed JSON value; string contents stay bytes (unescaped UTF-8). */
export type JsonNode =
  | { readonly kind: "null" }
  | { readonly kind: "boolean"; readonly value: boolean }
  | { readonly kind: "number"; readonly text: string }
  | { readonly kind: "string"; readonly bytes: Uint8Array }
  | { readonly kind: "array"; readonly items: JsonNode[] }
  | { readonly kind: "object"; readonly members: Array<[string, JsonNode]> };

/** Malformed JSON or base64; callers wrap it in their own typed error (the keyring's `invalid_keyring`). */
export class JsonSyntaxError extends BarrierError {
  static override readonly kind: string = "@bulwark/barrier:JsonSyntaxError";
  override name = "JsonSyntaxError";
  constructor(message: string) {
    super("invalid_json", message);
  }
}

const MAX_DEPTH = 64;
const utf8 = new TextDecoder("utf-8");

// Byte values used by the reader and writer.
const C = {
  Tab: 0x09,
  LF: 0x0a,
  CR: 0x0d,
  Space: 0x20,
  Quote: 0x22,
  Plus: 0x2b,
  Comma: 0x2c,
  Minus: 0x2d,
  Dot: 0x2e,
  Slash: 0x2f,
  Zero: 0x30,
  Nine: 0x39,
  Colon: 0x3a,
  Equals: 0x3d,
  UpperE: 0x45,
  LBracket: 0x5b,
  Backslash: 0x5c,
  RBracket: 0x5d,
  LowerE: 0x65,
  LBrace: 0x7b,
  RBrace: 0x7d,
} as const;

function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x41 && c <= 0x46) return c - 0x37;
  if (c >= 0x61 && c <= 0x66) return c - 0x57;
  return -1;
}

function writeUtf8(cp: number, out: Uint8Array, at: number): number {
  if (cp < 0x80) {
    out[at] = cp;
    return 1;
  }
  if (cp < 0x800) {
    out[at] = 0xc0 | (cp >> 6);
    out[at + 1] = 0x80 | (cp & 0x3f);
    return 2;
  }
  if (cp < 0x10000) {
    out[at] = 0xe0 | (cp >> 12);
    out[at + 1] = 0x80 | ((cp >> 6) & 0x3f);
    out[at + 2] = 0x80 | (cp & 0x3f);
    return 3;
  }
  out[at] = 0xf0 | (cp >> 18);
  out[at + 1] = 0x80 | ((cp >> 12) & 0x3f);
  out[at + 2] = 0x80 | ((cp >> 6) & 0x3f);
  out[at + 3] = 0x80 | (cp & 0x3f);
  return 4;
}

class Parser {
  readonly #b: Uint8Array;
  #pos = 0;

  constructor(bytes: Uint8Array) {
    this.#b = bytes;
  }

  parseDocument(): JsonNode {
    // A UTF-8 byte order mark is not JSON (Go and JSON.parse both refuse it).
    const node = this.#value(0);
    this.#ws();
    if (this.#pos !== this.#b.length) this.#fail("unexpected data after the JSON value");
    return node;
  }

  #fail(what: string): never {
    throw new JsonSyntaxError(`invalid JSON at byte ${this.#pos}: ${what}`);
  }

  #ws(): void {
    const b = this.#b;
    while (this.#pos < b.length) {
      const c = b[this.#pos];
      if (c !== C.Space && c !== C.Tab && c !== C.LF && c !== C.CR) return;
      this.#pos++;
    }
  }

  #literal(word: string): void {
    for (let i = 0; i < word.length; i++) {
      if (this.#b[this.#pos + i] !== word.charCodeAt(i)) this.#fail(`expected ${word}`);
    }
    this.#pos += word.length;
  }

  #value(depth: number): JsonNode {
    if (depth > MAX_DEPTH) this.#fail(`nesting deeper than ${MAX_DEPTH}`);
    this.#ws();
    const c = this.#b[this.#pos];
    switch (c) {
      case C.LBrace:
        return this.#object(depth);
      case C.LBracket:
        return this.#array(depth);
      case C.Quote:
        return { kind: "string", bytes: this.#string() };
      case 0x74: // t
        this.#literal("true");
        return { kind: "boolean", value: true };
      case 0x66: // f
        this.#literal("false");
        return { kind: "boolean", value: false };
      case 0x6e: // n
        this.#literal("null");
        return { kind: "null" };
      default:
        if (c === C.Minus || (c !== undefined && c >= C.Zero && c <= C.Nine)) return this.#number();
        return this.#fail(c === undefined ? "unexpected end of input" : "unexpected character");
    }
  }

  #digits(): number {
    const start = this.#pos;
    while (this.#pos < this.#b.length) {
      const c = this.#b[this.#pos] as number;
      if (c < C.Zero || c > C.Nine) break;
      this.#pos++;
    }
    return this.#pos - start;
  }

  #number(): JsonNode {
    const b = this.#b;
    const start = this.#pos;
    if (b[this.#pos] === C.Minus) this.#pos++;
    if (b[this.#pos] === C.Zero) {
      this.#pos++;
    } else if (this.#digits() === 0) {
      this.#fail("expected a digit");
    }
    if (b[this.#pos] === C.Dot) {
      this.#pos++;
      if (this.#digits() === 0) this.#fail("expected a digit after '.'");
    }
    if (b[this.#pos] === C.LowerE || b[this.#pos] === C.UpperE) {
      this.#pos++;
      if (b[this.#pos] === C.Plus || b[this.#pos] === C.Minus) this.#pos++;
      if (this.#digits() === 0) this.#fail("expected a digit in the exponent");
    }
    // Number text is ASCII digits and signs only.
    return { kind: "number", text: String.fromCharCode(...b.subarray(start, this.#pos)) };
  }

  /** Reads a string (the cursor is on the opening quote) into a buffer of its own. */
  #string(): Uint8Array {
    const b = this.#b;
    const start = ++this.#pos;
    let escaped = false;
    for (;;) {
      const c = b[this.#pos];
      if (c === undefined) this.#fail("unterminated string");
      if (c === C.Quote) break;
      if (c < 0x20) this.#fail("control character in string");
      if (c === C.Backslash) {
        escaped = true;
        this.#pos++;
        if (b[this.#pos] === undefined) this.#fail("unterminated string");
      }
      this.#pos++;
    }
    const end = this.#pos;
    this.#pos++; // closing quote
    if (!escaped) return b.slice(start, end);
    // Unescaped output is never longer than the escaped input.
    const tmp = new Uint8Array(end - start);
    let n = 0;
    let i = start;
    while (i < end) {
      const c = b[i] as number;
      if (c !== C.Backslash) {
        tmp[n++] = c;
        i++;
        continue;
      }
      const e = b[i + 1] as number;
      i += 2;
      switch (e) {
        case C.Quote:
        case C.Backslash:
        case C.Slash:
          tmp[n++] = e;
          break;
        case 0x62: // b
          tmp[n++] = 0x08;
          break;
        case 0x66: // f
          tmp[n++] = 0x0c;
          break;
        case 0x6e: // n
          tmp[n++] = 0x0a;
          break;
        case 0x72: // r
          tmp[n++] = 0x0d;
          break;
        case 0x74: // t
          tmp[n++] = 0x09;
          break;
        case 0x75: {
          // u
          let cp = this.#hex4(i, end);
          i += 4;
          if (cp >= 0xd800 && cp <= 0xdbff && b[i] === C.Backslash && b[i + 1] === 0x75 && i + 6 <= end) {
            const lo = this.#hex4(i + 2, end);
            if (lo >= 0xdc00 && lo <= 0xdfff) {
              cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
              i += 6;
            }
          }
          // A lone surrogate becomes U+FFFD, as Go's decoder does.
          if (cp >= 0xd800 && cp <= 0xdfff) cp = 0xfffd;
          n += writeUtf8(cp, tmp, n);
          break;
        }
        default:
          this.#pos = i - 1;
          this.#fail("invalid escape in string");
      }
    }
    const out = tmp.slice(0, n);
    tmp.fill(0);
    return out;
  }

  #hex4(at: number, end: number): number {
    if (at + 4 > end) {
      this.#pos = at;
      this.#fail("short \\u escape");
    }
    let v = 0;
    for (let k = 0; k < 4; k++) {
      const h = hexValue(this.#b[at + k] as number);
      if (h < 0) {
        this.#pos = at + k;
        this.#fail("invalid hex digit in \\u escape");
      }
      v = (v << 4) | h;
    }
    return v;
  }

  #array(depth: number): JsonNode {
    this.#pos++; // [
    const items: JsonNode[] = [];
    this.#ws();
    if (this.#b[this.#pos] === C.RBracket) {
      this.#pos++;
      return { kind: "array", items };
    }
    for (;;) {
      items.push(this.#value(depth + 1));
      this.#ws();
      const c = this.#b[this.#pos];
      this.#pos++;
      if (c === C.RBracket) return { kind: "array", items };
      if (c !== C.Comma) {
        this.#pos--;
        this.#fail("expected ',' or ']'");
      }
    }
  }

  #object(depth: number): JsonNode {
    this.#pos++; // {
    const members: Array<[string, JsonNode]> = [];
    this.#ws();
    if (this.#b[this.#pos] === C.RBrace) {
      this.#pos++;
      return { kind: "object", members };
    }
    for (;;) {
      this.#ws();
      if (this.#b[this.#pos] !== C.Quote) this.#fail("expected a member name");
      const nameBytes = this.#string();
      const name = utf8.decode(nameBytes);
      this.#ws();
      if (this.#b[this.#pos] !== C.Colon) this.#fail("expected ':'");
      this.#pos++;
      members.push([name, this.#value(depth + 1)]);
      this.#ws();
      const c = this.#b[this.#pos];
      this.#pos++;
      if (c === C.RBrace) return { kind: "object", members };
      if (c !== C.Comma) {
        this.#pos--;
        this.#fail("expected ',' or '}'");
      }
    }
  }
}

/** Parses one JSON document (RFC 8259, no BOM, nesting up to 64 levels). */
export function parseJson(bytes: Uint8Array): JsonNode {
  return new Parser(bytes).parseDocument();
}

/** Overwrites every string buffer in `node` with zeros. */
export function wipeJson(node: JsonNode): void {
  switch (node.kind) {
    case "string":
      node.bytes.fill(0);
      return;
    case "array":
      for (const item of node.items) wipeJson(item);
      return;
    case "object":
      for (const [, v] of node.members) wipeJson(v);
      return;
    default:
      return;
  }
}

/** The plain JavaScript value of `node` (strings decoded); for tests and non-secret fields. */
export function jsonToValue(node: JsonNode): unknown {
  switch (node.kind) {
    case "null":
      return null;
    case "boolean":
      return node.value;
    case "number":
      return Number(node.text);
    case "string":
      return utf8.decode(node.bytes);
    case "array":
      return node.items.map(jsonToValue);
    case "object": {
      const out: Record<string, unknown> = {};
      for (const [k, v] of node.members) {
        Object.defineProperty(out, k, {
          value: jsonToValue(v),
          enumerable: true,
          writable: true,
          configurable: true,
        });
      }
      return out;
    }
  }
}

/**
 * The member Go's `encoding/json` would bind to struct field `field`: an exact name match first,
 * otherwise a case-insensitive one; with duplicates the last one wins (as in Go).
 */
export function member(node: JsonNode | undefined, field: string): JsonNode | undefined {
  if (node?.kind !== "object") return undefined;
  let exact: JsonNode | undefined;
  let folded: JsonNode | undefined;
  const lower = field.toLowerCase();
  for (const [name, value] of node.members) {
    if (name === field) exact = value;
    else if (name.toLowerCase() === lower) folded = value;
  }
  return exact ?? folded;
}

// ---------------------------------------------------------------------------------------------
// base64 (Go's base64.StdEncoding: standard alphabet, '=' padding; CR and LF are skipped)

const B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const B64_CODES = Uint8Array.from(B64, (ch) => ch.charCodeAt(0));
const B64_LOOKUP = (() => {
  const t = new Int16Array(256).fill(-1);
  for (let i = 0; i < B64.length; i++) t[B64.charCodeAt(i)] = i;
  return t;
})();

export function base64Length(n: number): number {
  return Math.ceil(n / 3) * 4;
}

/** Writes the base64 of `src` into `out` at `at`; returns the number of bytes written. */
export function base64EncodeInto(src: Uint8Array, out: Uint8Array, at: number): number {
  let o = at;
  let i = 0;
  for (; i + 2 < src.length; i += 3) {
    const v = ((src[i] as number) << 16) | ((src[i + 1] as number) << 8) | (src[i + 2] as number);
    out[o++] = B64_CODES[v >> 18] as number;
    out[o++] = B64_CODES[(v >> 12) & 63] as number;
    out[o++] = B64_CODES[(v >> 6) & 63] as number;
    out[o++] = B64_CODES[v & 63] as number;
  }
  const rest = src.length - i;
  if (rest > 0) {
    const v = ((src[i] as number) << 16) | (rest === 2 ? (src[i + 1] as number) << 8 : 0);
    out[o++] = B64_CODES[v >> 18] as number;
    out[o++] = B64_CODES[(v >> 12) & 63] as number;
    out[o++] = rest === 2 ? (B64_CODES[(v >> 6) & 63] as number) : C.Equals;
    out[o++] = C.Equals;
  }
  return o - at;
}

/** Decodes base64 text held in bytes into a buffer of its own. */
export function base64DecodeBytes(text: Uint8Array): Uint8Array {
  // Go's decoder drops CR and LF anywhere in the input.
  let len = 0;
  for (const c of text) if (c !== C.CR && c !== C.LF) len++;
  if (len % 4 !== 0) throw new JsonSyntaxError("invalid base64: length is not a multiple of 4");
  const sextets = new Uint8Array(len);
  let pad = 0;
  let k = 0;
  for (const c of text) {
    if (c === C.CR || c === C.LF) continue;
    if (c === C.Equals) {
      pad++;
      sextets[k++] = 0;
      continue;
    }
    const v = B64_LOOKUP[c] as number;
    if (v < 0 || pad > 0) {
      sextets.fill(0);
      throw new JsonSyntaxError("invalid base64: unexpected character");
    }
    sextets[k++] = v;
  }
  if (pad > 2) {
    sextets.fill(0);
    throw new JsonSyntaxError("invalid base64: too much padding");
  }
  const out = new Uint8Array((len / 4) * 3 - pad);
  let o = 0;
  for (let i = 0; i < len; i += 4) {
    const v =
      ((sextets[i] as number) << 18) |
      ((sextets[i + 1] as number) << 12) |
      ((sextets[i + 2] as number) << 6) |
      (sextets[i + 3] as number);
    if (o < out.length) out[o++] = v >> 16;
    if (o < out.length) out[o++] = (v >> 8) & 0xff;
    if (o < out.length) out[o++] = v & 0xff;
  }
  sextets.fill(0);
  return out;
}

/**
 * Builds a JSON document from ASCII fragments and base64-encoded byte fields, in one output
 * allocation. Fragments are written verbatim: callers pass only JSON they produced themselves.
 */
export class JsonBytesWriter {
  readonly #parts: Array<string | Uint8Array> = [];
  #length = 0;

  /** Appends literal ASCII JSON text. */
  raw(text: string): this {
    this.#parts.push(text);
    this.#length += text.length;
    return this;
  }

  /** Appends `"<base64 of bytes>"`. The bytes are read when {@link finish} runs. */
  base64String(bytes: Uint8Array): this {
    this.#parts.push(bytes);
    this.#length += base64Length(bytes.length) + 2;
    return this;
  }

  finish(): Uint8Array {
    const out = new Uint8Array(this.#length);
    let at = 0;
    for (const part of this.#parts) {
      if (typeof part === "string") {
        for (let i = 0; i < part.length; i++) out[at++] = part.charCodeAt(i);
      } else {
        out[at++] = C.Quote;
        at += base64EncodeInto(part, out, at);
        out[at++] = C.Quote;
      }
    }
    this.#parts.length = 0;
    return out;
  }
}

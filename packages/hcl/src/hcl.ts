/**
 * A parser for the HCL1 subset that Vault server configs and ACL policies use, plus Vault's JSON
 * form of the same documents.
 *
 * Why our own: the npm HCL packages are either WASM/GopherJS builds of Go code that swallow or
 * stringify parse errors, or unmaintained (toolchain.md §7). Vault parses its config with HCL1, so
 * this parser follows HCL1's rules: not newline sensitive, `#`, `//` and `/* *\/` comments,
 * `key = value`, blocks with string (or identifier) labels, heredocs, Go-style string escapes,
 * integers in decimal, hex (`0x1f`) and octal (`0755`, as HCL1/Go `ParseInt(s, 0, 64)` reads them).
 *
 * The result keeps the syntax and every position, so callers can report "unknown key `foo` at
 * vault.hcl:12:3". HCL1 treats `storage "file" { … }`, `storage { file { … } }` and
 * `storage = { file = { … } }` (and the JSON `{"storage": {"file": {…}}}`) as the same thing;
 * {@link blocks} normalises all of them into `{ labels, body }` entries.
 */

import { CodedError } from "@bulwark/errors";

/** A place in the source: 1-based line and column (UTF-16 units), 0-based offset. */
export interface HclPosition {
  line: number;
  column: number;
  offset: number;
}

export interface HclStringValue {
  kind: "string";
  value: string;
  /** Written as `<<EOF … EOF`. */
  heredoc: boolean;
  pos: HclPosition;
}

export interface HclNumberValue {
  kind: "number";
  value: number;
  /** The literal as written (`0x1F`, `1e3`); integers beyond 2^53 keep their digits here. */
  raw: string;
  pos: HclPosition;
}

export interface HclBoolValue {
  kind: "bool";
  value: boolean;
  pos: HclPosition;
}

/** Only JSON documents have `null`. */
export interface HclNullValue {
  kind: "null";
  pos: HclPosition;
}

export interface HclListValue {
  kind: "list";
  items: HclValue[];
  pos: HclPosition;
}

/** `{ key = value … }` as a value, or a JSON object. */
export interface HclObjectValue {
  kind: "object";
  body: HclBody;
  pos: HclPosition;
}

export type HclValue =
  | HclStringValue
  | HclNumberValue
  | HclBoolValue
  | HclNullValue
  | HclListValue
  | HclObjectValue;

/** `key = value` (HCL) or `"key": value` (JSON). */
export interface HclAttribute {
  kind: "attribute";
  key: string;
  value: HclValue;
  /** Position of the key. */
  pos: HclPosition;
}

/** `type "label" … { body }`. */
export interface HclBlock {
  kind: "block";
  type: string;
  labels: string[];
  labelPositions: HclPosition[];
  body: HclBody;
  /** Position of the block type. */
  pos: HclPosition;
}

export type HclItem = HclAttribute | HclBlock;

/** The items between `{` and `}` (or of a whole file), in source order, duplicates kept. */
export interface HclBody {
  items: HclItem[];
  pos: HclPosition;
  filename: string;
}

export interface HclDocument {
  filename: string;
  format: "hcl" | "json";
  body: HclBody;
}

/** Stable codes of the errors `@bulwark/hcl` reports (domain "hcl"). */
export const HCL_ERROR_CODES = ["hcl_parse"] as const;

export type HclErrorCode = (typeof HCL_ERROR_CODES)[number];

/**
 * A document that does not parse (`kind: "syntax"`) or whose shape is not what a caller asked
 * for (`kind: "structure"`, from {@link blocks}). The message starts with `file:line:column:`.
 */
export class HclParseError extends CodedError<HclErrorCode> {
  static override readonly kind: string = "@bulwark/hcl:HclParseError";
  override name = "HclParseError";
  /** Not the class's `static kind` (its cross-copy identity): which of the two failures this is. */
  readonly kind: "syntax" | "structure";
  readonly filename: string;
  readonly line: number;
  readonly column: number;
  /** The message without the location prefix. */
  readonly detail: string;

  constructor(kind: "syntax" | "structure", filename: string, pos: HclPosition, detail: string) {
    super("hcl", "hcl_parse", `${filename}:${pos.line}:${pos.column}: ${detail}`);
    this.kind = kind;
    this.filename = filename;
    this.line = pos.line;
    this.column = pos.column;
    this.detail = detail;
  }
}

// ------------------------------------------------------------------------------------ lexer

type TokenType = "{" | "}" | "[" | "]" | "=" | ":" | "," | "string" | "heredoc" | "number" | "ident" | "eof";

interface Token {
  type: TokenType;
  /** Decoded string / heredoc value, number literal, or identifier. */
  text: string;
  pos: HclPosition;
}

const IDENT_START = /[A-Za-z_]/;
const IDENT_PART = /[A-Za-z0-9_.-]/;
const HEREDOC_ANCHOR = /^[A-Za-z_][A-Za-z0-9_-]*/;
const HCL_NUMBER = /^-?(?:0[xX][0-9a-fA-F]+|[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?)/;
const JSON_NUMBER = /^-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/;

function describeToken(t: Token): string {
  switch (t.type) {
    case "eof":
      return "end of file";
    case "string":
      return `string ${JSON.stringify(t.text.length > 40 ? `${t.text.slice(0, 40)}…` : t.text)}`;
    case "heredoc":
      return "heredoc";
    case "number":
      return `number ${t.text}`;
    case "ident":
      return `identifier \`${t.text}\``;
    default:
      return `"${t.type}"`;
  }
}

class Lexer {
  readonly #src: string;
  readonly #file: string;
  readonly #json: boolean;
  #i = 0;
  #line = 1;
  #col = 1;

  constructor(src: string, file: string, json: boolean) {
    this.#src = src;
    this.#file = file;
    this.#json = json;
  }

  #pos(): HclPosition {
    return { line: this.#line, column: this.#col, offset: this.#i };
  }

  #fail(pos: HclPosition, detail: string): never {
    throw new HclParseError("syntax", this.#file, pos, detail);
  }

  #advance(n = 1): void {
    for (let k = 0; k < n; k++) {
      if (this.#src.charCodeAt(this.#i) === 10) {
        this.#line++;
        this.#col = 1;
      } else {
        this.#col++;
      }
      this.#i++;
    }
  }

  #skipTrivia(): void {
    const s = this.#src;
    while (this.#i < s.length) {
      const c = s[this.#i];
      if (c === " " || c === "\t" || c === "\n" || c === "\r" || c === "\uFEFF") {
        this.#advance();
      } else if (!this.#json && (c === "#" || (c === "/" && s[this.#i + 1] === "/"))) {
        while (this.#i < s.length && s[this.#i] !== "\n") this.#advance();
      } else if (!this.#json && c === "/" && s[this.#i + 1] === "*") {
        const start = this.#pos();
        const end = s.indexOf("*/", this.#i + 2);
        if (end < 0) this.#fail(start, "unterminated comment: expected */ before the end of the file");
        this.#advance(end + 2 - this.#i);
      } else {
        return;
      }
    }
  }

  next(): Token {
    this.#skipTrivia();
    const s = this.#src;
    const pos = this.#pos();
    if (this.#i >= s.length) return { type: "eof", text: "", pos };
    const c = s[this.#i] as string;
    switch (c) {
      case "{":
      case "}":
      case "[":
      case "]":
      case "=":
      case ",":
      case ":":
        this.#advance();
        return { type: c, text: c, pos };
      case '"':
        return { type: "string", text: this.#string(pos), pos };
      case "<":
        if (!this.#json && s[this.#i + 1] === "<") return { type: "heredoc", text: this.#heredoc(pos), pos };
        break;
      default:
        break;
    }
    if (c === "-" || (c >= "0" && c <= "9")) return this.#number(pos);
    if (IDENT_START.test(c)) {
      const start = this.#i;
      while (this.#i < s.length && IDENT_PART.test(s[this.#i] as string)) this.#advance();
      return { type: "ident", text: s.slice(start, this.#i), pos };
    }
    if (c === "/") this.#fail(pos, 'unexpected "/": comments start with // or /*');
    if (c === "'") this.#fail(pos, "unexpected ': strings use double quotes");
    this.#fail(pos, `unexpected character ${JSON.stringify(c)}`);
  }

  #number(pos: HclPosition): Token {
    const rest = this.#src.slice(this.#i, this.#i + 400);
    const m = (this.#json ? JSON_NUMBER : HCL_NUMBER).exec(rest);
    if (!m)
      this.#fail(
        pos,
        `expected a number after "-", found ${JSON.stringify(rest.slice(1, 2) || "end of file")}`,
      );
    const raw = m[0];
    const after = rest[raw.length];
    if (after !== undefined && (IDENT_PART.test(after) || after === "x" || after === "X")) {
      this.#fail(pos, `malformed number ${JSON.stringify(rest.slice(0, raw.length + 1))}`);
    }
    this.#advance(raw.length);
    return { type: "number", text: raw, pos };
  }

  #string(pos: HclPosition): string {
    const s = this.#src;
    this.#advance(); // opening quote
    let out = "";
    for (;;) {
      if (this.#i >= s.length)
        this.#fail(pos, 'unterminated string: expected a closing " before the end of the file');
      const c = s[this.#i] as string;
      if (c === "\n") this.#fail(pos, 'unterminated string: expected a closing " before the end of the line');
      if (c === '"') {
        this.#advance();
        return out;
      }
      if (c === "\\") {
        out += this.#escape();
        continue;
      }
      if (!this.#json && c === "$" && s[this.#i + 1] === "{") {
        out += this.#interpolation(pos);
        continue;
      }
      if (this.#json && c.charCodeAt(0) < 0x20) {
        this.#fail(this.#pos(), "control character in a JSON string: escape it (\\n, \\t, \\u00XX)");
      }
      out += c;
      this.#advance();
    }
  }

  /**
   * HCL1 keeps `${ … }` as literal text but lets it contain quotes and braces, so a string like
   * `"${lookup(var.m, "k")}"` does not end at the inner quote.
   */
  #interpolation(stringPos: HclPosition): string {
    const s = this.#src;
    const start = this.#i;
    let depth = 0;
    for (;;) {
      const c = s[this.#i];
      if (c === undefined || c === "\n") {
        // biome-ignore lint/suspicious/noTemplateCurlyInString: names HCL's interpolation syntax
        this.#fail(stringPos, "unterminated ${ … } in string: expected } before the end of the line");
      }
      this.#advance();
      if (c === "{") depth++;
      else if (c === "}" && --depth === 0) return s.slice(start, this.#i);
    }
  }

  #escape(): string {
    const s = this.#src;
    const pos = this.#pos();
    const c = s[this.#i + 1];
    const hex = (n: number): string => {
      const digits = s.slice(this.#i + 2, this.#i + 2 + n);
      if (digits.length !== n || !/^[0-9a-fA-F]+$/.test(digits)) {
        this.#fail(pos, `invalid escape: \\${c} needs ${n} hex digits`);
      }
      const code = Number.parseInt(digits, 16);
      if (code > 0x10ffff) this.#fail(pos, `invalid escape: \\${c}${digits} is beyond U+10FFFF`);
      this.#advance(2 + n);
      return String.fromCodePoint(code);
    };
    const simple: Record<string, string> = this.#json
      ? { '"': '"', "\\": "\\", "/": "/", b: "\b", f: "\f", n: "\n", r: "\r", t: "\t" }
      : { '"': '"', "\\": "\\", a: "\x07", b: "\b", f: "\f", n: "\n", r: "\r", t: "\t", v: "\v" };
    if (c !== undefined && Object.hasOwn(simple, c)) {
      this.#advance(2);
      return simple[c] as string;
    }
    if (c === "u") {
      if (!this.#json) return hex(4);
      // JSON encodes astral characters as surrogate pairs; keep them as UTF-16 units.
      const digits = s.slice(this.#i + 2, this.#i + 6);
      if (!/^[0-9a-fA-F]{4}$/.test(digits)) this.#fail(pos, "invalid escape: \\u needs 4 hex digits");
      this.#advance(6);
      return String.fromCharCode(Number.parseInt(digits, 16));
    }
    if (!this.#json) {
      if (c === "U") return hex(8);
      if (c === "x") {
        const digits = s.slice(this.#i + 2, this.#i + 4);
        if (!/^[0-9a-fA-F]{2}$/.test(digits)) this.#fail(pos, "invalid escape: \\x needs 2 hex digits");
        this.#advance(4);
        return String.fromCharCode(Number.parseInt(digits, 16));
      }
      if (c !== undefined && c >= "0" && c <= "7") {
        const digits = s.slice(this.#i + 1, this.#i + 4);
        if (!/^[0-7]{3}$/.test(digits) || Number.parseInt(digits, 8) > 255) {
          this.#fail(pos, "invalid escape: an octal escape is \\ and 3 octal digits up to \\377");
        }
        this.#advance(4);
        return String.fromCharCode(Number.parseInt(digits, 8));
      }
    }
    if (c === undefined || c === "\n") this.#fail(pos, "unterminated string: a backslash ends the line");
    this.#fail(pos, `invalid escape \\${c}: use \\\\ for a backslash`);
  }

  /** `<<EOF` / `<<-EOF`: the value is every line up to the anchor line, each with its newline. */
  #heredoc(pos: HclPosition): string {
    const s = this.#src;
    this.#advance(2);
    const indented = s[this.#i] === "-";
    if (indented) this.#advance();
    const m = HEREDOC_ANCHOR.exec(s.slice(this.#i, this.#i + 200));
    if (!m) this.#fail(this.#pos(), "expected a heredoc anchor (like EOF) after <<");
    const anchor = m[0];
    this.#advance(anchor.length);
    if (s[this.#i] === "\r") this.#advance();
    if (s[this.#i] !== "\n")
      this.#fail(this.#pos(), `expected a line break after <<${indented ? "-" : ""}${anchor}`);
    this.#advance();
    const lines: string[] = [];
    for (;;) {
      if (this.#i >= s.length) {
        this.#fail(pos, `unterminated heredoc: expected a line with ${anchor} before the end of the file`);
      }
      let end = s.indexOf("\n", this.#i);
      if (end < 0) end = s.length;
      let line = s.slice(this.#i, end);
      if (line.endsWith("\r")) line = line.slice(0, -1);
      const isAnchor = indented ? line.trimStart() === anchor : line === anchor;
      if (isAnchor) {
        // Leave the line break after the anchor for the trivia skipper.
        this.#advance(line.length);
        if (!indented) return lines.map((l) => `${l}\n`).join("");
        return unindent(lines, line.slice(0, line.length - anchor.length)).join("");
      }
      lines.push(line);
      this.#advance(Math.min(end + 1, s.length) - this.#i);
    }
  }
}

/** HCL1's `<<-` rule: strip the closing anchor's indentation if every line carries it. */
function unindent(lines: string[], prefix: string): string[] {
  const all = lines.every((l) => l.startsWith(prefix) || l.trim() === "");
  return lines.map((l) => `${all ? (l.startsWith(prefix) ? l.slice(prefix.length) : "") : l}\n`);
}

// ------------------------------------------------------------------------------------ parser

/** Integers past 2^53 lose digits as numbers; HSM slot ids are such integers. */
function numberValue(raw: string, json: boolean, file: string, pos: HclPosition): number {
  const neg = raw.startsWith("-");
  const body = neg ? raw.slice(1) : raw;
  if (!json && /^0[xX]/.test(body)) return (neg ? -1 : 1) * Number.parseInt(body.slice(2), 16);
  if (!json && /^0[0-9]+$/.test(body)) {
    // HCL1 reads integers with Go's ParseInt(s, 0, 64): a leading 0 means octal.
    if (/[89]/.test(body)) {
      throw new HclParseError(
        "syntax",
        file,
        pos,
        `invalid number ${raw}: a leading 0 means octal (digits 0-7)`,
      );
    }
    return (neg ? -1 : 1) * Number.parseInt(body, 8);
  }
  return Number(raw);
}

/** Deeper nesting than any config needs; the limit keeps hostile input from exhausting the stack. */
export const HCL_MAX_DEPTH = 100;

class Parser {
  readonly #lex: Lexer;
  readonly #file: string;
  readonly #json: boolean;
  #tok: Token;
  #depth = 0;

  constructor(src: string, file: string, json: boolean) {
    this.#lex = new Lexer(src, file, json);
    this.#file = file;
    this.#json = json;
    this.#tok = this.#lex.next();
  }

  #fail(t: Token, expected: string): never {
    throw new HclParseError("syntax", this.#file, t.pos, `expected ${expected}, found ${describeToken(t)}`);
  }

  #nest<T>(at: Token, fn: () => T): T {
    if (++this.#depth > HCL_MAX_DEPTH) {
      throw new HclParseError("syntax", this.#file, at.pos, `nesting deeper than ${HCL_MAX_DEPTH} levels`);
    }
    try {
      return fn();
    } finally {
      this.#depth--;
    }
  }

  /** The current token's type (a method, so TypeScript does not narrow it across #take()). */
  #peek(): TokenType {
    return this.#tok.type;
  }

  #take(): Token {
    const t = this.#tok;
    this.#tok = this.#lex.next();
    return t;
  }

  #expect(type: TokenType, expected: string): Token {
    if (this.#peek() !== type) this.#fail(this.#tok, expected);
    return this.#take();
  }

  document(): HclBody {
    if (this.#json) {
      const open = this.#expect("{", "a JSON object ({ … }) at the top level");
      const body = this.#jsonMembers(open.pos);
      this.#expect("eof", "end of file after the top-level object");
      return body;
    }
    const start: HclPosition = { line: 1, column: 1, offset: 0 };
    const body = this.#hclBody(start, "eof");
    return body;
  }

  #hclBody(pos: HclPosition, until: "}" | "eof"): HclBody {
    const items: HclItem[] = [];
    while (this.#peek() !== until) {
      items.push(this.#hclItem(until));
      // HCL1 lets items be separated by commas as well as line breaks.
      if (this.#peek() === ",") this.#take();
    }
    return { items, pos, filename: this.#file };
  }

  #hclItem(until: "}" | "eof"): HclItem {
    const keyTok = this.#tok;
    if (keyTok.type !== "ident" && keyTok.type !== "string") {
      this.#fail(
        keyTok,
        until === "}" ? 'a key (identifier or "string") or "}"' : 'a key (identifier or "string")',
      );
    }
    this.#take();
    if (this.#peek() === "=") {
      this.#take();
      return { kind: "attribute", key: keyTok.text, value: this.#hclValue(), pos: keyTok.pos };
    }
    const labels: string[] = [];
    const labelPositions: HclPosition[] = [];
    while (this.#peek() === "string" || this.#peek() === "ident") {
      const l = this.#take();
      labels.push(l.text);
      labelPositions.push(l.pos);
    }
    if (this.#peek() !== "{") {
      if (labels.length === 0) this.#fail(this.#tok, `"=" or "{" after \`${keyTok.text}\``);
      const hint =
        labels.length === 1
          ? ` (to set a value, write ${keyTok.text} = ${quoteHcl(labels[0] as string)})`
          : "";
      throw new HclParseError(
        "syntax",
        this.#file,
        this.#tok.pos,
        `expected "{" to open the \`${keyTok.text}\` block, found ${describeToken(this.#tok)}${hint}`,
      );
    }
    const open = this.#take();
    const body = this.#nest(open, () => this.#hclBody(open.pos, "}"));
    this.#take();
    return { kind: "block", type: keyTok.text, labels, labelPositions, body, pos: keyTok.pos };
  }

  #hclValue(): HclValue {
    const t = this.#tok;
    switch (t.type) {
      case "string":
      case "heredoc":
        this.#take();
        return { kind: "string", value: t.text, heredoc: t.type === "heredoc", pos: t.pos };
      case "number":
        this.#take();
        return {
          kind: "number",
          value: numberValue(t.text, false, this.#file, t.pos),
          raw: t.text,
          pos: t.pos,
        };
      case "ident":
        if (t.text === "true" || t.text === "false") {
          this.#take();
          return { kind: "bool", value: t.text === "true", pos: t.pos };
        }
        throw new HclParseError(
          "syntax",
          this.#file,
          t.pos,
          `expected a value (string, number, true/false, [list] or { object }), found identifier \`${t.text}\` — quote it: "${t.text}"`,
        );
      case "[": {
        this.#take();
        const items: HclValue[] = [];
        while (this.#peek() !== "]") {
          items.push(this.#nest(t, () => this.#hclValue()));
          if (this.#peek() === ",") this.#take();
          else if (this.#peek() !== "]") this.#fail(this.#tok, '"," or "]" in the list');
        }
        this.#take();
        return { kind: "list", items, pos: t.pos };
      }
      case "{": {
        this.#take();
        const body = this.#nest(t, () => this.#hclBody(t.pos, "}"));
        this.#take();
        return { kind: "object", body, pos: t.pos };
      }
      default:
        this.#fail(t, "a value (string, number, true/false, [list] or { object })");
    }
  }

  #jsonMembers(pos: HclPosition): HclBody {
    const items: HclItem[] = [];
    if (this.#peek() === "}") {
      this.#take();
      return { items, pos, filename: this.#file };
    }
    for (;;) {
      const key = this.#expect("string", 'a member name ("key")');
      this.#expect(":", `":" after ${JSON.stringify(key.text)}`);
      items.push({ kind: "attribute", key: key.text, value: this.#jsonValue(), pos: key.pos });
      const sep = this.#take();
      if (sep.type === "}") return { items, pos, filename: this.#file };
      if (sep.type !== ",") this.#fail(sep, '"," or "}" in the object');
    }
  }

  #jsonValue(): HclValue {
    const t = this.#take();
    switch (t.type) {
      case "string":
        return { kind: "string", value: t.text, heredoc: false, pos: t.pos };
      case "number":
        return {
          kind: "number",
          value: numberValue(t.text, true, this.#file, t.pos),
          raw: t.text,
          pos: t.pos,
        };
      case "ident":
        if (t.text === "true" || t.text === "false")
          return { kind: "bool", value: t.text === "true", pos: t.pos };
        if (t.text === "null") return { kind: "null", pos: t.pos };
        return this.#fail(t, "a JSON value");
      case "[": {
        const items: HclValue[] = [];
        if (this.#peek() === "]") {
          this.#take();
          return { kind: "list", items, pos: t.pos };
        }
        for (;;) {
          items.push(this.#nest(t, () => this.#jsonValue()));
          const sep = this.#take();
          if (sep.type === "]") return { kind: "list", items, pos: t.pos };
          if (sep.type !== ",") this.#fail(sep, '"," or "]" in the array');
        }
      }
      case "{":
        return { kind: "object", body: this.#nest(t, () => this.#jsonMembers(t.pos)), pos: t.pos };
      default:
        return this.#fail(t, "a JSON value");
    }
  }
}

/**
 * Parses an HCL1 document (Vault config, ACL policy). Throws {@link HclParseError} with the line,
 * column and what was expected; never any other error for any input string.
 */
export function parseHcl(source: string, filename = "<input>"): HclDocument {
  if (typeof source !== "string") throw new TypeError("parseHcl: source must be a string");
  return { filename, format: "hcl", body: new Parser(source, filename, false).document() };
}

/**
 * Parses Vault's JSON form of a config or policy (`{"storage": {"file": {"path": "…"}}}`) into the
 * same structure as {@link parseHcl}, with positions. Objects become `object` attributes;
 * {@link blocks} reads them as blocks.
 */
export function parseHclJson(source: string, filename = "<input>"): HclDocument {
  if (typeof source !== "string") throw new TypeError("parseHclJson: source must be a string");
  return { filename, format: "json", body: new Parser(source, filename, true).document() };
}

/**
 * Parses by content: a document whose first token is `{` is JSON (as Vault decides by the `.json`
 * extension; policies sent over HTTP have none), anything else HCL.
 */
export function parseHclOrJson(source: string, filename = "<input>"): HclDocument {
  if (typeof source !== "string") throw new TypeError("parseHclOrJson: source must be a string");
  const lead = source.replace(/^(?:\s|\uFEFF)+/, "");
  return lead.startsWith("{") ? parseHclJson(source, filename) : parseHcl(source, filename);
}

// ------------------------------------------------------------------------------------ helpers

/** One block, whichever way it was written: `{ labels, body }` plus where it starts. */
export interface HclBlockEntry {
  type: string;
  labels: string[];
  labelPositions: HclPosition[];
  body: HclBody;
  pos: HclPosition;
  line: number;
  column: number;
  filename: string;
}

function bodyOf(source: HclDocument | HclBody): HclBody {
  return "body" in source ? source.body : source;
}

function structureError(body: HclBody, pos: HclPosition, detail: string): HclParseError {
  return new HclParseError("structure", body.filename, pos, detail);
}

function labelHint(type: string, want: number): string {
  return `${type}${' "<label>"'.repeat(want)} { … }`;
}

/**
 * Every `type` block of `source` with exactly `labelCount` labels, in source order. Applies HCL1's
 * equivalences: `path "a" { … }`, `path { a { … } }`, `path = { a = { … } }`, `path = [{ a = … }]`
 * and JSON `"path": {"a": {…}}` all yield `{ labels: ["a"], body }`. A block with the wrong shape
 * (missing or extra labels, a plain value where a block belongs) throws a structure
 * {@link HclParseError} naming the expected form.
 */
export function blocks(source: HclDocument | HclBody, type: string, labelCount = 1): HclBlockEntry[] {
  const body = bodyOf(source);
  const out: HclBlockEntry[] = [];
  const add = (labels: string[], labelPositions: HclPosition[], inner: HclBody, pos: HclPosition): void => {
    if (labels.length > labelCount) {
      throw structureError(
        body,
        labelPositions[labelCount] ?? pos,
        `\`${type}\` takes ${labelCount} label${labelCount === 1 ? "" : "s"}, found ${labels.length}: write ${labelHint(type, labelCount)}`,
      );
    }
    if (labels.length === labelCount) {
      out.push({
        type,
        labels,
        labelPositions,
        body: inner,
        pos,
        line: pos.line,
        column: pos.column,
        filename: body.filename,
      });
      return;
    }
    if (inner.items.length === 0) {
      throw structureError(
        body,
        pos,
        `\`${type}\` needs ${labelCount} label(s): write ${labelHint(type, labelCount)}`,
      );
    }
    // Fewer labels than wanted: each child is the next label (HCL1 / JSON nesting).
    for (const child of inner.items) {
      if (child.kind === "block") {
        add(
          [...labels, child.type, ...child.labels],
          [...labelPositions, child.pos, ...child.labelPositions],
          child.body,
          pos,
        );
      } else {
        for (const obj of objectsOf(child.value)) {
          if (obj === undefined) {
            throw structureError(
              body,
              child.pos,
              `\`${type}\` needs ${labelCount} label(s): write ${labelHint(type, labelCount)} (found \`${child.key} = …\`)`,
            );
          }
          add([...labels, child.key], [...labelPositions, child.pos], obj, pos);
        }
      }
    }
  };
  for (const item of body.items) {
    if (item.kind === "block") {
      if (item.type === type) add(item.labels, item.labelPositions, item.body, item.pos);
      continue;
    }
    if (item.key !== type) continue;
    for (const obj of objectsOf(item.value)) {
      if (obj === undefined) {
        throw structureError(
          body,
          item.pos,
          `\`${type}\` must be a block: write ${labelHint(type, labelCount)}`,
        );
      }
      add([], [], obj, item.pos);
    }
  }
  return out;
}

/** An object value is one body, a list of objects is several; anything else is `undefined`. */
function objectsOf(value: HclValue): Array<HclBody | undefined> {
  if (value.kind === "object") return [value.body];
  if (value.kind === "list") return value.items.map((v) => (v.kind === "object" ? v.body : undefined));
  return [undefined];
}

/** The attributes named `key` in `source` (usually zero or one; HCL allows repeats). */
export function attributes(source: HclDocument | HclBody, key: string): HclAttribute[] {
  return bodyOf(source).items.filter((i): i is HclAttribute => i.kind === "attribute" && i.key === key);
}

/** The last `key = value` of `source`, or `undefined`. */
export function attribute(source: HclDocument | HclBody, key: string): HclAttribute | undefined {
  return attributes(source, key).at(-1);
}

/**
 * A plain JavaScript value, Vault-JSON style: attributes become properties, a block
 * `type "a" "b" { … }` becomes `{ type: { a: { b: { … } } } }` (blocks of one type merge by label),
 * a key written twice becomes an array of its values. Numbers are numbers, except integers beyond
 * 2^53, which become their exact decimal string (an HSM slot id must not lose digits).
 */
export function toPlain(node: HclDocument | HclBody | HclValue): unknown {
  if ("items" in node && !("kind" in node)) return bodyToPlain(node);
  if ("format" in node) return bodyToPlain(node.body);
  return valueToPlain(node as HclValue);
}

function valueToPlain(v: HclValue): unknown {
  switch (v.kind) {
    case "string":
    case "bool":
      return v.value;
    case "null":
      return null;
    case "number":
      if (Number.isInteger(v.value) && !Number.isSafeInteger(v.value)) return exactInteger(v.raw);
      return v.value;
    case "list":
      return v.items.map(valueToPlain);
    case "object":
      return bodyToPlain(v.body);
  }
}

function exactInteger(raw: string): string {
  const neg = raw.startsWith("-");
  const body = neg ? raw.slice(1) : raw;
  let n: bigint;
  if (/^0[xX]/.test(body)) n = BigInt(body);
  else if (/^0[0-7]+$/.test(body)) n = BigInt(`0o${body.slice(1)}`);
  else if (/^[0-9]+$/.test(body)) n = BigInt(body);
  else return String(Number(raw));
  return (neg ? -n : n).toString();
}

const REPEATED = Symbol("repeated");
type Repeated = unknown[] & { [REPEATED]: true };

function isRepeated(v: unknown): v is Repeated {
  return Array.isArray(v) && (v as Partial<Repeated>)[REPEATED] === true;
}

/** Own data properties only: a key like `__proto__` must not reach a prototype. */
function define(target: Record<string, unknown>, key: string, value: unknown): void {
  Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
}

function setPlain(target: Record<string, unknown>, key: string, value: unknown): void {
  if (!Object.hasOwn(target, key)) {
    define(target, key, value);
    return;
  }
  const prev = target[key];
  if (isRepeated(prev)) {
    prev.push(value);
    return;
  }
  const list = [prev, value] as Repeated;
  Object.defineProperty(list, REPEATED, { value: true, enumerable: false });
  define(target, key, list);
}

function bodyToPlain(body: HclBody): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const item of body.items) {
    if (item.kind === "attribute") {
      setPlain(out, item.key, valueToPlain(item.value));
      continue;
    }
    let target = out;
    const path = [item.type, ...item.labels];
    const leaf = path.pop() as string;
    for (const segment of path) {
      const existing = Object.hasOwn(target, segment) ? target[segment] : undefined;
      if (typeof existing === "object" && existing !== null && !Array.isArray(existing)) {
        target = existing as Record<string, unknown>;
      } else {
        const next: Record<string, unknown> = {};
        setPlain(target, segment, next);
        target = next;
      }
    }
    setPlain(target, leaf, bodyToPlain(item.body));
  }
  return out;
}

// ------------------------------------------------------------------------------------ printer

const BARE_KEY = /^[A-Za-z_][A-Za-z0-9_.-]*$/;

/** Quotes a string the way {@link parseHcl} reads it back. `${` is kept literally, as HCL1 does. */
export function quoteHcl(value: string): string {
  let out = '"';
  for (const ch of value) {
    const code = ch.codePointAt(0) as number;
    if (ch === '"') out += '\\"';
    else if (ch === "\\") out += "\\\\";
    else if (ch === "\n") out += "\\n";
    else if (ch === "\r") out += "\\r";
    else if (ch === "\t") out += "\\t";
    else if (code < 0x20 || code === 0x7f) out += `\\u${code.toString(16).padStart(4, "0")}`;
    else out += ch;
  }
  return `${out}"`;
}

function formatKey(key: string): string {
  return BARE_KEY.test(key) ? key : quoteHcl(key);
}

function formatValue(v: HclValue, indent: string): string {
  switch (v.kind) {
    case "string":
      return quoteHcl(v.value);
    case "number":
      return Number.isFinite(v.value) ? String(v.value) : v.raw;
    case "bool":
      return String(v.value);
    case "null":
      throw new TypeError("formatHcl: HCL has no null (it only comes from JSON documents)");
    case "list":
      return `[${v.items.map((i) => formatValue(i, indent)).join(", ")}]`;
    case "object":
      return v.body.items.length === 0 ? "{}" : `{\n${formatItems(v.body, `${indent}  `)}${indent}}`;
  }
}

function formatItems(body: HclBody, indent: string): string {
  let out = "";
  for (const item of body.items) {
    if (item.kind === "attribute") {
      out += `${indent}${formatKey(item.key)} = ${formatValue(item.value, indent)}\n`;
    } else {
      const head = [formatKey(item.type), ...item.labels.map(quoteHcl)].join(" ");
      out +=
        item.body.items.length === 0
          ? `${indent}${head} {}\n`
          : `${indent}${head} {\n${formatItems(item.body, `${indent}  `)}${indent}}\n`;
    }
  }
  return out;
}

/** Prints a document or body as HCL that {@link parseHcl} reads back to the same structure. */
export function formatHcl(source: HclDocument | HclBody): string {
  return formatItems(bodyOf(source), "");
}

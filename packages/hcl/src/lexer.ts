/** The tokenizer both front ends share: HCL1's tokens, or JSON's when `json` is set. */

import { HclParseError } from "./errors.js";
import type { HclPosition } from "./tree.js";

export type TokenType =
  | "{"
  | "}"
  | "["
  | "]"
  | "="
  | ":"
  | ","
  | "string"
  | "heredoc"
  | "number"
  | "ident"
  | "eof";

export interface Token {
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

export function describeToken(t: Token): string {
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

export class Lexer {
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

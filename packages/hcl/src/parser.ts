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

import { HclParseError } from "./errors.js";
import { quoteHcl } from "./format.js";
import { parseHclJson } from "./json.js";
import { describeToken } from "./lexer.js";
import { numberValue, TokenStream } from "./token-stream.js";
import type { HclBody, HclDocument, HclItem, HclPosition, HclValue } from "./tree.js";

/** HCL1's grammar: a body of `key = value` attributes and `type "label" { … }` blocks. */
class HclParser extends TokenStream {
  constructor(src: string, file: string) {
    super(src, file, false);
  }

  document(): HclBody {
    const start: HclPosition = { line: 1, column: 1, offset: 0 };
    const body = this.#hclBody(start, "eof");
    return body;
  }

  #hclBody(pos: HclPosition, until: "}" | "eof"): HclBody {
    const items: HclItem[] = [];
    while (this.peek() !== until) {
      items.push(this.#hclItem(until));
      // HCL1 lets items be separated by commas as well as line breaks.
      if (this.peek() === ",") this.take();
    }
    return { items, pos, filename: this.file };
  }

  #hclItem(until: "}" | "eof"): HclItem {
    const keyTok = this.tok;
    if (keyTok.type !== "ident" && keyTok.type !== "string") {
      this.fail(
        keyTok,
        until === "}" ? 'a key (identifier or "string") or "}"' : 'a key (identifier or "string")',
      );
    }
    this.take();
    if (this.peek() === "=") {
      this.take();
      return { kind: "attribute", key: keyTok.text, value: this.#hclValue(), pos: keyTok.pos };
    }
    const labels: string[] = [];
    const labelPositions: HclPosition[] = [];
    while (this.peek() === "string" || this.peek() === "ident") {
      const l = this.take();
      labels.push(l.text);
      labelPositions.push(l.pos);
    }
    if (this.peek() !== "{") {
      if (labels.length === 0) this.fail(this.tok, `"=" or "{" after \`${keyTok.text}\``);
      const hint =
        labels.length === 1
          ? ` (to set a value, write ${keyTok.text} = ${quoteHcl(labels[0] as string)})`
          : "";
      throw new HclParseError(
        "syntax",
        this.file,
        this.tok.pos,
        `expected "{" to open the \`${keyTok.text}\` block, found ${describeToken(this.tok)}${hint}`,
      );
    }
    const open = this.take();
    const body = this.nest(open, () => this.#hclBody(open.pos, "}"));
    this.take();
    return { kind: "block", type: keyTok.text, labels, labelPositions, body, pos: keyTok.pos };
  }

  #hclValue(): HclValue {
    const t = this.tok;
    switch (t.type) {
      case "string":
      case "heredoc":
        this.take();
        return { kind: "string", value: t.text, heredoc: t.type === "heredoc", pos: t.pos };
      case "number":
        this.take();
        return {
          kind: "number",
          value: numberValue(t.text, false, this.file, t.pos),
          raw: t.text,
          pos: t.pos,
        };
      case "ident":
        if (t.text === "true" || t.text === "false") {
          this.take();
          return { kind: "bool", value: t.text === "true", pos: t.pos };
        }
        throw new HclParseError(
          "syntax",
          this.file,
          t.pos,
          `expected a value (string, number, true/false, [list] or { object }), found identifier \`${t.text}\` — quote it: "${t.text}"`,
        );
      case "[": {
        this.take();
        const items: HclValue[] = [];
        while (this.peek() !== "]") {
          items.push(this.nest(t, () => this.#hclValue()));
          if (this.peek() === ",") this.take();
          else if (this.peek() !== "]") this.fail(this.tok, '"," or "]" in the list');
        }
        this.take();
        return { kind: "list", items, pos: t.pos };
      }
      case "{": {
        this.take();
        const body = this.nest(t, () => this.#hclBody(t.pos, "}"));
        this.take();
        return { kind: "object", body, pos: t.pos };
      }
      default:
        this.fail(t, "a value (string, number, true/false, [list] or { object })");
    }
  }
}

/**
 * Parses an HCL1 document (Vault config, ACL policy). Throws {@link HclParseError} with the line,
 * column and what was expected; never any other error for any input string.
 */
export function parseHcl(source: string, filename = "<input>"): HclDocument {
  if (typeof source !== "string") throw new TypeError("parseHcl: source must be a string");
  return { filename, format: "hcl", body: new HclParser(source, filename).document() };
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

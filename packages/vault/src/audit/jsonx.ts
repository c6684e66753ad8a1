/**
 * Vault's `format = "jsonx"` audit records: the JSON record rewritten as IBM JSONx XML, as
 * github.com/jefferai/jsonx's EncodeJSONBytes does for Vault's JSONx writer (audit/format_jsonx.go,
 * later writer_jsonx.go / entry_formatter.go). OpenBao 2.6 removed the format; Vault still has it.
 *
 * What that encoder does, and this reproduces:
 * - the record's top-level object is written without a wrapper element (and without the XML
 *   header or the `<json:object xmlns…>` root: one fragment per record);
 * - every object's members are sorted by name (Go's sort.Strings: UTF-8 byte order), so the entry
 *   structs' field order is lost;
 * - `<json:string name="…">`, `<json:number>` (the number's JSON text as written), `<json:boolean>`,
 *   `<json:null name="…" />`, `<json:array>` (members unnamed), `<json:object>`;
 * - names are XML-escaped (Go's xml.EscapeText); a member named "" gets no name attribute.
 *
 * One deliberate difference: jefferai/jsonx writes string values unescaped (a path holding `<` or
 * `&` made Vault's record malformed XML); here they are escaped as names are, so every record is
 * well-formed. Values without `&<>"'`, tab, CR, LF or characters XML forbids are written identically.
 */

import { compareUtf8 } from "./hash.js";

/** Go's xml.EscapeText (newlines escaped; characters XML cannot hold become U+FFFD). */
export function xmlEscapeText(s: string): string {
  let out = "";
  let last = 0;
  const n = s.length;
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    let rep: string | undefined;
    switch (c) {
      case 0x22:
        rep = "&#34;";
        break;
      case 0x27:
        rep = "&#39;";
        break;
      case 0x26:
        rep = "&amp;";
        break;
      case 0x3c:
        rep = "&lt;";
        break;
      case 0x3e:
        rep = "&gt;";
        break;
      case 0x09:
        rep = "&#x9;";
        break;
      case 0x0a:
        rep = "&#xA;";
        break;
      case 0x0d:
        rep = "&#xD;";
        break;
      default:
        if (c < 0x20 || c === 0xfffe || c === 0xffff) rep = "\ufffd";
        else if (c >= 0xd800 && c <= 0xdfff) {
          const d = i + 1 < n ? s.charCodeAt(i + 1) : 0;
          if (c <= 0xdbff && d >= 0xdc00 && d <= 0xdfff) {
            i++; // a valid pair (U+10000 and up: allowed in XML)
            continue;
          }
          rep = "\ufffd";
        }
    }
    if (rep !== undefined) {
      out += s.slice(last, i) + rep;
      last = i + 1;
    }
  }
  return last === 0 ? s : out + s.slice(last);
}

class JsonxError extends Error {
  override name = "JsonxError";
}

/** A recursive-descent reader of the record's JSON that writes the XML as it goes. */
class Converter {
  private i = 0;
  constructor(private readonly text: string) {}

  private ws(): void {
    const t = this.text;
    let i = this.i;
    for (;;) {
      const c = t.charCodeAt(i);
      if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) i++;
      else break;
    }
    this.i = i;
  }

  private fail(what: string): never {
    throw new JsonxError(`jsonx: ${what} at offset ${this.i} of the JSON record`);
  }

  private expect(c: number): void {
    if (this.text.charCodeAt(this.i) !== c) this.fail(`expected '${String.fromCharCode(c)}'`);
    this.i++;
  }

  private string(): string {
    const t = this.text;
    const start = this.i;
    this.expect(0x22);
    let escaped = false;
    let i = this.i;
    for (;;) {
      if (i >= t.length) this.fail("unterminated string");
      const c = t.charCodeAt(i);
      if (c === 0x22) break;
      if (c === 0x5c) {
        escaped = true;
        i += 2;
      } else i++;
    }
    this.i = i + 1;
    if (!escaped) return t.slice(start + 1, i);
    try {
      return JSON.parse(t.slice(start, i + 1)) as string;
    } catch {
      this.fail("invalid string");
    }
  }

  private number(): string {
    const t = this.text;
    const start = this.i;
    let i = start;
    for (;;) {
      const c = t.charCodeAt(i);
      // - + . 0-9 e E
      if ((c >= 0x30 && c <= 0x39) || c === 0x2d || c === 0x2b || c === 0x2e || c === 0x65 || c === 0x45) i++;
      else break;
    }
    const text = t.slice(start, i);
    if (!/^-?(0|[1-9]\d*)(\.\d+)?([eE][-+]?\d+)?$/.test(text)) this.fail("invalid number");
    this.i = i;
    return text;
  }

  private literal(word: string): void {
    if (!this.text.startsWith(word, this.i)) this.fail("invalid value");
    this.i += word.length;
  }

  /** The members of an object (the reader is past its '{'), each written as XML, sorted by name. */
  members(): string {
    const byName = new Map<string, string>();
    this.ws();
    if (this.text.charCodeAt(this.i) === 0x7d) {
      this.i++;
      return "";
    }
    for (;;) {
      this.ws();
      const name = this.string();
      this.ws();
      this.expect(0x3a);
      // A repeated name keeps its last value, as the Go map the encoder decodes into.
      byName.set(name, this.value(name === "" ? "" : ` name="${xmlEscapeText(name)}"`));
      this.ws();
      const c = this.text.charCodeAt(this.i++);
      if (c === 0x7d) break;
      if (c !== 0x2c) {
        this.i--;
        this.fail("expected ',' or '}'");
      }
    }
    let out = "";
    for (const name of [...byName.keys()].sort(compareUtf8)) out += byName.get(name);
    return out;
  }

  /** One value as its JSONx element; `attr` is its name attribute (empty in an array). */
  value(attr: string): string {
    this.ws();
    const c = this.text.charCodeAt(this.i);
    switch (c) {
      case 0x7b:
        this.i++;
        return `<json:object${attr}>${this.members()}</json:object>`;
      case 0x5b: {
        this.i++;
        let out = `<json:array${attr}>`;
        this.ws();
        if (this.text.charCodeAt(this.i) === 0x5d) {
          this.i++;
          return `${out}</json:array>`;
        }
        for (;;) {
          out += this.value("");
          this.ws();
          const d = this.text.charCodeAt(this.i++);
          if (d === 0x5d) break;
          if (d !== 0x2c) {
            this.i--;
            this.fail("expected ',' or ']'");
          }
        }
        return `${out}</json:array>`;
      }
      case 0x22:
        return `<json:string${attr}>${xmlEscapeText(this.string())}</json:string>`;
      case 0x74:
        this.literal("true");
        return `<json:boolean${attr}>true</json:boolean>`;
      case 0x66:
        this.literal("false");
        return `<json:boolean${attr}>false</json:boolean>`;
      case 0x6e:
        this.literal("null");
        return `<json:null${attr} />`;
      default:
        return `<json:number${attr}>${this.number()}</json:number>`;
    }
  }

  /** The top-level object's members (jsonx writes no element for the record itself). */
  record(): string {
    this.ws();
    if (this.text.charCodeAt(this.i) !== 0x7b) this.fail("a record must be a JSON object");
    this.i++;
    const out = this.members();
    this.ws();
    if (this.i !== this.text.length) this.fail("unexpected text after the record");
    return out;
  }
}

/** Vault's jsonx: the JSON record as IBM JSONx XML (github.com/jefferai/jsonx, as Vault's format_jsonx.go used it). */
export function toJsonx(jsonText: string): string {
  return new Converter(jsonText).record();
}

/** The JSON front end: Vault's JSON form of a config or policy, read into the same tree as HCL. */

import { numberValue, TokenStream } from "./token-stream.js";
import type { HclBody, HclDocument, HclItem, HclPosition, HclValue } from "./tree.js";

/** RFC 8259 JSON (no comments, no trailing commas), objects as attributes with `object` values. */
class JsonParser extends TokenStream {
  constructor(src: string, file: string) {
    super(src, file, true);
  }

  document(): HclBody {
    const open = this.expect("{", "a JSON object ({ … }) at the top level");
    const body = this.#jsonMembers(open.pos);
    this.expect("eof", "end of file after the top-level object");
    return body;
  }

  #jsonMembers(pos: HclPosition): HclBody {
    const items: HclItem[] = [];
    if (this.peek() === "}") {
      this.take();
      return { items, pos, filename: this.file };
    }
    for (;;) {
      const key = this.expect("string", 'a member name ("key")');
      this.expect(":", `":" after ${JSON.stringify(key.text)}`);
      items.push({ kind: "attribute", key: key.text, value: this.#jsonValue(), pos: key.pos });
      const sep = this.take();
      if (sep.type === "}") return { items, pos, filename: this.file };
      if (sep.type !== ",") this.fail(sep, '"," or "}" in the object');
    }
  }

  #jsonValue(): HclValue {
    const t = this.take();
    switch (t.type) {
      case "string":
        return { kind: "string", value: t.text, heredoc: false, pos: t.pos };
      case "number":
        return {
          kind: "number",
          value: numberValue(t.text, true, this.file, t.pos),
          raw: t.text,
          pos: t.pos,
        };
      case "ident":
        if (t.text === "true" || t.text === "false")
          return { kind: "bool", value: t.text === "true", pos: t.pos };
        if (t.text === "null") return { kind: "null", pos: t.pos };
        return this.fail(t, "a JSON value");
      case "[": {
        const items: HclValue[] = [];
        if (this.peek() === "]") {
          this.take();
          return { kind: "list", items, pos: t.pos };
        }
        for (;;) {
          items.push(this.nest(t, () => this.#jsonValue()));
          const sep = this.take();
          if (sep.type === "]") return { kind: "list", items, pos: t.pos };
          if (sep.type !== ",") this.fail(sep, '"," or "]" in the array');
        }
      }
      case "{":
        return { kind: "object", body: this.nest(t, () => this.#jsonMembers(t.pos)), pos: t.pos };
      default:
        return this.fail(t, "a JSON value");
    }
  }
}

/**
 * Parses Vault's JSON form of a config or policy (`{"storage": {"file": {"path": "…"}}}`) into the
 * same structure as {@link parseHcl}, with positions. Objects become `object` attributes;
 * {@link blocks} reads them as blocks.
 */
export function parseHclJson(source: string, filename = "<input>"): HclDocument {
  if (typeof source !== "string") throw new TypeError("parseHclJson: source must be a string");
  return { filename, format: "json", body: new JsonParser(source, filename).document() };
}

import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  base64DecodeBytes,
  base64EncodeInto,
  base64Length,
  JsonBytesWriter,
  JsonSyntaxError,
  jsonToValue,
  member,
  parseJson,
  wipeJson,
} from "./json.js";
import { hex, text, utf8 } from "./test-helpers.js";

function accepts(s: string): boolean {
  try {
    parseJson(utf8(s));
    return true;
  } catch (e) {
    expect(e).toBeInstanceOf(JsonSyntaxError);
    return false;
  }
}

function nativeAccepts(s: string): boolean {
  try {
    JSON.parse(s);
    return true;
  } catch {
    return false;
  }
}

describe("byte JSON reader", () => {
  it("reads any JSON value the same as JSON.parse", () => {
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 6 }), (v) => {
        const s = JSON.stringify(v);
        expect(jsonToValue(parseJson(utf8(s)))).toEqual(JSON.parse(s));
      }),
    );
  });

  it("accepts exactly what JSON.parse accepts", () => {
    const alphabet = fc.constantFrom(
      ...'{}[]":,0123456789-+.eEtrufalsn \\/ubx\n\t\u0001é'.split(""),
      '"a"',
      "null",
      "true",
      '{"a":1}',
      "\\u00e9",
      "\\ud83d\\ude00",
    );
    fc.assert(
      fc.property(fc.string({ unit: alphabet, maxLength: 30 }), (s) => {
        expect(accepts(s)).toBe(nativeAccepts(s));
      }),
      { numRuns: 2000 },
    );
  });

  it("accepts mutations of valid JSON exactly when JSON.parse does", () => {
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 4 }), fc.nat(), fc.string({ maxLength: 2 }), (v, at, ins) => {
        const s = JSON.stringify(v);
        const i = at % (s.length + 1);
        const m = s.slice(0, i) + ins + s.slice(i + 1);
        expect(accepts(m)).toBe(nativeAccepts(m));
      }),
    );
  });

  it("decodes escapes to UTF-8, surrogate pairs to 4 bytes, lone surrogates to U+FFFD (as Go)", () => {
    const node = parseJson(utf8('["\\u00e9\\n\\"\\/\\\\", "\\ud83d\\ude00", "\\ud800x"]'));
    if (node.kind !== "array") throw new Error("expected an array");
    const [a, b, c] = node.items.map((n) => (n.kind === "string" ? n.bytes : new Uint8Array()));
    expect(text(a as Uint8Array)).toBe('é\n"/\\');
    expect(hex(b as Uint8Array)).toBe("f09f9880");
    expect(hex(c as Uint8Array)).toBe("efbfbd78");
  });

  it("refuses nesting deeper than 64 levels", () => {
    expect(() => parseJson(utf8("[".repeat(100) + "]".repeat(100)))).toThrow(JsonSyntaxError);
    expect(jsonToValue(parseJson(utf8("[".repeat(30) + "]".repeat(30))))).toBeInstanceOf(Array);
  });

  it("wipeJson zeroes every string buffer", () => {
    const node = parseJson(utf8('{"k":"secret","a":["also"]}'));
    const strings: Uint8Array[] = [];
    const collect = (n: typeof node): void => {
      if (n.kind === "string") strings.push(n.bytes);
      if (n.kind === "array") for (const item of n.items) collect(item);
      if (n.kind === "object") for (const [, v] of n.members) collect(v);
    };
    collect(node);
    wipeJson(node);
    expect(strings.map((s) => s.every((b) => b === 0))).toEqual([true, true]);
  });

  it("binds members like Go: exact name first, else case-insensitive, last duplicate wins", () => {
    const node = parseJson(utf8('{"term":1,"Term":2,"TERM":3,"x":1,"x":2}'));
    expect(jsonToValue(member(node, "Term") as never)).toBe(2);
    expect(jsonToValue(member(node, "tErM") as never)).toBe(3);
    expect(jsonToValue(member(node, "x") as never)).toBe(2);
    expect(member(node, "missing")).toBeUndefined();
    expect(member(parseJson(utf8("[]")), "x")).toBeUndefined();
  });
});

describe("base64 (Go StdEncoding)", () => {
  it("encodes and decodes like Buffer's base64", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 100 }), (bytes) => {
        const out = new Uint8Array(base64Length(bytes.length));
        expect(base64EncodeInto(bytes, out, 0)).toBe(out.length);
        expect(text(out)).toBe(Buffer.from(bytes).toString("base64"));
        expect(hex(base64DecodeBytes(out))).toBe(hex(bytes));
      }),
    );
  });

  it("skips CR/LF and rejects bad alphabet, length or padding", () => {
    expect(text(base64DecodeBytes(utf8("aGVs\r\nbG8=")))).toBe("hello");
    for (const bad of ["aGVsbG8", "aGV$bG8=", "aG=sbG8=", "a===", "aGVsbG8=AAAA", "-_-_"]) {
      expect(() => base64DecodeBytes(utf8(bad)), bad).toThrow(JsonSyntaxError);
    }
  });
});

describe("JsonBytesWriter", () => {
  it("writes ASCII fragments and base64 strings in one buffer", () => {
    const out = new JsonBytesWriter().raw('{"k":').base64String(utf8("hi")).raw("}").finish();
    expect(text(out)).toBe('{"k":"aGk="}');
  });
});

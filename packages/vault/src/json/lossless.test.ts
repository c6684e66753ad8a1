import { CodedError } from "@bulwark/errors";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { VaultError } from "../errors.js";
import {
  goFloat,
  hasJsonNumber,
  JsonNumber,
  JsonRefusedError,
  parseJson,
  parseLossless,
  scanNumbers,
  stringify,
} from "./lossless.js";

/** Any JSON number text (exponents kept small enough to stay within float64). */
const numberText = fc
  .tuple(
    fc.boolean(),
    fc.oneof(fc.constant("0"), fc.stringMatching(/^[1-9][0-9]{0,40}$/)),
    fc.option(fc.stringMatching(/^[0-9]{1,20}$/), { nil: undefined }),
    fc.option(
      fc.tuple(
        fc.constantFrom("e", "E"),
        fc.constantFrom("", "+", "-"),
        fc.integer({ min: 0, max: 250 }).map(String),
      ),
      { nil: undefined },
    ),
  )
  .map(
    ([neg, int, frac, exp]) =>
      `${neg ? "-" : ""}${int}${frac === undefined ? "" : `.${frac}`}${exp === undefined ? "" : exp.join("")}`,
  );

/** Object keys that JavaScript keeps in insertion order (no array-index-like keys) and no __proto__. */
const key = fc.string().filter((k) => !/^(0|[1-9]\d*)$/.test(k) && k !== "__proto__");

const ws = fc.constantFrom("", " ", "\n", "\t ", "\r\n  ");

/** [JSON text with random whitespace, the same JSON written compactly]. */
const { doc } = fc.letrec<{ doc: [string, string] }>((tie) => ({
  doc: fc.oneof(
    { depthSize: "small" },
    numberText.map((t): [string, string] => [t, t]),
    fc.string().map((s): [string, string] => [JSON.stringify(s), JSON.stringify(s)]),
    fc.constantFrom<[string, string]>(["true", "true"], ["false", "false"], ["null", "null"]),
    fc
      .array(fc.tuple(ws, tie("doc"), ws), { maxLength: 5 })
      .map((items): [string, string] => [
        `[${items.map(([a, [t], b]) => a + t + b).join(",")}]`,
        `[${items.map(([, [, c]]) => c).join(",")}]`,
      ]),
    fc
      .uniqueArray(fc.tuple(key, ws, tie("doc")), { maxLength: 5, selector: ([k]) => k })
      .map((entries): [string, string] => [
        `{${entries.map(([k, w, [t]]) => `${w}${JSON.stringify(k)}${w}:${w}${t}`).join(",")}}`,
        `{${entries.map(([k, , [, c]]) => `${JSON.stringify(k)}:${c}`).join(",")}}`,
      ]),
  ),
}));

describe("lossless JSON", () => {
  it("round-trips any JSON text to its compact form with every number's text unchanged", () => {
    fc.assert(
      fc.property(doc, ws, ([text, compact], pad) => {
        expect(stringify(parseLossless(pad + text + pad))).toBe(compact);
        expect(stringify(parseJson(pad + text + pad))).toBe(compact);
      }),
      { numRuns: 2000 },
    );
  });

  it("gives the values JSON.parse gives, numbers aside, and fails where it fails", () => {
    fc.assert(
      fc.property(fc.oneof(fc.json(), fc.string()), (text) => {
        let expected: unknown;
        try {
          expected = JSON.parse(text);
        } catch {
          expect(() => parseLossless(text)).toThrow(SyntaxError);
          return;
        }
        // A "__proto__" key is refused on purpose (fc.json() generates some).
        let proto = false;
        JSON.parse(text, (k, v) => {
          if (k === "__proto__") proto = true;
          return v;
        });
        if (proto) {
          expect(() => parseLossless(text)).toThrow(JsonRefusedError);
          return;
        }
        const got = parseLossless(text);
        expect(JSON.parse(JSON.stringify(got))).toEqual(JSON.parse(JSON.stringify(expected)));
      }),
      { numRuns: 5000 },
    );
  });

  it("keeps as JsonNumber exactly the numbers JSON.stringify would not write back", () => {
    const v = parseLossless(
      '{"a":9007199254740993,"b":9223372036854775807,"c":-0,"d":0.1,"e":1E+2,"f":123456789012345678901234567890,"g":42,"h":-1.5,"i":1e-400}',
    ) as Record<string, unknown>;
    expect(v.a).toEqual(new JsonNumber("9007199254740993"));
    expect(v.b).toEqual(new JsonNumber("9223372036854775807"));
    expect(v.c).toEqual(new JsonNumber("-0"));
    expect(v.d).toBe(0.1);
    expect(v.e).toEqual(new JsonNumber("1E+2"));
    expect(v.f).toEqual(new JsonNumber("123456789012345678901234567890"));
    expect(v.g).toBe(42);
    expect(v.h).toBe(-1.5);
    expect(v.i).toEqual(new JsonNumber("1e-400"));
    expect(String(v.e)).toBe("1E+2");
    // A value that reaches the native serializer by mistake degrades to the float64.
    expect(JSON.stringify(v.a)).toBe("9007199254740992");
  });

  it("refuses numbers beyond float64 (as Vault does), __proto__ keys, and never quotes the input", () => {
    for (const t of ['{"x":1e400}', '{"x":[-1E309]}', `{"x":1${"0".repeat(400)}}`]) {
      expect(() => parseJson(t)).toThrow(JsonRefusedError);
      expect(() => parseLossless(t)).toThrow(JsonRefusedError);
    }
    expect(() => parseLossless('{"__proto__":{"x":1}}')).toThrow('the key "__proto__" is not allowed');
    expect(() => parseLossless('{"\\u005f_proto__":{"x":-0}}')).toThrow(JsonRefusedError);
    expect(() => parseJson('{"\\u005f_proto__":{"x":1}}')).toThrow(JsonRefusedError);
    for (const bad of [
      '{"secret-value":',
      '{"secret-value" 1}',
      "[1,]",
      "01",
      '"a\u0001"',
      "1 2",
      "-",
      "1.",
      "1e",
    ]) {
      let msg = "";
      try {
        parseLossless(bad);
      } catch (e) {
        msg = (e as Error).message;
      }
      expect(msg, bad).toMatch(/at offset \d+$/);
      expect(msg).not.toContain("secret-value");
    }
  });

  it("refuses with a VaultError (domain vault, code invalid_request: Vault's 400), message kept", () => {
    let err: unknown;
    try {
      parseJson('{"x":1e400}');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(JsonRefusedError);
    expect(err).toBeInstanceOf(VaultError);
    expect(err).toBeInstanceOf(CodedError);
    const e = err as JsonRefusedError;
    expect({ name: e.name, domain: e.domain, code: e.code }).toEqual({
      name: "JsonRefusedError",
      domain: "vault",
      code: "invalid_request",
    });
    expect(JsonRefusedError.kind).toBe("@bulwark/vault:JsonRefusedError");
    expect(new JsonRefusedError("the key is refused").message).toBe("the key is refused");
  });

  it("scans number tokens outside strings only", () => {
    expect(scanNumbers('{"a":"9007199254740993","b":"1E+2 \\" -0"}')).toBe("plain");
    expect(scanNumbers('{"a":1,"b":[0.5,-3,true]}')).toBe("plain");
    expect(scanNumbers('{"a\\\\":1E+2}')).toBe("lossless");
    expect(scanNumbers('{"a":-0}')).toBe("lossless");
    expect(() => scanNumbers('{"a":"x","b":1e400}')).toThrow(JsonRefusedError);
  });

  it("indents like JSON.stringify(v, null, 2)", () => {
    fc.assert(
      fc.property(fc.jsonValue(), (v) => {
        const withNumber = { v, n: new JsonNumber("1E+2"), empty: {}, list: [] };
        expect(stringify(withNumber, 2)).toBe(
          // A raw newline then two spaces: only the top-level key (strings escape their newlines).
          JSON.stringify({ v, n: 0, empty: {}, list: [] }, null, 2).replace('\n  "n": 0,', '\n  "n": 1E+2,'),
        );
      }),
    );
    expect(stringify({ a: undefined, b: [undefined], c: new JsonNumber("-0") })).toBe('{"b":[null],"c":-0}');
    expect(hasJsonNumber({ a: [{ b: new JsonNumber("1.0") }] })).toBe(true);
    expect(hasJsonNumber({ a: [{ b: 1 }], d: new Date(0) })).toBe(false);
  });

  it("gives Go's float64 text for KV v2 (OpenBao keeps a version's data as float64)", () => {
    const v = parseLossless(
      '{"a":9007199254740993,"b":9223372036854775807,"c":-0,"d":-0.0,"e":1E+2,"f":123456789012345678901234567890,"g":1e-400,"h":[1.50,{"x":0.0000001}],"i":1e21}',
    );
    expect(stringify(goFloat(v))).toBe(
      '{"a":9007199254740992,"b":9223372036854776000,"c":-0,"d":-0,"e":100,"f":1.2345678901234568e+29,"g":0,"h":[1.5,{"x":1e-7}],"i":1e+21}',
    );
  });
});

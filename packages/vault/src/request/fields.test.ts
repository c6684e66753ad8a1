import { formatGoDuration as kernelFormat, tryParseDuration } from "@bulwark/settings";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { BadRequestError } from "../errors.js";
import { JsonNumber } from "../json/lossless.js";
import { bodyObject, formatGoDuration, parseDuration, parseFields } from "./fields.js";

describe("durations", () => {
  it.each([
    ["0", 0],
    ["3600", 3600],
    ["1h", 3600],
    ["1h30m", 5400],
    ["1.5h", 5400],
    ["90s", 90],
    ["500ms", 0.5],
    ["2d", 172800],
    ["768h", 2764800],
  ])("parses %s", (text, seconds) => {
    expect(parseDuration(text)).toBe(seconds);
  });

  it.each(["", "h", "1x", "-1h", "1h x", "one hour"].map((s) => [s]))("refuses %j", (text) => {
    expect(parseDuration(text)).toBeUndefined();
  });

  it("reads the settings kernel's grammar (Vault's ParseDurationSecond): whole days alone, Go's + and .5", () => {
    expect(parseDuration("+5s")).toBe(5);
    expect(parseDuration(".5s")).toBe(0.5);
    expect(parseDuration("7d")).toBe(7 * 86400);
    for (const text of ["1.5d", "1d12h", "5 s", "1e3s"]) expect(parseDuration(text), text).toBeUndefined();
    for (const text of ["1h30m", "90", "2h45m30.5s", "+5s", "1d", "foo"])
      expect(parseDuration(text), text).toBe(
        tryParseDuration(text) === undefined ? undefined : (tryParseDuration(text) as number) / 1000,
      );
  });

  it("formats with the kernel's formatGoDuration (Go's Duration.String)", () => {
    for (const ms of [0, 1, 250, 1500, 90_000, 86_400_000, 123_456_789])
      expect(formatGoDuration(ms)).toBe(kernelFormat(ms));
  });

  it("formats like Go's Duration.String and round-trips whole seconds", () => {
    expect(formatGoDuration(0)).toBe("0s");
    expect(formatGoDuration(90_000)).toBe("1m30s");
    expect(formatGoDuration(24 * 3600_000)).toBe("24h0m0s");
    expect(formatGoDuration(250)).toBe("250ms");
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 10 ** 9 }), (s) => {
        expect(parseDuration(formatGoDuration(s * 1000))).toBe(s);
      }),
    );
  });
});

describe("parseFields", () => {
  const spec = {
    n: "int",
    b: "bool",
    s: "string",
    l: "strings",
    d: "duration",
    o: "object",
    m: "stringMap",
    v: "intList",
  } as const;

  it("coerces Vault's accepted forms", () => {
    expect(parseFields({ n: "5", b: "true", l: "a, b", d: "1m", v: "1,2", m: { a: "x" } }, spec)).toEqual({
      n: 5,
      b: true,
      l: ["a", "b"],
      d: 60,
      v: [1, 2],
      m: { a: "x" },
    });
  });

  it.each([
    [{ n: "five" }],
    [{ n: 1.5 }],
    [{ b: "maybe" }],
    [{ s: 5 }],
    [{ l: [1] }],
    [{ d: "soon" }],
    [{ o: [] }],
    [{ m: { a: 1 } }],
    [{ v: ["x"] }],
    [{ unknown: 1 }],
  ])("refuses %j with a 400", (body) => {
    expect(() => parseFields(body, spec)).toThrow(BadRequestError);
  });

  it("reads booleans with Go's words exactly (the settings kernel's): no other casing", () => {
    for (const [text, b] of [
      ["T", true],
      ["TRUE", true],
      ["True", true],
      [" 1 ", true],
      ["F", false],
      ["FALSE", false],
      ["False", false],
      ["0", false],
    ] as const)
      expect(parseFields({ b: text }, spec).b, text).toBe(b);
    for (const text of ["tRuE", "tRUE", "FaLsE", "yes", "on", ""])
      expect(() => parseFields({ b: text }, spec), text).toThrow(BadRequestError);
    // A JSON number is not a boolean field's value (as before).
    expect(() => parseFields({ b: 1 }, spec)).toThrow(BadRequestError);
  });

  it("refuses bodies that are not objects and reports missing required fields", () => {
    expect(() => parseFields([1], spec)).toThrow(/JSON object/);
    expect(() => parseFields("x", spec)).toThrow(/JSON object/);
    expect(() => parseFields({}, spec, { required: ["s"] })).toThrow(/missing required field "s"/);
    expect(parseFields(undefined, spec)).toEqual({});
    expect(parseFields({ s: null }, spec)).toEqual({});
    expect(parseFields({ echo: "x" }, spec, { allow: ["echo"] })).toEqual({});
  });

  it("never throws anything but BadRequestError on arbitrary JSON", () => {
    fc.assert(
      fc.property(fc.jsonValue(), (v) => {
        try {
          parseFields(v, spec);
        } catch (e) {
          expect(e).toBeInstanceOf(BadRequestError);
        }
      }),
      { numRuns: 300 },
    );
  });
});

describe("fields parsed losslessly (secrets engines' bodies)", () => {
  const n = (t: string) => new JsonNumber(t);

  it("reads JsonNumbers as the float64 for the server's own fields, integers strictly", () => {
    expect(parseFields({ cas: n("-0"), ttl: n("1e2") }, { cas: "int", ttl: "duration" })).toEqual({
      cas: -0,
      ttl: 100,
    });
    for (const bad of ["1.0", "1E0", "9007199254740993", "1e-400"])
      expect(() => parseFields({ cas: n(bad) }, { cas: "int" }), bad).toThrow(
        'field "cas" must be an integer, got number',
      );
    expect(() => parseFields({ v: [1, n("1E0")] }, { v: "intList" })).toThrow(
      'field "v[1]" must be an integer',
    );
    expect(() => parseFields({ b: n("1E0") }, { b: "bool" })).toThrow(
      'field "b" must be a boolean, got number',
    );
    expect(() => parseFields({ s: n("1E0") }, { s: "string" })).toThrow(
      'field "s" must be a string, got number',
    );
    expect(() => parseFields({ m: { k: n("1E0") } }, { m: "stringMap" })).toThrow(
      'field "m.k" must be a string, got number',
    );
    expect(() => parseFields({ o: n("1E0") }, { o: "object" })).toThrow(
      'field "o" must be an object, got number',
    );
  });

  it("keeps JsonNumbers inside values the server stores", () => {
    const data = { id: n("9007199254740993") };
    expect(parseFields({ data }, { data: "object" }).data).toBe(data);
    expect(parseFields({ x: n("1E+2") }, { x: "any" }).x).toEqual(n("1E+2"));
    expect(() => bodyObject(n("1E+2"))).toThrow("the request body must be a JSON object");
  });
});

import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { FALSE_WORDS, parseBool, parseOptionalBool, TRUE_WORDS, tryParseBool } from "./boolean.js";
import { SettingsError } from "./settings-error.js";

function thrown(fn: () => unknown): SettingsError {
  try {
    fn();
  } catch (err) {
    if (err instanceof SettingsError) return err;
    throw err;
  }
  throw new Error("expected a SettingsError");
}

describe("booleans: Go's strconv.ParseBool words", () => {
  it("are exactly Go's twelve words", () => {
    expect([...TRUE_WORDS].sort()).toEqual(["1", "T", "TRUE", "True", "t", "true"]);
    expect([...FALSE_WORDS].sort()).toEqual(["0", "F", "FALSE", "False", "f", "false"]);
    for (const w of TRUE_WORDS) expect(parseBool("b", w)).toBe(true);
    for (const w of FALSE_WORDS) expect(parseBool("b", w)).toBe(false);
  });

  it("takes JSON/HCL booleans, the numbers 0 and 1, and ignores surrounding whitespace", () => {
    expect(parseBool("b", true)).toBe(true);
    expect(parseBool("b", false)).toBe(false);
    expect(parseBool("b", 1)).toBe(true);
    expect(parseBool("b", 0)).toBe(false);
    expect(parseBool("b", " true\n")).toBe(true);
    expect(parseBool("b", "\tF ")).toBe(false);
  });

  it("refuses everything else, naming the field and listing the words", () => {
    for (const v of [
      "yes",
      "no",
      "on",
      "off",
      "y",
      "n",
      "",
      " ",
      "tRue",
      "FaLsE",
      "2",
      "1.0",
      2,
      -1,
      0.5,
      Number.NaN,
      null,
      undefined,
      [],
      {},
      "true false",
    ]) {
      expect(tryParseBool(v)).toBeUndefined();
      const e = thrown(() => parseBool("tls_skip_verify", v));
      expect(e.field).toBe("tls_skip_verify");
      expect(e.code).toBe("invalid_boolean");
      expect(e.message).toMatch(
        /^invalid setting `tls_skip_verify`: .* is not a boolean: expected true or false/,
      );
      expect(e.detail).toContain("1, t, T, TRUE, true, True / 0, f, F, FALSE, false, False");
    }
  });

  it("accepts a string exactly when its trimmed text is one of the words (property)", () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string(),
          fc.constantFrom(...TRUE_WORDS, ...FALSE_WORDS).map((w) => ` ${w} `),
        ),
        (s) => {
          const word = s.trim();
          const want = TRUE_WORDS.includes(word) ? true : FALSE_WORDS.includes(word) ? false : undefined;
          expect(tryParseBool(s)).toBe(want);
        },
      ),
    );
  });

  it("the optional form reads undefined and null as not set, and nothing else", () => {
    expect(parseOptionalBool("b", undefined)).toBeUndefined();
    expect(parseOptionalBool("b", null)).toBeUndefined();
    expect(parseOptionalBool("b", "t")).toBe(true);
    expect(() => parseOptionalBool("b", "")).toThrow(SettingsError);
  });

  it("does not echo a long value whole", () => {
    const e = thrown(() => parseBool("b", "x".repeat(500)));
    expect(e.message.length).toBeLessThan(250);
  });
});

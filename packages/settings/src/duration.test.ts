import { CodedError } from "@bulwark/errors";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  formatGoDuration,
  formatGoDurationNs,
  MAX_DURATION_NS,
  parseDuration,
  parseGoDuration,
  parseOptionalDuration,
  tryParseDuration,
  tryParseDurationNs,
} from "./duration.js";
// Produced by a Go 1.26 program over these inputs: `go` is time.ParseDuration's answer, `vault`
// parseutil.ParseDurationSecond's (go-secure-stdlib, string branch), in nanoseconds, null for an
// error; `format` is "<ns>=<time.Duration(ns).String()>".
import vectors from "./go-duration-vectors.json" with { type: "json" };
import { SettingsError } from "./settings-error.js";

interface Row {
  in: string;
  go: string | null;
  vault: string | null;
}
const rows = vectors.parse as Row[];

describe("parseGoDuration is Go's time.ParseDuration", () => {
  it.each(rows.map((r) => [r.in, r.go]))("%j → %s", (input, ns) => {
    const got = parseGoDuration(input);
    expect(got === undefined ? null : got.toString()).toBe(ns);
  });
});

describe("the duration setting grammar is Vault's ParseDurationSecond", () => {
  // The documented differences: no minus sign, decimal seconds kept, whitespace around ignored,
  // and an empty value is not a duration (Vault: zero).
  function expected(r: Row): string | null {
    const t = r.in.trim();
    if (t === "" || t.startsWith("-")) return null;
    if (/^\+?\d+\.\d+$/.test(t)) return parseGoDuration(`${t}s`)?.toString() ?? null;
    const same = rows.find((x) => x.in === t);
    return same === undefined ? null : same.vault;
  }
  it.each(rows.map((r) => [r.in, expected(r)]))("%j → %s", (input, ns) => {
    const got = tryParseDurationNs(input);
    expect(got === undefined ? null : got.toString()).toBe(ns);
  });

  it("reads the cases the issue names", () => {
    expect(tryParseDuration("1d")).toBe(86_400_000);
    expect(tryParseDuration(".5s")).toBe(500);
    expect(tryParseDuration("90")).toBe(90_000);
    expect(tryParseDuration(90)).toBe(90_000);
    expect(tryParseDuration(0.5)).toBe(500);
    expect(tryParseDuration("1.5")).toBe(1500);
    expect(tryParseDuration("1ns")).toBe(0.000001);
    expect(tryParseDuration("1.5d")).toBeUndefined();
    expect(tryParseDuration("1d12h")).toBeUndefined();
  });

  it("refuses what is not a duration with the field and the grammar", () => {
    for (const v of [
      "",
      "yes",
      "1x",
      "1 s",
      "-5s",
      "-1",
      -1,
      Number.NaN,
      Number.POSITIVE_INFINITY,
      null,
      true,
      {},
      [],
    ]) {
      expect(tryParseDuration(v)).toBeUndefined();
      const e = (() => {
        try {
          parseDuration("session_ttl", v);
        } catch (err) {
          return err;
        }
        return undefined;
      })();
      expect(e).toBeInstanceOf(SettingsError);
      expect((e as SettingsError).field).toBe("session_ttl");
      expect((e as SettingsError).code).toBe("invalid_duration");
      expect((e as SettingsError).domain).toBe("settings");
      expect((e as SettingsError).message).toMatch(/^invalid setting `session_ttl`: /);
    }
    expect(() => parseDuration("d", "1x")).toThrow(
      /"1x" is not a duration: use Go syntax such as "15s".*"7d".*seconds/,
    );
    expect(() => parseDuration("d", "-5s")).toThrow(/negative/);
    expect(() => parseDuration("d", "2562048h")).toThrow(/292 years/);
    expect(() => parseDuration("d", "106752d")).toThrow(/292 years/);
    expect(() => parseDuration("d", 9.3e9)).toThrow(/292 years/);
  });

  it("treats undefined and null as not set only in the optional form", () => {
    expect(parseOptionalDuration("d", undefined)).toBeUndefined();
    expect(parseOptionalDuration("d", null)).toBeUndefined();
    expect(parseOptionalDuration("d", "2m")).toBe(120_000);
    expect(() => parseDuration("d", undefined)).toThrow(SettingsError);
  });

  it("sums any sequence of unit parts (property)", () => {
    const unit = fc.constantFrom<[string, number]>(["h", 3_600_000], ["m", 60_000], ["s", 1000], ["ms", 1]);
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.nat(1000), unit), { minLength: 1, maxLength: 6 }), (parts) => {
        const text = parts.map(([n, [u]]) => `${n}${u}`).join("");
        expect(tryParseDuration(text)).toBe(parts.reduce((t, [n, [, f]]) => t + n * f, 0));
      }),
    );
  });

  it("whole numbers, their strings and <n>d agree (property)", () => {
    fc.assert(
      fc.property(fc.nat(106_751), (n) => {
        expect(tryParseDuration(n)).toBe(n * 1000);
        expect(tryParseDuration(String(n))).toBe(n * 1000);
        expect(tryParseDuration(`${n}d`)).toBe(n * 86_400_000);
      }),
    );
  });

  it("never throws from the try form, and answers a non-negative number or undefined (property)", () => {
    fc.assert(
      fc.property(
        fc.oneof(fc.string(), fc.stringMatching(/^[-+.0-9a-zµμ ]{0,12}$/), fc.double(), fc.anything()),
        (v) => {
          const r = tryParseDuration(v);
          expect(r === undefined || (typeof r === "number" && r >= 0)).toBe(true);
        },
      ),
    );
  });
});

describe("formatGoDuration is Go's Duration.String", () => {
  it.each(vectors.format.map((f) => f.split("=") as [string, string]))("%s ns → %s", (ns, text) => {
    expect(formatGoDurationNs(BigInt(ns))).toBe(text);
  });

  it("formats milliseconds", () => {
    expect(formatGoDuration(0)).toBe("0s");
    expect(formatGoDuration(250)).toBe("250ms");
    expect(formatGoDuration(1.5)).toBe("1.5ms");
    expect(formatGoDuration(90_000)).toBe("1m30s");
    expect(formatGoDuration(24 * 3_600_000)).toBe("24h0m0s");
    expect(formatGoDuration(3_723_500)).toBe("1h2m3.5s");
    expect(() => formatGoDuration(Number.NaN)).toThrow(CodedError);
  });

  it("a non-finite number is the caller's bug: a CodedError of domain settings, not a SettingsError", () => {
    for (const ms of [Number.NaN, Number.POSITIVE_INFINITY]) {
      let err: unknown;
      try {
        formatGoDuration(ms);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(CodedError);
      expect(err).not.toBeInstanceOf(SettingsError);
      expect(err).toMatchObject({
        domain: "settings",
        code: "invalid_duration",
        message: `formatGoDuration: ${ms} is not a finite number of milliseconds`,
      });
    }
  });

  it("parse ∘ format is the identity on nanoseconds (property)", () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: MAX_DURATION_NS }), (ns) => {
        expect(parseGoDuration(formatGoDurationNs(ns))).toBe(ns);
        expect(tryParseDurationNs(formatGoDurationNs(ns))).toBe(ns);
      }),
    );
  });

  it("format ∘ parse of whole milliseconds round-trips through the setting grammar (property)", () => {
    fc.assert(
      fc.property(fc.nat({ max: 10 * 365 * 86_400_000 }), (ms) => {
        expect(tryParseDuration(formatGoDuration(ms))).toBe(ms);
      }),
    );
  });
});

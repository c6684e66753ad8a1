import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { formatDuration, parseDurationMs } from "./duration.js";

describe("parseDurationMs", () => {
  it.each([
    ["15s", 15_000],
    ["500ms", 500],
    ["1m30s", 90_000],
    ["1h2m3.5s", 3_723_500],
    ["1.5s", 1500],
    [".5s", 500],
    ["250000us", 250],
    ["250000µs", 250],
    ["1000000ns", 1],
    ["15", 15_000],
    ["0", 0],
    ["0s", 0],
    [" 10s ", 10_000],
    [10, 10_000],
    [0.5, 500],
  ] as const)("%j → %d ms", (input, ms) => {
    expect(parseDurationMs(input)).toBe(ms);
  });

  it.each([
    ["", "empty"],
    ["-5s", "negative"],
    ["10x", "unknown unit"],
    ["s", "no number"],
    ["1s2", "trailing number"],
    ["1 s", "space inside"],
    [-1, "negative number"],
    [Number.NaN, "NaN"],
    [null, "null"],
    [true, "boolean"],
    [{}, "object"],
  ] as const)("rejects %j (%s)", (input, _why) => {
    expect(parseDurationMs(input)).toBeUndefined();
  });

  it("formatDuration output parses back to the same whole milliseconds", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 10 * 86_400_000 }), (ms) => {
        expect(parseDurationMs(formatDuration(ms))).toBe(ms);
      }),
    );
  });

  it("sums any sequence of unit parts", () => {
    const unit = fc.constantFrom(["h", 3_600_000], ["m", 60_000], ["s", 1000], ["ms", 1]);
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.integer({ min: 0, max: 1000 }), unit), { minLength: 1, maxLength: 6 }),
        (parts) => {
          const text = parts.map(([n, [u]]) => `${n}${u}`).join("");
          const want = parts.reduce((t, [n, [, f]]) => t + n * f, 0);
          expect(parseDurationMs(text)).toBe(want);
        },
      ),
    );
  });

  it("never throws on arbitrary input", () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.double(), fc.anything()), (v) => {
        const r = parseDurationMs(v);
        expect(r === undefined || (typeof r === "number" && r >= 0)).toBe(true);
      }),
    );
  });
});

import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { BarrierError } from "./errors.js";
import { GoTime } from "./go-time.js";

/** What Go's time.Time.MarshalJSON writes for a UTC instant with millisecond precision. */
function goFormatOfUtcDate(d: Date): string {
  const iso = d.toISOString(); // YYYY-MM-DDTHH:mm:ss.sssZ for years 0..9999
  return iso.replace(/\.(\d{3})Z$/, (_, ms: string) => (ms === "000" ? "Z" : `.${ms.replace(/0+$/, "")}Z`));
}

describe("GoTime", () => {
  it("keeps nanoseconds and a UTC Z exactly", () => {
    const t = GoTime.parse("2024-03-01T10:20:30.123456789Z");
    expect(t.format()).toBe("2024-03-01T10:20:30.123456789Z");
    expect(t.nanos).toBe(123_456_789);
    expect(t.toDate().toISOString()).toBe("2024-03-01T10:20:30.123Z");
  });

  it("keeps a zone offset and computes the right instant", () => {
    const t = GoTime.parse("2024-03-01T11:20:30.5+01:00");
    expect(t.format()).toBe("2024-03-01T11:20:30.5+01:00");
    expect(t.offsetSeconds).toBe(3600);
    expect(t.toDate().toISOString()).toBe("2024-03-01T10:20:30.500Z");
    const west = GoTime.parse("2024-01-01T00:00:00-05:30");
    expect(west.format()).toBe("2024-01-01T00:00:00-05:30");
    expect(west.toDate().toISOString()).toBe("2024-01-01T05:30:00.000Z");
  });

  it("formats like Go: trailing fraction zeros trimmed, +00:00 written as Z, digits past 9 dropped", () => {
    expect(GoTime.parse("2024-03-01T10:20:30.120Z").format()).toBe("2024-03-01T10:20:30.12Z");
    expect(GoTime.parse("2024-03-01T10:20:30.000Z").format()).toBe("2024-03-01T10:20:30Z");
    expect(GoTime.parse("2024-03-01T10:20:30+00:00").format()).toBe("2024-03-01T10:20:30Z");
    expect(GoTime.parse("2024-03-01T10:20:30.1234567891Z").format()).toBe("2024-03-01T10:20:30.123456789Z");
  });

  it("knows Go's zero time and years below 100", () => {
    const z = GoTime.parse("0001-01-01T00:00:00Z");
    expect(z.isZero()).toBe(true);
    expect(GoTime.ZERO.format()).toBe("0001-01-01T00:00:00Z");
    expect(GoTime.parse("0099-12-31T23:59:59Z").format()).toBe("0099-12-31T23:59:59Z");
    expect(GoTime.parse("2024-01-01T00:00:00Z").isZero()).toBe(false);
  });

  it.each([
    ["2024-02-30T00:00:00Z", "day"],
    ["2023-02-29T00:00:00Z", "day"],
    ["2024-13-01T00:00:00Z", "month"],
    ["2024-01-01T24:00:00Z", "hour"],
    ["2024-01-01T00:60:00Z", "minute"],
    ["2024-06-30T23:59:60Z", "second"],
    ["2024-01-01T00:00:00+24:00", "timezone hour"],
    ["2024-01-01t00:00:00Z", "RFC 3339"],
    ["2024-01-01T00:00:00", "RFC 3339"],
    ["2024-01-01T00:00:00.Z", "RFC 3339"],
    ["2024-01-01 00:00:00Z", "RFC 3339"],
  ])("rejects %s (%s)", (input, what) => {
    expect(() => GoTime.parse(input)).toThrow(BarrierError);
    expect(() => GoTime.parse(input)).toThrow(what);
  });

  it("leap day exists in leap years", () => {
    expect(GoTime.parse("2024-02-29T12:00:00Z").format()).toBe("2024-02-29T12:00:00Z");
  });

  it("formats any Date in [0000, 9999] the way Go does, and parses it back", () => {
    fc.assert(
      fc.property(
        fc.date({
          min: new Date("0000-01-01T00:00:00Z"),
          max: new Date("9999-12-31T23:59:59.999Z"),
          noInvalidDate: true,
        }),
        (d) => {
          const t = GoTime.fromDate(d);
          expect(t.format()).toBe(goFormatOfUtcDate(d));
          expect(GoTime.parse(t.format()).toDate().getTime()).toBe(d.getTime());
        },
      ),
    );
  });

  it("round-trips any instant, nanosecond and minute offset through format/parse", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: -62_135_596_800 + 86_400, max: 253_402_300_799 - 86_400 }),
        fc.integer({ min: 0, max: 999_999_999 }),
        fc.integer({ min: -(23 * 60 + 59), max: 23 * 60 + 59 }),
        (sec, nanos, offMin) => {
          // The wall clock at that offset, with a nanosecond fraction.
          const wall = new Date((sec + offMin * 60) * 1000).toISOString().slice(0, 19);
          const sign = offMin < 0 ? "-" : "+";
          const abs = Math.abs(offMin);
          const off =
            offMin === 0
              ? "Z"
              : `${sign}${String(Math.floor(abs / 60)).padStart(2, "0")}:${String(abs % 60).padStart(2, "0")}`;
          const textIn = `${wall}.${String(nanos).padStart(9, "0")}${off}`;
          const t = GoTime.parse(textIn);
          expect(t.unixSeconds).toBe(sec);
          expect(t.nanos).toBe(nanos);
          const again = GoTime.parse(t.format());
          expect([again.unixSeconds, again.nanos, again.offsetSeconds]).toEqual([sec, nanos, offMin * 60]);
        },
      ),
    );
  });
});

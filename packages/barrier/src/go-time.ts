import { BarrierError } from "./errors.js";

/** 0001-01-01T00:00:00Z: Go's zero `time.Time`, written for keys whose InstallTime was never set. */
const ZERO_UNIX_SECONDS = -62_135_596_800;
/** Go's Time.MarshalJSON refuses years outside [0, 9999]. */
const MIN_UNIX_SECONDS = -62_167_219_200; // 0000-01-01T00:00:00Z
const MAX_UNIX_SECONDS = 253_402_300_799; // 9999-12-31T23:59:59Z

// Go's strict RFC 3339 (what time.Time.UnmarshalJSON accepts since Go 1.20): upper-case T and Z,
// optional fraction of any length (digits past the ninth are dropped), offset ±hh:mm.
const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(?:Z|([+-])(\d{2}):(\d{2}))$/;

function pad(n: number, width: number): string {
  return String(n).padStart(width, "0");
}

/**
 * A Go `time.Time` as it appears in Vault's JSON: an instant with nanosecond precision plus the
 * UTC offset it was written with. JavaScript's `Date` keeps only milliseconds and no offset, so
 * the keyring keeps this value to re-serialize an InstallTime exactly as Go would.
 */
export class GoTime {
  /** Go's zero time, `0001-01-01T00:00:00Z`. */
  static readonly ZERO = new GoTime(ZERO_UNIX_SECONDS, 0, 0);

  /** Whole seconds since the Unix epoch (UTC). */
  readonly unixSeconds: number;
  /** Nanoseconds within the second, 0..999_999_999. */
  readonly nanos: number;
  /** Offset of the written wall clock east of UTC, in seconds (0 is written as `Z`). */
  readonly offsetSeconds: number;

  private constructor(unixSeconds: number, nanos: number, offsetSeconds: number) {
    this.unixSeconds = unixSeconds;
    this.nanos = nanos;
    this.offsetSeconds = offsetSeconds;
  }

  /** The instant of `date`, in UTC, with millisecond precision. */
  static fromDate(date: Date): GoTime {
    const ms = date.getTime();
    if (!Number.isFinite(ms)) throw new BarrierError("invalid_argument", "GoTime.fromDate: invalid Date");
    const unixSeconds = Math.floor(ms / 1000);
    if (unixSeconds < MIN_UNIX_SECONDS || unixSeconds > MAX_UNIX_SECONDS) {
      throw new BarrierError("invalid_argument", "GoTime: year outside of range [0,9999]");
    }
    return new GoTime(unixSeconds, (ms - unixSeconds * 1000) * 1_000_000, 0);
  }

  /**
   * Parses a Go `time.Time` JSON string (RFC 3339 with optional nanoseconds and a zone offset),
   * e.g. `2024-03-01T10:20:30.123456789Z` or `2024-03-01T11:20:30+01:00`.
   */
  static parse(text: string): GoTime {
    const m = RFC3339.exec(text);
    if (m === null) {
      throw new BarrierError(
        "invalid_argument",
        `not an RFC 3339 time like Go writes it (2006-01-02T15:04:05.999999999Z07:00): ${JSON.stringify(text)}`,
      );
    }
    const [year, month, day, hour, minute, second] = m.slice(1, 7).map(Number) as [
      number,
      number,
      number,
      number,
      number,
      number,
    ];
    const fraction = m[7] ?? "";
    const sign = m[8];
    const offH = Number(m[9] ?? 0);
    const offM = Number(m[10] ?? 0);
    const bad = (what: string): BarrierError =>
      new BarrierError("invalid_argument", `invalid time ${JSON.stringify(text)}: ${what} out of range`);
    if (month < 1 || month > 12) throw bad("month");
    if (hour > 23) throw bad("hour");
    if (minute > 59) throw bad("minute");
    // Go rejects leap seconds (":60") as well.
    if (second > 59) throw bad("second");
    if (offH > 23) throw bad("timezone hour");
    if (offM > 59) throw bad("timezone minute");
    // Date.UTC maps years 0..99 to 1900..1999, so set the full year explicitly.
    const d = new Date(0);
    d.setUTCFullYear(year, month - 1, day);
    d.setUTCHours(hour, minute, second, 0);
    if (d.getUTCDate() !== day || d.getUTCMonth() !== month - 1) throw bad("day");
    const offsetSeconds = sign === undefined ? 0 : (sign === "-" ? -1 : 1) * (offH * 3600 + offM * 60);
    const nanos = fraction === "" ? 0 : Number(fraction.slice(0, 9).padEnd(9, "0"));
    return new GoTime(d.getTime() / 1000 - offsetSeconds, nanos, offsetSeconds);
  }

  /** Go's `IsZero`: the instant is 0001-01-01T00:00:00Z, whatever the offset. */
  isZero(): boolean {
    return this.unixSeconds === ZERO_UNIX_SECONDS && this.nanos === 0;
  }

  /** The instant as a `Date` (sub-millisecond digits are dropped). */
  toDate(): Date {
    return new Date(this.unixSeconds * 1000 + Math.floor(this.nanos / 1_000_000));
  }

  /** Milliseconds since the Unix epoch, with the sub-millisecond part as a fraction. */
  epochMs(): number {
    return this.unixSeconds * 1000 + this.nanos / 1_000_000;
  }

  /**
   * Exactly what Go's `Time.MarshalJSON` writes (without the quotes): RFC 3339, fraction with
   * trailing zeros trimmed (none when zero), `Z` for a zero offset, otherwise `±hh:mm`.
   */
  format(): string {
    const wall = new Date((this.unixSeconds + this.offsetSeconds) * 1000);
    let out =
      `${pad(wall.getUTCFullYear(), 4)}-${pad(wall.getUTCMonth() + 1, 2)}-${pad(wall.getUTCDate(), 2)}` +
      `T${pad(wall.getUTCHours(), 2)}:${pad(wall.getUTCMinutes(), 2)}:${pad(wall.getUTCSeconds(), 2)}`;
    if (this.nanos !== 0) out += `.${pad(this.nanos, 9).replace(/0+$/, "")}`;
    if (this.offsetSeconds === 0) return `${out}Z`;
    const abs = Math.abs(this.offsetSeconds);
    return `${out}${this.offsetSeconds < 0 ? "-" : "+"}${pad(Math.floor(abs / 3600), 2)}:${pad(Math.floor((abs % 3600) / 60), 2)}`;
  }

  toString(): string {
    return this.format();
  }

  toJSON(): string {
    return this.format();
  }
}

import { CodedError } from "@bulwark/errors";
import { describeValue } from "./boolean.js";
import { SettingsError, type SettingsErrorCode } from "./settings-error.js";

/**
 * Durations, one grammar for every duration setting (Vault's `parseutil.ParseDurationSecond`):
 *
 * - a Go duration (`time.ParseDuration`): one or more `<number><unit>` parts, the number a decimal
 *   with optional fraction (`1.5h`, `.5s`, `1.s`), units `ns`, `us`, `µs`, `μs`, `ms`, `s`, `m`,
 *   `h`, written without spaces (`1h30m`, `2h45m30.5s`); `"0"` alone is zero;
 * - a whole number of days, `<integer>d` (`7d`; not `1.5d`, not `1d12h`);
 * - a bare integer, string or JSON/HCL number: seconds (`"90"`, `90`).
 *
 * Two differences from Vault, both kept from what Bulwark accepted before the kernel: a decimal
 * number of seconds (`1.5`, `"1.5"`) keeps its fraction (Vault truncates the number and refuses
 * the string), and a negative duration (`-5s`) is refused because no setting takes one.
 * Surrounding whitespace is ignored; the largest duration is Go's, (2^63 − 1) ns ≈ 292 years.
 */

const UNIT_NS: Readonly<Record<string, bigint>> = {
  ns: 1n,
  us: 1_000n,
  "\u00b5s": 1_000n, // µ MICRO SIGN
  "\u03bcs": 1_000n, // μ GREEK SMALL LETTER MU
  ms: 1_000_000n,
  s: 1_000_000_000n,
  m: 60_000_000_000n,
  h: 3_600_000_000_000n,
};

const TWO_63 = 1n << 63n;
/** Go's largest `time.Duration`, in nanoseconds. */
export const MAX_DURATION_NS: bigint = TWO_63 - 1n;
const NS_PER_MS = 1_000_000n;
const NS_PER_S = 1_000_000_000n;
const NS_PER_DAY = 86_400n * NS_PER_S;

/** How every duration error message tells the user what to write. */
export const DURATION_HELP =
  'use Go syntax such as "15s", "500ms", "1m30s" or "1.5h" (units ns, us, ms, s, m, h), whole days such as "7d", or a number of seconds such as 90';

function isDigit(c: string | undefined): boolean {
  return c !== undefined && c >= "0" && c <= "9";
}

/**
 * Exactly Go's `time.ParseDuration`: nanoseconds (signed, as a bigint), or `undefined` where Go
 * returns an error (bad syntax, unknown unit, missing unit, overflow). Fractions are computed in
 * float64 as Go does, so the result matches Go's to the nanosecond.
 */
export function parseGoDuration(text: string): bigint | undefined {
  let s = text;
  let neg = false;
  if (s.startsWith("-") || s.startsWith("+")) {
    neg = s.startsWith("-");
    s = s.slice(1);
  }
  if (s === "0") return 0n;
  if (s === "") return undefined;
  let total = 0n;
  while (s !== "") {
    if (!(s[0] === "." || isDigit(s[0]))) return undefined;
    let i = 0;
    let whole = 0n;
    for (; isDigit(s[i]); i++) {
      if (whole > TWO_63 / 10n) return undefined;
      whole = whole * 10n + BigInt(s.charCodeAt(i) - 48);
      if (whole > TWO_63) return undefined;
    }
    const pre = i > 0;
    s = s.slice(i);
    let frac = 0n;
    let scale = 1;
    let post = false;
    if (s.startsWith(".")) {
      s = s.slice(1);
      let j = 0;
      let overflow = false;
      // Go stops accumulating precision on overflow instead of failing.
      for (; isDigit(s[j]); j++) {
        if (overflow) continue;
        if (frac > MAX_DURATION_NS / 10n) {
          overflow = true;
          continue;
        }
        const next = frac * 10n + BigInt(s.charCodeAt(j) - 48);
        if (next > TWO_63) {
          overflow = true;
          continue;
        }
        frac = next;
        scale *= 10;
      }
      post = j > 0;
      s = s.slice(j);
    }
    if (!pre && !post) return undefined;
    let k = 0;
    while (k < s.length && !(s[k] === "." || isDigit(s[k]))) k++;
    if (k === 0) return undefined;
    const unit = UNIT_NS[s.slice(0, k)];
    s = s.slice(k);
    if (unit === undefined) return undefined;
    if (whole > TWO_63 / unit) return undefined;
    let part = whole * unit;
    if (frac > 0n) {
      // Go: uint64(float64(f) * (float64(unit) / scale)).
      part += BigInt(Math.trunc(Number(frac) * (Number(unit) / scale)));
      if (part > TWO_63) return undefined;
    }
    total += part;
    if (total > TWO_63) return undefined;
  }
  if (neg) return -total;
  return total > MAX_DURATION_NS ? undefined : total;
}

/** Nanoseconds as milliseconds (a fraction below one millisecond is kept). */
function nsToMs(ns: bigint): number {
  return Number(ns / NS_PER_MS) + Number(ns % NS_PER_MS) / 1e6;
}

/** Milliseconds (whole or not) as nanoseconds, rounded to the nearest nanosecond. */
function msToNs(ms: number): bigint {
  const whole = Math.trunc(ms);
  return BigInt(whole) * NS_PER_MS + BigInt(Math.round((ms - whole) * 1e6));
}

type Parsed = { ns: bigint } | { problem: string };

function parseSetting(value: unknown): Parsed {
  const notDuration = { problem: `${describeValue(value)} is not a duration: ${DURATION_HELP}` };
  const tooLong = {
    problem: `${describeValue(value)} is not a duration: it is longer than the largest one (2562047h47m16.854775807s, about 292 years)`,
  };
  const negative = {
    problem: `${describeValue(value)} is not a duration: durations cannot be negative; use 0 or more, e.g. "0s" or "15s"`,
  };
  if (typeof value === "number") {
    if (Number.isNaN(value)) return notDuration;
    if (value < 0) return negative;
    if (!Number.isFinite(value) || value * 1000 > nsToMs(MAX_DURATION_NS)) return tooLong;
    return { ns: msToNs(value * 1000) };
  }
  if (typeof value !== "string") return notDuration;
  const text = value.trim();
  if (text.startsWith("-")) return parseGoDuration(text) === undefined ? notDuration : negative;
  let ns: bigint | undefined;
  if (/^\+?\d+$/.test(text)) {
    ns = BigInt(text) * NS_PER_S; // Vault: a bare integer is seconds
  } else if (/^\+?\d+\.\d+$/.test(text)) {
    ns = parseGoDuration(`${text}s`); // decimal seconds: the number's meaning, kept from before
  } else if (/^\+?\d+d$/.test(text)) {
    ns = BigInt(text.slice(0, -1)) * NS_PER_DAY; // Vault: a whole number of days
  } else {
    ns = parseGoDuration(text);
    if (ns === undefined) {
      // Say "too long" only for text that is a duration apart from its size.
      const shape =
        /^\+?(\d+(\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)((\d+(\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h))*$/;
      return shape.test(text) ? tooLong : notDuration;
    }
  }
  if (ns === undefined) return notDuration;
  return ns > MAX_DURATION_NS ? tooLong : { ns };
}

/**
 * A duration setting in nanoseconds, or `undefined` when `value` is not one (see the grammar at
 * the top of this module). For callers that need Go's exact integer nanoseconds.
 */
export function tryParseDurationNs(value: unknown): bigint | undefined {
  const r = parseSetting(value);
  return "ns" in r ? r.ns : undefined;
}

/** A duration setting in milliseconds (fractions of a millisecond kept), or `undefined`. */
export function tryParseDuration(value: unknown): number | undefined {
  const r = parseSetting(value);
  return "ns" in r ? nsToMs(r.ns) : undefined;
}

/** A duration setting in milliseconds; a {@link SettingsError} naming `field` and the grammar. */
export function parseDuration(field: string, value: unknown): number {
  const r = parseSetting(value);
  if ("ns" in r) return nsToMs(r.ns);
  throw new SettingsError("invalid_duration", field, r.problem);
}

/** {@link parseDuration} for an optional setting: `undefined` and `null` mean "not set". */
export function parseOptionalDuration(field: string, value: unknown): number | undefined {
  return value === undefined || value === null ? undefined : parseDuration(field, value);
}

/** Go's `fmtFrac`: the digits of `v`'s last `prec` places, trailing zeros and a bare point dropped. */
function fraction(v: bigint, prec: number): { text: string; rest: bigint } {
  const p = 10n ** BigInt(prec);
  const digits = (v % p).toString().padStart(prec, "0").replace(/0+$/, "");
  return { text: digits === "" ? "" : `.${digits}`, rest: v / p };
}

/** Exactly Go's `time.Duration.String()` for a number of nanoseconds ("1h0m0s", "1.5ms", "0s"). */
export function formatGoDurationNs(ns: bigint): string {
  const neg = ns < 0n;
  const u = neg ? -ns : ns;
  let out: string;
  if (u === 0n) return "0s";
  if (u < NS_PER_S) {
    const [prec, unit] = u < 1_000n ? [0, "ns"] : u < NS_PER_MS ? [3, "µs"] : [6, "ms"];
    const f = fraction(u, prec);
    out = `${f.rest}${f.text}${unit}`;
  } else {
    const f = fraction(u, 9);
    const seconds = f.rest % 60n;
    const minutes = (f.rest / 60n) % 60n;
    const hours = f.rest / 3600n;
    out = `${seconds}${f.text}s`;
    if (f.rest >= 60n) out = `${minutes}m${out}`;
    if (f.rest >= 3600n) out = `${hours}h${out}`;
  }
  return neg ? `-${out}` : out;
}

/** Go's `time.Duration.String()` for milliseconds ("24h0m0s", "1m30s", "250ms", "0s"). */
export function formatGoDuration(ms: number): string {
  if (!Number.isFinite(ms))
    // The caller's bug, not a setting: a CodedError of the domain, not a SettingsError (which
    // convertSettingsErrors would report as the provider's configuration error, with no field).
    throw new CodedError<Extract<SettingsErrorCode, "invalid_duration">>(
      "settings",
      "invalid_duration",
      `formatGoDuration: ${ms} is not a finite number of milliseconds`,
    );
  return formatGoDurationNs(msToNs(ms));
}

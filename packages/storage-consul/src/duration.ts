/**
 * Go-style durations, as Vault's Consul settings take them (`session_ttl = "15s"`,
 * `lock_wait_time = "1m30s"`). A bare number, or a string of digits, means seconds (Vault's
 * `parseutil.ParseDurationSecond`).
 */

const UNIT_MS: Readonly<Record<string, number>> = {
  ns: 1e-6,
  us: 1e-3,
  µs: 1e-3,
  μs: 1e-3,
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
};

const PART = /^(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)/;

/**
 * Parses `value` into milliseconds, or returns `undefined` when it is not a duration. Accepts
 * `"1h2m3.5s"`, `"500ms"`, `"15"` (seconds), `15` (seconds) and `"0"`; rejects negatives, empty
 * strings and unknown units.
 */
export function parseDurationMs(value: unknown): number | undefined {
  if (typeof value === "number") {
    return Number.isFinite(value) && value >= 0 ? value * 1000 : undefined;
  }
  if (typeof value !== "string") return undefined;
  const s = value.trim();
  if (s === "") return undefined;
  if (/^\d+(\.\d+)?$/.test(s)) return Number(s) * 1000;
  let rest = s;
  let total = 0;
  while (rest.length > 0) {
    const m = PART.exec(rest);
    if (m === null) return undefined;
    total += Number(m[1]) * (UNIT_MS[m[2] as string] as number);
    rest = rest.slice(m[0].length);
  }
  return Number.isFinite(total) ? total : undefined;
}

/** Milliseconds as a Go duration string Consul parses (`"15s"`, `"1500ms"`). */
export function formatDuration(ms: number): string {
  const whole = Math.round(ms);
  if (whole % 1000 === 0) return `${whole / 1000}s`;
  return `${whole}ms`;
}

/**
 * Durations of Consul settings (`session_ttl = "15s"`, `lock_wait_time = "1m30s"`): the settings
 * kernel's grammar (`@bulwark/settings`). `formatDuration` writes the durations this package
 * sends to Consul and names in its messages ("90000s", "1500ms"); it is not Go's
 * `Duration.String()` (the kernel's `formatGoDuration`), and the messages tests match rely on it.
 */
import { tryParseDuration } from "@bulwark/settings";

/**
 * Parses `value` into milliseconds, or returns `undefined` when it is not a duration: the
 * settings kernel's grammar (Vault's `ParseDurationSecond`: `"1h2m3.5s"`, `"500ms"`, `".5s"`,
 * `"7d"`, `"15"` and `15` meaning seconds, `"0"`); negatives, empty strings and unknown units are
 * refused.
 */
export function parseDurationMs(value: unknown): number | undefined {
  return tryParseDuration(value);
}

/** Milliseconds as a Go duration string Consul parses (`"15s"`, `"1500ms"`). */
export function formatDuration(ms: number): string {
  const whole = Math.round(ms);
  if (whole % 1000 === 0) return `${whole / 1000}s`;
  return `${whole}ms`;
}

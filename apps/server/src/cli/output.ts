/** Vault-style CLI output: `Key  Value` tables, key lists, and JSON for `-format=json`. */
import type { Writable } from "node:stream";
import { CodedError, type CodedErrorOptions } from "@bulwark/errors";
import { JsonNumber, stringify } from "@bulwark/vault";

export type Format = "table" | "json";

export interface Io {
  stdout: Writable;
  stderr: Writable;
  stdin: NodeJS.ReadableStream & { isTTY?: boolean; setRawMode?: (raw: boolean) => unknown };
  env: Record<string, string | undefined>;
}

export function parseFormat(value: string | undefined, env: Io["env"]): Format {
  const v = (value ?? env.BULWARK_FORMAT ?? env.VAULT_FORMAT ?? "table").toLowerCase();
  if (v === "table" || v === "json") return v;
  throw new UsageError(`invalid format ${JSON.stringify(v)}: use -format=table or -format=json`);
}

/**
 * Codes of the CLI's errors (domain "cli"): `usage` (wrong flags or arguments, {@link UsageError}),
 * `api_error` (the server answered an error status, `ApiError`), `connection_failed` (the server
 * could not be reached, `ConnectionError`). The exit code follows the class, as in Vault's CLI.
 */
export const CLI_ERROR_CODES = ["usage", "api_error", "connection_failed"] as const;

export type CliErrorCode = (typeof CLI_ERROR_CODES)[number];

/** Wrong flags or arguments: exit code 1, like Vault. */
export class UsageError extends CodedError<"usage"> {
  static override readonly kind: string = "@bulwark/server:UsageError";
  override name = "UsageError";
  constructor(message: string, options?: CodedErrorOptions) {
    super("cli", "usage", message, options);
  }
}

/** A value in a table cell: scalars as text, everything else as compact JSON (Vault prints Go maps). */
export function cell(v: unknown): string {
  if (v === null || v === undefined) return "n/a";
  if (typeof v === "string") return v;
  if (typeof v === "number" || typeof v === "boolean" || v instanceof JsonNumber) return String(v);
  if (
    Array.isArray(v) &&
    v.every((x) => typeof x === "string" || typeof x === "number" || x instanceof JsonNumber)
  )
    return `[${v.join(" ")}]`;
  return stringify(v);
}

/** Two aligned columns with a dashed header, like Vault's `Key Value` output. */
export function table(
  rows: ReadonlyArray<readonly [string, unknown]>,
  header: readonly [string, string] = ["Key", "Value"],
): string {
  const width = Math.max(header[0].length, ...rows.map(([k]) => k.length));
  const line = (a: string, b: string) => `${a.padEnd(width)}    ${b}`.trimEnd();
  return `${[
    line(header[0], header[1]),
    line("-".repeat(header[0].length), "-".repeat(header[1].length)),
    ...rows.map(([k, v]) => line(k, cell(v))),
  ].join("\n")}\n`;
}

/** Rows of an object's own fields, sorted by key (Vault sorts). */
export function rowsOf(obj: Record<string, unknown>): Array<[string, unknown]> {
  return Object.keys(obj)
    .sort()
    .map((k) => [k, obj[k]]);
}

export function keyList(keys: readonly string[]): string {
  return `Keys\n----\n${keys.map((k) => `${k}\n`).join("")}`;
}

/** Indented JSON; numbers keep the exact text the server sent (as Vault's CLI prints them). */
export function json(v: unknown): string {
  return `${stringify(v, 2)}\n`;
}

/** The `data` of a Vault response envelope, or the body itself. */
export function dataOf(body: unknown): Record<string, unknown> {
  if (typeof body !== "object" || body === null) return {};
  const data = (body as { data?: unknown }).data;
  if (typeof data === "object" && data !== null && !Array.isArray(data))
    return data as Record<string, unknown>;
  return body as Record<string, unknown>;
}

/** A secret's lease fields as Vault prints them above the data. */
export function secretRows(body: unknown): Array<[string, unknown]> {
  const rows: Array<[string, unknown]> = [];
  if (typeof body === "object" && body !== null) {
    const b = body as Record<string, unknown>;
    const ttl = typeof b.lease_duration === "number" ? b.lease_duration : 0;
    if (ttl > 0) rows.push([b.renewable ? "lease_duration" : "refresh_interval", formatDuration(ttl)]);
  }
  return rows;
}

/** Seconds → Vault's duration text (`768h`, `1h30m`, `45s`, `∞` for 0 TTLs). */
export function formatDuration(seconds: number): string {
  if (seconds <= 0) return "∞";
  const h = Math.floor(seconds / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  const s = Math.floor(seconds % 60);
  return `${h > 0 ? `${h}h` : ""}${m > 0 ? `${m}m` : ""}${s > 0 || (h === 0 && m === 0) ? `${s}s` : ""}`;
}

/**
 * Request field parsing for the logical layer (and the HTTP routes that take the same bodies). Every route declares its fields; a body that is not a JSON
 * object, a field of the wrong type or a field the route does not know is a 400 before anything
 * is read or written.
 *
 * Types follow what Vault's field decoder accepts, so existing clients keep working: integers may
 * come as JSON numbers or decimal strings, booleans as `true`/`"true"`, string lists as arrays or
 * comma-separated strings, durations as seconds or Go duration strings ("1h30m"). Booleans and
 * durations use the settings kernel's grammar (@bulwark/settings), the one every block reads.
 */

import { formatGoDuration, tryParseBool, tryParseDuration } from "@bulwark/settings";
import { BadRequestError } from "../errors.js";
import { JsonNumber } from "../json/lossless.js";

export type FieldType =
  | "int"
  | "bool"
  | "string"
  | "strings"
  | "duration"
  | "object"
  | "stringMap"
  | "intList"
  | "any";

type TypeOf<T extends FieldType> = T extends "int" | "duration"
  ? number
  : T extends "bool"
    ? boolean
    : T extends "string"
      ? string
      : T extends "strings"
        ? string[]
        : T extends "intList"
          ? number[]
          : T extends "stringMap"
            ? Record<string, string>
            : T extends "object"
              ? Record<string, unknown>
              : unknown;

export type Spec = Record<string, FieldType>;
export type Fields<S extends Spec> = { [K in keyof S]?: TypeOf<S[K]> };

/**
 * A duration in seconds ("1h30m" → 5400, "500ms" → 0.5, "3600" → 3600, "7d"), or `undefined`:
 * the settings kernel's grammar (Vault's `parseutil.ParseDurationSecond`; see @bulwark/settings),
 * which answers in milliseconds.
 */
export function parseDuration(input: string): number | undefined {
  const ms = tryParseDuration(input);
  return ms === undefined ? undefined : ms / 1000;
}

/** Go's `time.Duration.String()` for milliseconds ("24h0m0s", "1m30s", "0s"): the kernel's. */
export { formatGoDuration };

/** Go's largest time.Duration, in whole seconds ((2^63 - 1) ns). */
export const MAX_DURATION_S = 9_223_372_036;

function fail(field: string, want: string, got: unknown): never {
  const kind =
    got === null ? "null" : Array.isArray(got) ? "array" : got instanceof JsonNumber ? "number" : typeof got;
  throw new BadRequestError(`field ${JSON.stringify(field)} must be ${want}, got ${kind}`);
}

/**
 * One field's value as `type` (the coercions of Vault's field decoder); a {@link BadRequestError}
 * naming `field` otherwise. Query parameters go through this too.
 */
export function parseField(field: string, type: FieldType, raw: unknown): unknown {
  // Bodies of secrets engines are parsed losslessly: a field the server reads itself is checked
  // as the float64 JSON.parse would have given (the stored value keeps the exact text).
  const v = type !== "any" && type !== "object" && raw instanceof JsonNumber ? raw.toNumber() : raw;
  switch (type) {
    case "any":
      return v;
    case "int": {
      // "1.0" or "1E0" in a secrets engine's body (kept as text): Vault's integer fields refuse them.
      if (raw instanceof JsonNumber && !/^-?\d+$/.test(raw.text)) return fail(field, "an integer", raw);
      if (typeof v === "number" && Number.isSafeInteger(v)) return v;
      if (typeof v === "string" && /^-?\d{1,15}$/.test(v.trim())) return Number(v.trim());
      return fail(field, "an integer", v);
    }
    case "bool": {
      if (typeof v === "boolean") return v;
      // Go's strconv.ParseBool words exactly (the kernel's; "tRuE" is not one). A JSON number
      // stays refused, as before.
      const b = typeof v === "string" ? tryParseBool(v) : undefined;
      if (b !== undefined) return b;
      return fail(field, "a boolean", v);
    }
    case "string":
      if (typeof v === "string") return v;
      return fail(field, "a string", v);
    case "strings": {
      if (typeof v === "string")
        return v
          .split(",")
          .map((x) => x.trim())
          .filter((x) => x.length > 0);
      if (Array.isArray(v) && v.every((x) => typeof x === "string")) return v.map((x: string) => x.trim());
      return fail(field, "a list of strings", v);
    }
    case "intList": {
      const items = typeof v === "string" ? v.split(",").map((x) => x.trim()) : v;
      if (Array.isArray(items)) {
        return items.map((x, i) => parseField(`${field}[${i}]`, "int", x) as number);
      }
      return fail(field, "a list of integers", v);
    }
    case "duration": {
      let d: number | undefined;
      if (typeof v === "number" && Number.isFinite(v) && v >= 0) d = Math.floor(v);
      else if (typeof v === "string") {
        const p = parseDuration(v);
        if (p !== undefined) d = Math.floor(p);
      }
      if (d === undefined) return fail(field, 'a duration (seconds or a Go duration such as "1h30m")', v);
      // Vault (Go) cannot hold more; larger values would also overflow the dates computed from them.
      if (d > MAX_DURATION_S)
        throw new BadRequestError(
          `field ${JSON.stringify(field)} must be a duration of at most ${MAX_DURATION_S} seconds (about 292 years), got ${String(v)}`,
        );
      return d;
    }
    case "object":
      if (typeof v === "object" && v !== null && !Array.isArray(v) && !(v instanceof JsonNumber)) return v;
      return fail(field, "an object", v);
    case "stringMap": {
      if (typeof v === "object" && v !== null && !Array.isArray(v)) {
        for (const [k, x] of Object.entries(v)) {
          if (typeof x !== "string") fail(`${field}.${k}`, "a string", x);
        }
        return v;
      }
      return fail(field, "an object of strings", v);
    }
  }
}

/** The body as a plain object: absent/empty bodies are `{}`; anything but an object is a 400. */
export function bodyObject(body: unknown): Record<string, unknown> {
  if (body === undefined || body === null) return {};
  if (typeof body !== "object" || Array.isArray(body) || body instanceof JsonNumber) {
    throw new BadRequestError("the request body must be a JSON object");
  }
  return body as Record<string, unknown>;
}

/**
 * Checks `body` against `spec`. Unknown fields are refused (listed in the message); `null` counts
 * as absent, as in Vault. `allow` names fields accepted and ignored (path parameters some clients
 * repeat in the body).
 */
export function parseFields<S extends Spec>(
  body: unknown,
  spec: S,
  opts: { required?: readonly (keyof S & string)[]; allow?: readonly string[] } = {},
): Fields<S> {
  const obj = bodyObject(body);
  const unknown = Object.keys(obj).filter((k) => !Object.hasOwn(spec, k) && !(opts.allow ?? []).includes(k));
  if (unknown.length > 0) {
    throw new BadRequestError(
      `unknown field${unknown.length > 1 ? "s" : ""}: ${unknown.map((k) => JSON.stringify(k)).join(", ")}; accepted: ${Object.keys(spec).join(", ") || "none"}`,
    );
  }
  const out: Record<string, unknown> = {};
  for (const [field, type] of Object.entries(spec)) {
    const v = obj[field];
    if (v === undefined || v === null) continue;
    out[field] = parseField(field, type, v);
  }
  for (const r of opts.required ?? []) {
    if (out[r] === undefined) throw new BadRequestError(`missing required field ${JSON.stringify(r)}`);
  }
  return out as Fields<S>;
}

import { SettingsError } from "./settings-error.js";

/** The words Go's `strconv.ParseBool` reads as true, and nothing else. */
export const TRUE_WORDS: readonly string[] = Object.freeze(["1", "t", "T", "TRUE", "true", "True"]);
/** The words Go's `strconv.ParseBool` reads as false, and nothing else. */
export const FALSE_WORDS: readonly string[] = Object.freeze(["0", "f", "F", "FALSE", "false", "False"]);

const TRUE = new Set(TRUE_WORDS);
const FALSE = new Set(FALSE_WORDS);

/**
 * A boolean setting, or `undefined` when `value` is not one. Accepted: JSON/HCL `true`/`false`;
 * Go's `strconv.ParseBool` words ({@link TRUE_WORDS}, {@link FALSE_WORDS}), surrounding
 * whitespace ignored; and the numbers `1` and `0` (HCL `tls_disable = 1`: Vault's config maps
 * carry that as the word "1"). Everything else — `"yes"`, `"on"`, `""`, `2` — is not a boolean.
 */
export function tryParseBool(value: unknown): boolean | undefined {
  if (typeof value === "boolean") return value;
  if (typeof value === "number") return value === 1 ? true : value === 0 ? false : undefined;
  if (typeof value !== "string") return undefined;
  const word = value.trim();
  if (TRUE.has(word)) return true;
  if (FALSE.has(word)) return false;
  return undefined;
}

/** Describes `value` for an error message without echoing anything long. */
export function describeValue(value: unknown): string {
  if (typeof value === "string")
    return value.length > 40 ? `${JSON.stringify(value.slice(0, 40))}…` : JSON.stringify(value);
  if (value === null) return "null";
  if (Array.isArray(value)) return "a list";
  if (typeof value === "object") return "an object";
  return String(value);
}

/** {@link tryParseBool}, throwing a {@link SettingsError} naming `field` and the accepted words. */
export function parseBool(field: string, value: unknown): boolean {
  const b = tryParseBool(value);
  if (b !== undefined) return b;
  throw new SettingsError(
    "invalid_boolean",
    field,
    `${describeValue(value)} is not a boolean: expected true or false (Go's words ${TRUE_WORDS.join(", ")} / ${FALSE_WORDS.join(", ")})`,
  );
}

/** {@link parseBool} for an optional setting: `undefined` and `null` mean "not set". */
export function parseOptionalBool(field: string, value: unknown): boolean | undefined {
  return value === undefined || value === null ? undefined : parseBool(field, value);
}

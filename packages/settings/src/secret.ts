import { readFileSync } from "node:fs";
import { SettingsError } from "./settings-error.js";

/** An environment to read variables from (`process.env`, or a test's own object). */
export type EnvLike = Readonly<Record<string, string | undefined>>;

export const ENV_REFERENCE = "env://";
export const FILE_REFERENCE = "file://";
export const STRING_REFERENCE = "string://";

/** Whether `value` is an `env://NAME`, `file://PATH` or `string://VALUE` secret reference. */
export function isSecretReference(value: unknown): value is string {
  return (
    typeof value === "string" &&
    (value.startsWith(ENV_REFERENCE) ||
      value.startsWith(FILE_REFERENCE) ||
      value.startsWith(STRING_REFERENCE))
  );
}

/** How a file is read; tests may pass their own. */
export type ReadSecretFile = (path: string) => string;

const readUtf8: ReadSecretFile = (path) => readFileSync(path, "utf8");

/**
 * The value of a secret setting (PIN, password, token, access key), with Vault's references
 * resolved (go-kms-wrapping's `ParsePaths`):
 *
 * - `env://NAME` → the variable `NAME` of `env`, exactly (an unset or empty variable is an error);
 * - `file://PATH` → the content of the file at PATH (`file:///run/secrets/pin`: an absolute path
 *   after the scheme; a relative one is read from the working directory), one trailing newline
 *   removed (`echo` and editors add it); a missing, unreadable or empty file is an error;
 * - `string://VALUE` → VALUE exactly as written (a literal that would otherwise read as a
 *   reference: `string://env://x` is "env://x"); an empty one is an error;
 * - anything else → `value` unchanged.
 *
 * Errors are {@link SettingsError}s naming `field`, the variable or the file, and the fix; they
 * never contain the secret.
 */
export function resolveSecret(
  field: string,
  value: string,
  env: EnvLike,
  readFile: ReadSecretFile = readUtf8,
): string {
  if (value.startsWith(ENV_REFERENCE)) {
    const name = value.slice(ENV_REFERENCE.length);
    if (name === "") {
      throw new SettingsError(
        "unresolved_reference",
        field,
        "env:// names no variable; write env://NAME (e.g. env://BULWARK_HSM_PIN) or the value itself",
      );
    }
    const v = env[name];
    if (v === undefined || v === "") {
      throw new SettingsError(
        "unresolved_reference",
        field,
        `environment variable ${name} (from env://${name}) is not set; export ${name} or write the value itself`,
      );
    }
    return v;
  }
  if (value.startsWith(STRING_REFERENCE)) {
    const literal = value.slice(STRING_REFERENCE.length);
    if (literal === "") {
      throw new SettingsError(
        "unresolved_reference",
        field,
        "string:// gives no value; write the secret after string:// (string://VALUE) or the value itself",
      );
    }
    return literal;
  }
  if (value.startsWith(FILE_REFERENCE)) {
    const path = value.slice(FILE_REFERENCE.length);
    if (path === "") {
      throw new SettingsError(
        "unresolved_reference",
        field,
        "file:// names no file; write file:///absolute/path or the value itself",
      );
    }
    let content: string;
    try {
      content = readFile(path);
    } catch (cause) {
      const why = cause instanceof Error ? cause.message : String(cause);
      throw new SettingsError(
        "unresolved_reference",
        field,
        `cannot read ${path} (${why}); fix the file:// path (file:///absolute/path) or write the value itself`,
        { cause },
      );
    }
    const text = content.replace(/\r?\n$/, "");
    if (text === "") {
      throw new SettingsError(
        "unresolved_reference",
        field,
        `${path} (from file://${path}) is empty; put the secret in the file or write the value itself`,
      );
    }
    return text;
  }
  return value;
}

/**
 * A secret setting as written in a block: a string, its references resolved by
 * {@link resolveSecret}, or a whole JSON/HCL number taken as its decimal text (`pin = 1234`: Vault
 * reads every seal and storage setting as a string, so it takes "1234"). Anything else is a
 * {@link SettingsError} naming the field and the type, never the value.
 */
export function parseSecret(
  field: string,
  value: unknown,
  env: EnvLike,
  readFile: ReadSecretFile = readUtf8,
): string {
  if (typeof value === "number" && Number.isSafeInteger(value)) return String(value);
  if (typeof value !== "string") {
    // The type only: a secret written in the wrong form is still a secret.
    const got =
      value === null || value === undefined
        ? String(value)
        : Array.isArray(value)
          ? "a list"
          : `a ${typeof value}`;
    throw new SettingsError(
      "invalid_value",
      field,
      `expected a string, got ${got}: write the secret, an env://NAME or a file:///path reference in quotes`,
    );
  }
  return resolveSecret(field, value, env, readFile);
}

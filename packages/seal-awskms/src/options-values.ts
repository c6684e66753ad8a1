/**
 * The readers of single `seal "awskms"` settings: durations and booleans through the settings
 * kernel, and the checks of key ids, regions, endpoints, strings and the encryption context.
 * Each throws a `SealConfigError` naming the setting.
 */
import { SealConfigError, sealSetting } from "@bulwark/seal";
import { parseBool, parseDuration } from "@bulwark/settings";
import { KEY_ID_ENV_VARS } from "./options-schema.js";

/**
 * A duration setting in whole milliseconds, in the settings kernel's grammar (the one every
 * duration setting of every block reads): a Go duration (`"500ms"`, `"1m30s"`, `".5s"`), whole
 * days (`"7d"`), or a bare number / numeric string meaning **seconds** (Vault's convention).
 */
export function parseDurationMs(field: string, value: unknown): number {
  return Math.round(sealSetting(() => parseDuration(field, value)));
}

/** A boolean setting: the settings kernel's (Go's ParseBool words, JSON/HCL booleans), as `SealConfigError`. */
export function parseBoolean(field: string, value: unknown): boolean {
  return sealSetting(() => parseBool(field, value));
}

export function parseInteger(field: string, value: unknown, min: number, max: number): number {
  const n = typeof value === "string" && /^\s*\d+\s*$/.test(value) ? Number(value) : value;
  if (typeof n !== "number" || !Number.isInteger(n) || n < min || n > max) {
    throw new SealConfigError(
      field,
      `must be a whole number from ${min} to ${max}, got ${JSON.stringify(value)}`,
    );
  }
  return n;
}

/**
 * Parses an encryption context: an object of string values, or a string `"k1=v1,k2=v2"` (or a JSON
 * object string) as a flat Vault config map can carry it. Numbers and booleans become strings.
 */
export function parseEncryptionContext(field: string, value: unknown): Record<string, string> {
  let source: unknown = value;
  if (typeof value === "string") {
    const text = value.trim();
    if (text.startsWith("{")) {
      try {
        source = JSON.parse(text);
      } catch {
        throw new SealConfigError(
          field,
          'is not valid JSON; write it as an object or as "key1=value1,key2=value2"',
        );
      }
    } else {
      const out: Record<string, string> = {};
      for (const part of text.split(",")) {
        if (part.trim() === "") continue;
        const eq = part.indexOf("=");
        if (eq <= 0) {
          throw new SealConfigError(
            field,
            `entry ${JSON.stringify(part.trim())} is not key=value; write "key1=value1,key2=value2"`,
          );
        }
        addContextEntry(field, out, part.slice(0, eq).trim(), part.slice(eq + 1).trim());
      }
      return checkContext(field, out);
    }
  }
  if (typeof source !== "object" || source === null || Array.isArray(source)) {
    throw new SealConfigError(
      field,
      'must be a map of strings, e.g. encryption_context = { tenant = "prod" }',
    );
  }
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(source)) {
    if (typeof v !== "string" && typeof v !== "number" && typeof v !== "boolean") {
      throw new SealConfigError(
        field,
        `value of ${JSON.stringify(k)} must be a string, got ${v === null ? "null" : typeof v}`,
      );
    }
    addContextEntry(field, out, k.trim(), String(v));
  }
  return checkContext(field, out);
}

function addContextEntry(field: string, out: Record<string, string>, key: string, value: string): void {
  if (key === "") throw new SealConfigError(field, "keys must not be empty");
  if (Object.hasOwn(out, key)) throw new SealConfigError(field, `key ${JSON.stringify(key)} appears twice`);
  // defineProperty, not assignment: a key named "__proto__" must stay a key, not swap the prototype.
  Object.defineProperty(out, key, { value, enumerable: true, writable: true, configurable: true });
}

function checkContext(field: string, ctx: Record<string, string>): Record<string, string> {
  // KMS rejects context keys with the reserved "aws" prefix (case-insensitive).
  for (const k of Object.keys(ctx)) {
    if (/^aws/i.test(k)) {
      throw new SealConfigError(
        field,
        `key ${JSON.stringify(k)} starts with "aws", which KMS reserves; rename it`,
      );
    }
  }
  return ctx;
}

// us-east-1, eu-west-2, us-gov-west-1, cn-northwest-1, us-isob-east-1, ap-southeast-4, il-central-1.
const REGION = /^[a-z]{2}(?:-[a-z]+)+-\d{1,2}$/;

export function checkRegion(field: string, value: unknown): string {
  if (typeof value !== "string" || !REGION.test(value.trim())) {
    throw new SealConfigError(
      field,
      `${JSON.stringify(value)} is not an AWS region name: use the form "us-east-1" or "eu-west-2" (lower case, dashes, trailing number)`,
    );
  }
  return value.trim();
}

// The UUID shape with any alphanumerics: Vault's own documented example key id
// ("19ec80b0-dfdd-4d97-8164-c6examplekey") must load unchanged; KMS itself judges the id at init.
const KEY_UUID_OR_MRK =
  /^(?:[0-9a-zA-Z]{8}-[0-9a-zA-Z]{4}-[0-9a-zA-Z]{4}-[0-9a-zA-Z]{4}-[0-9a-zA-Z]{12}|mrk-[0-9a-fA-F]{32})$/;
const ALIAS_NAME = /^alias\/[a-zA-Z0-9/_-]{1,250}$/;
const KMS_ARN = /^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:(?:key\/[a-zA-Z0-9-]+|alias\/[a-zA-Z0-9/_-]+)$/;

/** Checks a KMS key reference: key id (UUID or `mrk-…`), key ARN, `alias/name` or alias ARN. */
export function checkKeyId(field: string, value: unknown): string {
  if (typeof value !== "string" || value.trim() === "") {
    throw new SealConfigError(
      field,
      `is required: set kms_key_id (key id, key ARN or alias/name) or one of ${KEY_ID_ENV_VARS.join(", ")}`,
    );
  }
  const id = value.trim();
  if (KEY_UUID_OR_MRK.test(id) || ALIAS_NAME.test(id) || KMS_ARN.test(id)) return id;
  throw new SealConfigError(
    field,
    `${JSON.stringify(id)} is not a KMS key reference: use a key id (1234abcd-12ab-34cd-56ef-1234567890ab), a key ARN (arn:aws:kms:us-east-1:111122223333:key/…), alias/name or an alias ARN`,
  );
}

export function checkEndpoint(field: string, value: unknown): string {
  if (typeof value !== "string" || value.trim() === "") {
    throw new SealConfigError(field, "must be a URL such as https://kms.us-east-1.amazonaws.com");
  }
  let url: URL;
  try {
    url = new URL(value.trim());
  } catch {
    throw new SealConfigError(
      field,
      `${JSON.stringify(value)} is not a URL; write it as https://host[:port]`,
    );
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") {
    throw new SealConfigError(field, `must use http or https, got ${url.protocol}`);
  }
  if (url.username !== "" || url.password !== "") {
    // Never echo the URL: it carries a password.
    throw new SealConfigError(
      field,
      "must not contain user:password; use access_key/secret_key or the AWS credential chain",
    );
  }
  return value.trim();
}

/** A non-empty string, trimmed; a secret is neither echoed nor trimmed (kept exactly, as the settings kernel keeps secrets). */
export function checkString(field: string, value: unknown, secret = false): string {
  if (typeof value !== "string" || value.trim() === "") {
    throw new SealConfigError(
      field,
      secret ? "must be a non-empty string" : `must be a non-empty string, got ${JSON.stringify(value)}`,
    );
  }
  return secret ? value : value.trim();
}

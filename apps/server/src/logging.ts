/**
 * Logging through pino with two layers of secret protection:
 *
 * 1. Redaction by field name (pino `redact`): tokens, keys, shares, OTPs, PINs and secret values
 *    are replaced by `[REDACTED]` wherever they appear up to three levels deep, and the token
 *    headers of a request object are never written.
 * 2. A scrubber over every string that is logged (message and field values): anything shaped like
 *    a Bulwark/Vault token (`hvs.…`, `hvb.…`, `s.…`), a long hex run (key shares are 66 hex
 *    characters) or a long base64 run is masked. That catches a secret that reached an error
 *    message or an unexpected field name — the redaction list alone cannot.
 *
 * The HTTP layer never logs request or response bodies; these layers are the safety net.
 */
import type { Logger as CoreLogger } from "@bulwark/core";
import { type DestinationStream, type Logger, type LoggerOptions, pino } from "pino";

export type LogLevel = "trace" | "debug" | "info" | "warn" | "error";

/** Field names whose values are always redacted. */
export const SECRET_FIELDS: readonly string[] = [
  "token",
  "client_token",
  "root_token",
  "id",
  "key",
  "keys",
  "keys_base64",
  "recovery_keys",
  "recovery_keys_base64",
  "secret_shares_values",
  "share",
  "shares",
  "otp",
  "encoded_token",
  "encoded_root_token",
  "pin",
  "user_pin",
  "password",
  "secret",
  "secret_key",
  "secret_access_key",
  "aws_secret_access_key",
  "session_token",
  "value",
  "data",
  "authorization",
  "x-vault-token",
];

function redactPaths(): string[] {
  const out: string[] = [];
  for (const f of SECRET_FIELDS) {
    const p = /^[A-Za-z_][A-Za-z0-9_]*$/.test(f) ? f : `["${f}"]`;
    const join = (prefix: string) => (p.startsWith("[") ? `${prefix}${p}` : `${prefix}.${p}`);
    out.push(p, join("*"), join("*.*"));
  }
  out.push('req.headers["x-vault-token"]', "req.headers.authorization", "req.headers.cookie");
  return out;
}

const TOKEN_RE = /\b(?:hv[sbr]|s|b|r)\.[0-9A-Za-z_-]{8,}/g;
const HEX_RE = /\b[0-9a-fA-F]{40,}\b/g;
const B64_RE = /[A-Za-z0-9+/_-]{40,}={0,2}/g;
/** Random base64 of 40+ characters has all three classes; storage paths and words rarely do. */
const looksRandom = (m: string) => /[A-Z]/.test(m) && /[a-z]/.test(m) && /[0-9]/.test(m);

/** Masks token-, key- and share-shaped substrings of `s`. */
export function scrubString(s: string): string {
  if (s.length < 10) return s;
  return s
    .replace(TOKEN_RE, "[REDACTED]")
    .replace(HEX_RE, "[REDACTED]")
    .replace(B64_RE, (m) => (looksRandom(m) ? "[REDACTED]" : m));
}

function scrub(value: unknown, depth: number): unknown {
  if (typeof value === "string") return scrubString(value);
  if (depth > 4 || value === null || typeof value !== "object") return value;
  if (value instanceof Error) {
    return {
      type: value.name,
      message: scrubString(value.message),
      code: (value as { code?: unknown }).code,
    };
  }
  if (Array.isArray(value)) return value.map((v) => scrub(v, depth + 1));
  if (ArrayBuffer.isView(value)) return "[binary]";
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) out[k] = scrub(v, depth + 1);
  return out;
}

export interface CreateLoggerOptions {
  level?: LogLevel;
  /** Where lines go (default: stdout). Tests pass a stream to capture output. */
  destination?: DestinationStream;
  /** Extra fields on every line, e.g. `{ component: "server" }`. */
  base?: Record<string, unknown>;
}

/** A pino logger with Bulwark's redaction and scrubbing; use it for everything the server logs. */
export function createLogger(opts: CreateLoggerOptions = {}): Logger {
  const options: LoggerOptions = {
    level: opts.level ?? "info",
    redact: { paths: redactPaths(), censor: "[REDACTED]" },
    base: opts.base ?? { pid: process.pid },
    formatters: {
      log: (obj) => scrub(obj, 0) as Record<string, unknown>,
    },
    hooks: {
      logMethod(args, method) {
        // Messages (and printf-style arguments) get the same scrubbing as fields.
        const clean = args.map((a) => (typeof a === "string" ? scrubString(a) : a)) as typeof args;
        method.apply(this, clean);
      },
    },
  };
  return opts.destination === undefined ? pino(options) : pino(options, opts.destination);
}

/** Adapts a pino logger to `@bulwark/core`'s Logger (message first, then fields). */
export function coreLogger(logger: Logger): CoreLogger {
  return {
    debug: (msg, fields) => logger.debug(fields ?? {}, msg),
    info: (msg, fields) => logger.info(fields ?? {}, msg),
    warn: (msg, fields) => logger.warn(fields ?? {}, msg),
    error: (msg, fields) => logger.error(fields ?? {}, msg),
  };
}

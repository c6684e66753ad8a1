/**
 * Every failure becomes Vault's error shape, `{"errors":["…"]}`, with Vault's status codes:
 * 400 bad request, 403 permission denied, 404 not found, 405 unsupported operation, 413 body too
 * large, 503 sealed/standby/unavailable, 500 anything unexpected.
 */
import { CoreError } from "@bulwark/core";
import { StorageError } from "@bulwark/storage";
import { BadRequestError, KvError, PolicyError, TokenError } from "@bulwark/vault";

export class HttpError extends Error {
  override name = "HttpError";
  readonly status: number;
  readonly errors: string[];
  /**
   * The unredacted message, for the server log only, when the client's text had file system
   * paths or storage ids taken out (see {@link redact}).
   */
  detail?: string;
  constructor(status: number, message: string | string[]) {
    const errors = Array.isArray(message) ? message : message === "" ? [] : [message];
    super(errors.join("; ") || `HTTP ${status}`);
    this.status = status;
    this.errors = errors;
  }
}

/**
 * Vault's exact text: clients match on it. The bao/vault CLI's `status` and `operator unseal`
 * ignore a sealed `sys/leader` only when the error contains "Vault is sealed" (OpenBao 2.6
 * answers this text too), and print an error and exit 1 otherwise.
 */
export const SEALED_MESSAGE = "Vault is sealed";

const UUID = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/gi;
/** An absolute path of two segments or more (`/var/lib/bulwark/data`), wherever it starts. */
const ABSOLUTE_PATH = /(^|[\s"'`(=:,[{])\/(?:[^\s"'`),:\]}]+\/)+[^\s"'`),:\]}]*/g;
/** A stack frame line (`    at fn (file.js:1:2)`). */
const STACK_LINE = /\n\s+at [^\n]*/g;

/**
 * What a client may see of an internal message: no file system paths (the data directory, a
 * plugin's file), no storage ids (a mount's UUID in `logical/<uuid>/…`), no stack frames. The
 * server log keeps the full text (`HttpError.detail`).
 */
export function redact(message: string): string {
  return message
    .replace(STACK_LINE, "")
    .replace(ABSOLUTE_PATH, (_m, lead: string) => `${lead}<path>`)
    .replace(UUID, "<id>");
}

function redacted(status: number, message: string, requestId?: string): HttpError {
  const clean = redact(message);
  const see = requestId === undefined ? "" : ` (request id ${requestId}: details in the server log)`;
  const h = new HttpError(status, clean === message ? message : `${clean}${see}`);
  if (clean !== message) h.detail = message;
  return h;
}

export function permissionDenied(): HttpError {
  return new HttpError(403, "permission denied");
}

const CORE_STATUS: Record<string, number> = {
  sealed: 503,
  not_initialized: 400,
  already_initialized: 400,
  invalid_key: 400,
  invalid_request: 400,
  standby: 503,
  nonce_mismatch: 400,
  no_operation_in_progress: 400,
  operation_in_progress: 400,
  migration: 400,
  // The HSM/KMS cannot be reached (auto-unseal is retrying): unavailable, not a server fault.
  seal_unavailable: 503,
  closed: 503,
};

const BARRIER_STATUS: Record<string, number> = {
  sealed: 503,
  not_initialized: 400,
  already_initialized: 400,
  invalid_key: 400,
  invalid_argument: 400,
  invalid_rotation_config: 400,
};

interface CodedError {
  name?: string;
  code?: unknown;
  statusCode?: unknown;
  message?: unknown;
}

/**
 * Maps any thrown value to a status and Vault-style error list. Messages that come from below the
 * HTTP layer (storage, barrier, seal, unexpected errors) are redacted for the client; `requestId`
 * is then named in the client's text so the full message can be found in the log.
 */
export function toHttpError(e: unknown, requestId?: string): HttpError {
  if (e instanceof HttpError) return e;
  if (e instanceof BadRequestError || e instanceof PolicyError) return new HttpError(400, e.message);
  if (e instanceof KvError) return redacted(e.status, e.message, requestId);
  if (e instanceof TokenError)
    return e.code === "permission_denied" ? permissionDenied() : new HttpError(400, e.message);
  if (e instanceof CoreError) {
    // The sealed reason (if any) is in seal-status's warnings; clients match on Vault's text.
    if (e.code === "sealed") return new HttpError(503, SEALED_MESSAGE);
    return redacted(CORE_STATUS[e.code] ?? 500, e.message, requestId);
  }
  if (e instanceof StorageError) {
    const status =
      e.code === "invalid_key"
        ? 400
        : e.code === "value_too_large"
          ? 413
          : e.code === "unavailable" || e.code === "fenced_write"
            ? 503
            : 500;
    return redacted(status, `storage: ${e.message}`, requestId);
  }
  const c = (typeof e === "object" && e !== null ? e : {}) as CodedError;
  const message = typeof c.message === "string" ? c.message : String(e);
  if (c.name === "BarrierError" || c.name === "BarrierSealedError") {
    const status = BARRIER_STATUS[String(c.code)] ?? 500;
    return status === 503 ? new HttpError(503, SEALED_MESSAGE) : redacted(status, message, requestId);
  }
  if (c.code === "FST_ERR_CTP_BODY_TOO_LARGE") return new HttpError(413, "http: request body too large");
  if (
    typeof c.code === "string" &&
    c.code.startsWith("FST_") &&
    typeof c.statusCode === "number" &&
    c.statusCode < 500
  ) {
    return new HttpError(c.statusCode, message);
  }
  if (typeof c.name === "string" && c.name.startsWith("Seal"))
    return redacted(500, `seal: ${message}`, requestId);
  return redacted(500, `internal error: ${message}`, requestId);
}

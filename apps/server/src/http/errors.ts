/**
 * Every failure becomes Vault's error shape, `{"errors":["…"]}`, with Vault's status codes:
 * 400 bad request, 403 permission denied, 404 not found, 405 unsupported operation, 413 body too
 * large, 503 sealed/standby/unavailable, 500 anything unexpected.
 */
import { CoreError } from "@bulwark/core";
import { StorageError } from "@bulwark/storage";
import { PolicyError } from "../auth/policy.js";
import { TokenError } from "../auth/tokens.js";
import { KvError } from "../kv/common.js";
import { BadRequestError } from "./validate.js";

export class HttpError extends Error {
  override name = "HttpError";
  readonly status: number;
  readonly errors: string[];
  constructor(status: number, message: string | string[]) {
    const errors = Array.isArray(message) ? message : message === "" ? [] : [message];
    super(errors.join("; ") || `HTTP ${status}`);
    this.status = status;
    this.errors = errors;
  }
}

export const SEALED_MESSAGE = "Bulwark is sealed";

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

/** Maps any thrown value to a status and Vault-style error list. */
export function toHttpError(e: unknown): HttpError {
  if (e instanceof HttpError) return e;
  if (e instanceof BadRequestError || e instanceof PolicyError) return new HttpError(400, e.message);
  if (e instanceof KvError) return new HttpError(e.status, e.message);
  if (e instanceof TokenError)
    return e.code === "permission_denied" ? permissionDenied() : new HttpError(400, e.message);
  if (e instanceof CoreError) return new HttpError(CORE_STATUS[e.code] ?? 500, e.message);
  if (e instanceof StorageError) {
    const status =
      e.code === "invalid_key"
        ? 400
        : e.code === "value_too_large"
          ? 413
          : e.code === "unavailable" || e.code === "fenced_write"
            ? 503
            : 500;
    return new HttpError(status, `storage: ${e.message}`);
  }
  const c = (typeof e === "object" && e !== null ? e : {}) as CodedError;
  const message = typeof c.message === "string" ? c.message : String(e);
  if (c.name === "BarrierError" || c.name === "BarrierSealedError") {
    const status = BARRIER_STATUS[String(c.code)] ?? 500;
    return new HttpError(status, status === 503 ? SEALED_MESSAGE : message);
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
  if (typeof c.name === "string" && c.name.startsWith("Seal")) return new HttpError(500, `seal: ${message}`);
  return new HttpError(500, `internal error: ${message}`);
}

/** Stable codes for SealedStore failures (the server maps them to HTTP status codes). */
export type CoreErrorCode =
  | "sealed"
  | "not_initialized"
  | "already_initialized"
  | "invalid_key"
  | "invalid_request"
  | "standby"
  | "nonce_mismatch"
  | "no_operation_in_progress"
  | "operation_in_progress"
  | "migration"
  | "seal_unavailable"
  | "closed";

export class CoreError extends Error {
  override name = "CoreError";
  readonly code: CoreErrorCode;

  constructor(code: CoreErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}

/** The store is sealed: unseal it (or fix the seal) first. */
export class SealedError extends CoreError {
  override name = "SealedError";
  constructor(message = "Bulwark is sealed", options?: { cause?: unknown }) {
    super("sealed", message, options);
  }
}

/** A request was malformed; the message names the field and the fix. */
export class InvalidRequestError extends CoreError {
  override name = "InvalidRequestError";
  constructor(message: string, options?: { cause?: unknown }) {
    super("invalid_request", message, options);
  }
}

import { CodedError, type CodedErrorOptions } from "@bulwark/errors";

/** Stable codes for SealedStore failures (domain "core"; the server maps them to HTTP status codes). */
export const CORE_ERROR_CODES = [
  "sealed",
  "not_initialized",
  "already_initialized",
  "invalid_key",
  "invalid_request",
  "standby",
  "nonce_mismatch",
  "no_operation_in_progress",
  "operation_in_progress",
  "migration",
  "seal_unavailable",
  "closed",
] as const;

export type CoreErrorCode = (typeof CORE_ERROR_CODES)[number];

/** Base of every `@bulwark/core` error: a `CodedError` of domain "core". */
export class CoreError extends CodedError<CoreErrorCode> {
  static override readonly kind: string = "@bulwark/core:CoreError";
  override name = "CoreError";

  constructor(code: CoreErrorCode, message: string, options?: CodedErrorOptions) {
    super("core", code, message, options);
  }
}

/** The store is sealed: unseal it (or fix the seal) first. */
export class SealedError extends CoreError {
  static override readonly kind: string = "@bulwark/core:SealedError";
  override name = "SealedError";
  constructor(message = "Bulwark is sealed", options?: CodedErrorOptions) {
    super("sealed", message, options);
  }
}

/** A request was malformed; the message names the field and the fix. */
export class InvalidRequestError extends CoreError {
  static override readonly kind: string = "@bulwark/core:InvalidRequestError";
  override name = "InvalidRequestError";
  constructor(message: string, options?: CodedErrorOptions) {
    super("invalid_request", message, options);
  }
}

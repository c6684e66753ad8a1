/**
 * Errors of Vault's logical layer. Every error this package throws on purpose is a `VaultError`
 * (a `CodedError` of domain "vault"): callers, the HTTP server among them, map it by `code`, never
 * by class name or message. `VAULT_ERROR_CODES` lists every code so such a mapping can be checked
 * for exhaustiveness.
 *
 * The HTTP status Vault answers for each code is {@link VAULT_ERROR_STATUS}, declared once here; the
 * server shows each answer its own way (apps/server/src/http/errors.ts).
 */
import { CodedError, type CodedErrorOptions } from "@bulwark/errors";

export const VAULT_ERROR_CODES = [
  /** A request (its body, fields, key or token parameters) is malformed or not allowed as given. */
  "invalid_request",
  /** A policy document does not parse or is refused (including changes to root/default). */
  "invalid_policy",
  /** No, an unknown, expired or revoked token, or the ACL refuses the operation. */
  "permission_denied",
  /** Nothing there: a KV key, version or metadata that does not exist, or no mount at the path. */
  "not_found",
  /** A sys/ or auth/ path this library does not serve. */
  "unsupported_path",
  /** The path exists but does not take this operation. */
  "unsupported_operation",
  /** The store is sealed. */
  "sealed",
  /** The store is not (or did not become) the active, writable node. */
  "not_active",
  /** Generate-root: an attempt is already in progress. */
  "operation_in_progress",
  /** Generate-root: no attempt in progress. */
  "no_operation_in_progress",
  /** Generate-root: the nonce is not the attempt's. */
  "nonce_mismatch",
  /** Generate-root: a key share is malformed, or the shares do not open the store. */
  "invalid_key",
  /** An internal invariant does not hold (the library's fault, never the request's). */
  "internal",
  /**
   * Audit devices are enabled and none could record the request (or its response): the request
   * is refused (fail-closed, as Vault). The message names the devices and why; clients see 500.
   */
  "audit_failed",
] as const;

export type VaultErrorCode = (typeof VAULT_ERROR_CODES)[number];

/** Base of every error of `@bulwark/vault`. */
export class VaultError extends CodedError<VaultErrorCode> {
  static override readonly kind: string = "@bulwark/vault:VaultError";
  override name = "VaultError";
  constructor(code: VaultErrorCode, message: string, options?: CodedErrorOptions) {
    super("vault", code, message, options);
  }
}

/**
 * The HTTP status Vault answers for each code: what `status` on {@link KvError} and
 * {@link BadRequestError} gives, and what the server's error table answers. `not_active` and
 * `internal` are this layer's own failures (the node did not become writable; a broken
 * invariant), 500.
 */
export const VAULT_ERROR_STATUS: Readonly<Record<VaultErrorCode, number>> = {
  invalid_request: 400,
  invalid_policy: 400,
  permission_denied: 403,
  not_found: 404,
  unsupported_path: 404,
  unsupported_operation: 405,
  sealed: 503,
  not_active: 500,
  operation_in_progress: 400,
  no_operation_in_progress: 400,
  nonce_mismatch: 400,
  invalid_key: 400,
  internal: 500,
  audit_failed: 500,
};

/** A request body or field that does not match what the operation accepts (names the field). */
export class BadRequestError extends VaultError {
  static override readonly kind: string = "@bulwark/vault:BadRequestError";
  override name = "BadRequestError";
  declare readonly code: "invalid_request";
  constructor(message: string, options?: CodedErrorOptions) {
    super("invalid_request", message, options);
  }
  get status(): number {
    return VAULT_ERROR_STATUS[this.code];
  }
}

/** A policy document that does not parse, or a change to a built-in policy. */
export class PolicyError extends VaultError {
  static override readonly kind: string = "@bulwark/vault:PolicyError";
  override name = "PolicyError";
  declare readonly code: "invalid_policy";
  constructor(message: string, options?: CodedErrorOptions) {
    super("invalid_policy", message, options);
  }
}

export type TokenErrorCode = "invalid_request" | "permission_denied";

/** Token store refusals: `invalid_request`, or `permission_denied` (revoked/expired tokens). */
export class TokenError extends VaultError {
  static override readonly kind: string = "@bulwark/vault:TokenError";
  override name = "TokenError";
  declare readonly code: TokenErrorCode;
  constructor(code: TokenErrorCode, message: string, options?: CodedErrorOptions) {
    super(code, message, options);
  }
}

export type KvErrorCode = "invalid_request" | "not_found" | "unsupported_operation";

/**
 * KV engine and mount table refusals. A `not_found` with an empty message is Vault's bare 404
 * (`{"errors":[]}`).
 */
export class KvError extends VaultError {
  static override readonly kind: string = "@bulwark/vault:KvError";
  override name = "KvError";
  declare readonly code: KvErrorCode;
  constructor(code: KvErrorCode, message: string, options?: CodedErrorOptions) {
    super(code, message, options);
  }
  get status(): number {
    return VAULT_ERROR_STATUS[this.code];
  }
}

export type GenerateRootErrorCode =
  | "invalid_request"
  | "operation_in_progress"
  | "no_operation_in_progress"
  | "nonce_mismatch"
  | "invalid_key"
  | "internal";

/**
 * sys/generate-root refusals (all 400 in Vault), and `internal` for its own invariants (the
 * token and the OTP it is XORed with are the same length).
 */
export class GenerateRootError extends VaultError {
  static override readonly kind: string = "@bulwark/vault:GenerateRootError";
  override name = "GenerateRootError";
  declare readonly code: GenerateRootErrorCode;
  constructor(code: GenerateRootErrorCode, message: string, options?: CodedErrorOptions) {
    super(code, message, options);
  }
}

export type RouteErrorCode = "not_found" | "unsupported_path" | "unsupported_operation";

/** Request routing: nothing mounted at the path, a path not served, an operation not taken. */
export class RouteError extends VaultError {
  static override readonly kind: string = "@bulwark/vault:RouteError";
  override name = "RouteError";
  declare readonly code: RouteErrorCode;
  constructor(code: RouteErrorCode, message: string, options?: CodedErrorOptions) {
    super(code, message, options);
  }
}

/** Authentication or authorisation failed. The message is always Vault's "permission denied". */
export class PermissionDeniedError extends VaultError {
  static override readonly kind: string = "@bulwark/vault:PermissionDeniedError";
  override name = "PermissionDeniedError";
  declare readonly code: "permission_denied";
  constructor(options?: CodedErrorOptions) {
    super("permission_denied", "permission denied", options);
  }
}

/**
 * The store is sealed (`sealed`: a request, or `waitActive` on a sealed store) or did not become
 * the active node in time (`not_active`, from `waitActive`).
 */
export class VaultStateError extends VaultError {
  static override readonly kind: string = "@bulwark/vault:VaultStateError";
  override name = "VaultStateError";
  declare readonly code: "sealed" | "not_active";
  constructor(code: "sealed" | "not_active", message: string, options?: CodedErrorOptions) {
    super(code, message, options);
  }
}

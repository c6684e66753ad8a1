import { CodedError, type CodedErrorOptions } from "@bulwark/errors";

/** Decrypt failures, one code per cause so callers (and operators) can tell them apart. */
export const BARRIER_CIPHERTEXT_ERROR_CODES = [
  "ciphertext_too_short",
  "unknown_version",
  "unknown_term",
  "authentication_failed",
] as const;

export type BarrierCiphertextErrorCode = (typeof BARRIER_CIPHERTEXT_ERROR_CODES)[number];

/** Stable codes for every failure `@bulwark/barrier` reports (domain "barrier"). */
export const BARRIER_ERROR_CODES = [
  ...BARRIER_CIPHERTEXT_ERROR_CODES,
  "sealed",
  "not_initialized",
  "already_initialized",
  "invalid_key",
  "invalid_argument",
  "invalid_keyring",
  "keyring_missing",
  "keyring_not_restored",
  "key_conflict",
  "active_key_removal",
  "invalid_rotation_config",
  "term_exhausted",
  /** Malformed JSON or base64 in a keyring or key record (wrapped by the reader's caller). */
  "invalid_json",
] as const;

export type BarrierErrorCode = (typeof BARRIER_ERROR_CODES)[number];

/** Base of every `@bulwark/barrier` error: a `CodedError` of domain "barrier". */
export class BarrierError extends CodedError<BarrierErrorCode> {
  static override readonly kind: string = "@bulwark/barrier:BarrierError";
  override name = "BarrierError";

  constructor(code: BarrierErrorCode, message: string, options?: CodedErrorOptions) {
    super("barrier", code, message, options);
  }
}

/** Every data and key operation is refused while the barrier is sealed (Vault: "Vault is sealed"). */
export class BarrierSealedError extends BarrierError {
  static override readonly kind: string = "@bulwark/barrier:BarrierSealedError";
  override name = "BarrierSealedError";
  constructor(message = "Bulwark is sealed: unseal the barrier before reading, writing or rotating keys") {
    super("sealed", message);
  }
}

/** `unseal` on storage that holds no keyring (Vault: "Vault is not initialized"). */
export class BarrierNotInitializedError extends BarrierError {
  static override readonly kind: string = "@bulwark/barrier:BarrierNotInitializedError";
  override name = "BarrierNotInitializedError";
  constructor(
    message = "Bulwark is not initialized: there is no keyring at core/keyring; initialize the barrier first",
  ) {
    super("not_initialized", message);
  }
}

/** `initialize` on storage that already holds a keyring (Vault: "Vault is already initialized"). */
export class BarrierAlreadyInitializedError extends BarrierError {
  static override readonly kind: string = "@bulwark/barrier:BarrierAlreadyInitializedError";
  override name = "BarrierAlreadyInitializedError";
  constructor(
    message = "Bulwark is already initialized: core/keyring exists; unseal it instead of initializing again",
  ) {
    super("already_initialized", message);
  }
}

/** The root key does not decrypt the keyring (Vault: "Unseal failed, invalid key"). */
export class BarrierInvalidKeyError extends BarrierError {
  static override readonly kind: string = "@bulwark/barrier:BarrierInvalidKeyError";
  override name = "BarrierInvalidKeyError";
  constructor(
    message = "Unseal failed, invalid key: the root key does not decrypt core/keyring; check the unseal keys or the seal",
    options?: { cause?: unknown },
  ) {
    super("invalid_key", message, options);
  }
}

/** A barrier ciphertext could not be opened; never accompanied by a (partial) plaintext. */
export class BarrierCiphertextError extends BarrierError {
  static override readonly kind: string = "@bulwark/barrier:BarrierCiphertextError";
  override name = "BarrierCiphertextError";
  declare readonly code: BarrierCiphertextErrorCode;
  /** The storage path (AAD) the ciphertext was read for. */
  readonly path: string;
  /** The term in the header, when the ciphertext was long enough to carry one. */
  readonly term: number | undefined;

  constructor(
    code: BarrierCiphertextErrorCode,
    message: string,
    path: string,
    term?: number,
    options?: { cause?: unknown },
  ) {
    super(code, message, options);
    this.path = path;
    this.term = term;
  }
}

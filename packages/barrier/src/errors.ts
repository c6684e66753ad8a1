/** Decrypt failures, one code per cause so callers (and operators) can tell them apart. */
export type BarrierCiphertextErrorCode =
  | "ciphertext_too_short"
  | "unknown_version"
  | "unknown_term"
  | "authentication_failed";

/** Stable codes for every failure `@bulwark/barrier` reports. */
export type BarrierErrorCode =
  | BarrierCiphertextErrorCode
  | "sealed"
  | "not_initialized"
  | "already_initialized"
  | "invalid_key"
  | "invalid_argument"
  | "invalid_keyring"
  | "keyring_missing"
  | "keyring_not_restored"
  | "key_conflict"
  | "active_key_removal"
  | "invalid_rotation_config"
  | "term_exhausted";

export class BarrierError extends Error {
  override name = "BarrierError";
  readonly code: BarrierErrorCode;

  constructor(code: BarrierErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}

/** Every data and key operation is refused while the barrier is sealed (Vault: "Vault is sealed"). */
export class BarrierSealedError extends BarrierError {
  override name = "BarrierSealedError";
  constructor(message = "Bulwark is sealed: unseal the barrier before reading, writing or rotating keys") {
    super("sealed", message);
  }
}

/** `unseal` on storage that holds no keyring (Vault: "Vault is not initialized"). */
export class BarrierNotInitializedError extends BarrierError {
  override name = "BarrierNotInitializedError";
  constructor(
    message = "Bulwark is not initialized: there is no keyring at core/keyring; initialize the barrier first",
  ) {
    super("not_initialized", message);
  }
}

/** `initialize` on storage that already holds a keyring (Vault: "Vault is already initialized"). */
export class BarrierAlreadyInitializedError extends BarrierError {
  override name = "BarrierAlreadyInitializedError";
  constructor(
    message = "Bulwark is already initialized: core/keyring exists; unseal it instead of initializing again",
  ) {
    super("already_initialized", message);
  }
}

/** The root key does not decrypt the keyring (Vault: "Unseal failed, invalid key"). */
export class BarrierInvalidKeyError extends BarrierError {
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

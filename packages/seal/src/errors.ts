/** Stable codes for every failure `@bulwark/seal` and seal providers report. */
export type SealErrorCode =
  | "invalid_config"
  | "invalid_argument"
  | "unavailable"
  | "key_not_found"
  | "encrypt_failed"
  | "decrypt_failed"
  | "not_initialized"
  | "finalized"
  | "invalid_blob_info"
  | "unsupported_operation"
  | "contract_violation"
  | "provider_failed";

/*
 * Cross-copy `instanceof`. A seal provider may be resolved against a different copy of
 * @bulwark/seal than the code catching its errors (ESM and CJS builds of the same version, or two
 * installed versions; `@bulwark/seal/testing` is also bundled separately from the main entry).
 * Plain `instanceof` would then say "not a SealError" and the error would be wrapped or
 * misreported. Every SealError therefore carries the list of error kinds of its class chain under
 * a registry symbol, and `instanceof` falls back to that list.
 */
const KINDS = Symbol.for("@bulwark/seal:error-kinds");

function kindsOf(ctor: unknown): string[] {
  const kinds: string[] = [];
  let c: unknown = ctor;
  while (typeof c === "function") {
    const kind: unknown = Object.hasOwn(c, "kind") ? (c as { kind?: unknown }).kind : undefined;
    if (typeof kind === "string") kinds.push(kind);
    c = Object.getPrototypeOf(c);
  }
  return kinds;
}

function isInstance(ctor: { kind: string }, value: unknown): boolean {
  if (Function.prototype[Symbol.hasInstance].call(ctor, value)) return true;
  if (typeof value !== "object" || value === null) return false;
  const kinds = (value as { [KINDS]?: unknown })[KINDS];
  return Array.isArray(kinds) && kinds.includes(ctor.kind);
}

/** Base class of every seal error; `code` is stable and safe to switch on. */
export class SealError extends Error {
  /** Identifies the class across copies of this package; subclasses set their own. */
  static readonly kind: string = "SealError";

  static override [Symbol.hasInstance](value: unknown): boolean {
    // biome-ignore lint/complexity/noThisInStatic: `this` is the class right of `instanceof` (usually a subclass)
    return isInstance(this, value);
  }

  override name = "SealError";
  readonly code: SealErrorCode;

  constructor(code: SealErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    Object.defineProperty(this, KINDS, { value: kindsOf(new.target), enumerable: false });
  }
}

/** The seal's configuration is unusable. `field` names the option; the message says how to fix it. */
export class SealConfigError extends SealError {
  static override readonly kind: string = "SealConfigError";
  override name = "SealConfigError";
  readonly field: string;

  constructor(field: string, message: string, options?: { cause?: unknown }) {
    super("invalid_config", `invalid seal configuration \`${field}\`: ${message}`, options);
    this.field = field;
  }
}

/** The seal cannot work right now (HSM/KMS unreachable, no key loaded yet); retrying later may help. */
export class SealUnavailableError extends SealError {
  static override readonly kind: string = "SealUnavailableError";
  override name = "SealUnavailableError";

  constructor(message: string, options?: { cause?: unknown }) {
    super("unavailable", message, options);
  }
}

/** A blob names a key this seal does not have (rotated away, wrong seal, wrong HSM token). */
export class SealKeyNotFoundError extends SealError {
  static override readonly kind: string = "SealKeyNotFoundError";
  override name = "SealKeyNotFoundError";
  readonly keyId: string;

  constructor(keyId: string, message?: string, options?: { cause?: unknown }) {
    super(
      "key_not_found",
      message ??
        `seal key ${JSON.stringify(keyId)} is not available to this seal: configure it (for rotated keys, as a previous key) or use the seal that wrote the data`,
      options,
    );
    this.keyId = keyId;
  }
}

/** Decryption failed: wrong key, wrong AAD or tampered data. Never retried; never a partial plaintext. */
export class SealDecryptError extends SealError {
  static override readonly kind: string = "SealDecryptError";
  override name = "SealDecryptError";
  /** The key id the blob names, when known. */
  readonly keyId: string | undefined;

  constructor(message: string, options?: { cause?: unknown; keyId?: string | undefined }) {
    super("decrypt_failed", message, options);
    this.keyId = options?.keyId;
  }
}

/** `encrypt`/`decrypt` was called before `init()` completed. */
export class SealNotInitializedError extends SealError {
  static override readonly kind: string = "SealNotInitializedError";
  override name = "SealNotInitializedError";

  constructor(sealType: string) {
    super(
      "not_initialized",
      `the ${sealType} seal is not initialized: await seal.init() before encrypt or decrypt`,
    );
  }
}

/** The seal was finalized; its keys and sessions are gone. */
export class SealFinalizedError extends SealError {
  static override readonly kind: string = "SealFinalizedError";
  override name = "SealFinalizedError";

  constructor() {
    super("finalized", "seal was finalized; create a new one");
  }
}

/** Bytes that are not a valid BlobInfo protobuf message. */
export class BlobInfoDecodeError extends SealError {
  static override readonly kind: string = "BlobInfoDecodeError";
  override name = "BlobInfoDecodeError";

  constructor(message: string, options?: { cause?: unknown }) {
    super("invalid_blob_info", `invalid BlobInfo: ${message}`, options);
  }
}

import { CodedError, type CodedErrorOptions, errorKinds } from "@bulwark/errors";

/** Stable codes for every failure `@bulwark/seal` and seal providers report (domain "seal"). */
export const SEAL_ERROR_CODES = [
  "invalid_config",
  "invalid_argument",
  "unavailable",
  "key_not_found",
  "encrypt_failed",
  "decrypt_failed",
  "not_initialized",
  "finalized",
  "invalid_blob_info",
  "unsupported_operation",
  "contract_violation",
  "provider_failed",
] as const;

export type SealErrorCode = (typeof SEAL_ERROR_CODES)[number];

/*
 * Cross-copy `instanceof` comes from `CodedError` (kinds "@bulwark/seal:SealError", …). Copies of
 * @bulwark/seal released before that recorded their classes under a registry symbol of their own,
 * with the bare class names as kinds ("SealError", "SealConfigError"). A provider built against
 * such a copy may still be loaded next to this one, so seal errors keep both conventions: they
 * record the legacy list too (for old copies catching our errors), and `instanceof` accepts it
 * (for our code catching theirs).
 */
const LEGACY_KINDS = Symbol.for("@bulwark/seal:error-kinds");
/** The kind every seal error's chain ends with; kinds after it (CodedError's) are not legacy. */
const SEAL_ERROR_KIND = "@bulwark/seal:SealError";

/** "@bulwark/seal-awskms:AwsKmsError" → "AwsKmsError": the name the legacy convention used. */
function legacyKind(kind: string): string {
  return kind.slice(kind.lastIndexOf(":") + 1);
}

function legacyKindsOf(value: unknown): readonly unknown[] {
  if (typeof value !== "object" || value === null) return [];
  const kinds: unknown = Reflect.get(value, LEGACY_KINDS);
  return Array.isArray(kinds) ? kinds : [];
}

/** Base of every seal error: a `CodedError` of domain "seal"; `code` is stable and safe to switch on. */
export class SealError extends CodedError<SealErrorCode> {
  static override readonly kind: string = SEAL_ERROR_KIND;

  static override [Symbol.hasInstance](value: unknown): boolean {
    // biome-ignore lint/complexity/noThisInStatic: `super` runs CodedError's check with `this` kept
    if (super[Symbol.hasInstance](value)) return true;
    // biome-ignore lint/complexity/noThisInStatic: `this` is the class right of `instanceof` (usually a subclass)
    return legacyKindsOf(value).includes(legacyKind(this.kind));
  }

  override name = "SealError";

  constructor(code: SealErrorCode, message: string, options?: CodedErrorOptions) {
    super("seal", code, message, options);
    const kinds = errorKinds(this);
    const legacy = kinds.slice(0, kinds.indexOf(SEAL_ERROR_KIND) + 1).map(legacyKind);
    Object.defineProperty(this, LEGACY_KINDS, { value: legacy, enumerable: false });
  }
}

/** The seal's configuration is unusable. `field` names the option; the message says how to fix it. */
export class SealConfigError extends SealError {
  static override readonly kind: string = "@bulwark/seal:SealConfigError";
  override name = "SealConfigError";
  readonly field: string;

  constructor(field: string, message: string, options?: CodedErrorOptions) {
    super("invalid_config", `invalid seal configuration \`${field}\`: ${message}`, options);
    this.field = field;
  }
}

/** The seal cannot work right now (HSM/KMS unreachable, no key loaded yet); retrying later may help. */
export class SealUnavailableError extends SealError {
  static override readonly kind: string = "@bulwark/seal:SealUnavailableError";
  override name = "SealUnavailableError";

  constructor(message: string, options?: CodedErrorOptions) {
    super("unavailable", message, options);
  }
}

/** A blob names a key this seal does not have (rotated away, wrong seal, wrong HSM token). */
export class SealKeyNotFoundError extends SealError {
  static override readonly kind: string = "@bulwark/seal:SealKeyNotFoundError";
  override name = "SealKeyNotFoundError";
  readonly keyId: string;

  constructor(keyId: string, message?: string, options?: CodedErrorOptions) {
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
  static override readonly kind: string = "@bulwark/seal:SealDecryptError";
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
  static override readonly kind: string = "@bulwark/seal:SealNotInitializedError";
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
  static override readonly kind: string = "@bulwark/seal:SealFinalizedError";
  override name = "SealFinalizedError";

  constructor() {
    super("finalized", "seal was finalized; create a new one");
  }
}

/** Bytes that are not a valid BlobInfo protobuf message. */
export class BlobInfoDecodeError extends SealError {
  static override readonly kind: string = "@bulwark/seal:BlobInfoDecodeError";
  override name = "BlobInfoDecodeError";

  constructor(message: string, options?: CodedErrorOptions) {
    super("invalid_blob_info", `invalid BlobInfo: ${message}`, options);
  }
}

/** Stable codes for every failure `@bulwark/crypto` reports. */
export type CryptoErrorCode =
  | "invalid_key"
  | "invalid_nonce"
  | "authentication_failed"
  | "invalid_argument"
  | "key_zeroed"
  | "shamir_invalid_parameters"
  | "shamir_invalid_shares";

export class CryptoError extends Error {
  override readonly name = "CryptoError";
  readonly code: CryptoErrorCode;

  constructor(code: CryptoErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}

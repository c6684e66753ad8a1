import { CodedError, type CodedErrorOptions } from "@bulwark/errors";

/** Stable codes for every failure `@bulwark/crypto` reports. */
export const CRYPTO_ERROR_CODES = [
  "invalid_key",
  "invalid_nonce",
  "authentication_failed",
  "invalid_argument",
  "key_zeroed",
  "shamir_invalid_parameters",
  "shamir_invalid_shares",
] as const;

export type CryptoErrorCode = (typeof CRYPTO_ERROR_CODES)[number];

/** Base of every `@bulwark/crypto` error: a `CodedError` of domain "crypto". */
export class CryptoError extends CodedError<CryptoErrorCode> {
  static override readonly kind: string = "@bulwark/crypto:CryptoError";
  override readonly name = "CryptoError";

  constructor(code: CryptoErrorCode, message: string, options?: CodedErrorOptions) {
    super("crypto", code, message, options);
  }
}

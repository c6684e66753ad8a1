export {
  AES_256_KEY_BYTES,
  AesGcmKey,
  type AesKey,
  aesGcmDecrypt,
  aesGcmEncrypt,
  aesGcmEncryptInto,
  type Envelope,
  envelopeDecrypt,
  envelopeEncrypt,
  GCM_NONCE_BYTES,
  GCM_TAG_BYTES,
  randomBytes,
} from "./aes-gcm.js";
export { CRYPTO_ERROR_CODES, CryptoError, type CryptoErrorCode } from "./errors.js";
export { constantTimeEqual, SecretBytes } from "./secret-bytes.js";
export { SHAMIR_MAX_SHARES, shamirCombine, shamirSplit, validateShamirParameters } from "./shamir.js";

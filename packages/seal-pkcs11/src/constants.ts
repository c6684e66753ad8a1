/**
 * PKCS#11 numbers this seal uses. They are fixed by the PKCS#11 standard (v2.40), so they are
 * spelled out here instead of being read from the native addon at import time: the config parser
 * and the blob format must work (and be testable) without loading a PKCS#11 library.
 */

/** `CKM_AES_GCM`: AES-GCM in the HSM (default for AES keys). */
export const CKM_AES_GCM = 0x1087;
/** `CKM_AES_CBC_PAD`: AES-CBC with PKCS#7 padding; needs an HMAC key (encrypt-then-MAC). */
export const CKM_AES_CBC_PAD = 0x1085;
/** `CKM_AES_CBC` (no padding): accepted by Vault, refused here (see `parseMechanism`). */
export const CKM_AES_CBC = 0x1082;
/** `CKM_RSA_PKCS_OAEP`: RSA-OAEP, used as an envelope (default for RSA keys). */
export const CKM_RSA_PKCS_OAEP = 0x0009;
/** `CKM_RSA_PKCS`: PKCS#1 v1.5 encryption, refused (padding-oracle prone). */
export const CKM_RSA_PKCS = 0x0001;
/** `CKM_SHA256_HMAC`: the only HMAC mechanism Vault supports. */
export const CKM_SHA256_HMAC = 0x0251;

export const CKM_SHA_1 = 0x0220;
export const CKM_SHA224 = 0x0255;
export const CKM_SHA256 = 0x0250;
export const CKM_SHA384 = 0x0260;
export const CKM_SHA512 = 0x0270;
export const CKG_MGF1_SHA1 = 0x1;
export const CKG_MGF1_SHA224 = 0x5;
export const CKG_MGF1_SHA256 = 0x2;
export const CKG_MGF1_SHA384 = 0x3;
export const CKG_MGF1_SHA512 = 0x4;
export const CKZ_DATA_SPECIFIED = 0x1;

export const CKF_RW_SESSION = 0x2;
export const CKF_SERIAL_SESSION = 0x4;

/** Mechanisms this seal encrypts with. */
export type Pkcs11Mechanism = typeof CKM_AES_GCM | typeof CKM_AES_CBC_PAD | typeof CKM_RSA_PKCS_OAEP;

export const MECHANISM_NAMES: Readonly<Record<number, string>> = {
  [CKM_AES_GCM]: "CKM_AES_GCM",
  [CKM_AES_CBC_PAD]: "CKM_AES_CBC_PAD",
  [CKM_AES_CBC]: "CKM_AES_CBC",
  [CKM_RSA_PKCS_OAEP]: "CKM_RSA_PKCS_OAEP",
  [CKM_RSA_PKCS]: "CKM_RSA_PKCS",
  [CKM_SHA256_HMAC]: "CKM_SHA256_HMAC",
};

/** `CKM_NAME (0x1087)` for messages. */
export function mechanismName(m: number): string {
  return `${MECHANISM_NAMES[m] ?? "CKM_?"} (0x${m.toString(16).padStart(4, "0")})`;
}

/** OAEP hash choices (`rsa_oaep_hash`). SoftHSM 2.6 accepts only sha1. */
export type RsaOaepHash = "sha1" | "sha224" | "sha256" | "sha384" | "sha512";

export const OAEP_HASHES: Readonly<Record<RsaOaepHash, { code: number; hashAlg: number; mgf: number }>> = {
  sha1: { code: 1, hashAlg: CKM_SHA_1, mgf: CKG_MGF1_SHA1 },
  sha224: { code: 2, hashAlg: CKM_SHA224, mgf: CKG_MGF1_SHA224 },
  sha256: { code: 3, hashAlg: CKM_SHA256, mgf: CKG_MGF1_SHA256 },
  sha384: { code: 4, hashAlg: CKM_SHA384, mgf: CKG_MGF1_SHA384 },
  sha512: { code: 5, hashAlg: CKM_SHA512, mgf: CKG_MGF1_SHA512 },
};

/**
 * `KeyInfo.flags` bits written by this seal. The blob records everything decrypt needs, so
 * decrypt never infers the layout from sizes or from the current configuration.
 */
/** The value was encrypted locally with a fresh AES-256-GCM data key; `wrappedKey` holds that key. */
export const FLAG_ENVELOPE = 0x1;
/** Bits 4–7: the OAEP hash (`OAEP_HASHES[..].code`) of an RSA-OAEP blob. */
export const FLAG_OAEP_HASH_SHIFT = 4;
export const FLAG_OAEP_HASH_MASK = 0xf0;
/** Every flag bit this version understands; a blob with others was written by a newer version. */
export const KNOWN_FLAGS = FLAG_ENVELOPE | FLAG_OAEP_HASH_MASK;

export const GCM_IV_BYTES = 12;
export const GCM_TAG_BYTES = 16;
export const CBC_IV_BYTES = 16;
export const HMAC_BYTES = 32;
export const DATA_KEY_BYTES = 32;

/** Default size above which values are envelope-encrypted instead of sent to the HSM whole. */
export const DEFAULT_MAX_DIRECT_BYTES = 4096;
/** Upper bound of the default session pool when the token does not limit sessions. */
export const DEFAULT_MAX_PARALLEL_CAP = 16;

import { constants as nodeCrypto, publicEncrypt } from "node:crypto";
import pkcs11js from "pkcs11js";
import type { Pkcs11Calls } from "./calls.js";
import {
  CBC_IV_BYTES,
  CKM_AES_CBC_PAD,
  CKM_AES_GCM,
  CKM_RSA_PKCS_OAEP,
  CKM_SHA256_HMAC,
  CKZ_DATA_SPECIFIED,
  GCM_IV_BYTES,
  GCM_TAG_BYTES,
  HMAC_BYTES,
  OAEP_HASHES,
  type RsaOaepHash,
} from "./constants.js";
import { CKR_SIGNATURE_INVALID, CKR_SIGNATURE_LEN_RANGE, Pkcs11CallError, rvOf } from "./errors.js";
import { type ResolvedKey, takeOut } from "./seal-types.js";

// Mechanisms: each runs on one borrowed session, start to finish (Init, then one single-part call).

// Read once: property reads on the native addon object are not free on the hot path.
const CK_PARAMS_AES_GCM_V240 = pkcs11js.CK_PARAMS_AES_GCM_v240;

function gcmParams(calls: Pkcs11Calls, iv: Buffer, aad: Buffer | undefined): pkcs11js.AesGCM {
  const params: pkcs11js.AesGCM = {
    type: CK_PARAMS_AES_GCM_V240,
    iv,
    ivBits: calls.config.gcmIvBits ?? iv.length * 8,
    tagBits: GCM_TAG_BYTES * 8,
  };
  if (aad !== undefined && aad.length > 0) params.aad = aad;
  return params;
}

export async function gcmEncrypt(
  calls: Pkcs11Calls,
  session: Buffer,
  key: ResolvedKey,
  pt: Buffer,
  aad: Buffer | undefined,
): Promise<{ iv: Buffer; ct: Buffer }> {
  const lib = calls.lib();
  const iv = Buffer.alloc(GCM_IV_BYTES);
  // CloudHSM ignores a caller IV and writes its own into this buffer (it must start zeroed).
  if (!calls.config.hsmGeneratedIv) calls.call("C_GenerateRandom", () => lib.C_GenerateRandom(session, iv));
  const params = gcmParams(calls, iv, aad);
  calls.call("C_EncryptInit", () =>
    lib.C_EncryptInit(session, { mechanism: CKM_AES_GCM, parameter: params }, key.handle),
  );
  // Single-part call, output sized for ciphertext + tag (graphene's multi-part path breaks on SoftHSM).
  const out = Buffer.alloc(pt.length + GCM_TAG_BYTES);
  const ct = await calls.callAsync("C_Encrypt", [pt, out, iv, params, aad], () =>
    lib.C_EncryptAsync(session, pt, out),
  );
  if (ct.length !== pt.length + GCM_TAG_BYTES) {
    throw new Pkcs11CallError(
      "C_Encrypt",
      undefined,
      `AES-GCM returned ${ct.length} bytes for ${pt.length}; expected ciphertext || 16-byte tag`,
    );
  }
  if (calls.config.hsmGeneratedIv && iv.every((b) => b === 0)) {
    throw new Pkcs11CallError(
      "C_Encrypt",
      undefined,
      "hsmGeneratedIv is set but the HSM did not write an IV; turn hsmGeneratedIv off for this HSM",
    );
  }
  // `ct` spans all of `out` (checked above), and both buffers are this call's own: no copies.
  return { iv, ct };
}

export async function gcmDecrypt(
  calls: Pkcs11Calls,
  session: Buffer,
  key: ResolvedKey,
  iv: Buffer,
  ct: Buffer,
  aad: Buffer | undefined,
): Promise<Uint8Array> {
  const lib = calls.lib();
  const params = gcmParams(calls, iv, aad);
  calls.call("C_DecryptInit", () =>
    lib.C_DecryptInit(session, { mechanism: CKM_AES_GCM, parameter: params }, key.handle),
  );
  // SoftHSM wants room for the tag too, although it returns only the plaintext.
  const out = Buffer.alloc(ct.length);
  const pt = await calls.callAsync("C_Decrypt", [ct, out, iv, params, aad], () =>
    lib.C_DecryptAsync(session, ct, out),
  );
  return takeOut(out, pt);
}

export async function hmacSign(
  calls: Pkcs11Calls,
  session: Buffer,
  key: ResolvedKey,
  data: Buffer,
): Promise<Buffer> {
  const lib = calls.lib();
  calls.call("C_SignInit", () => lib.C_SignInit(session, { mechanism: CKM_SHA256_HMAC }, key.handle));
  const out = Buffer.alloc(HMAC_BYTES);
  const mac = await calls.callAsync("C_Sign", [data, out], () => lib.C_SignAsync(session, data, out));
  return Buffer.from(mac);
}

export async function hmacVerify(
  calls: Pkcs11Calls,
  session: Buffer,
  key: ResolvedKey,
  data: Buffer,
  mac: Buffer,
): Promise<boolean> {
  const lib = calls.lib();
  if (mac.length !== HMAC_BYTES) return false;
  calls.call("C_VerifyInit", () => lib.C_VerifyInit(session, { mechanism: CKM_SHA256_HMAC }, key.handle));
  try {
    return await calls.callAsync("C_Verify", [data, mac], () => lib.C_VerifyAsync(session, data, mac));
  } catch (err) {
    const rv = rvOf(err);
    if (rv === CKR_SIGNATURE_INVALID || rv === CKR_SIGNATURE_LEN_RANGE) return false;
    throw err;
  }
}

export async function cbcEncrypt(
  calls: Pkcs11Calls,
  session: Buffer,
  key: ResolvedKey,
  pt: Buffer,
): Promise<{ iv: Buffer; ct: Buffer }> {
  const lib = calls.lib();
  const iv = Buffer.alloc(CBC_IV_BYTES);
  calls.call("C_GenerateRandom", () => lib.C_GenerateRandom(session, iv));
  calls.call("C_EncryptInit", () =>
    lib.C_EncryptInit(session, { mechanism: CKM_AES_CBC_PAD, parameter: iv }, key.handle),
  );
  const out = Buffer.alloc(pt.length + CBC_IV_BYTES);
  const ct = await calls.callAsync("C_Encrypt", [pt, out, iv], () => lib.C_EncryptAsync(session, pt, out));
  return { iv, ct: Buffer.from(ct) };
}

export async function cbcDecrypt(
  calls: Pkcs11Calls,
  session: Buffer,
  key: ResolvedKey,
  iv: Buffer,
  ct: Buffer,
): Promise<Uint8Array> {
  const lib = calls.lib();
  calls.call("C_DecryptInit", () =>
    lib.C_DecryptInit(session, { mechanism: CKM_AES_CBC_PAD, parameter: iv }, key.handle),
  );
  const out = Buffer.alloc(ct.length);
  const pt = await calls.callAsync("C_Decrypt", [ct, out, iv], () => lib.C_DecryptAsync(session, ct, out));
  return takeOut(out, pt);
}

function oaepParams(hash: RsaOaepHash): pkcs11js.RsaOAEP {
  const h = OAEP_HASHES[hash];
  return { type: pkcs11js.CK_PARAMS_RSA_OAEP, hashAlg: h.hashAlg, mgf: h.mgf, source: CKZ_DATA_SPECIFIED };
}

export async function oaepEncrypt(
  calls: Pkcs11Calls,
  session: Buffer,
  key: ResolvedKey,
  dataKey: Buffer,
): Promise<Buffer> {
  const hash = calls.config.rsaOaepHash;
  if (key.publicKey !== undefined) {
    return publicEncrypt(
      { key: key.publicKey, padding: nodeCrypto.RSA_PKCS1_OAEP_PADDING, oaepHash: hash },
      dataKey,
    );
  }
  const lib = calls.lib();
  const params = oaepParams(hash);
  const pub = key.publicHandle as Buffer;
  calls.call("C_EncryptInit", () =>
    lib.C_EncryptInit(session, { mechanism: CKM_RSA_PKCS_OAEP, parameter: params }, pub),
  );
  const out = Buffer.alloc(key.modulusBytes);
  const ct = await calls.callAsync("C_Encrypt", [dataKey, out, params], () =>
    lib.C_EncryptAsync(session, dataKey, out),
  );
  return Buffer.from(ct);
}

export async function oaepDecrypt(
  calls: Pkcs11Calls,
  session: Buffer,
  key: ResolvedKey,
  wrapped: Buffer,
  hash: RsaOaepHash,
): Promise<Uint8Array> {
  const lib = calls.lib();
  const params = oaepParams(hash);
  calls.call("C_DecryptInit", () =>
    lib.C_DecryptInit(session, { mechanism: CKM_RSA_PKCS_OAEP, parameter: params }, key.handle),
  );
  const out = Buffer.alloc(Math.max(key.modulusBytes, wrapped.length));
  const pt = await calls.callAsync("C_Decrypt", [wrapped, out, params], () =>
    lib.C_DecryptAsync(session, wrapped, out),
  );
  return takeOut(out, pt);
}

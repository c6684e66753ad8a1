import { aesGcmDecrypt, aesGcmEncrypt, randomBytes } from "@bulwark/crypto";
import {
  type BlobInfo,
  createBlobInfo,
  type KeyInfo,
  SealDecryptError,
  SealError,
  SealUnavailableError,
} from "@bulwark/seal";
import {
  CBC_IV_BYTES,
  CKM_AES_CBC_PAD,
  CKM_AES_GCM,
  CKM_RSA_PKCS_OAEP,
  CKM_SHA256_HMAC,
  DATA_KEY_BYTES,
  FLAG_ENVELOPE,
  FLAG_OAEP_HASH_MASK,
  FLAG_OAEP_HASH_SHIFT,
  GCM_IV_BYTES,
  GCM_TAG_BYTES,
  KNOWN_FLAGS,
  mechanismName,
  OAEP_HASHES,
  type RsaOaepHash,
} from "./constants.js";
import { keyById } from "./keys.js";
import {
  cbcDecrypt,
  cbcEncrypt,
  gcmDecrypt,
  gcmEncrypt,
  hmacSign,
  hmacVerify,
  oaepDecrypt,
  oaepEncrypt,
} from "./mechanisms.js";
import {
  type Connection,
  type Current,
  macInput,
  type Pkcs11Runtime,
  type ResolvedKey,
  toBuffer,
} from "./seal-types.js";

// Encrypt / decrypt: the blob layouts (direct in the HSM, or an HSM-wrapped data key) on top of the
// mechanisms, each HSM step on one pooled session.

/** A failure of encrypt/decrypt as the seal reports it (SealErrors pass through). */
export function opError(
  type: string,
  op: "encrypt" | "decrypt",
  err: unknown,
  keyId: string | undefined,
): unknown {
  if (err instanceof SealError) return err;
  if (op === "decrypt") {
    const why = err instanceof Error ? err.message : String(err);
    return new SealDecryptError(
      `${type} seal cannot decrypt the blob with key ${JSON.stringify(keyId)}: ${why} — wrong key, wrong AAD or the blob was changed`,
      { cause: err, keyId },
    );
  }
  const why = err instanceof Error ? err.message : String(err);
  return new SealError("encrypt_failed", `${type} seal encrypt failed: ${why}`, { cause: err });
}

function currentOrThrow(rt: Pkcs11Runtime): Current {
  const c = rt.current;
  if (c === undefined) throw new SealUnavailableError(`the ${rt.calls.type} seal has no key loaded`);
  return c;
}

/** `signal`: see {@link Pkcs11Token.withSession} for what an abort stops. */
export async function encryptValue(
  rt: Pkcs11Runtime,
  plaintext: Uint8Array,
  aadIn: Uint8Array | undefined,
  signal?: AbortSignal,
): Promise<BlobInfo> {
  const cur = currentOrThrow(rt);
  const aad = aadIn !== undefined && aadIn.length > 0 ? toBuffer(aadIn) : undefined;
  // Envelope for RSA (OAEP carries only a few hundred bytes), for large values, and for empty
  // ones: pkcs11js passes a zero-length Buffer as NULL, which C_Encrypt refuses (CKR_ARGUMENTS_BAD).
  const envelope =
    cur.mechanism === CKM_RSA_PKCS_OAEP ||
    plaintext.length === 0 ||
    plaintext.length > rt.calls.config.maxDirectBytes;
  return envelope
    ? encryptEnvelope(rt, cur, plaintext, aad, signal)
    : encryptDirect(rt, cur, toBuffer(plaintext), aad, signal);
}

function encryptDirect(
  rt: Pkcs11Runtime,
  cur: Current,
  pt: Buffer,
  aad: Buffer | undefined,
  signal: AbortSignal | undefined,
): Promise<BlobInfo> {
  const calls = rt.calls;
  return rt.token.withSession(signal, async (conn, session) => {
    const key = keyById(calls, conn, cur.keyId, "encrypt");
    if (cur.mechanism === CKM_AES_GCM) {
      const { iv, ct } = await gcmEncrypt(calls, session, key, pt, aad);
      return createBlobInfo({
        ciphertext: ct,
        iv,
        keyInfo: { mechanism: CKM_AES_GCM, keyId: cur.keyId },
      });
    }
    const hmacKey = keyById(calls, conn, cur.hmacKeyId, "hmac");
    const { iv, ct } = await cbcEncrypt(calls, session, key, pt);
    const hmac = await hmacSign(calls, session, hmacKey, macInput(iv, ct, aad));
    return createBlobInfo({
      ciphertext: ct,
      iv,
      hmac,
      keyInfo: {
        mechanism: CKM_AES_CBC_PAD,
        hmacMechanism: CKM_SHA256_HMAC,
        keyId: cur.keyId,
        hmacKeyId: cur.hmacKeyId,
      },
    });
  });
}

/** The value is encrypted here with a fresh data key; only the data key goes to the HSM. */
async function encryptEnvelope(
  rt: Pkcs11Runtime,
  cur: Current,
  plaintext: Uint8Array,
  aad: Buffer | undefined,
  signal: AbortSignal | undefined,
): Promise<BlobInfo> {
  const calls = rt.calls;
  const dataKey = Buffer.from(randomBytes(DATA_KEY_BYTES));
  try {
    const nonce = randomBytes(GCM_IV_BYTES);
    const ciphertext = aesGcmEncrypt(dataKey, nonce, plaintext, aad);
    return await rt.token.withSession(signal, async (conn, session) => {
      const key = keyById(calls, conn, cur.keyId, "encrypt");
      const keyInfo: Partial<KeyInfo> = {
        mechanism: cur.mechanism,
        keyId: cur.keyId,
        flags: FLAG_ENVELOPE,
      };
      let hmac: Buffer | undefined;
      if (cur.mechanism === CKM_AES_GCM) {
        const { iv, ct } = await gcmEncrypt(calls, session, key, dataKey, undefined);
        keyInfo.wrappedKey = Buffer.concat([iv, ct]);
      } else if (cur.mechanism === CKM_AES_CBC_PAD) {
        const hmacKey = keyById(calls, conn, cur.hmacKeyId, "hmac");
        const { iv, ct } = await cbcEncrypt(calls, session, key, dataKey);
        keyInfo.wrappedKey = Buffer.concat([iv, ct]);
        hmac = await hmacSign(calls, session, hmacKey, macInput(iv, ct, undefined));
        keyInfo.hmacMechanism = CKM_SHA256_HMAC;
        keyInfo.hmacKeyId = cur.hmacKeyId;
      } else {
        keyInfo.wrappedKey = await oaepEncrypt(calls, session, key, dataKey);
        keyInfo.flags = FLAG_ENVELOPE | (OAEP_HASHES[calls.config.rsaOaepHash].code << FLAG_OAEP_HASH_SHIFT);
      }
      return createBlobInfo({ ciphertext, iv: nonce, ...(hmac ? { hmac } : {}), keyInfo });
    });
  } finally {
    dataKey.fill(0);
  }
}

/** What decrypting one blob needs: its parts as Buffers, its key id, and how to report damage. */
interface Parsed {
  info: NonNullable<BlobInfo["keyInfo"]>;
  keyId: string;
  mechanism: number;
  iv: Buffer;
  ct: Buffer;
  aad: Buffer | undefined;
  signal: AbortSignal | undefined;
  damaged: (why: string) => SealDecryptError;
}

/** `signal`: see {@link Pkcs11Token.withSession} for what an abort stops. */
export async function decryptBlob(
  rt: Pkcs11Runtime,
  blob: BlobInfo,
  aadIn: Uint8Array | undefined,
  signal?: AbortSignal,
): Promise<Uint8Array> {
  const info = blob.keyInfo;
  const keyId = info?.keyId ?? "";
  const damaged = (why: string) =>
    new SealDecryptError(
      `${rt.calls.type} seal cannot decrypt: ${why}; the blob is damaged or was not written by this seal`,
      {
        keyId,
      },
    );
  if (info === undefined) throw damaged("the blob has no keyInfo");
  if ((info.flags & ~KNOWN_FLAGS) !== 0) {
    throw damaged(`unknown flags 0x${info.flags.toString(16)} (written by a newer version?)`);
  }
  const aad = aadIn !== undefined && aadIn.length > 0 ? toBuffer(aadIn) : undefined;
  const envelope = (info.flags & FLAG_ENVELOPE) !== 0;
  // Blobs from OpenBao's pkcs11 wrapper record no mechanism: they are direct AES-GCM.
  const mechanism = info.mechanism === 0 && !envelope ? CKM_AES_GCM : info.mechanism;
  const parsed: Parsed = {
    info,
    keyId,
    mechanism,
    iv: toBuffer(blob.iv),
    ct: toBuffer(blob.ciphertext),
    aad,
    signal,
    damaged,
  };
  return envelope ? decryptEnvelope(rt, blob, parsed) : decryptDirect(rt, blob, parsed);
}

function decryptDirect(rt: Pkcs11Runtime, blob: BlobInfo, p: Parsed): Promise<Uint8Array> {
  const { info, keyId, mechanism, iv, ct, aad, signal, damaged } = p;
  const calls = rt.calls;
  if (mechanism === CKM_AES_GCM) {
    if (iv.length === 0 || ct.length < GCM_TAG_BYTES)
      throw damaged(`AES-GCM needs an IV and at least ${GCM_TAG_BYTES} bytes`);
    return rt.token.withSession(signal, async (conn, session) => {
      const key = keyFor(rt, conn, keyId, "aes");
      return gcmDecrypt(calls, session, key, iv, ct, aad);
    });
  }
  if (mechanism === CKM_AES_CBC_PAD) {
    if (iv.length !== CBC_IV_BYTES || ct.length === 0 || ct.length % CBC_IV_BYTES !== 0) {
      throw damaged("AES-CBC needs a 16-byte IV and whole blocks");
    }
    const hmac = toBuffer(blob.hmac);
    return rt.token.withSession(signal, async (conn, session) => {
      const key = keyFor(rt, conn, keyId, "aes");
      const hmacKey = keyById(calls, conn, info.hmacKeyId, "hmac");
      // Encrypt-then-MAC: nothing is decrypted before the MAC checks out.
      if (!(await hmacVerify(calls, session, hmacKey, macInput(iv, ct, aad), hmac))) {
        throw new SealDecryptError(
          `${calls.type} seal: HMAC check failed for key ${JSON.stringify(keyId)} — wrong key, wrong AAD or the blob was changed`,
          { keyId },
        );
      }
      return cbcDecrypt(calls, session, key, iv, ct);
    });
  }
  throw damaged(
    `mechanism ${mechanismName(mechanism)} without the envelope flag is not a layout this seal writes`,
  );
}

/** Envelope: unwrap the data key in the HSM, decrypt the value here. */
async function decryptEnvelope(rt: Pkcs11Runtime, blob: BlobInfo, p: Parsed): Promise<Uint8Array> {
  const { keyId, iv, ct, aad, damaged } = p;
  if (iv.length !== GCM_IV_BYTES || ct.length < GCM_TAG_BYTES)
    throw damaged("the envelope needs a 12-byte IV and a GCM tag");
  const dataKey = await unwrapDataKey(rt, blob, p);
  try {
    if (dataKey.length !== DATA_KEY_BYTES) throw damaged("the unwrapped data key has the wrong size");
    try {
      return aesGcmDecrypt(dataKey, iv, ct, aad);
    } catch (cause) {
      throw new SealDecryptError(
        `${rt.calls.type} seal: the value did not authenticate under its data key (key ${JSON.stringify(keyId)}) — wrong AAD or the blob was changed`,
        { cause, keyId },
      );
    }
  } finally {
    dataKey.fill(0);
  }
}

function unwrapDataKey(rt: Pkcs11Runtime, blob: BlobInfo, p: Parsed): Promise<Uint8Array> {
  const { info, keyId, mechanism, signal, damaged } = p;
  const calls = rt.calls;
  const wrapped = toBuffer(info.wrappedKey);
  if (mechanism === CKM_AES_GCM) {
    if (wrapped.length !== GCM_IV_BYTES + DATA_KEY_BYTES + GCM_TAG_BYTES)
      throw damaged("wrapped data key has the wrong size");
    return rt.token.withSession(signal, async (conn, session) => {
      const key = keyFor(rt, conn, keyId, "aes");
      return gcmDecrypt(
        calls,
        session,
        key,
        wrapped.subarray(0, GCM_IV_BYTES),
        wrapped.subarray(GCM_IV_BYTES),
        undefined,
      );
    });
  }
  if (mechanism === CKM_AES_CBC_PAD) {
    if (wrapped.length !== CBC_IV_BYTES + DATA_KEY_BYTES + CBC_IV_BYTES)
      throw damaged("wrapped data key has the wrong size");
    const hmac = toBuffer(blob.hmac);
    return rt.token.withSession(signal, async (conn, session) => {
      const key = keyFor(rt, conn, keyId, "aes");
      const hmacKey = keyById(calls, conn, info.hmacKeyId, "hmac");
      const wiv = wrapped.subarray(0, CBC_IV_BYTES);
      const wct = wrapped.subarray(CBC_IV_BYTES);
      if (!(await hmacVerify(calls, session, hmacKey, macInput(wiv, wct, undefined), hmac))) {
        throw new SealDecryptError(
          `${calls.type} seal: HMAC check of the wrapped data key failed for key ${JSON.stringify(keyId)}`,
          {
            keyId,
          },
        );
      }
      return cbcDecrypt(calls, session, key, wiv, wct);
    });
  }
  if (mechanism === CKM_RSA_PKCS_OAEP) {
    const code = (info.flags & FLAG_OAEP_HASH_MASK) >> FLAG_OAEP_HASH_SHIFT;
    const hash = (Object.keys(OAEP_HASHES) as RsaOaepHash[]).find((h) => OAEP_HASHES[h].code === code);
    if (hash === undefined) throw damaged(`unknown OAEP hash code ${code}`);
    return rt.token.withSession(signal, async (conn, session) => {
      const key = keyFor(rt, conn, keyId, "rsa");
      return oaepDecrypt(calls, session, key, wrapped, hash);
    });
  }
  throw damaged(`unknown mechanism ${mechanismName(mechanism)}`);
}

/** The blob's key, checked to be of the kind its mechanism needs. */
function keyFor(rt: Pkcs11Runtime, conn: Connection, keyId: string, kind: "aes" | "rsa"): ResolvedKey {
  const key = keyById(rt.calls, conn, keyId, "encrypt");
  if (key.kind !== kind) {
    throw new SealDecryptError(
      `${rt.calls.type} seal: the blob needs an ${kind.toUpperCase()} key but ${JSON.stringify(keyId)} is ${key.kind.toUpperCase()}; the blob is damaged`,
      { keyId },
    );
  }
  return key;
}

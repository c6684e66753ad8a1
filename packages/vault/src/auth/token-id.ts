/**
 * Token strings. Bulwark issues service tokens as OpenBao 2.6.2 does by default (server-side
 * consistent tokens off): `s.` followed by 24 base62 characters (about 143 bits of randomness), 26
 * characters in all. It accepts every root-namespace token format Vault and OpenBao issue: `s.`,
 * `hvs.` (Vault ≥ 1.10 style), legacy dot-less ids (Vault < 1.0, and custom ids). Storage sees a
 * token only inside its own (barrier-encrypted) entry, as Vault keeps it; every storage name is
 * salted (token-records.ts `saltId`).
 */
import { constantTimeEqual } from "@bulwark/crypto";
import { randomBase62 } from "../ids.js";

export const TOKEN_PREFIX = "s.";
/** Random characters after the prefix (Vault's `TokenLength`). */
export const TOKEN_RANDOM_LENGTH = 24;
/**
 * Length of a whole token, and so of a generate-root OTP: OpenBao 2.6.2 answers `otp_length: 26`
 * (`TokenLength + len("s.")`, the prefix of the tokens it issues).
 */
export const TOKEN_LENGTH = TOKEN_PREFIX.length + TOKEN_RANDOM_LENGTH;

export function generateToken(): string {
  return TOKEN_PREFIX + randomBase62(TOKEN_RANDOM_LENGTH);
}

/** Accessors and cubbyhole ids: 24 base62 characters, like Vault's. */
export function generateAccessor(): string {
  return randomBase62(24);
}

/** A service token id as Vault/OpenBao issue them (`s.…`, `hvs.…`): it has a cubbyhole_id. */
export function isServiceTokenId(id: string): boolean {
  return id.startsWith("s.") || id.startsWith("hvs.");
}

/** Batch tokens (`b.…`, `hvb.…`) are barrier-encrypted entries carried by the token itself. */
export function isBatchTokenId(id: string): boolean {
  return id.startsWith("b.") || id.startsWith("hvb.");
}

/** Constant-time equality of two strings (digests, salted ids, accessors). */
export function digestsEqual(a: string, b: string): boolean {
  const x = Buffer.from(a, "utf8");
  const y = Buffer.from(b, "utf8");
  return x.length === y.length && constantTimeEqual(x, y);
}

/**
 * Whether `s` could be a token at all. Anything else is refused before it is salted or looked up
 * (bounded work for junk headers).
 */
export function plausibleToken(s: string): boolean {
  return s.length > 0 && s.length <= 256 && /^[\x21-\x7e]+$/.test(s);
}

/**
 * Vault ≥ 1.10's server-side consistent service tokens: `hvs.` + base64url (no padding) of the
 * protobuf `SignedToken{1 token_version, 2 hmac, 3 token}` whose `token` is `Token{1 random,
 * 2 local_index, 3 index_epoch}`; `random` is the id the entry is stored under (`hvs.` + 24 base62).
 * OpenBao tells them from plain `hvs.` ids by length (`IsSSCToken`: longer than 34 characters).
 */
export function isSscTokenId(id: string): boolean {
  return id.startsWith("hvs.") && id.length > 34;
}

export interface SscToken {
  /** The stored token id (`Token.random`). */
  inner: string;
  /** The marshalled `Token` the HMAC covers. */
  signed: Uint8Array;
  hmac: Uint8Array;
}

/** Decodes an SSC token, or `undefined` when it is not one (any malformation). */
export function decodeSscToken(id: string): SscToken | undefined {
  if (!isSscTokenId(id)) return undefined;
  const body = id.slice(4);
  if (!/^[A-Za-z0-9_-]+$/.test(body)) return undefined;
  const outer = protoFields(new Uint8Array(Buffer.from(body, "base64url")));
  const signed = outer?.get(3);
  const hmac = outer?.get(2);
  if (!(signed instanceof Uint8Array) || !(hmac instanceof Uint8Array)) return undefined;
  const random = protoFields(signed)?.get(1);
  if (!(random instanceof Uint8Array)) return undefined;
  const inner = Buffer.from(random).toString("utf8");
  return plausibleToken(inner) ? { inner, signed, hmac } : undefined;
}

/** The last value of each field of a protobuf message (varints as numbers, bytes as bytes). */
function protoFields(buf: Uint8Array): Map<number, number | Uint8Array> | undefined {
  const out = new Map<number, number | Uint8Array>();
  let i = 0;
  const varint = (): number | undefined => {
    let v = 0;
    for (let shift = 0; shift < 64; shift += 7) {
      if (i >= buf.length) return undefined;
      const b = buf[i++] as number;
      v += (b & 0x7f) * 2 ** shift;
      if ((b & 0x80) === 0) return v;
    }
    return undefined;
  };
  while (i < buf.length) {
    const key = varint();
    if (key === undefined) return undefined;
    const field = Math.floor(key / 8);
    const wire = key % 8;
    if (wire === 0) {
      const v = varint();
      if (v === undefined) return undefined;
      out.set(field, v);
    } else if (wire === 2) {
      const n = varint();
      if (n === undefined || i + n > buf.length) return undefined;
      out.set(field, buf.subarray(i, i + n));
      i += n;
    } else return undefined; // SignedToken and Token use no other wire types
  }
  return out;
}

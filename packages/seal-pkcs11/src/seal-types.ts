import type { KeyObject } from "node:crypto";
import type { Session, Slot } from "graphene-pk11";
import type { Pkcs11Calls } from "./calls.js";
import type { Pkcs11Mechanism } from "./constants.js";
import type { SessionPool, SessionPoolStats } from "./session-pool.js";
import type { Pkcs11Token } from "./token.js";

/** What a token and the seal's configuration allow; fixed at construction (profiles set them). */
export interface Pkcs11Capabilities {
  /** The HSM writes its own GCM IV into the IV buffer (CloudHSM). */
  hsmGeneratedIv: boolean;
  /** Largest value encrypted in the HSM directly; larger ones use an HSM-wrapped data key. */
  maxDirectBytes: number;
  /** C_OpenSession flags. */
  sessionFlags: number;
}

/** `health().details` of a PKCS#11 seal. */
export interface Pkcs11HealthDetails {
  library: string;
  slot: string;
  tokenLabel: string;
  tokenSerial: string;
  mechanism: string;
  pool: SessionPoolStats;
  reconnects: number;
  lastError: { message: string; at: string } | undefined;
  roundTripMs: number;
}

export type KeyKind = "aes" | "rsa" | "hmac";

export interface ResolvedKey {
  /** `<label>:<CKA_ID hex>`, recorded in blobs. */
  keyId: string;
  label: string;
  id: Buffer;
  kind: KeyKind;
  /** Secret key, or the RSA private key. */
  handle: Buffer;
  /** RSA: public key object in the HSM (undefined when only the private key exists). */
  publicHandle: Buffer | undefined;
  /** RSA: public key for local encryption (rsa_encrypt_local, or no public key object). */
  publicKey: KeyObject | undefined;
  modulusBytes: number;
}

export interface Connection {
  slot: Slot;
  slotId: bigint;
  tokenLabel: string;
  tokenSerial: string;
  login: Session;
  pool: SessionPool;
  mechanisms: Set<number>;
  /** Key handles by purpose and key id; object handles belong to a login, so a reconnect starts empty. */
  keys: { encrypt: Map<string, ResolvedKey>; hmac: Map<string, ResolvedKey> };
  broken: boolean;
}

/** An initialised token as C_GetTokenInfo described it while the slot was chosen. */
export interface FoundToken {
  slot: Slot;
  slotId: bigint;
  label: string;
  serial: string;
  /** ulMaxRwSessionCount, for the pool size. */
  maxRwSessionCount: number;
}

/** The currently configured key(s) and how they are used. */
export interface Current {
  keyId: string;
  mechanism: Pkcs11Mechanism;
  hmacKeyId: string;
}

/**
 * The state one {@link Pkcs11Seal} shares with the modules it is split into: the call wrappers
 * (library, tracing), the token connection with its session pool, and the key in use.
 */
export interface Pkcs11Runtime {
  readonly calls: Pkcs11Calls;
  readonly token: Pkcs11Token;
  current: Current | undefined;
}

export function toBuffer(u: Uint8Array): Buffer {
  return Buffer.isBuffer(u) ? u : Buffer.from(u.buffer, u.byteOffset, u.byteLength);
}

/** `iv || ct`, plus `aad || u64be(len(aad))` when there is AAD (the length stops boundary shifts). */
export function macInput(iv: Uint8Array, ct: Uint8Array, aad: Uint8Array | undefined): Buffer {
  const tail = aad !== undefined && aad.length > 0 ? aad.length + 8 : 0;
  const out = Buffer.alloc(iv.length + ct.length + tail);
  out.set(iv, 0);
  out.set(ct, iv.length);
  if (tail > 0 && aad !== undefined) {
    out.set(aad, iv.length + ct.length);
    out.writeBigUInt64BE(BigInt(aad.length), out.length - 8);
  }
  return out;
}

/** A copy in a buffer of its own; the source (an HSM output buffer) is wiped. */
export function takeOut(out: Buffer, result: Buffer): Uint8Array {
  const copy = new Uint8Array(result.length);
  copy.set(result);
  out.fill(0);
  return copy;
}

/**
 * `<label>:<CKA_ID hex>` (ours, OpenBao's) → label and id; anything else is a bare label, which is
 * what Vault Enterprise records in `key_id` / `hmac_key_id` ("seal entries track the label").
 */
export function splitKeyId(keyId: string): { label: string; id: Buffer | undefined } {
  const at = keyId.lastIndexOf(":");
  const hex = at < 0 ? "" : keyId.slice(at + 1);
  if (at < 0 || !/^([0-9a-f]{2})*$/i.test(hex)) return { label: keyId, id: undefined };
  return { label: keyId.slice(0, at), id: hex.length > 0 ? Buffer.from(hex, "hex") : undefined };
}

export function formatKeyId(label: string, id: Buffer): string {
  return `${label}:${id.toString("hex")}`;
}

export function describeSelector(label: string | undefined, id: Buffer | undefined): string {
  const parts: string[] = [];
  if (label !== undefined) parts.push(`labelled ${JSON.stringify(label)}`);
  if (id !== undefined) parts.push(`with CKA_ID 0x${id.toString("hex")}`);
  return parts.join(" ");
}

import { BinaryReader, BinaryWriter, WireType } from "@bufbuild/protobuf/wire";
import { BlobInfoDecodeError, SealError } from "./errors.js";

/**
 * How a blob's key was used (go-kms-wrapping `KeyInfo`, proto message
 * `github.com.hashicorp.go.kms.wrapping.v2.types.KeyInfo`). Integers are `uint64` on the wire and
 * limited to `Number.MAX_SAFE_INTEGER` here (every mechanism and flag value in use is far below).
 */
export interface KeyInfo {
  /** Provider mechanism: PKCS#11 `CKM_*` (0x1087 AES-GCM), AWS KMS 0 direct / 1 envelope. Field 1. */
  mechanism: number;
  /** HMAC mechanism when the blob carries an HMAC (PKCS#11 0x0251 SHA256-HMAC). Field 2. */
  hmacMechanism: number;
  /** The key that encrypted the blob: decrypt picks its key from here. Field 3. */
  keyId: string;
  /** The HMAC key, when separate. Field 4. */
  hmacKeyId: string;
  /** Envelope mode: the data key, encrypted by the HSM/KMS key. Field 5. */
  wrappedKey: Uint8Array;
  /** Provider flags. Field 6. */
  flags: number;
}

/**
 * A seal's output (go-kms-wrapping `BlobInfo`). Everything needed to decrypt, except the key, is
 * in the blob — so decrypt never depends on "current config" alone.
 */
export interface BlobInfo {
  /** The encrypted bytes (for AEAD-style seals `IV || ct || tag`). Field 1. */
  ciphertext: Uint8Array;
  /** The IV when the provider keeps it apart from the ciphertext (PKCS#11, KMS envelope). Field 2. */
  iv: Uint8Array;
  /** HMAC over the ciphertext when the mechanism is not an AEAD. Field 3. */
  hmac: Uint8Array;
  /** Set on seal-wrapped storage entries (deprecated in go-kms-wrapping, still written by Vault). Field 4. */
  wrapped: boolean;
  /** Absent only on blobs that were never encrypted. Field 5. */
  keyInfo?: KeyInfo;
  /** Deprecated in go-kms-wrapping; Vault sets it to the storage key while unwrapping. Field 6. */
  valuePath: string;
  /** Never set by a seal; part of the message for wire compatibility. Field 7. */
  plaintext: Uint8Array;
}

/** Input for {@link createBlobInfo}: any subset of the fields; `keyInfo` may be partial too. */
export type BlobInfoInit = Partial<Omit<BlobInfo, "keyInfo">> & { keyInfo?: Partial<KeyInfo> | undefined };

const EMPTY = new Uint8Array(0);

/** A KeyInfo with proto3 defaults (0, "", empty bytes) for every field not given. */
export function createKeyInfo(init: Partial<KeyInfo> = {}): KeyInfo {
  return {
    mechanism: init.mechanism ?? 0,
    hmacMechanism: init.hmacMechanism ?? 0,
    keyId: init.keyId ?? "",
    hmacKeyId: init.hmacKeyId ?? "",
    wrappedKey: init.wrappedKey ?? EMPTY,
    flags: init.flags ?? 0,
  };
}

/** A BlobInfo with proto3 defaults for every field not given; `keyInfo` stays absent unless given. */
export function createBlobInfo(init: BlobInfoInit = {}): BlobInfo {
  const blob: BlobInfo = {
    ciphertext: init.ciphertext ?? EMPTY,
    iv: init.iv ?? EMPTY,
    hmac: init.hmac ?? EMPTY,
    wrapped: init.wrapped ?? false,
    valuePath: init.valuePath ?? "",
    plaintext: init.plaintext ?? EMPTY,
  };
  if (init.keyInfo !== undefined) blob.keyInfo = createKeyInfo(init.keyInfo);
  return blob;
}

// ---------------------------------------------------------------------------------------------
// Encoding. Fields are written in field-number order, as Go's protobuf runtime does, so the bytes
// match what Vault writes for the same blob. proto3: fields equal to their default are omitted,
// except a present (non-nil) key_info, which Go always writes, even when empty (`2a 00`).

function invalid(field: string, problem: string): SealError {
  return new SealError("invalid_argument", `cannot encode BlobInfo: \`${field}\` ${problem}`);
}

function checkBytes(field: string, v: unknown): Uint8Array {
  if (!(v instanceof Uint8Array)) throw invalid(field, "must be a Uint8Array");
  return v;
}

// A lone UTF-16 surrogate cannot be encoded as UTF-8; TextEncoder would silently turn it into
// U+FFFD and the decoded blob would not equal the encoded one.
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

function checkString(field: string, v: unknown): string {
  if (typeof v !== "string") throw invalid(field, "must be a string");
  if (LONE_SURROGATE.test(v)) throw invalid(field, "contains a lone UTF-16 surrogate (not valid UTF-8)");
  return v;
}

function checkUint64(field: string, v: unknown): number {
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0) {
    throw invalid(field, `must be an integer from 0 to Number.MAX_SAFE_INTEGER, got ${String(v)}`);
  }
  return v;
}

function writeKeyInfo(w: BinaryWriter, k: KeyInfo): void {
  if (typeof k !== "object" || k === null) throw invalid("keyInfo", "must be an object");
  const mechanism = checkUint64("keyInfo.mechanism", k.mechanism);
  const hmacMechanism = checkUint64("keyInfo.hmacMechanism", k.hmacMechanism);
  const keyId = checkString("keyInfo.keyId", k.keyId);
  const hmacKeyId = checkString("keyInfo.hmacKeyId", k.hmacKeyId);
  const wrappedKey = checkBytes("keyInfo.wrappedKey", k.wrappedKey);
  const flags = checkUint64("keyInfo.flags", k.flags);
  if (mechanism !== 0) w.tag(1, WireType.Varint).uint64(mechanism);
  if (hmacMechanism !== 0) w.tag(2, WireType.Varint).uint64(hmacMechanism);
  if (keyId !== "") w.tag(3, WireType.LengthDelimited).string(keyId);
  if (hmacKeyId !== "") w.tag(4, WireType.LengthDelimited).string(hmacKeyId);
  if (wrappedKey.length > 0) w.tag(5, WireType.LengthDelimited).bytes(wrappedKey);
  if (flags !== 0) w.tag(6, WireType.Varint).uint64(flags);
}

/**
 * Serialises a BlobInfo to protobuf bytes, wire-compatible with go-kms-wrapping v2. Throws
 * `SealError("invalid_argument")` when a field has the wrong type or an out-of-range integer.
 */
export function encodeBlobInfo(b: BlobInfo): Uint8Array {
  if (typeof b !== "object" || b === null) throw invalid("blob", "must be a BlobInfo object");
  const ciphertext = checkBytes("ciphertext", b.ciphertext);
  const iv = checkBytes("iv", b.iv);
  const hmac = checkBytes("hmac", b.hmac);
  if (typeof b.wrapped !== "boolean") throw invalid("wrapped", "must be a boolean");
  const valuePath = checkString("valuePath", b.valuePath);
  const plaintext = checkBytes("plaintext", b.plaintext);

  const w = new BinaryWriter();
  if (ciphertext.length > 0) w.tag(1, WireType.LengthDelimited).bytes(ciphertext);
  if (iv.length > 0) w.tag(2, WireType.LengthDelimited).bytes(iv);
  if (hmac.length > 0) w.tag(3, WireType.LengthDelimited).bytes(hmac);
  if (b.wrapped) w.tag(4, WireType.Varint).bool(true);
  if (b.keyInfo !== undefined) {
    w.tag(5, WireType.LengthDelimited).fork();
    writeKeyInfo(w, b.keyInfo);
    w.join();
  }
  if (valuePath !== "") w.tag(6, WireType.LengthDelimited).string(valuePath);
  if (plaintext.length > 0) w.tag(7, WireType.LengthDelimited).bytes(plaintext);
  return w.finish();
}

// ---------------------------------------------------------------------------------------------
// Decoding.

/** Thrown inside the decoder; turned into a BlobInfoDecodeError (with this as its cause) at the boundary. */
class Malformed extends SealError {
  static override readonly kind: string = "@bulwark/seal:BlobInfoMalformed";
  override name = "BlobInfoMalformed";
  constructor(message: string) {
    super("invalid_blob_info", message);
  }
}

function expectWireType(field: string, actual: WireType, expected: WireType): void {
  // Stricter than Go (which would treat a mismatched wire type as an unknown field): a known field
  // with the wrong wire type means the bytes are not a BlobInfo, which matters for seal-wrap
  // detection where a false positive would hand foreign bytes to the seal.
  if (actual !== expected) {
    throw new Malformed(`field ${field} has wire type ${actual}, expected ${expected}`);
  }
}

function readUint64(r: BinaryReader, field: string): number {
  const raw = r.uint64();
  const big = typeof raw === "bigint" ? raw : BigInt(raw);
  // Precision guard: a larger value cannot round-trip through a JS number.
  if (big > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw new Malformed(`${field} = ${big} is larger than Number.MAX_SAFE_INTEGER`);
  }
  return Number(big);
}

// The reader takes a length prefix as a 32-bit varint and drops higher bits, so a length of
// 2^32 + 3 would read as 3. Go reads it as 64 bits and refuses a length past the end: so do we.
function checkLength(r: BinaryReader): void {
  const start = r.pos;
  const raw = r.uint64();
  r.pos = start;
  const len = typeof raw === "bigint" ? raw : BigInt(raw);
  if (len > BigInt(r.len - start)) throw new Malformed(`a length of ${len} runs past the end`);
}

// Byte fields are copied out of the input so the blob does not alias (and keep alive) the buffer
// it was decoded from.
function readBytes(r: BinaryReader): Uint8Array {
  checkLength(r);
  return r.bytes().slice();
}

function readString(r: BinaryReader): string {
  checkLength(r);
  // Strict UTF-8, like Go's proto3 string validation.
  return r.string(true);
}

function skipUnknown(r: BinaryReader, fieldNo: number, wireType: WireType): void {
  if (wireType === WireType.LengthDelimited) checkLength(r);
  // proto3: unknown fields (e.g. client_data = 8, key_type = 7) are skipped.
  r.skip(wireType, fieldNo);
}

function readKeyInfo(bytes: Uint8Array, into: KeyInfo): KeyInfo {
  const r = new BinaryReader(bytes);
  while (r.pos < r.len) {
    const [no, wt] = r.tag();
    switch (no) {
      case 1:
        expectWireType("key_info.mechanism", wt, WireType.Varint);
        into.mechanism = readUint64(r, "key_info.mechanism");
        break;
      case 2:
        expectWireType("key_info.hmac_mechanism", wt, WireType.Varint);
        into.hmacMechanism = readUint64(r, "key_info.hmac_mechanism");
        break;
      case 3:
        expectWireType("key_info.key_id", wt, WireType.LengthDelimited);
        into.keyId = readString(r);
        break;
      case 4:
        expectWireType("key_info.hmac_key_id", wt, WireType.LengthDelimited);
        into.hmacKeyId = readString(r);
        break;
      case 5:
        expectWireType("key_info.wrapped_key", wt, WireType.LengthDelimited);
        into.wrappedKey = readBytes(r);
        break;
      case 6:
        expectWireType("key_info.flags", wt, WireType.Varint);
        into.flags = readUint64(r, "key_info.flags");
        break;
      default:
        skipUnknown(r, no, wt);
    }
  }
  return into;
}

function readBlobInfo(bytes: Uint8Array): BlobInfo {
  const blob = createBlobInfo();
  const r = new BinaryReader(bytes);
  while (r.pos < r.len) {
    const [no, wt] = r.tag();
    switch (no) {
      case 1:
        expectWireType("ciphertext", wt, WireType.LengthDelimited);
        blob.ciphertext = readBytes(r);
        break;
      case 2:
        expectWireType("iv", wt, WireType.LengthDelimited);
        blob.iv = readBytes(r);
        break;
      case 3:
        expectWireType("hmac", wt, WireType.LengthDelimited);
        blob.hmac = readBytes(r);
        break;
      case 4:
        expectWireType("wrapped", wt, WireType.Varint);
        blob.wrapped = r.bool();
        break;
      case 5:
        expectWireType("key_info", wt, WireType.LengthDelimited);
        // proto3 merge semantics: a repeated embedded message merges into the earlier one.
        checkLength(r);
        blob.keyInfo = readKeyInfo(r.bytes(), blob.keyInfo ?? createKeyInfo());
        break;
      case 6:
        expectWireType("value_path", wt, WireType.LengthDelimited);
        blob.valuePath = readString(r);
        break;
      case 7:
        expectWireType("plaintext", wt, WireType.LengthDelimited);
        blob.plaintext = readBytes(r);
        break;
      default:
        skipUnknown(r, no, wt);
    }
  }
  return blob;
}

/**
 * Parses protobuf bytes into a BlobInfo. Unknown fields are skipped; missing fields take their
 * proto3 defaults. Anything that is not a valid message — truncated data, field number 0, bad
 * wire types, invalid UTF-8, integers above `Number.MAX_SAFE_INTEGER` — throws
 * {@link BlobInfoDecodeError}; no other exception escapes and no half-filled blob is returned.
 */
export function decodeBlobInfo(bytes: Uint8Array): BlobInfo {
  if (!(bytes instanceof Uint8Array)) {
    throw new BlobInfoDecodeError("input must be a Uint8Array");
  }
  try {
    return readBlobInfo(bytes);
  } catch (cause) {
    const why = cause instanceof Error ? cause.message : String(cause);
    throw new BlobInfoDecodeError(`${why} (${bytes.length} bytes)`, { cause });
  }
}

/**
 * A small protobuf wire codec: just what Vault's storage records need (KV v2's `types.proto`).
 *
 * Integers are JavaScript numbers: a 64-bit value beyond ±(2^53 − 1) is refused with an error
 * rather than silently rounded, since no record Vault writes holds one (versions, counts and Unix
 * seconds are far below). Unknown fields are not dropped: {@link ProtoReader.skip} returns their
 * bytes (tag included) so a record written by a newer Vault or OpenBao re-encodes with them.
 */
import { VaultError } from "../errors.js";

/** Protobuf wire types. 3/4 (groups) are deprecated but still skippable. */
export const WireType = {
  VARINT: 0,
  I64: 1,
  LEN: 2,
  SGROUP: 3,
  EGROUP: 4,
  I32: 5,
} as const;
export type WireType = (typeof WireType)[keyof typeof WireType];

const WIRE_NAMES = ["varint", "fixed64", "length-delimited", "start-group", "end-group", "fixed32"];

/** The largest field number protobuf allows (2^29 − 1). */
const MAX_FIELD = 0x1fff_ffff;
const TWO_32 = 2 ** 32;
const TWO_64 = 2n ** 64n;
const TWO_63 = 2n ** 63n;
const MAX_SAFE_N = BigInt(Number.MAX_SAFE_INTEGER);

/** A malformed record: the message names the record, the field and the byte offset. */
function malformed(what: string, detail: string): VaultError {
  return new VaultError(
    "internal",
    `stored ${what} record is malformed: ${detail} (the storage entry is damaged or not this record type)`,
  );
}

/**
 * Reads one message. `what` names the record in errors ("KV v2 KeyMetadata"); a function is called
 * only when an error is built, so callers need not format names for records that decode fine.
 */
export class ProtoReader {
  readonly #buf: Uint8Array;
  readonly #what: string | (() => string);
  #pos = 0;
  /** The field being read, for error messages ("field 2 (versions)"); 0 = none. */
  #fieldNumber = 0;
  #fieldName = "";
  static readonly #utf8 = new TextDecoder("utf-8", { fatal: true });

  constructor(buf: Uint8Array, what: string | (() => string)) {
    this.#buf = buf;
    this.#what = what;
  }

  get done(): boolean {
    return this.#pos >= this.#buf.length;
  }

  /** Offset of the next byte, e.g. to slice an unknown field's bytes. */
  get pos(): number {
    return this.#pos;
  }

  /** An error naming this record, the current field (when known) and `detail`. */
  fail(detail: string): VaultError {
    const where = this.#fieldNumber === 0 ? "" : `field ${this.#fieldNumber} (${this.#fieldName}): `;
    const what = typeof this.#what === "string" ? this.#what : this.#what();
    return malformed(what, `${where}${detail} at byte ${this.#pos}`);
  }

  /** Names the field being read in later errors. */
  at(field: number, name: string): void {
    this.#fieldNumber = field;
    this.#fieldName = name;
  }

  /** A known field: names it for later errors ({@link at}) and checks its wire type ({@link expect}). */
  field(field: number, name: string, wire: WireType, got: WireType): void {
    this.at(field, name);
    this.expect(wire, got);
  }

  /** The next field's number and wire type. */
  tag(): { field: number; wire: WireType } {
    this.#fieldNumber = 0;
    const key = this.#varint("field tag");
    // More than 7 bytes cannot hold a valid field number (at most 2^29 − 1).
    if (typeof key === "bigint") throw this.fail(`invalid field number ${key >> 3n}`);
    const field = Math.floor(key / 8);
    const wire = key % 8;
    if (field === 0 || field > MAX_FIELD) throw this.fail(`invalid field number ${field}`);
    if (wire > 5) throw this.fail(`field ${field} has invalid wire type ${wire}`);
    return { field, wire: wire as WireType };
  }

  /** Refuses a known field sent with another wire type than its declaration's. */
  expect(wire: WireType, got: WireType): void {
    if (wire !== got) {
      throw this.fail(`expected wire type ${WIRE_NAMES[wire]}, found ${WIRE_NAMES[got]}`);
    }
  }

  /** An unsigned varint (uint32/uint64) as a number; above 2^53 − 1 is an error. */
  uint(): number {
    const v = this.#varint("varint");
    if (typeof v === "bigint") {
      if (v > MAX_SAFE_N)
        throw this.fail(`value ${v} is above 2^53 − 1, which this codec does not represent`);
      return Number(v);
    }
    return v;
  }

  /** A uint32 field: Go truncates a longer varint to its low 32 bits, and so do we. */
  uint32(): number {
    const v = this.#varint("varint");
    return typeof v === "bigint" ? Number(v & 0xffff_ffffn) : v % TWO_32;
  }

  /** An int64 (two's complement in a varint); beyond ±(2^53 − 1) is an error. */
  int64(): number {
    const raw = this.#varint("varint");
    if (typeof raw === "number") return raw;
    const v = raw >= TWO_63 ? raw - TWO_64 : raw;
    if (v > MAX_SAFE_N || v < -MAX_SAFE_N) {
      throw this.fail(`value ${v} is outside ±(2^53 − 1), which this codec does not represent`);
    }
    return Number(v);
  }

  /** An int32: the low 32 bits of the varint, sign-extended (as Go reads it). */
  int32(): number {
    const v = this.#varint("varint");
    // `| 0` is ToInt32: the value modulo 2^32, read as signed; exact for any number below 2^53.
    return typeof v === "bigint" ? Number(BigInt.asIntN(32, v)) : v | 0;
  }

  bool(): boolean {
    // Go reads any non-zero varint as true.
    const v = this.#varint("varint");
    return typeof v === "bigint" ? v !== 0n : v !== 0;
  }

  /** A length-delimited payload (a view into the buffer, not a copy). */
  bytes(): Uint8Array {
    const len = this.#varint("length");
    if (typeof len === "bigint" || this.#pos + len > this.#buf.length) {
      throw this.fail(`length ${len} runs past the end of the record (${this.#buf.length} bytes)`);
    }
    const out = this.#buf.subarray(this.#pos, this.#pos + len);
    this.#pos += len;
    return out;
  }

  /** A proto3 `string`: must be valid UTF-8 (Go's decoder refuses it otherwise). */
  string(): string {
    const b = this.bytes();
    try {
      return ProtoReader.#utf8.decode(b);
    } catch {
      throw this.fail("string is not valid UTF-8");
    }
  }

  /**
   * Skips the value of a field whose tag (starting at `tagStart`) was just read, and returns the
   * whole field's bytes, tag included, so it can be written back unchanged.
   */
  skip(field: number, wire: WireType, tagStart: number): Uint8Array {
    this.#skipValue(field, wire, 0);
    return this.#buf.subarray(tagStart, this.#pos);
  }

  #skipValue(field: number, wire: WireType, depth: number): void {
    switch (wire) {
      case WireType.VARINT:
        this.#varint("varint");
        return;
      case WireType.I64:
        this.#advance(8);
        return;
      case WireType.I32:
        this.#advance(4);
        return;
      case WireType.LEN:
        this.bytes();
        return;
      case WireType.SGROUP: {
        // Go's decoder limits nesting the same way (protowire's default recursion limit).
        if (depth >= 100) throw this.fail("groups nested more than 100 deep");
        for (;;) {
          if (this.done) throw this.fail(`group ${field} is not closed`);
          const t = this.tag();
          if (t.wire === WireType.EGROUP) {
            if (t.field !== field) throw this.fail(`group ${field} closed by end-group ${t.field}`);
            return;
          }
          this.#skipValue(t.field, t.wire, depth + 1);
        }
      }
      case WireType.EGROUP:
        throw this.fail(`end-group ${field} without a start-group`);
    }
  }

  #advance(n: number): void {
    if (this.#pos + n > this.#buf.length)
      throw this.fail(`fixed-width value runs past the end of the record`);
    this.#pos += n;
  }

  /**
   * A varint as a number when it has at most 7 bytes (49 bits, exact in a double), else as a
   * bigint (8 to 10 bytes; the 10th may only hold bit 63).
   */
  #varint(what: string): number | bigint {
    const buf = this.#buf;
    let i = this.#pos;
    let v = 0;
    let mul = 1;
    for (let n = 0; n < 7; n++) {
      if (i >= buf.length) throw this.fail(`${what} is truncated`);
      const b = buf[i++] as number;
      v += (b & 0x7f) * mul;
      if (b < 0x80) {
        this.#pos = i;
        return v;
      }
      mul *= 0x80;
    }
    let big = BigInt(v);
    for (let shift = 49n; ; shift += 7n) {
      if (i >= buf.length) throw this.fail(`${what} is truncated`);
      const b = buf[i++] as number;
      if (shift === 63n && b > 1) {
        this.#pos = i - 1;
        throw this.fail(`${what} overflows 64 bits`);
      }
      big |= BigInt(b & 0x7f) << shift;
      if (b < 0x80) {
        this.#pos = i;
        return big;
      }
    }
  }
}

/** Builds one message. Fields are written in the order the caller writes them. */
export class ProtoWriter {
  #buf: Uint8Array;
  #len = 0;
  static readonly #utf8 = new TextEncoder();

  /** `capacity`: the expected size, so a large record is not grown (and copied) step by step. */
  constructor(capacity = 64) {
    this.#buf = new Uint8Array(Math.max(16, capacity));
  }

  /** The bytes written so far (a copy-free view; do not write after taking it). */
  finish(): Uint8Array {
    return this.#buf.subarray(0, this.#len);
  }

  tag(field: number, wire: WireType): this {
    if (!Number.isInteger(field) || field < 1 || field > MAX_FIELD) {
      throw new RangeError(`protobuf field number must be 1..${MAX_FIELD}, got ${field}`);
    }
    return this.#uvarint(field * 8 + wire);
  }

  /** An unsigned varint value; `n` must be an integer in 0..2^53 − 1. */
  uint(n: number, what = "value"): this {
    if (!Number.isSafeInteger(n) || n < 0) {
      throw new RangeError(`${what} must be an integer in 0..2^53 − 1, got ${n}`);
    }
    return this.#uvarint(n);
  }

  /** An int64/int32 value (negative numbers as 10-byte two's complement, as Go writes them). */
  int(n: number, what = "value"): this {
    if (!Number.isSafeInteger(n))
      throw new RangeError(`${what} must be an integer within ±(2^53 − 1), got ${n}`);
    if (n >= 0) return this.#uvarint(n);
    let v = BigInt.asUintN(64, BigInt(n));
    this.#reserve(10);
    while (v >= 0x80n) {
      this.#buf[this.#len++] = Number(v & 0x7fn) | 0x80;
      v >>= 7n;
    }
    this.#buf[this.#len++] = Number(v);
    return this;
  }

  /** A length-delimited payload (length, then the bytes). */
  bytes(b: Uint8Array): this {
    this.#uvarint(b.length);
    return this.raw(b);
  }

  string(s: string): this {
    return this.bytes(ProtoWriter.#utf8.encode(s));
  }

  /** Bytes copied as they are (e.g. unknown fields kept from a decoded record). */
  raw(b: Uint8Array): this {
    this.#reserve(b.length);
    this.#buf.set(b, this.#len);
    this.#len += b.length;
    return this;
  }

  // Field helpers. Proto3 omits a scalar field holding its zero value; callers that must write a
  // zero (map entries, messages present but empty) use tag() and the value writers directly.

  uintField(field: number, n: number, what?: string): this {
    if (n === 0) return this;
    return this.tag(field, WireType.VARINT).uint(n, what);
  }

  intField(field: number, n: number, what?: string): this {
    if (n === 0) return this;
    return this.tag(field, WireType.VARINT).int(n, what);
  }

  boolField(field: number, b: boolean): this {
    if (!b) return this;
    return this.tag(field, WireType.VARINT).#uvarint(1);
  }

  bytesField(field: number, b: Uint8Array): this {
    if (b.length === 0) return this;
    return this.tag(field, WireType.LEN).bytes(b);
  }

  stringField(field: number, s: string): this {
    if (s === "") return this;
    return this.tag(field, WireType.LEN).string(s);
  }

  /**
   * A sub-message field, written even when empty (a present message is never omitted). `build`
   * writes the sub-message's fields into this same writer: one byte is reserved for the length and
   * the content moved up in the rare case the length needs more.
   */
  messageField(field: number, build: (w: ProtoWriter) => void): this {
    this.tag(field, WireType.LEN);
    const at = this.#len;
    this.#reserve(1);
    this.#len += 1;
    build(this);
    const size = this.#len - at - 1;
    if (size < 0x80) {
      this.#buf[at] = size;
      return this;
    }
    let extra = 0;
    for (let n = size; n >= 0x80; n = Math.floor(n / 0x80)) extra++;
    this.#reserve(extra);
    this.#buf.copyWithin(at + 1 + extra, at + 1, this.#len);
    this.#len += extra;
    let n = size;
    let i = at;
    while (n >= 0x80) {
      this.#buf[i++] = (n % 0x80) | 0x80;
      n = Math.floor(n / 0x80);
    }
    this.#buf[i] = n;
    return this;
  }

  #uvarint(n: number): this {
    this.#reserve(10);
    // Bit operations work on 32 bits only: split off the high part for values ≥ 2^31.
    while (n >= 0x80) {
      this.#buf[this.#len++] = (n % 0x80) | 0x80;
      n = n >= TWO_32 ? Math.floor(n / 0x80) : n >>> 7;
    }
    this.#buf[this.#len++] = n;
    return this;
  }

  #reserve(n: number): void {
    if (this.#len + n <= this.#buf.length) return;
    let size = this.#buf.length * 2;
    while (size < this.#len + n) size *= 2;
    const grown = new Uint8Array(size);
    grown.set(this.#buf.subarray(0, this.#len));
    this.#buf = grown;
  }
}

/** Concatenates unknown-field chunks kept while decoding (undefined when there were none). */
export function joinChunks(chunks: readonly Uint8Array[]): Uint8Array | undefined {
  if (chunks.length === 0) return undefined;
  if (chunks.length === 1) return (chunks[0] as Uint8Array).slice();
  let len = 0;
  for (const c of chunks) len += c.length;
  const out = new Uint8Array(len);
  let off = 0;
  for (const c of chunks) {
    out.set(c, off);
    off += c.length;
  }
  return out;
}

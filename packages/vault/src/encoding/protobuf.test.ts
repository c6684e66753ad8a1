import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { VaultError } from "../errors.js";
import { joinChunks, ProtoReader, ProtoWriter, WireType } from "./protobuf.js";

const hex = (b: Uint8Array): string => Buffer.from(b).toString("hex");
const bytes = (h: string): Uint8Array => new Uint8Array(Buffer.from(h.replace(/\s/g, ""), "hex"));

function readAll(b: Uint8Array): Uint8Array[] {
  const r = new ProtoReader(b, "test");
  const out: Uint8Array[] = [];
  while (!r.done) {
    const start = r.pos;
    const { field, wire } = r.tag();
    out.push(r.skip(field, wire, start));
  }
  return out;
}

describe("varints", () => {
  // Vectors from the protobuf encoding guide and Go's protowire.AppendVarint.
  const vectors: [number, string][] = [
    [0, "00"],
    [1, "01"],
    [127, "7f"],
    [128, "8001"],
    [150, "9601"],
    [300, "ac02"],
    [2 ** 31, "8080808008"],
    [2 ** 32, "8080808010"],
    [2 ** 53 - 1, "ffffffffffffff0f"],
  ];
  it.each(vectors)("writes and reads %d as %s", (n, h) => {
    expect(hex(new ProtoWriter().uint(n).finish())).toBe(h);
    expect(new ProtoReader(bytes(h), "test").uint()).toBe(n);
  });

  it("writes negative int64 as ten bytes of two's complement, as Go does", () => {
    expect(hex(new ProtoWriter().int(-1).finish())).toBe("ffffffffffffffffff01");
    expect(new ProtoReader(bytes("ffffffffffffffffff01"), "t").int64()).toBe(-1);
    expect(new ProtoReader(bytes("ffffffffffffffffff01"), "t").int32()).toBe(-1);
    const min = Number.MIN_SAFE_INTEGER;
    expect(new ProtoReader(new ProtoWriter().int(min).finish(), "t").int64()).toBe(min);
  });

  it("refuses a uint64 above 2^53 − 1 instead of rounding it", () => {
    // 2^53 = 80 80 80 80 80 80 80 10
    const r = new ProtoReader(bytes("8080808080808010"), "KV v2 Test");
    expect(() => r.uint()).toThrow(/KV v2 Test.*9007199254740992 is above 2\^53 − 1/);
    expect(() => new ProtoReader(bytes("ffffffffffffffffff01"), "t").uint()).toThrow(VaultError);
  });

  it("refuses an int64 outside ±(2^53 − 1)", () => {
    const r = new ProtoReader(bytes("ffffffffffffffef7f"), "t"); // 2^62-ish
    expect(() => r.int64()).toThrow(/outside ±\(2\^53 − 1\)/);
  });

  it("refuses to write what it could not read back", () => {
    expect(() => new ProtoWriter().uint(2 ** 53)).toThrow(RangeError);
    expect(() => new ProtoWriter().uint(-1)).toThrow(RangeError);
    expect(() => new ProtoWriter().uint(1.5)).toThrow(RangeError);
    expect(() => new ProtoWriter().int(2 ** 60)).toThrow(RangeError);
    expect(() => new ProtoWriter().tag(0, WireType.VARINT)).toThrow(RangeError);
  });

  it("refuses a truncated varint, one longer than 10 bytes, and one overflowing 64 bits", () => {
    expect(() => new ProtoReader(bytes("80"), "t").uint()).toThrow(/varint is truncated at byte 0/);
    expect(() => new ProtoReader(bytes("ffffffffffffffffff02"), "t").uint()).toThrow(/overflows 64 bits/);
    expect(() => new ProtoReader(bytes("ffffffffffffffffffff01"), "t").uint()).toThrow(/overflows 64 bits/);
  });

  it("reads a uint32 and an int32 from their low 32 bits, as Go does", () => {
    expect(new ProtoReader(new ProtoWriter().uint(2 ** 32 + 5).finish(), "t").uint32()).toBe(5);
    expect(new ProtoReader(new ProtoWriter().uint(2 ** 31).finish(), "t").int32()).toBe(-(2 ** 31));
  });

  it("round-trips every safe unsigned and signed integer", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }), (n) => {
        expect(new ProtoReader(new ProtoWriter().uint(n).finish(), "t").uint()).toBe(n);
      }),
    );
    fc.assert(
      fc.property(fc.maxSafeInteger(), (n) => {
        expect(new ProtoReader(new ProtoWriter().int(n).finish(), "t").int64()).toBe(n);
      }),
    );
  });
});

describe("tags, lengths and strings", () => {
  it("reads a tag's field number and wire type", () => {
    const r = new ProtoReader(new ProtoWriter().tag(401, WireType.VARINT).finish(), "t");
    expect(hex(new ProtoWriter().tag(401, WireType.VARINT).finish())).toBe("8819");
    expect(r.tag()).toEqual({ field: 401, wire: 0 });
  });

  it("refuses field number 0 and wire types 6 and 7", () => {
    expect(() => new ProtoReader(bytes("00"), "KV v2 X").tag()).toThrow(/KV v2 X.*invalid field number 0/);
    expect(() => new ProtoReader(bytes("0e"), "t").tag()).toThrow(/field 1 has invalid wire type 6/);
    expect(() => new ProtoReader(bytes("0f"), "t").tag()).toThrow(/invalid wire type 7/);
  });

  it("refuses a length that runs past the end, naming the field", () => {
    const r = new ProtoReader(bytes("0a05616263"), "KV v2 Version");
    r.tag();
    r.at(1, "data");
    expect(() => r.bytes()).toThrow(
      /stored KV v2 Version record is malformed: field 1 \(data\): length 5 runs past the end/,
    );
  });

  it("refuses a string that is not UTF-8", () => {
    expect(() => new ProtoReader(bytes("02c328"), "t").string()).toThrow(/not valid UTF-8/);
    expect(new ProtoReader(bytes("03c3bc61"), "t").string()).toBe("üa");
  });

  it("refuses a known field sent with another wire type", () => {
    const r = new ProtoReader(bytes("0801"), "t");
    const { wire } = r.tag();
    r.at(1, "key");
    expect(() => r.expect(WireType.LEN, wire)).toThrow(
      /field 1 \(key\): expected wire type length-delimited, found varint/,
    );
  });

  it("omits proto3 zero values in the field helpers, but writes a present empty message", () => {
    const w = new ProtoWriter()
      .uintField(1, 0)
      .intField(2, 0)
      .boolField(3, false)
      .stringField(4, "")
      .bytesField(5, new Uint8Array());
    expect(w.finish().length).toBe(0);
    expect(hex(new ProtoWriter().messageField(5, () => undefined).finish())).toBe("2a00");
    expect(hex(new ProtoWriter().boolField(8, true).finish())).toBe("4001");
  });
});

describe("skipping unknown fields", () => {
  it("returns each field's bytes, tag included, for every wire type", () => {
    const fields = [
      "08 96 01", // varint
      "11 0102030405060708", // fixed64
      "1a 03 616263", // length-delimited
      "23 08 01 2b 10 02 2c 18 03 24", // group 4 holding a nested group 5
      "2d 01020304", // fixed32
    ];
    const all = bytes(fields.join(""));
    expect(readAll(all).map(hex)).toEqual(fields.map((f) => f.replace(/\s/g, "")));
  });

  it("refuses a truncated fixed-width value and unbalanced groups", () => {
    expect(() => readAll(bytes("11 0102"))).toThrow(/fixed-width value runs past the end/);
    expect(() => readAll(bytes("23 0801"))).toThrow(/group 4 is not closed/);
    expect(() => readAll(bytes("23 2c"))).toThrow(/group 4 closed by end-group 5/);
    expect(() => readAll(bytes("24"))).toThrow(/end-group 4 without a start-group/);
  });

  it("refuses groups nested deeper than Go's limit", () => {
    const deep = new Uint8Array(202);
    deep.fill(0x0b, 0, 101); // 101 × start-group 1
    deep.fill(0x0c, 101); // closers
    expect(() => readAll(deep)).toThrow(/nested more than 100 deep/);
  });

  it("joins kept chunks into one copy", () => {
    expect(joinChunks([])).toBeUndefined();
    const a = bytes("0801");
    const one = joinChunks([a]) as Uint8Array;
    expect(hex(one)).toBe("0801");
    expect(one.buffer).not.toBe(a.buffer);
    expect(hex(joinChunks([a, bytes("1000")]) as Uint8Array)).toBe("08011000");
  });
});

/** Arbitrary well-formed fields of every wire type (groups with nested fields too). */
const arbField: fc.Arbitrary<Uint8Array> = fc.letrec<{ field: Uint8Array }>((tie) => ({
  field: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    fc
      .tuple(fc.integer({ min: 1, max: 2 ** 29 - 1 }), fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }))
      .map(([f, n]) => new ProtoWriter().tag(f, WireType.VARINT).uint(n).finish()),
    fc
      .tuple(fc.integer({ min: 1, max: 1000 }), fc.uint8Array({ minLength: 8, maxLength: 8 }))
      .map(([f, b]) => new ProtoWriter().tag(f, WireType.I64).raw(b).finish()),
    fc
      .tuple(fc.integer({ min: 1, max: 1000 }), fc.uint8Array({ minLength: 4, maxLength: 4 }))
      .map(([f, b]) => new ProtoWriter().tag(f, WireType.I32).raw(b).finish()),
    fc
      .tuple(fc.integer({ min: 1, max: 1000 }), fc.uint8Array({ maxLength: 40 }))
      .map(([f, b]) => new ProtoWriter().tag(f, WireType.LEN).bytes(b).finish()),
    fc
      .tuple(fc.integer({ min: 1, max: 1000 }), fc.array(tie("field"), { maxLength: 3 }))
      .map(([f, inner]) => {
        const w = new ProtoWriter().tag(f, WireType.SGROUP);
        for (const i of inner) w.raw(i);
        return w.tag(f, WireType.EGROUP).finish().slice();
      }),
  ),
})).field;

describe("properties", () => {
  it("skipping any sequence of fields gives back exactly the fields", () => {
    fc.assert(
      fc.property(fc.array(arbField, { maxLength: 8 }), (fields) => {
        const all = joinChunks(fields) ?? new Uint8Array();
        expect(readAll(all).map(hex)).toEqual(fields.map(hex));
      }),
    );
  });

  it("any byte string either parses into fields or fails with a VaultError, never a crash", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (b) => {
        try {
          readAll(b);
        } catch (e) {
          expect(e).toBeInstanceOf(VaultError);
          expect((e as VaultError).code).toBe("internal");
        }
      }),
    );
  });

  it("a sub-message written in place equals one built apart, whatever its length (1–3 length bytes)", () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 40 }),
        fc.constantFrom(0, 1, 126, 127, 128, 129, 16_383, 16_384, 20_000),
        fc.array(fc.nat({ max: 2 ** 40 }), { maxLength: 3 }),
        (before, size, after) => {
          const inner = new Uint8Array(size).fill(7);
          const built = new ProtoWriter(8).bytesField(1, before);
          built.messageField(2, (w) => {
            w.raw(inner);
            for (const n of after) w.uintField(3, n);
          });
          const sub = new ProtoWriter(8).raw(inner);
          for (const n of after) sub.uintField(3, n);
          const apart = new ProtoWriter().bytesField(1, before).tag(2, WireType.LEN).bytes(sub.finish());
          expect(hex(built.finish())).toBe(hex(apart.finish()));
        },
      ),
      { numRuns: 60 },
    );
  });

  it("every truncation of a message with a length-delimited field is refused", () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 1, maxLength: 40 }), fc.nat(), (payload, cut) => {
        const msg = new ProtoWriter().tag(3, WireType.LEN).bytes(payload).finish();
        const at = 1 + (cut % (msg.length - 1));
        expect(() => readAll(msg.subarray(0, at))).toThrow(VaultError);
      }),
    );
  });
});

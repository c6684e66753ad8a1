import { create, createFileRegistry, fromBinary, toBinary } from "@bufbuild/protobuf";
import {
  FileDescriptorProtoSchema,
  FieldDescriptorProto_Label as Label,
  FieldDescriptorProto_Type as Type,
} from "@bufbuild/protobuf/wkt";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  type BlobInfo,
  createBlobInfo,
  createKeyInfo,
  decodeBlobInfo,
  encodeBlobInfo,
  type KeyInfo,
} from "./blob-info.js";
import { BlobInfoDecodeError, SealError } from "./errors.js";

const hex = (s: string): Uint8Array => new Uint8Array(Buffer.from(s.replace(/\s+/g, ""), "hex"));
const toHex = (b: Uint8Array): string => Buffer.from(b).toString("hex");
const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);

/*
 * Hand-checked vectors. A protobuf tag byte is (field_number << 3) | wire_type, wire type 0 =
 * varint, 2 = length-delimited. BlobInfo: 0x0a ciphertext(1,LEN) · 0x12 iv(2,LEN) · 0x1a hmac(3,LEN)
 * · 0x20 wrapped(4,VARINT) · 0x2a key_info(5,LEN) · 0x32 value_path(6,LEN) · 0x3a plaintext(7,LEN).
 * KeyInfo: 0x08 mechanism(1,VARINT) · 0x10 hmac_mechanism(2,VARINT) · 0x1a key_id(3,LEN)
 * · 0x22 hmac_key_id(4,LEN) · 0x2a wrapped_key(5,LEN) · 0x30 flags(6,VARINT).
 */
const VECTORS: Array<{ name: string; blob: BlobInfo; hex: string }> = [
  { name: "empty blob: every field at its default, nothing written", blob: createBlobInfo(), hex: "" },
  {
    name: "ciphertext 01 02 03",
    blob: createBlobInfo({ ciphertext: hex("010203") }),
    hex: "0a 03 010203", // tag 0x0a = (1<<3)|2, length 3
  },
  {
    name: "iv of 12 bytes",
    blob: createBlobInfo({ iv: hex("aaaaaaaaaaaaaaaaaaaaaaaa") }),
    hex: "12 0c aaaaaaaaaaaaaaaaaaaaaaaa", // tag 0x12 = (2<<3)|2, length 0x0c = 12
  },
  {
    name: "hmac ff ee",
    blob: createBlobInfo({ hmac: hex("ffee") }),
    hex: "1a 02 ffee", // tag 0x1a = (3<<3)|2
  },
  {
    name: "wrapped = true",
    blob: createBlobInfo({ wrapped: true }),
    hex: "20 01", // tag 0x20 = (4<<3)|0, varint 1
  },
  {
    name: "an empty but present key_info is still written (Go writes non-nil messages)",
    blob: createBlobInfo({ keyInfo: {} }),
    hex: "2a 00", // tag 0x2a = (5<<3)|2, length 0
  },
  {
    name: "value_path 'a/b'",
    blob: createBlobInfo({ valuePath: "a/b" }),
    hex: "32 03 612f62", // tag 0x32 = (6<<3)|2, "a/b" = 61 2f 62
  },
  {
    name: "plaintext 00",
    blob: createBlobInfo({ plaintext: hex("00") }),
    hex: "3a 01 00", // tag 0x3a = (7<<3)|2
  },
  {
    name: "every KeyInfo field (PKCS#11 AES-CBC-PAD + HMAC shape)",
    blob: createBlobInfo({
      keyInfo: {
        mechanism: 0x1087,
        hmacMechanism: 0x0251,
        keyId: "k1",
        hmacKeyId: "h",
        wrappedKey: hex("0909"),
        flags: 1,
      },
    }),
    // 2a 13: key_info, length 19 =
    //   08 87 21  mechanism 0x1087 = 4231: low 7 bits 0x07 | 0x80 continuation = 0x87, then 4231>>7 = 33 = 0x21
    //   10 d1 04  hmac_mechanism 0x0251 = 593: 593 & 0x7f = 0x51 | 0x80 = 0xd1, then 593>>7 = 4
    //   1a 02 6b31  key_id "k1"
    //   22 01 68    hmac_key_id "h"
    //   2a 02 0909  wrapped_key
    //   30 01       flags 1
    hex: "2a 13 088721 10d104 1a026b31 220168 2a020909 3001",
  },
  {
    name: "flags = Number.MAX_SAFE_INTEGER (2^53 - 1: 53 one-bits = seven 0xff groups then 0x0f)",
    blob: createBlobInfo({ keyInfo: { flags: Number.MAX_SAFE_INTEGER } }),
    hex: "2a 09 30 ffffffffffffff0f",
  },
  {
    name: "AWS KMS envelope shape: all fields in field-number order",
    blob: createBlobInfo({
      ciphertext: hex("c0ffee"),
      iv: hex("0102"),
      wrapped: true,
      keyInfo: { mechanism: 1, keyId: "arn", wrappedKey: hex("77") },
      valuePath: "p",
      plaintext: hex("ab"),
    }),
    // 0a 03 c0ffee | 12 02 0102 | 20 01 | 2a 0a (08 01 | 1a 03 61726e | 2a 01 77) | 32 01 70 | 3a 01 ab
    hex: "0a03c0ffee 12020102 2001 2a0a 0801 1a0361726e 2a0177 320170 3a01ab",
  },
];

describe("BlobInfo codec: hand-checked vectors", () => {
  for (const v of VECTORS) {
    it(`encodes ${v.name}`, () => {
      expect(toHex(encodeBlobInfo(v.blob))).toBe(v.hex.replace(/\s+/g, ""));
    });
    it(`decodes ${v.name}`, () => {
      expect(decodeBlobInfo(hex(v.hex))).toEqual(v.blob);
    });
  }

  it("decodes a missing key_info as absent, and an empty one as present with defaults", () => {
    expect(decodeBlobInfo(hex("0a0101")).keyInfo).toBeUndefined();
    expect(decodeBlobInfo(hex("2a00")).keyInfo).toEqual(createKeyInfo());
  });

  it("skips unknown fields of every wire type (client_data = 8, varint, fixed64, fixed32, group)", () => {
    const bytes = hex(
      [
        "4200", // field 8 (client_data, google.protobuf.Struct), LEN, empty
        "7805", // field 15, VARINT 5
        "49 0102030405060708", // field 9, I64
        "55 01020304", // field 10, I32
        "5b 0801 5c", // field 11, group start (11<<3)|3 containing field 1 varint, group end (11<<3)|4
        "0a 01 99", // ciphertext
        "2a 04 3801 0801", // key_info with unknown field 7 (key_type) = 1, then mechanism = 1
      ].join(""),
    );
    expect(decodeBlobInfo(bytes)).toEqual(
      createBlobInfo({ ciphertext: hex("99"), keyInfo: { mechanism: 1 } }),
    );
  });

  it("repeated scalar fields: the last one wins (proto3)", () => {
    expect(decodeBlobInfo(hex("0a0101 0a0102")).ciphertext).toEqual(hex("02"));
  });

  it("repeated key_info messages merge (proto3)", () => {
    expect(decodeBlobInfo(hex("2a020801 2a041a026b31")).keyInfo).toEqual(
      createKeyInfo({ mechanism: 1, keyId: "k1" }),
    );
  });

  it("a non-canonical bool varint (2) decodes as true, as in Go", () => {
    expect(decodeBlobInfo(hex("2002")).wrapped).toBe(true);
  });

  it("decoded byte fields do not alias the input buffer", () => {
    const input = hex("0a03010203");
    const blob = decodeBlobInfo(input);
    input.fill(0);
    expect(blob.ciphertext).toEqual(hex("010203"));
  });
});

describe("BlobInfo codec: invalid input → BlobInfoDecodeError", () => {
  const bad: Array<[string, string]> = [
    ["field number 0 (a barrier ciphertext's leading term byte)", "00000001 02"],
    ["a tag with no value", "0a"],
    ["a length running past the end", "0a0501"],
    ["a truncated varint", "2080"],
    ["a known field with the wrong wire type (ciphertext as varint)", "0801"],
    ["key_info as varint", "2801"],
    ["invalid UTF-8 in value_path", "3201ff"],
    ["invalid UTF-8 in key_info.key_id", "2a031a01ff"],
    ["a stray end-group tag", "5c"],
    ["wire type 6", "0e"],
    ["wire type 7", "0f"],
    ["garbage inside key_info", "2a0100"],
    ["mechanism = 2^53 (above Number.MAX_SAFE_INTEGER)", "2a09 08 8080808080808010"],
    ["flags = 2^64 - 1", "2a0b 30 ffffffffffffffffff01"],
    ["a varint longer than 10 bytes", "20 ffffffffffffffffffff01"],
    // Go reads a length as a 64-bit varint and refuses one past the end; a 32-bit read would
    // keep only the low bits (here 3) and accept bytes that Vault cannot decode.
    ["a ciphertext length of 2^32 + 3", "0a 8380808010 010203"],
    ["a ciphertext length of 2^63 + 3", "0a 83808080808080808001 010203"],
    ["a key_info.key_id length of 2^32 + 1", "2a07 1a 8180808010 61"],
    ["an unknown length-delimited field of length 2^32 + 1", "42 8180808010 00"],
  ];
  for (const [name, bytes] of bad) {
    it(`rejects ${name}`, () => {
      expect(() => decodeBlobInfo(hex(bytes))).toThrow(BlobInfoDecodeError);
    });
  }

  it("BlobInfoDecodeError is a SealError with code invalid_blob_info", () => {
    try {
      decodeBlobInfo(hex("00"));
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(SealError);
      expect((err as SealError).code).toBe("invalid_blob_info");
      expect((err as Error).message).toMatch(/^invalid BlobInfo: /);
    }
  });

  it("rejects input that is not a Uint8Array", () => {
    expect(() => decodeBlobInfo("0a00" as unknown as Uint8Array)).toThrow(BlobInfoDecodeError);
  });
});

describe("BlobInfo codec: encode rejects values that cannot round-trip", () => {
  const cases: Array<[string, BlobInfo]> = [
    ["a negative mechanism", createBlobInfo({ keyInfo: { mechanism: -1 } })],
    ["a fractional flags value", createBlobInfo({ keyInfo: { flags: 1.5 } })],
    ["a flags value above Number.MAX_SAFE_INTEGER", createBlobInfo({ keyInfo: { flags: 2 ** 53 } })],
    ["a ciphertext that is not bytes", { ...createBlobInfo(), ciphertext: [1, 2] as unknown as Uint8Array }],
    ["a key id with a lone surrogate", createBlobInfo({ keyInfo: { keyId: "a\uD800b" } })],
    ["a non-boolean wrapped", { ...createBlobInfo(), wrapped: 1 as unknown as boolean }],
  ];
  for (const [name, blob] of cases) {
    it(`rejects ${name} with SealError invalid_argument`, () => {
      expect(() => encodeBlobInfo(blob)).toThrow(SealError);
      try {
        encodeBlobInfo(blob);
      } catch (err) {
        expect((err as SealError).code).toBe("invalid_argument");
      }
    });
  }
});

// --- An independent reference: the same messages described to @bufbuild/protobuf's reflection
// runtime (toBinary/fromBinary), declared in field-number order as Go marshals them.
const PKG = "github.com.hashicorp.go.kms.wrapping.v2.types";
const field = (name: string, number: number, type: Type, typeName?: string) => ({
  name,
  number,
  type,
  label: Label.OPTIONAL,
  ...(typeName === undefined ? {} : { typeName }),
});
const registry = createFileRegistry(
  create(FileDescriptorProtoSchema, {
    name: "github.com.hashicorp.go.kms.wrapping.v2.types.proto",
    package: PKG,
    syntax: "proto3",
    messageType: [
      {
        name: "KeyInfo",
        field: [
          field("mechanism", 1, Type.UINT64),
          field("hmac_mechanism", 2, Type.UINT64),
          field("key_id", 3, Type.STRING),
          field("hmac_key_id", 4, Type.STRING),
          field("wrapped_key", 5, Type.BYTES),
          field("flags", 6, Type.UINT64),
        ],
      },
      {
        name: "BlobInfo",
        field: [
          field("ciphertext", 1, Type.BYTES),
          field("iv", 2, Type.BYTES),
          field("hmac", 3, Type.BYTES),
          field("wrapped", 4, Type.BOOL),
          field("key_info", 5, Type.MESSAGE, `.${PKG}.KeyInfo`),
          field("value_path", 6, Type.STRING),
          field("plaintext", 7, Type.BYTES),
        ],
      },
    ],
  }),
  () => undefined,
);
const RefBlobInfo = (() => {
  const m = registry.getMessage(`${PKG}.BlobInfo`);
  if (m === undefined) throw new Error("reference schema missing BlobInfo");
  return m;
})();

function referenceEncode(b: BlobInfo): Uint8Array {
  const k = b.keyInfo;
  const init = {
    ciphertext: b.ciphertext,
    iv: b.iv,
    hmac: b.hmac,
    wrapped: b.wrapped,
    valuePath: b.valuePath,
    plaintext: b.plaintext,
    ...(k === undefined
      ? {}
      : {
          keyInfo: {
            mechanism: BigInt(k.mechanism),
            hmacMechanism: BigInt(k.hmacMechanism),
            keyId: k.keyId,
            hmacKeyId: k.hmacKeyId,
            wrappedKey: k.wrappedKey,
            flags: BigInt(k.flags),
          },
        }),
  };
  return toBinary(RefBlobInfo, create(RefBlobInfo, init as never));
}

const uint64 = fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 0xffff }), fc.maxSafeNat());
const bytesArb = fc.oneof(fc.constant(new Uint8Array(0)), fc.uint8Array({ maxLength: 64 }));
const stringArb = fc.oneof(fc.constant(""), fc.string({ unit: "grapheme", maxLength: 16 }));
const keyInfoArb: fc.Arbitrary<KeyInfo> = fc.record({
  mechanism: uint64,
  hmacMechanism: uint64,
  keyId: stringArb,
  hmacKeyId: stringArb,
  wrappedKey: bytesArb,
  flags: uint64,
});
const blobArb: fc.Arbitrary<BlobInfo> = fc
  .record({
    ciphertext: bytesArb,
    iv: bytesArb,
    hmac: bytesArb,
    wrapped: fc.boolean(),
    keyInfo: fc.option(keyInfoArb, { nil: undefined }),
    valuePath: stringArb,
    plaintext: bytesArb,
  })
  .map(({ keyInfo, ...rest }) => (keyInfo === undefined ? rest : { ...rest, keyInfo }));

describe("BlobInfo codec: properties (fast-check)", () => {
  it("decode(encode(blob)) equals blob for arbitrary blobs", () => {
    fc.assert(
      fc.property(blobArb, (blob) => {
        expect(decodeBlobInfo(encodeBlobInfo(blob))).toEqual(blob);
      }),
      { numRuns: 500 },
    );
  });

  it("our bytes equal the reflection-based reference encoder's bytes", () => {
    fc.assert(
      fc.property(blobArb, (blob) => {
        expect(toHex(encodeBlobInfo(blob))).toBe(toHex(referenceEncode(blob)));
      }),
      { numRuns: 500 },
    );
  });

  it("the reference decoder reads our bytes back to the same fields", () => {
    fc.assert(
      fc.property(blobArb, (blob) => {
        const ref = fromBinary(RefBlobInfo, encodeBlobInfo(blob)) as unknown as {
          ciphertext: Uint8Array;
          keyInfo?: { keyId: string; flags: bigint };
          valuePath: string;
        };
        expect(ref.ciphertext).toEqual(blob.ciphertext);
        expect(ref.valuePath).toBe(blob.valuePath);
        expect(ref.keyInfo?.keyId).toBe(blob.keyInfo?.keyId);
        expect(ref.keyInfo?.flags).toBe(blob.keyInfo === undefined ? undefined : BigInt(blob.keyInfo.flags));
      }),
      { numRuns: 200 },
    );
  });

  it("arbitrary bytes decode to a BlobInfo or throw BlobInfoDecodeError, never another exception", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 96 }), (bytes) => {
        try {
          const blob = decodeBlobInfo(bytes);
          // A decoded blob is complete: every field has its type.
          expect(blob.ciphertext).toBeInstanceOf(Uint8Array);
          expect(typeof blob.wrapped).toBe("boolean");
          expect(typeof blob.valuePath).toBe("string");
        } catch (err) {
          expect(err).toBeInstanceOf(BlobInfoDecodeError);
        }
      }),
      { numRuns: 5000 },
    );
  });

  it("mutated valid encodings decode or fail with BlobInfoDecodeError, never another exception", () => {
    fc.assert(
      fc.property(blobArb, fc.nat(), fc.integer({ min: 1, max: 255 }), (blob, pos, xor) => {
        const bytes = encodeBlobInfo(blob);
        if (bytes.length === 0) return;
        const i = pos % bytes.length;
        bytes[i] = (bytes[i] as number) ^ xor;
        try {
          decodeBlobInfo(bytes);
        } catch (err) {
          expect(err).toBeInstanceOf(BlobInfoDecodeError);
        }
      }),
      { numRuns: 2000 },
    );
  });

  it("truncated valid encodings decode or fail with BlobInfoDecodeError", () => {
    fc.assert(
      fc.property(blobArb, fc.nat(), (blob, cut) => {
        const bytes = encodeBlobInfo(blob);
        try {
          decodeBlobInfo(bytes.subarray(0, cut % (bytes.length + 1)));
        } catch (err) {
          expect(err).toBeInstanceOf(BlobInfoDecodeError);
        }
      }),
      { numRuns: 1000 },
    );
  });
});

it("utf8 helper sanity: value_path round-trips non-ASCII text", () => {
  const blob = createBlobInfo({ valuePath: "sécret/データ" });
  const bytes = encodeBlobInfo(blob);
  expect(Buffer.from(bytes).includes(Buffer.from(utf8("sécret/データ")))).toBe(true);
  expect(decodeBlobInfo(bytes).valuePath).toBe("sécret/データ");
});

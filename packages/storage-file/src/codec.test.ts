import { constants as bufferConstants } from "node:buffer";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { decodeEntryFile, encodeEntryFile, MAX_VALUE_BYTES } from "./codec.js";

const text = (b: Uint8Array) => Buffer.from(b).toString("latin1");
const bytes = (s: string) => new Uint8Array(Buffer.from(s, "utf8"));

function decodeOk(file: string | Uint8Array): Uint8Array {
  const r = decodeEntryFile(typeof file === "string" ? bytes(file) : file);
  if (!r.ok) throw new Error(`expected a valid entry file, got: ${r.reason}`);
  return r.value;
}

function decodeReason(file: string): string {
  const r = decodeEntryFile(bytes(file));
  if (r.ok) throw new Error(`expected ${JSON.stringify(file)} to be rejected`);
  return r.reason;
}

describe("encodeEntryFile", () => {
  it("writes Vault's keyring example byte for byte", () => {
    // vault-internals Appendix A: core/_keyring starts with term 1, version 2.
    expect(text(encodeEntryFile(new Uint8Array([0, 0, 0, 1, 2])))).toBe('{"Value":"AAAAAQI="}\n');
  });

  it('writes an empty value as {"Value":""}', () => {
    expect(text(encodeEntryFile(new Uint8Array(0)))).toBe('{"Value":""}\n');
  });

  it("produces exactly what Go's json.Encoder writes for struct{ Value []byte } (any bytes)", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 2048 }), (v) => {
        const expected = `${JSON.stringify({ Value: Buffer.from(v).toString("base64") })}\n`;
        expect(text(encodeEntryFile(v))).toBe(expected);
      }),
    );
  });

  it("encodes only the viewed bytes of a Uint8Array that is a window into a larger buffer", () => {
    const big = new Uint8Array([9, 9, 1, 2, 3, 9]);
    expect(decodeOk(encodeEntryFile(big.subarray(2, 5)))).toEqual(new Uint8Array([1, 2, 3]));
  });
});

describe("decodeEntryFile", () => {
  it("round-trips any value", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 4096 }), (v) => {
        expect(decodeOk(encodeEntryFile(v))).toEqual(v);
      }),
    );
  });

  it("returns a value that owns its ArrayBuffer (never Node's shared pool)", () => {
    const v = decodeOk('{"Value":"AQID"}\n');
    expect(v).toBeInstanceOf(Uint8Array);
    expect(Buffer.isBuffer(v)).toBe(false);
    expect(v.buffer.byteLength).toBe(3);
  });

  it("accepts the JSON variants Go's decoder accepts", () => {
    const want = new Uint8Array([0xfb, 0xff, 0xbf]); // base64 "+/+/"
    expect(decodeOk('{"Value":"+/+/"}\n')).toEqual(want);
    expect(decodeOk('{"Value":"+/+/"}')).toEqual(want); // no trailing newline
    expect(decodeOk(' { "Value" : "+/+/" } \r\n')).toEqual(want);
    expect(decodeOk('{"Value":"\\u002b\\/+/"}\n')).toEqual(want); // escaped characters
    expect(decodeOk('{"Other":1,"Value":"+/+/"}\n')).toEqual(want); // unknown fields are ignored
    expect(decodeOk('{"value":"+/+/"}\n')).toEqual(want); // Go matches field names case-insensitively
  });

  it("reads a null Value (Go's nil []byte) as an empty value", () => {
    expect(decodeOk('{"Value":null}\n')).toEqual(new Uint8Array(0));
  });

  it("rejects files that are not an entry, saying why", () => {
    expect(decodeReason("not json")).toMatch(/not valid JSON/);
    expect(decodeReason('{"Value":"AAAA"')).toMatch(/not valid JSON/); // torn write
    expect(decodeReason('{"Value":"AAAA"}\n{"Value":"AAAA"}\n')).toMatch(/not valid JSON/);
    expect(decodeReason('["AAAA"]')).toMatch(/not a JSON object/);
    expect(decodeReason("null")).toMatch(/not a JSON object/);
    expect(decodeReason('{"Key":"AAAA"}')).toMatch(/no "Value" field/);
    expect(decodeReason('{"Value":42}')).toMatch(/is a number/);
    expect(decodeReason('{"Value":"AAA"}\n')).toMatch(/multiple of 4/);
    expect(decodeReason('{"Value":"AA-_"}\n')).toMatch(/not standard padded base64/); // URL alphabet
    expect(decodeReason('{"Value":"AA=A"}\n')).toMatch(/not standard padded base64/);
    expect(decodeReason('{"Value":"A==="}\n')).toMatch(/not standard padded base64/);
    expect(decodeReason('{"Value":"AA AA"}\n')).toMatch(/not standard padded base64/);
  });

  it("never throws on arbitrary bytes, and never accepts a file that is not one JSON object", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (b) => {
        const r = decodeEntryFile(b);
        if (r.ok) expect(() => JSON.parse(Buffer.from(b).toString("utf8"))).not.toThrow();
      }),
    );
  });

  it("any single-byte change to a valid file is rejected or decodes to some value, never throws", () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 1, maxLength: 300 }),
        fc.nat(),
        fc.integer({ min: 1, max: 255 }),
        (v, at, xor) => {
          const file = encodeEntryFile(v);
          const i = at % file.length;
          file[i] = (file[i] ?? 0) ^ xor;
          const r = decodeEntryFile(file);
          expect(typeof r.ok).toBe("boolean");
          if (r.ok) expect(r.value).toBeInstanceOf(Uint8Array);
          else expect(r.reason.length).toBeGreaterThan(0);
        },
      ),
    );
  });

  it("a changed base64 character never yields the original value", () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 3, maxLength: 300 }), fc.nat(), (v, at) => {
        const file = Buffer.from(encodeEntryFile(v));
        const start = '{"Value":"'.length;
        // Only characters of complete 3-byte groups: in a padded last group some bits are unused
        // (Go ignores them too), so changing those bits legitimately decodes to the same value.
        const fullGroupChars = Math.floor(v.length / 3) * 4;
        const i = start + (at % fullGroupChars);
        file[i] = file[i] === 0x41 ? 0x42 : 0x41; // swap for another base64 letter
        const r = decodeEntryFile(file);
        if (r.ok) expect(Buffer.from(r.value).equals(Buffer.from(v))).toBe(false);
      }),
    );
  });
});

describe("MAX_VALUE_BYTES", () => {
  it("is the largest value whose base64 text fits in one JavaScript string", () => {
    const { MAX_STRING_LENGTH } = bufferConstants;
    expect(Math.ceil(MAX_VALUE_BYTES / 3) * 4).toBeLessThanOrEqual(MAX_STRING_LENGTH);
    expect(Math.ceil((MAX_VALUE_BYTES + 3) / 3) * 4).toBeGreaterThan(MAX_STRING_LENGTH);
  });
});

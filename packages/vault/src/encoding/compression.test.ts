import { readFileSync } from "node:fs";
import { gunzipSync } from "node:zlib";
import { describe, expect, it } from "vitest";
import { compressJson, decompressRecord, maskedCrc32c, snappyBlockDecode } from "./compression.js";

/** Records OpenBao 2.6.2 stored (sys/raw: the stored bytes in base64, and its own decompression). */
interface Vector {
  stored_base64: string;
  decompressed: string;
}
const load = (name: string): Record<string, Vector> =>
  (
    JSON.parse(readFileSync(new URL(`../kv/fixtures/${name}`, import.meta.url), "utf8")) as {
      records: Record<string, Vector>;
    }
  ).records;
const compression = load("openbao-compression.json");
const tables = load("openbao-mount-tables.json");
const bytes = (v: Vector | undefined): Uint8Array => Buffer.from(v?.stored_base64 ?? "", "base64");

describe("Vault's compression canary", () => {
  it("reads the snappy framed streams OpenBao wrote (an uncompressed chunk, and a compressed one)", () => {
    for (const k of ["scratch/snapsmall", "scratch/snapbig"]) {
      const v = compression[k];
      const raw = bytes(v);
      expect(raw[0]).toBe(0x53);
      expect(decompressRecord(raw, k)).toEqual({ text: v?.decompressed, compression: "snappy" });
    }
    // The big one really exercises the block decoder (chunk type 0x00 after the stream identifier).
    expect(bytes(compression["scratch/snapbig"])[11]).toBe(0x00);
    expect(bytes(compression["scratch/snapsmall"])[11]).toBe(0x01);
  });

  it("reads every gzip table OpenBao wrote", () => {
    const all = { ...tables, "scratch/gz": compression["scratch/gz"] as Vector };
    for (const [k, v] of Object.entries(all)) {
      const raw = bytes(v);
      expect([...raw.subarray(0, 11)]).toEqual([0x47, 0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 2, 0xff]);
      expect(decompressRecord(raw, k)).toEqual({ text: v.decompressed, compression: "gzip" });
    }
  });

  it("writes 'G' + gzip with OpenBao's header bytes, and reads it back", () => {
    const text = '{"type":"mounts","entries":null}\n';
    const out = compressJson(text);
    expect([...out.subarray(0, 11)]).toEqual([0x47, 0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 2, 0xff]);
    expect(new TextDecoder().decode(gunzipSync(out.subarray(1)))).toBe(text);
    expect(decompressRecord(out, "t")).toEqual({ text, compression: "gzip" });
  });

  it("takes a record without a canary as plain JSON", () => {
    expect(decompressRecord(new TextEncoder().encode('{"a":1}'), "t")).toEqual({
      text: '{"a":1}',
      compression: "none",
    });
  });

  it("refuses lz4 and lzw naming the record, and a damaged stream naming the record", () => {
    expect(() => decompressRecord(Uint8Array.of(0x34, 1, 2), "core/mounts")).toThrow(
      /core\/mounts is compressed with lz4/,
    );
    expect(() => decompressRecord(Uint8Array.of(0x4c, 1, 2), "core/auth")).toThrow(
      /core\/auth is compressed with lzw/,
    );
    const snap = Buffer.from(bytes(compression["scratch/snapsmall"]));
    snap[snap.length - 1] = (snap.at(-1) ?? 0) ^ 1; // a data byte: the chunk's CRC-32C no longer matches
    expect(() => decompressRecord(snap, "core/local-mounts")).toThrow(
      /core\/local-mounts cannot be decoded \(snappy\): snappy chunk checksum mismatch/,
    );
    expect(() => decompressRecord(Uint8Array.of(0x47, 1, 2, 3), "core/mounts")).toThrow(
      /core\/mounts cannot be decoded \(gzip\)/,
    );
  });

  it("decodes overlapping copies and long literals of the block format", () => {
    // len 12; literal "ab"; copy len 10 offset 2 (1-byte-offset copy: len 4+6) → "abababababab"
    expect(new TextDecoder().decode(snappyBlockDecode(Uint8Array.of(12, 0x04, 0x61, 0x62, 0x19, 0x02)))).toBe(
      "abababababab",
    );
    const lit = new Uint8Array(100).fill(0x78);
    // literal of 100 bytes: tag 60<<2 (one length byte follows, value len-1 = 99)
    const block = Uint8Array.of(100, 60 << 2, 99, ...lit);
    expect(snappyBlockDecode(block)).toEqual(lit);
    expect(() => snappyBlockDecode(Uint8Array.of(5, 0x04, 0x61, 0x62))).toThrow(/header says 5/);
    expect(() => snappyBlockDecode(Uint8Array.of(8, 0x00, 0x61, 0x19, 0x05))).toThrow(/outside its block/);
    // The masked CRC-32C of the framing format ("123456789" → CRC-32C e3069283).
    const crc = 0xe3069283;
    expect(maskedCrc32c(new TextEncoder().encode("123456789"))).toBe(
      ((((crc >>> 15) | (crc << 17)) >>> 0) + 0xa282ead8) >>> 0,
    );
  });
});

/**
 * Vault's compression canary (`sdk/helper/compressutil`): a record written with
 * `jsonutil.EncodeJSONAndCompress` is one canary byte followed by the compressed JSON. Vault and
 * OpenBao store the mount, auth and audit tables this way (docs/vault-storage-formats.md §1).
 *
 * - `G` gzip — what OpenBao writes (level 9: header XFL 02, OS ff) and what Bulwark writes.
 * - `S` snappy *framed stream* (`snappy.NewBufferedWriter`), read only.
 * - `4` lz4 and `L` lzw — OpenBao refuses them ("support … has been removed"); so does Bulwark,
 *   naming the record, since a silent misread of a mount table would lose mounts.
 * - anything else: the bytes are the JSON itself (JSON never starts with one of these bytes).
 */
import { gunzipSync, gzipSync, constants as zlib } from "node:zlib";
import { VaultError } from "../errors.js";

export type Compression = "gzip" | "snappy" | "none";

const CANARY_GZIP = 0x47; // 'G'
const CANARY_SNAPPY = 0x53; // 'S'
const CANARY_LZ4 = 0x34; // '4'
const CANARY_LZW = 0x4c; // 'L'

const enc = new TextEncoder();
const dec = new TextDecoder("utf-8", { fatal: true });

/**
 * `'G'` + gzip of `text` at level 9, as OpenBao writes its tables. The header's OS byte is set to
 * 0xff ("unknown"), as Go's compress/gzip writes it, so the stored header matches OpenBao's
 * (`47 1f 8b 08 00 00 00 00 00 02 ff`); the deflate stream itself differs from Go's, which no
 * reader cares about.
 */
export function compressJson(text: string): Uint8Array {
  const gz = gzipSync(enc.encode(text), { level: zlib.Z_BEST_COMPRESSION });
  const out = new Uint8Array(gz.length + 1);
  out[0] = CANARY_GZIP;
  out.set(gz, 1);
  out[10] = 0xff; // gzip header byte 9 (OS); no header CRC is written, so nothing else changes
  return out;
}

/**
 * The JSON text of a record that may carry a compression canary, and which one it carried.
 * `what` names the record (e.g. its storage path) in errors.
 */
export function decompressRecord(
  bytes: Uint8Array,
  what: string,
): { text: string; compression: Compression } {
  const canary = bytes[0];
  try {
    switch (canary) {
      case CANARY_GZIP:
        return { text: dec.decode(gunzipSync(bytes.subarray(1))), compression: "gzip" };
      case CANARY_SNAPPY:
        return { text: dec.decode(snappyFramedDecode(bytes.subarray(1))), compression: "snappy" };
      case CANARY_LZ4:
      case CANARY_LZW:
        throw new VaultError(
          "internal",
          `${what} is compressed with ${canary === CANARY_LZ4 ? "lz4" : "lzw"}, which OpenBao and Bulwark no longer read: rewrite it with an older Vault (which stores gzip) before moving the data set`,
        );
      default:
        return { text: dec.decode(bytes), compression: "none" };
    }
  } catch (e) {
    if (e instanceof VaultError) throw e;
    throw new VaultError(
      "internal",
      `${what} cannot be decoded (${canary === CANARY_GZIP ? "gzip" : canary === CANARY_SNAPPY ? "snappy" : "uncompressed"}): ${(e as Error).message}`,
      { cause: e },
    );
  }
}

// ------------------------------------------------------------------ snappy

/**
 * Decodes a snappy framed stream (github.com/google/snappy framing_format.txt): chunks of
 * type (1 byte) + length (3 bytes LE). 0xff stream identifier "sNaPpY", 0x00 compressed data and
 * 0x01 uncompressed data (each with a masked CRC-32C of the uncompressed bytes, checked), 0x80–0xfe
 * skippable, 0x02–0x7f reserved (an error).
 */
export function snappyFramedDecode(src: Uint8Array): Uint8Array {
  const parts: Uint8Array[] = [];
  let i = 0;
  let sawIdentifier = false;
  while (i < src.length) {
    if (i + 4 > src.length) throw new Error("truncated snappy chunk header");
    const type = src[i] as number;
    const len = (src[i + 1] as number) | ((src[i + 2] as number) << 8) | ((src[i + 3] as number) << 16);
    i += 4;
    if (i + len > src.length) throw new Error("truncated snappy chunk");
    const body = src.subarray(i, i + len);
    i += len;
    if (type === 0xff) {
      if (len !== 6 || String.fromCharCode(...body) !== "sNaPpY")
        throw new Error("bad snappy stream identifier");
      sawIdentifier = true;
      continue;
    }
    if (!sawIdentifier) throw new Error("snappy stream does not start with its identifier");
    if (type === 0x00 || type === 0x01) {
      if (len < 4) throw new Error("snappy data chunk shorter than its checksum");
      const crc =
        ((body[0] as number) |
          ((body[1] as number) << 8) |
          ((body[2] as number) << 16) |
          ((body[3] as number) << 24)) >>>
        0;
      const data = type === 0x00 ? snappyBlockDecode(body.subarray(4)) : body.subarray(4);
      if (maskedCrc32c(data) !== crc) throw new Error("snappy chunk checksum mismatch");
      parts.push(data);
    } else if (type < 0x80) {
      throw new Error(`reserved unskippable snappy chunk type 0x${type.toString(16)}`);
    } // 0x80–0xfe: skippable (padding and reserved)
  }
  if (!sawIdentifier) throw new Error("empty snappy stream");
  const total = parts.reduce((n, p) => n + p.length, 0);
  const out = new Uint8Array(total);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** Decodes one snappy block (format_description.txt): varint length, then literals and copies. */
export function snappyBlockDecode(src: Uint8Array): Uint8Array {
  let i = 0;
  let n = 0;
  for (let shift = 0; ; shift += 7) {
    if (i >= src.length || shift > 28) throw new Error("bad snappy length varint");
    const b = src[i++] as number;
    n += (b & 0x7f) * 2 ** shift;
    if (b < 0x80) break;
  }
  const out = new Uint8Array(n);
  let o = 0;
  const byte = (): number => {
    if (i >= src.length) throw new Error("truncated snappy block");
    return src[i++] as number;
  };
  while (i < src.length) {
    const tag = byte();
    const kind = tag & 3;
    if (kind === 0) {
      let len = tag >> 2;
      if (len >= 60) {
        const bytes = len - 59;
        len = 0;
        for (let k = 0; k < bytes; k++) len += byte() * 2 ** (8 * k);
      }
      len += 1;
      if (i + len > src.length || o + len > n) throw new Error("snappy literal overruns its block");
      out.set(src.subarray(i, i + len), o);
      i += len;
      o += len;
      continue;
    }
    let len: number;
    let offset: number;
    if (kind === 1) {
      len = 4 + ((tag >> 2) & 7);
      offset = ((tag >> 5) << 8) | byte();
    } else if (kind === 2) {
      len = 1 + (tag >> 2);
      offset = byte() | (byte() << 8);
    } else {
      len = 1 + (tag >> 2);
      offset = (byte() | (byte() << 8) | (byte() << 16) | (byte() << 24)) >>> 0;
    }
    if (offset === 0 || offset > o || o + len > n) throw new Error("snappy copy outside its block");
    // Byte by byte: a copy may overlap the bytes it produces (offset < len repeats a pattern).
    for (let k = 0; k < len; k++, o++) out[o] = out[o - offset] as number;
  }
  if (o !== n) throw new Error(`snappy block is ${o} bytes, its header says ${n}`);
  return out;
}

let crcTable: Uint32Array | undefined;

/** CRC-32C (Castagnoli), masked as the snappy framing format stores it. */
export function maskedCrc32c(data: Uint8Array): number {
  if (crcTable === undefined) {
    crcTable = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0x82f63b78 ^ (c >>> 1) : c >>> 1;
      crcTable[n] = c >>> 0;
    }
  }
  let crc = 0xffffffff;
  for (const b of data) crc = (crcTable[(crc ^ b) & 0xff] as number) ^ (crc >>> 8);
  crc = (crc ^ 0xffffffff) >>> 0;
  return ((((crc >>> 15) | (crc << 17)) >>> 0) + 0xa282ead8) >>> 0;
}

import { createCipheriv, createDecipheriv } from "node:crypto";
import { AesGcmKey } from "@bulwark/crypto";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { CIPHERTEXT_OVERHEAD } from "./constants.js";
import { BarrierCiphertextError } from "./errors.js";
import { decryptFrame, encryptFrame, encryptFrameWithNonce, frameTerm } from "./frame.js";
import { hex, seq, text, utf8 } from "./test-helpers.js";

const KEY_BYTES = seq(32, 32);
const KEY = new AesGcmKey(KEY_BYTES);
const NONCE = seq(0xa0, 12);

// Produced by Go's crypto/cipher with Vault's framing (binary.BigEndian.PutUint32(out[:4], term);
// out[4] = 2; gcm.Seal(out, nonce, pt, []byte(path))): key 0x20..0x3f, nonce 0xa0..0xab,
// term 7, path "secret/data/db", plaintext "hello bulwark".
const GO_VECTOR_V2 =
  "0000000702a0a1a2a3a4a5a6a7a8a9aaab1659c858abf7e2dfcd5fccc84dbcdbca67b12eca50a0d0bf88524982c6";
// Same key, version 1 (no AAD), term 1, nonce 0xb0..0xbb, plaintext "v1 value".
const GO_VECTOR_V1 = "0000000101b0b1b2b3b4b5b6b7b8b9babb40cb0a31f34fbd6be659b994371290108535a89a0950b384";

/** The barrier format computed independently with node:crypto. */
function referenceFrame(term: number, path: string, plaintext: Uint8Array, nonce: Uint8Array): Uint8Array {
  const cipher = createCipheriv("aes-256-gcm", KEY_BYTES, nonce);
  if (path !== "") cipher.setAAD(Buffer.from(path, "utf8"));
  const ct = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  const header = Buffer.alloc(5);
  header.writeUInt32BE(term, 0);
  header[4] = 2;
  return new Uint8Array(Buffer.concat([header, nonce, ct, cipher.getAuthTag()]));
}

const keys = new Map([[7, KEY]]);

function expectCode(fn: () => unknown, code: string): void {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(BarrierCiphertextError);
    expect((e as BarrierCiphertextError).code).toBe(code);
    return;
  }
  expect.fail(`expected BarrierCiphertextError ${code}, but nothing was thrown`);
}

describe("barrier ciphertext format", () => {
  it("matches the Go/Vault known-answer vector byte for byte", () => {
    const out = encryptFrameWithNonce(KEY, 7, "secret/data/db", utf8("hello bulwark"), NONCE);
    expect(hex(out)).toBe(GO_VECTOR_V2);
  });

  it("matches an independent node:crypto computation for a fixed key, nonce and path", () => {
    const pt = utf8("a value with AAD = its storage path");
    const out = encryptFrameWithNonce(KEY, 0xdeadbeef, "logical/1234/foo", pt, NONCE);
    expect(hex(out)).toBe(hex(referenceFrame(0xdeadbeef, "logical/1234/foo", pt, NONCE)));
    expect(frameTerm(out)).toBe(0xdeadbeef);
  });

  it("uses no AAD for an empty path", () => {
    const pt = utf8("no aad");
    expect(hex(encryptFrameWithNonce(KEY, 1, "", pt, NONCE))).toBe(hex(referenceFrame(1, "", pt, NONCE)));
  });

  it("decrypts the Go vectors, version 0x02 with AAD and version 0x01 without", () => {
    expect(text(decryptFrame(keys, "secret/data/db", Buffer.from(GO_VECTOR_V2, "hex")))).toBe(
      "hello bulwark",
    );
    const v1 = Buffer.from(GO_VECTOR_V1, "hex");
    // Version 1 has no AAD, so the path does not matter.
    expect(text(decryptFrame(new Map([[1, KEY]]), "any/path", v1))).toBe("v1 value");
    expect(text(decryptFrame(new Map([[1, KEY]]), "", v1))).toBe("v1 value");
  });

  it("writes version 0x02, the term big-endian, a fresh random nonce, and 33 bytes of overhead", () => {
    const pt = utf8("x".repeat(100));
    const a = encryptFrame(KEY, 0x01020304, "p", pt);
    const b = encryptFrame(KEY, 0x01020304, "p", pt);
    expect(a.length).toBe(pt.length + CIPHERTEXT_OVERHEAD);
    expect(hex(a.subarray(0, 5))).toBe("0102030402");
    expect(hex(a.subarray(5, 17))).not.toBe(hex(b.subarray(5, 17)));
    // Independent decryption with node:crypto.
    const d = createDecipheriv("aes-256-gcm", KEY_BYTES, a.subarray(5, 17));
    d.setAAD(Buffer.from("p"));
    d.setAuthTag(a.subarray(a.length - 16));
    const plain = Buffer.concat([d.update(a.subarray(17, a.length - 16)), d.final()]);
    expect(text(plain)).toBe("x".repeat(100));
  });

  it("never repeats a nonce, across refills of the nonce batch", () => {
    const seen = new Set<string>();
    const n = 256 * 4 + 7;
    for (let i = 0; i < n; i++) {
      const nonce = hex(encryptFrame(KEY, 7, "p", new Uint8Array(0)).subarray(5, 17));
      expect(nonce).not.toBe("0".repeat(24));
      seen.add(nonce);
    }
    expect(seen.size).toBe(n);
  });

  it("encrypts an empty plaintext to exactly the overhead", () => {
    const out = encryptFrame(KEY, 7, "k", new Uint8Array(0));
    expect(out.length).toBe(CIPHERTEXT_OVERHEAD);
    expect(decryptFrame(keys, "k", out).length).toBe(0);
  });

  it("with an empty path, version 0x01 and 0x02 are the same ciphertext (as in Vault)", () => {
    const out = encryptFrame(KEY, 7, "", utf8("same"));
    out[4] = 1;
    expect(text(decryptFrame(keys, "", out))).toBe("same");
  });
});

describe("barrier ciphertext properties", () => {
  const path = fc.string({ minLength: 1, maxLength: 40, unit: "grapheme" });
  const value = fc.uint8Array({ maxLength: 600 });

  it("round-trips any path and value", () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 40, unit: "grapheme" }), value, (p, v) => {
        const out = decryptFrame(keys, p, encryptFrame(KEY, 7, p, v));
        expect(hex(out)).toBe(hex(v));
      }),
    );
  });

  it("rejects any single-byte change with a typed error, never a wrong plaintext", () => {
    fc.assert(
      fc.property(path, value, fc.nat(), fc.integer({ min: 1, max: 255 }), (p, v, at, delta) => {
        const ct = encryptFrame(KEY, 7, p, v);
        const i = at % ct.length;
        ct[i] = (ct[i] as number) ^ delta;
        expect(() => decryptFrame(keys, p, ct)).toThrow(BarrierCiphertextError);
      }),
    );
  });

  it("rejects a ciphertext copied to another path (authentication_failed)", () => {
    fc.assert(
      fc.property(path, path, value, (p, q, v) => {
        fc.pre(p !== q);
        const ct = encryptFrame(KEY, 7, p, v);
        expectCode(() => decryptFrame(keys, q, ct), "authentication_failed");
      }),
    );
  });

  it("rejects a truncated ciphertext (too short below 33 bytes, otherwise typed)", () => {
    fc.assert(
      fc.property(path, value, fc.nat(), (p, v, cut) => {
        const ct = encryptFrame(KEY, 7, p, v);
        const len = cut % ct.length;
        const short = ct.subarray(0, len);
        if (len < CIPHERTEXT_OVERHEAD) expectCode(() => decryptFrame(keys, p, short), "ciphertext_too_short");
        else expect(() => decryptFrame(keys, p, short)).toThrow(BarrierCiphertextError);
      }),
    );
  });

  it("rejects an unknown version byte (unknown_version)", () => {
    fc.assert(
      fc.property(
        path,
        value,
        fc.integer({ min: 0, max: 255 }).filter((b) => b !== 1 && b !== 2),
        (p, v, version) => {
          const ct = encryptFrame(KEY, 7, p, v);
          ct[4] = version;
          expectCode(() => decryptFrame(keys, p, ct), "unknown_version");
        },
      ),
    );
  });

  it("rejects an unknown term (unknown_term) and reports it", () => {
    fc.assert(
      fc.property(path, value, fc.integer({ min: 0, max: 0xffffffff }), (p, v, term) => {
        fc.pre(term !== 7);
        const ct = encryptFrame(KEY, term, p, v);
        try {
          decryptFrame(keys, p, ct);
          expect.fail("decrypted with a missing term");
        } catch (e) {
          expect(e).toBeInstanceOf(BarrierCiphertextError);
          expect((e as BarrierCiphertextError).code).toBe("unknown_term");
          expect((e as BarrierCiphertextError).term).toBe(term);
        }
      }),
    );
  });

  it("fails authentication with the wrong key for the term", () => {
    const other = new Map([[7, new AesGcmKey(seq(100, 32))]]);
    expectCode(() => decryptFrame(other, "p", encryptFrame(KEY, 7, "p", utf8("v"))), "authentication_failed");
  });
});

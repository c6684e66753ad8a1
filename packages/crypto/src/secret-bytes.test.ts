import { inspect } from "node:util";
import { describe, expect, it } from "vitest";
import { CryptoError } from "./errors.js";
import { constantTimeEqual, SecretBytes } from "./secret-bytes.js";

describe("SecretBytes", () => {
  it("copies into an ArrayBuffer of its own", () => {
    const pooled = Buffer.from("0123456789abcdef0123456789abcdef"); // may be a slice of Node's pool
    const s = SecretBytes.from(pooled);
    expect(s.bytes.byteOffset).toBe(0);
    expect(s.bytes.buffer.byteLength).toBe(32);
    pooled.fill(0);
    expect(s.bytes[0]).toBe(0x30);
  });

  it("adopt copies a view into a larger buffer instead of owning it", () => {
    const big = new Uint8Array(64).fill(9);
    const s = SecretBytes.adopt(big.subarray(8, 40));
    expect(s.bytes.buffer).not.toBe(big.buffer);
    const own = new Uint8Array(4).fill(1);
    expect(SecretBytes.adopt(own).bytes).toBe(own);
  });

  it("never shows its bytes when printed, logged or serialised", () => {
    const s = SecretBytes.from(new TextEncoder().encode("super-secret-value"));
    for (const shown of [String(s), JSON.stringify({ s }), inspect(s), inspect({ nested: { s } }), `${s}`]) {
      expect(shown).not.toContain("super-secret-value");
      expect(shown).not.toContain("73757065"); // hex of "supe"
      expect(shown).toContain("redacted");
    }
  });

  it("zero() wipes the bytes and later access throws key_zeroed", () => {
    const s = SecretBytes.from(new Uint8Array([1, 2, 3]));
    const view = s.bytes;
    s.zero();
    expect([...view]).toEqual([0, 0, 0]);
    expect(s.isZeroed).toBe(true);
    expect(() => s.bytes).toThrow(CryptoError);
    s.zero(); // idempotent
  });

  it("equals compares in constant time against bytes or another holder", () => {
    const a = SecretBytes.from(new Uint8Array([1, 2, 3]));
    expect(a.equals(new Uint8Array([1, 2, 3]))).toBe(true);
    expect(a.equals(SecretBytes.from(new Uint8Array([1, 2, 4])))).toBe(false);
    expect(a.copy()).toEqual(new Uint8Array([1, 2, 3]));
  });
});

describe("constantTimeEqual", () => {
  it("is false for different lengths and different bytes, true for equal ones", () => {
    expect(constantTimeEqual(new Uint8Array([1]), new Uint8Array([1, 0]))).toBe(false);
    expect(constantTimeEqual(new Uint8Array([1, 2]), new Uint8Array([1, 3]))).toBe(false);
    expect(constantTimeEqual(new Uint8Array([]), new Uint8Array([]))).toBe(true);
    expect(constantTimeEqual(new Uint8Array([5, 6]), new Uint8Array([5, 6]))).toBe(true);
  });
});

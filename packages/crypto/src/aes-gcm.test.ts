import { createCipheriv } from "node:crypto";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  AesGcmKey,
  aesGcmDecrypt,
  aesGcmEncrypt,
  aesGcmEncryptInto,
  envelopeDecrypt,
  envelopeEncrypt,
  GCM_TAG_BYTES,
  randomBytes,
} from "./aes-gcm.js";
import { CryptoError } from "./errors.js";

const key = new Uint8Array(32).map((_, i) => i);
const nonce = new Uint8Array(12).map((_, i) => 0xa0 + i);

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    return e instanceof CryptoError ? e.code : `not a CryptoError: ${String(e)}`;
  }
  return undefined;
}

describe("AES-256-GCM", () => {
  it("matches node:crypto byte for byte (known answer)", () => {
    const pt = new TextEncoder().encode("bulwark known answer");
    const aad = new TextEncoder().encode("secret/data/db");
    const c = createCipheriv("aes-256-gcm", key, nonce);
    c.setAAD(aad);
    const expected = Buffer.concat([c.update(pt), c.final(), c.getAuthTag()]);
    expect(Buffer.from(aesGcmEncrypt(key, nonce, pt, aad)).equals(expected)).toBe(true);
    expect(new TextDecoder().decode(aesGcmDecrypt(key, nonce, expected, aad))).toBe("bulwark known answer");
  });

  it("empty plaintext encrypts to the 16-byte tag alone", () => {
    const ct = aesGcmEncrypt(key, nonce, new Uint8Array(0));
    expect(ct.length).toBe(GCM_TAG_BYTES);
    expect(aesGcmDecrypt(key, nonce, ct).length).toBe(0);
  });

  it("encryptInto writes at an offset and reports the length", () => {
    const pt = randomBytes(100);
    const out = new Uint8Array(5 + 100 + 16);
    const n = aesGcmEncryptInto(new AesGcmKey(key), nonce, pt, undefined, out, 5);
    expect(n).toBe(116);
    expect(aesGcmDecrypt(key, nonce, out.subarray(5))).toEqual(pt);
  });

  it("encryptInto rejects an offset that is negative, fractional or past the buffer, writing nothing", () => {
    for (const offset of [-5, 1.5, 200, Number.NaN]) {
      const out = new Uint8Array(40);
      expect(
        codeOf(() => aesGcmEncryptInto(key, nonce, new Uint8Array(4), undefined, out, offset)),
        `offset ${offset}`,
      ).toBe("invalid_argument");
      expect(out.every((b) => b === 0)).toBe(true);
    }
  });

  it("rejects keys that are not 32 bytes", () => {
    expect(codeOf(() => aesGcmEncrypt(new Uint8Array(16), nonce, new Uint8Array(1)))).toBe("invalid_key");
  });

  it("rejects nonces that are not 12 bytes", () => {
    expect(codeOf(() => aesGcmEncrypt(key, new Uint8Array(16), new Uint8Array(1)))).toBe("invalid_nonce");
    expect(codeOf(() => aesGcmDecrypt(key, new Uint8Array(8), new Uint8Array(32)))).toBe("invalid_nonce");
  });

  it("rejects a ciphertext shorter than the tag", () => {
    expect(codeOf(() => aesGcmDecrypt(key, nonce, new Uint8Array(15)))).toBe("authentication_failed");
  });

  it("round-trips any plaintext and AAD", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 2048 }), fc.uint8Array({ maxLength: 64 }), (pt, aad) => {
        const ct = aesGcmEncrypt(key, nonce, pt, aad);
        expect(aesGcmDecrypt(key, nonce, ct, aad)).toEqual(pt);
      }),
    );
  });

  it("any single changed byte fails authentication, never a wrong plaintext", () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 1, maxLength: 256 }),
        fc.nat(),
        fc.integer({ min: 1, max: 255 }),
        (pt, pos, flip) => {
          const ct = aesGcmEncrypt(key, nonce, pt);
          const i = pos % ct.length;
          ct[i] = (ct[i] as number) ^ flip;
          expect(codeOf(() => aesGcmDecrypt(key, nonce, ct))).toBe("authentication_failed");
        },
      ),
    );
  });

  it("a different AAD fails authentication", () => {
    const ct = aesGcmEncrypt(key, nonce, new Uint8Array([1, 2, 3]), new Uint8Array([1]));
    expect(codeOf(() => aesGcmDecrypt(key, nonce, ct, new Uint8Array([2])))).toBe("authentication_failed");
    expect(codeOf(() => aesGcmDecrypt(key, nonce, ct))).toBe("authentication_failed");
  });
});

describe("randomBytes", () => {
  it("returns a buffer of its own of the asked length", () => {
    const r = randomBytes(32);
    expect(r.length).toBe(32);
    expect(r.byteOffset).toBe(0);
    expect(r.buffer.byteLength).toBe(32);
    expect(randomBytes(32)).not.toEqual(r);
  });

  it("rejects a negative or fractional length", () => {
    expect(codeOf(() => randomBytes(-1))).toBe("invalid_argument");
    expect(codeOf(() => randomBytes(1.5))).toBe("invalid_argument");
  });
});

describe("envelope encryption", () => {
  it("wraps only the data key and zeroes it afterwards", async () => {
    let seen: Uint8Array | undefined;
    const pt = new TextEncoder().encode("a large value");
    const env = await envelopeEncrypt(pt, async (dk) => {
      seen = dk;
      return new Uint8Array(dk).reverse();
    });
    expect(seen?.every((b) => b === 0)).toBe(true);
    const back = await envelopeDecrypt(env, async (w) => new Uint8Array(w).reverse());
    expect(new TextDecoder().decode(back)).toBe("a large value");
  });

  it("zeroes the data key even when wrapping fails", async () => {
    let seen: Uint8Array | undefined;
    await expect(
      envelopeEncrypt(new Uint8Array(4), async (dk) => {
        seen = dk;
        throw new Error("kms down");
      }),
    ).rejects.toThrow("kms down");
    expect(seen?.every((b) => b === 0)).toBe(true);
  });

  it("refuses a malformed envelope before spending an unwrap call, and zeroes the unwrapped key on failure", async () => {
    let calls = 0;
    const env = await envelopeEncrypt(new Uint8Array(4), async (dk) => new Uint8Array(dk));
    const unwrap = async (w: Uint8Array) => {
      calls++;
      return w;
    };
    await expect(envelopeDecrypt({ ...env, nonce: new Uint8Array(16) }, unwrap)).rejects.toMatchObject({
      code: "invalid_nonce",
    });
    await expect(envelopeDecrypt({ ...env, ciphertext: new Uint8Array(15) }, unwrap)).rejects.toMatchObject({
      code: "authentication_failed",
    });
    expect(calls).toBe(0);
    const given = new Uint8Array(env.wrappedKey);
    await expect(envelopeDecrypt(env, async () => given, new Uint8Array([9]))).rejects.toMatchObject({
      code: "authentication_failed",
    });
    expect(given.every((b) => b === 0)).toBe(true);
  });

  it("a damaged envelope (nonce or ciphertext missing or not bytes) fails with a CryptoError, not a TypeError", async () => {
    let calls = 0;
    const unwrap = async () => {
      calls++;
      return new Uint8Array(32);
    };
    const env = await envelopeEncrypt(new Uint8Array(4), async (dk) => new Uint8Array(dk));
    for (const [damaged, code] of [
      [{ ...env, nonce: undefined }, "invalid_nonce"],
      [{ ...env, nonce: "0123456789ab" }, "invalid_nonce"],
      [{ ...env, ciphertext: undefined }, "authentication_failed"],
      [{ ...env, ciphertext: null }, "authentication_failed"],
    ] as const) {
      const err = await envelopeDecrypt(damaged as unknown as typeof env, unwrap).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(CryptoError);
      expect(err).toMatchObject({ code });
    }
    expect(calls).toBe(0);
  });

  it("binds the AAD", async () => {
    const env = await envelopeEncrypt(
      new Uint8Array(4),
      async (dk) => new Uint8Array(dk),
      new Uint8Array([7]),
    );
    await expect(
      envelopeDecrypt(env, async (w) => new Uint8Array(w), new Uint8Array([8])),
    ).rejects.toMatchObject({
      code: "authentication_failed",
    });
  });
});

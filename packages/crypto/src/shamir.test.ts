import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { randomBytes } from "./aes-gcm.js";
import { CryptoError } from "./errors.js";
import { shamirCombine, shamirSplit, validateShamirParameters } from "./shamir.js";

function paramCode(shares: number, threshold: number): string | undefined {
  try {
    validateShamirParameters(shares, threshold);
  } catch (e) {
    return (e as CryptoError).code;
  }
  return undefined;
}

describe("Shamir parameters (Vault's rules)", () => {
  it("accepts 1 of 1, 2 of 2, 3 of 5 and 255 of 255", () => {
    expect(paramCode(1, 1)).toBeUndefined();
    expect(paramCode(2, 2)).toBeUndefined();
    expect(paramCode(5, 3)).toBeUndefined();
    expect(paramCode(255, 255)).toBeUndefined();
  });

  it("rejects threshold 1 with several shares, threshold above shares, over 255 shares, zero and fractions", () => {
    for (const [s, t] of [
      [5, 1],
      [3, 4],
      [256, 3],
      [0, 0],
      [3, 0],
      [2.5, 2],
    ] as const) {
      expect(paramCode(s, t)).toBe("shamir_invalid_parameters");
    }
  });

  it("names the fields in its message", () => {
    expect(() => validateShamirParameters(5, 1)).toThrow(/secret_threshold.*secret_shares/);
    expect(() =>
      validateShamirParameters(3, 2, { shares: "recovery_shares", threshold: "recovery_threshold" }),
    ).not.toThrow();
    expect(() =>
      validateShamirParameters(1, 2, { shares: "recovery_shares", threshold: "recovery_threshold" }),
    ).toThrow(/recovery_threshold/);
  });
});

describe("Shamir split/combine", () => {
  it("one share is the key itself", async () => {
    const key = randomBytes(32);
    const [share] = await shamirSplit(key, 1, 1);
    expect(share).toEqual(key);
    expect(await shamirCombine([key])).toEqual(key);
  });

  it("shares are y-bytes followed by one distinct non-zero x byte", async () => {
    const shares = await shamirSplit(randomBytes(32), 5, 3);
    expect(shares).toHaveLength(5);
    const xs = shares.map((s) => s[32]);
    expect(shares.every((s) => s.length === 33)).toBe(true);
    expect(new Set(xs).size).toBe(5);
    expect(xs.includes(0)).toBe(false);
  });

  it("any threshold-sized subset recovers the secret", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc
          .integer({ min: 2, max: 8 })
          .chain((n) =>
            fc.tuple(
              fc.constant(n),
              fc.integer({ min: 2, max: n }),
              fc.uint8Array({ minLength: 1, maxLength: 48 }),
            ),
          ),
        async ([n, t, secret]) => {
          const shares = await shamirSplit(secret, n, t);
          const subset = [...shares].sort(() => Math.random() - 0.5).slice(0, t);
          expect(await shamirCombine(subset)).toEqual(secret);
        },
      ),
      { numRuns: 50 },
    );
  });

  it("combines hand-computed shares over GF(2^8) with polynomial 0x11b (Vault's field and y||x layout)", async () => {
    // Secret "te" = 74 65, threshold 2, f(x) = secret + a·x with a = (01, 03).
    // x = 01: 74^01 = 75, 65^03 = 66.  x = 80: 01·80 = 80 → 74^80 = f4; 03·80 = (80·2 = 100^11b = 1b)^80 = 9b → 65^9b = fe.
    // The second share only combines correctly if the reduction polynomial is 0x11b.
    const x1 = new Uint8Array([0x75, 0x66, 0x01]);
    const x80 = new Uint8Array([0xf4, 0xfe, 0x80]);
    expect(await shamirCombine([x1, x80])).toEqual(new Uint8Array([0x74, 0x65]));
    expect(await shamirCombine([x80, x1])).toEqual(new Uint8Array([0x74, 0x65]));
  });

  it("rejects duplicate shares, mixed lengths, x = 0 and an empty list with shamir_invalid_shares", async () => {
    const shares = await shamirSplit(randomBytes(16), 3, 2);
    const a = shares[0] as Uint8Array;
    const bad: Uint8Array[][] = [[], [a, a], [a, new Uint8Array(10)], [a, new Uint8Array(17)]];
    for (const set of bad) {
      await expect(shamirCombine(set)).rejects.toMatchObject({ code: "shamir_invalid_shares" });
    }
  });

  it("accepts Node Buffers as the secret and as shares (a Buffer is a Uint8Array)", async () => {
    const secret = Buffer.from(randomBytes(32));
    const shares = await shamirSplit(secret, 3, 2);
    // Shares typed in by an operator are usually decoded with Buffer.from(hex | base64).
    const decoded = shares.map((s) => Buffer.from(Buffer.from(s).toString("hex"), "hex"));
    expect(Buffer.from(await shamirCombine(decoded.slice(1))).equals(secret)).toBe(true);
    expect(
      Buffer.from(await shamirCombine([decoded[0] as Buffer, shares[2] as Uint8Array])).equals(secret),
    ).toBe(true);
  });

  it("refuses to split an empty secret", async () => {
    await expect(shamirSplit(new Uint8Array(0), 3, 2)).rejects.toBeInstanceOf(CryptoError);
  });
});

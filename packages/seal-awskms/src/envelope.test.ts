import { aesGcmDecrypt, aesGcmEncrypt, CryptoError, randomBytes } from "@bulwark/crypto";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { openEnvelope, sealEnvelope } from "./envelope.js";

describe("sealEnvelope / openEnvelope", () => {
  it("round trips any plaintext and AAD, and matches @bulwark/crypto's AES-GCM format (property)", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.uint8Array({ maxLength: 2048 }),
        fc.option(fc.uint8Array({ maxLength: 64 })),
        async (pt, aadOrNull) => {
          const aad = aadOrNull ?? undefined;
          let seen: Uint8Array | undefined;
          let keyCopy = new Uint8Array(0);
          const env = await sealEnvelope(pt, aad, async (dataKey) => {
            seen = dataKey;
            keyCopy = new Uint8Array(dataKey);
            return "wrapped";
          });
          expect(env.wrappedKey).toBe("wrapped");
          expect(env.iv.length).toBe(12);
          expect(env.ciphertext.length).toBe(pt.length + 16);
          expect(keyCopy.length).toBe(32);
          // The data key handed to wrap() is zeroed once wrap() has returned.
          expect(seen?.every((b) => b === 0)).toBe(true);
          // Same bytes as the crypto package's AES-256-GCM (ct || tag, IV apart).
          expect(
            Buffer.from(aesGcmDecrypt(keyCopy, env.iv, env.ciphertext, aad)).equals(Buffer.from(pt)),
          ).toBe(true);
          let unwrapped: Uint8Array | undefined;
          const back = await openEnvelope(env.ciphertext, env.iv, aad, async () => {
            unwrapped = new Uint8Array(keyCopy);
            return unwrapped;
          });
          expect(Buffer.from(back).equals(Buffer.from(pt))).toBe(true);
          expect(unwrapped?.every((b) => b === 0)).toBe(true);
        },
      ),
      { numRuns: 60 },
    );
  });

  it("opens what @bulwark/crypto's aesGcmEncrypt made", async () => {
    const key = randomBytes(32);
    const iv = randomBytes(12);
    const ct = aesGcmEncrypt(key, iv, new TextEncoder().encode("interop"), new TextEncoder().encode("aad"));
    const pt = await openEnvelope(ct, iv, new TextEncoder().encode("aad"), async () => new Uint8Array(key));
    expect(new TextDecoder().decode(pt)).toBe("interop");
  });

  it("any flipped bit, other AAD or short input is an authentication error, and the key is still zeroed (property)", async () => {
    const pt = randomBytes(48);
    let key = new Uint8Array(0);
    const env = await sealEnvelope(pt, undefined, async (k) => {
      key = new Uint8Array(k);
      return 0;
    });
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 0, max: env.ciphertext.length * 8 - 1 }), async (bit) => {
        const tampered = new Uint8Array(env.ciphertext);
        tampered[bit >> 3] = (tampered[bit >> 3] as number) ^ (1 << (bit & 7));
        const given = new Uint8Array(key);
        await expect(openEnvelope(tampered, env.iv, undefined, async () => given)).rejects.toBeInstanceOf(
          CryptoError,
        );
        expect(given.every((b) => b === 0)).toBe(true);
      }),
      { numRuns: 50 },
    );
    await expect(
      openEnvelope(env.ciphertext, env.iv, new Uint8Array([1]), async () => new Uint8Array(key)),
    ).rejects.toThrow(/authentication failed/);
    await expect(
      openEnvelope(new Uint8Array(15), env.iv, undefined, async () => new Uint8Array(key)),
    ).rejects.toThrow(/shorter than its 16-byte tag/);
    await expect(
      openEnvelope(env.ciphertext, new Uint8Array(16), undefined, async () => new Uint8Array(key)),
    ).rejects.toThrow(/nonce must be 12 bytes/);
  });

  it("zeroes the data key when wrap() fails", async () => {
    let seen: Uint8Array | undefined;
    await expect(
      sealEnvelope(new Uint8Array(8), undefined, async (k) => {
        seen = k;
        throw new Error("KMS down");
      }),
    ).rejects.toThrow("KMS down");
    expect(seen?.every((b) => b === 0)).toBe(true);
  });
});

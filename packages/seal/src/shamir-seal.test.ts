import { AES_256_KEY_BYTES, aesGcmDecrypt, aesGcmEncrypt, randomBytes } from "@bulwark/crypto";
import { describe, expect, it } from "vitest";
import { createBlobInfo, createKeyInfo } from "./blob-info.js";
import { SealConfigError, SealDecryptError, SealKeyNotFoundError, SealUnavailableError } from "./errors.js";
import { ShamirSeal } from "./shamir-seal.js";

const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);

async function sealWithKey(kek = ShamirSeal.generateKey()): Promise<ShamirSeal> {
  const seal = new ShamirSeal();
  seal.setKey(kek);
  await seal.init();
  return seal;
}

describe("ShamirSeal", () => {
  it("is a manual seal that does not seal-wrap", () => {
    const seal = new ShamirSeal();
    expect(seal.type).toBe("shamir");
    expect(seal.autoUnseal).toBe(false);
    expect(seal.supportsSealWrap).toBe(false);
    expect(seal.keyId()).toBe("");
  });

  it("generateKey returns 32 fresh random bytes", () => {
    const a = ShamirSeal.generateKey();
    const b = ShamirSeal.generateKey();
    expect(a.length).toBe(AES_256_KEY_BYTES);
    expect(Buffer.from(a).equals(Buffer.from(b))).toBe(false);
  });

  it("init needs no key; encrypt without a key → SealUnavailableError asking for unseal key shares", async () => {
    const seal = new ShamirSeal();
    await seal.init();
    expect(seal.hasKey).toBe(false);
    await expect(seal.encrypt(utf8("x"))).rejects.toBeInstanceOf(SealUnavailableError);
    await expect(seal.encrypt(utf8("x"))).rejects.toThrow(
      "the Shamir seal has no key yet: provide unseal key shares",
    );
    const blob = createBlobInfo({ ciphertext: randomBytes(40), keyInfo: {} });
    await expect(seal.decrypt(blob)).rejects.toBeInstanceOf(SealUnavailableError);
  });

  it("writes the go-kms-wrapping aead format: ciphertext = IV(12) || ct || tag(16), empty iv, empty key id", async () => {
    const kek = ShamirSeal.generateKey();
    const seal = await sealWithKey(kek);
    const pt = utf8("root key material");
    const blob = await seal.encrypt(pt);
    expect(blob.ciphertext.length).toBe(12 + pt.length + 16);
    expect(blob.iv.length).toBe(0);
    expect(blob.hmac.length).toBe(0);
    expect(blob.keyInfo).toEqual({
      mechanism: 0,
      hmacMechanism: 0,
      keyId: "",
      hmacKeyId: "",
      wrappedKey: new Uint8Array(0),
      flags: 0,
    });
    // Independently decrypt with plain AES-256-GCM: IV prefix, no AAD.
    const back = aesGcmDecrypt(kek, blob.ciphertext.subarray(0, 12), blob.ciphertext.subarray(12));
    expect(Buffer.from(back).toString()).toBe("root key material");
  });

  it("reads a blob built by hand in the same format (what Vault's Shamir seal writes)", async () => {
    const kek = ShamirSeal.generateKey();
    const seal = await sealWithKey(kek);
    const iv = randomBytes(12);
    const ct = aesGcmEncrypt(kek, iv, utf8('["cm9vdA=="]'));
    const blob = createBlobInfo({ ciphertext: Buffer.concat([iv, ct]), keyInfo: {} });
    expect(Buffer.from(await seal.decrypt(blob)).toString()).toBe('["cm9vdA=="]');
  });

  it("AAD from opts.aad is used as GCM additional data", async () => {
    const kek = ShamirSeal.generateKey();
    const seal = await sealWithKey(kek);
    const aad = utf8("core/hsm/barrier-unseal-keys");
    const blob = await seal.encrypt(utf8("v"), { aad });
    const back = aesGcmDecrypt(kek, blob.ciphertext.subarray(0, 12), blob.ciphertext.subarray(12), aad);
    expect(Buffer.from(back).toString()).toBe("v");
  });

  it("a different KEK cannot decrypt (SealDecryptError)", async () => {
    const blob = await (await sealWithKey()).encrypt(utf8("v"));
    const other = await sealWithKey();
    await expect(other.decrypt(blob)).rejects.toBeInstanceOf(SealDecryptError);
  });

  it("a ciphertext shorter than IV + tag is rejected", async () => {
    const seal = await sealWithKey();
    const blob = createBlobInfo({ ciphertext: randomBytes(27), keyInfo: {} });
    await expect(seal.decrypt(blob)).rejects.toThrow(/shorter than IV \+ tag/);
  });

  it("a blob naming a key id was written by another seal: SealKeyNotFoundError", async () => {
    const seal = await sealWithKey();
    const blob = await seal.encrypt(utf8("v"));
    blob.keyInfo = createKeyInfo({ keyId: "hsm:01" });
    const err = await seal.decrypt(blob).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SealKeyNotFoundError);
    expect((err as SealKeyNotFoundError).keyId).toBe("hsm:01");
  });

  it("setKey rejects a key that is not 32 bytes, naming the field", () => {
    const seal = new ShamirSeal();
    for (const bad of [new Uint8Array(16), new Uint8Array(33), "00".repeat(32)]) {
      const err = (() => {
        try {
          seal.setKey(bad as Uint8Array);
        } catch (e) {
          return e;
        }
      })();
      expect(err).toBeInstanceOf(SealConfigError);
      expect((err as SealConfigError).field).toBe("kek");
    }
    expect(seal.hasKey).toBe(false);
  });

  it("setKey copies the key: zeroing the caller's buffer does not affect the seal", async () => {
    const kek = ShamirSeal.generateKey();
    const copy = new Uint8Array(kek);
    const seal = await sealWithKey(kek);
    kek.fill(0);
    const blob = await seal.encrypt(utf8("v"));
    expect(
      Buffer.from(
        aesGcmDecrypt(copy, blob.ciphertext.subarray(0, 12), blob.ciphertext.subarray(12)),
      ).toString(),
    ).toBe("v");
  });

  it("clearKey forgets the key (sealing), setKey loads it again (unsealing)", async () => {
    const kek = ShamirSeal.generateKey();
    const seal = await sealWithKey(kek);
    const blob = await seal.encrypt(utf8("v"));
    seal.clearKey();
    seal.clearKey();
    expect(seal.hasKey).toBe(false);
    await expect(seal.decrypt(blob)).rejects.toBeInstanceOf(SealUnavailableError);
    seal.setKey(kek);
    expect(Buffer.from(await seal.decrypt(blob)).toString()).toBe("v");
  });

  it("health reports the missing key", async () => {
    const seal = new ShamirSeal();
    await seal.init();
    expect(await seal.health()).toMatchObject({
      healthy: false,
      message: "the Shamir seal has no key yet: provide unseal key shares",
    });
    seal.setKey(ShamirSeal.generateKey());
    expect((await seal.health()).healthy).toBe(true);
  });

  it("finalize clears the key", async () => {
    const seal = await sealWithKey();
    await seal.finalize();
    expect(seal.hasKey).toBe(false);
  });

  it("finalize clears a key loaded before init (init never ran)", async () => {
    const seal = new ShamirSeal();
    seal.setKey(ShamirSeal.generateKey());
    await seal.finalize();
    expect(seal.hasKey).toBe(false);
  });
});

import { inspect } from "node:util";
import { AesGcmKey, aesGcmDecrypt, aesGcmEncryptInto } from "@bulwark/crypto";
import { describe, expect, it } from "vitest";
import { createBlobInfo } from "./blob-info.js";
import { SealDecryptError, SealKeyNotFoundError } from "./errors.js";
import { STATIC_SEAL_KEY_ENV, STATIC_SEAL_KEY_ID_ENV, StaticKeySeal } from "./static-key-seal.js";
import { configError } from "./testing.js";

const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);
const text = (b: Uint8Array): string => Buffer.from(b).toString();

describe("StaticKeySeal", () => {
  const key = StaticKeySeal.generateKey();
  const hexKey = Buffer.from(key).toString("hex");

  it("is an auto seal that supports seal wrap", () => {
    const seal = new StaticKeySeal({ key, keyId: "k1" });
    expect(seal.type).toBe("static");
    expect(seal.autoUnseal).toBe(true);
    expect(seal.supportsSealWrap).toBe(true);
    expect(seal.keyId()).toBe("k1");
  });

  it("accepts the key as bytes, hex, base64 and base64url, all meaning the same key", async () => {
    const forms = [
      key,
      hexKey,
      hexKey.toUpperCase(),
      Buffer.from(key).toString("base64"),
      Buffer.from(key).toString("base64").replace(/=$/, ""),
      Buffer.from(key).toString("base64url"),
      ` ${hexKey}\n`,
    ];
    const writer = new StaticKeySeal({ key, keyId: "k1" });
    await writer.init();
    const blob = await writer.encrypt(utf8("same key"));
    for (const form of forms) {
      const reader = new StaticKeySeal({ key: form, keyId: "k1" });
      await reader.init();
      expect(text(await reader.decrypt(blob))).toBe("same key");
    }
  });

  it("writes OpenBao's static layout: the nonce in iv, ciphertext = ct || tag, keyInfo.keyId set", async () => {
    const seal = new StaticKeySeal({ key, keyId: "dev-1" });
    await seal.init();
    const blob = await seal.encrypt(utf8("hello"), { aad: utf8("ad") });
    expect(blob.keyInfo?.keyId).toBe("dev-1");
    expect(blob.iv.length).toBe(12);
    expect(blob.ciphertext.length).toBe(5 + 16);
    expect(text(aesGcmDecrypt(key, blob.iv, blob.ciphertext, utf8("ad")))).toBe("hello");
  });

  it("reads the go-kms-wrapping aead layout too (nonce at the front of ciphertext, iv empty)", async () => {
    const seal = new StaticKeySeal({ key, keyId: "dev-1" });
    await seal.init();
    const nonce = new Uint8Array(12).fill(7);
    const ct = new Uint8Array(5 + 16);
    aesGcmEncryptInto(new AesGcmKey(key), nonce, utf8("hello"), undefined, ct, 0);
    const blob = createBlobInfo({
      ciphertext: new Uint8Array([...nonce, ...ct]),
      keyInfo: { keyId: "dev-1" },
    });
    expect(text(await seal.decrypt(blob))).toBe("hello");
    // A nonce that is not 12 bytes is refused by name, not handed to the cipher.
    const bad = createBlobInfo({ ciphertext: ct, iv: new Uint8Array(8), keyInfo: { keyId: "dev-1" } });
    await expect(seal.decrypt(bad)).rejects.toThrow(/8-byte nonce/);
  });

  it("rejects keys that are not 32 bytes, naming the field and never echoing the value", () => {
    const short = configError(() => new StaticKeySeal({ key: new Uint8Array(31), keyId: "k" }));
    expect(short.field).toBe("key");
    const badText = configError(() => new StaticKeySeal({ key: "not-a-key-secret-value", keyId: "k" }));
    expect(badText.field).toBe("key");
    expect(badText.message).not.toContain("not-a-key-secret-value");
    expect(badText.message).toContain("openssl rand -hex 32");
    const hex31 = configError(() => new StaticKeySeal({ key: "ab".repeat(31), keyId: "k" }));
    expect(hex31.field).toBe("key");
    const prev = configError(
      () => new StaticKeySeal({ key, keyId: "k2", previousKeys: [{ keyId: "k1", key: "zz" }] }),
    );
    expect(prev.field).toBe("previousKeys[0].key");
  });

  it("rejects a missing key id and duplicate key ids", () => {
    expect(configError(() => new StaticKeySeal({ key, keyId: "" })).field).toBe("keyId");
    expect(configError(() => new StaticKeySeal({ key } as never)).field).toBe("keyId");
    const dup = configError(
      () =>
        new StaticKeySeal({
          key,
          keyId: "k1",
          previousKeys: [{ keyId: "k1", key: StaticKeySeal.generateKey() }],
        }),
    );
    expect(dup.field).toBe("previousKeys[0].keyId");
    expect(dup.message).toContain("used twice");
  });

  it("decrypt picks the key by blob.keyInfo.keyId (rotation: old key in previousKeys)", async () => {
    const oldKey = StaticKeySeal.generateKey();
    const before = new StaticKeySeal({ key: oldKey, keyId: "2024" });
    await before.init();
    const oldBlob = await before.encrypt(utf8("written with 2024"));

    const after = new StaticKeySeal({ key, keyId: "2025", previousKeys: [{ keyId: "2024", key: oldKey }] });
    await after.init();
    expect(after.keyIds()).toEqual(["2025", "2024"]);
    const newBlob = await after.encrypt(utf8("written with 2025"));
    expect(newBlob.keyInfo?.keyId).toBe("2025");
    expect(text(await after.decrypt(oldBlob))).toBe("written with 2024");
    expect(text(await after.decrypt(newBlob))).toBe("written with 2025");
  });

  it("an unknown key id → SealKeyNotFoundError naming the id", async () => {
    const seal = new StaticKeySeal({ key, keyId: "k1" });
    await seal.init();
    const blob = await seal.encrypt(utf8("x"));
    if (blob.keyInfo) blob.keyInfo.keyId = "k9";
    const err = await seal.decrypt(blob).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SealKeyNotFoundError);
    expect((err as SealKeyNotFoundError).keyId).toBe("k9");
    expect((err as Error).message).toContain('"k9"');
    expect((err as Error).message).toContain('known: "k1"');
  });

  it("a key id pointing at the wrong key fails authentication (SealDecryptError), never a wrong plaintext", async () => {
    const a = new StaticKeySeal({ key, keyId: "k1" });
    const b = new StaticKeySeal({ key: StaticKeySeal.generateKey(), keyId: "k1" });
    await a.init();
    await b.init();
    await expect(b.decrypt(await a.encrypt(utf8("x")))).rejects.toBeInstanceOf(SealDecryptError);
  });

  it("fromEnv reads BULWARK_STATIC_SEAL_KEY and BULWARK_STATIC_SEAL_KEY_ID", async () => {
    const seal = StaticKeySeal.fromEnv({
      [STATIC_SEAL_KEY_ENV]: hexKey,
      [STATIC_SEAL_KEY_ID_ENV]: "env-key",
    });
    await seal.init();
    expect(seal.keyId()).toBe("env-key");
    const direct = new StaticKeySeal({ key, keyId: "env-key" });
    await direct.init();
    expect(text(await direct.decrypt(await seal.encrypt(utf8("from env"))))).toBe("from env");
  });

  it("fromEnv names the missing variable", () => {
    expect(configError(() => StaticKeySeal.fromEnv({})).field).toBe(STATIC_SEAL_KEY_ENV);
    expect(configError(() => StaticKeySeal.fromEnv({ [STATIC_SEAL_KEY_ENV]: hexKey })).field).toBe(
      STATIC_SEAL_KEY_ID_ENV,
    );
    expect(
      configError(() =>
        StaticKeySeal.fromEnv({ [STATIC_SEAL_KEY_ENV]: "short", [STATIC_SEAL_KEY_ID_ENV]: "k" }),
      ).field,
    ).toBe("key");
  });

  it("never shows key material when inspected or serialised", () => {
    const seal = new StaticKeySeal({ key, keyId: "k1" });
    const shown = inspect(seal, { depth: 10, showHidden: true }) + JSON.stringify(seal);
    expect(shown).not.toContain(hexKey);
    expect(shown).not.toContain(Buffer.from(key).toString("base64"));
  });

  it("finalize zeroes the keys (decrypt is refused afterwards)", async () => {
    const seal = new StaticKeySeal({ key, keyId: "k1" });
    await seal.init();
    await seal.finalize();
    expect(seal.keyIds()).toEqual([]);
  });

  it("finalize zeroes the keys also when init never ran or failed (they are loaded by the constructor)", async () => {
    const never = new StaticKeySeal({ key, keyId: "k1", previousKeys: [{ keyId: "k0", key: hexKey }] });
    await never.finalize();
    expect(never.keyIds()).toEqual([]);
    const aborted = new StaticKeySeal({ key, keyId: "k1" });
    const ac = new AbortController();
    ac.abort(new Error("stop"));
    await expect(aborted.init(ac.signal)).rejects.toThrow("stop");
    await aborted.finalize();
    expect(aborted.keyIds()).toEqual([]);
  });
});

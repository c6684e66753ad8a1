import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto";
import {
  createBlobInfo,
  decodeBlobInfo,
  encodeBlobInfo,
  SealConfigError,
  SealDecryptError,
  SealKeyNotFoundError,
  SealUnavailableError,
} from "@bulwark/seal";
import pkcs11js from "pkcs11js";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  CKM_AES_CBC_PAD,
  CKM_AES_GCM,
  CKM_RSA_PKCS_OAEP,
  createPkcs11Seal,
  FLAG_ENVELOPE,
  loadedModuleCount,
  type Pkcs11HealthDetails,
  Pkcs11Seal,
  type Pkcs11SealOptions,
  type Pkcs11TraceEvent,
} from "../src/index.js";
import { RawToken } from "./raw-token.js";
import { type SoftHsm, type SoftHsmToken, softHsmAvailable, startSoftHsm } from "./softhsm.js";

const available = softHsmAvailable();
let hsm: SoftHsm;
let main: SoftHsmToken;
let other: SoftHsmToken;
let dupA: SoftHsmToken;
let dupB: SoftHsmToken;
let raw: RawToken;
const seals: Pkcs11Seal[] = [];

if (available) {
  hsm = startSoftHsm();
  main = hsm.createToken("main");
  other = hsm.createToken("other");
  dupA = hsm.createToken("dup");
  dupB = hsm.createToken("dup");
}

beforeAll(() => {
  if (!available) return;
  // Owns C_Initialize for this file: seals adopt the initialised library.
  raw = new RawToken(hsm.lib);
});

afterEach(async () => {
  await Promise.all(seals.splice(0).map((s) => s.finalize()));
});

afterAll(() => {
  raw?.finalize();
  hsm?.stop();
});

function make(options: Partial<Pkcs11SealOptions> = {}, token: SoftHsmToken = main): Pkcs11Seal {
  const seal = new Pkcs11Seal({
    lib: hsm.lib,
    tokenLabel: token.label,
    pin: token.pin,
    keyLabel: "k1",
    generateKey: true,
    ...options,
  });
  seals.push(seal);
  return seal;
}

async function rejection(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (err) {
    return err as Error;
  }
  return expect.fail("expected the promise to reject");
}

const utf8 = (s: string) => new TextEncoder().encode(s);

describe.skipIf(!available)("Pkcs11Seal on SoftHSM", () => {
  describe("token selection", () => {
    it("chooses the token by 64-bit decimal slot id, by hex slot id, by label and by serial", async () => {
      // SoftHSM renumbers slots on token init: the ids are large random numbers.
      expect(main.slot).toBeGreaterThan(1000n);
      const variants: Array<Partial<Pkcs11SealOptions>> = [
        { slot: main.slot.toString(), tokenLabel: undefined },
        { slot: `0x${main.slot.toString(16)}`, tokenLabel: undefined },
        { slot: main.slot },
        { serial: main.serial, tokenLabel: undefined },
      ];
      for (const v of variants) {
        const seal = make({ ...v });
        await seal.init();
        const health = await seal.health();
        const details = health.details as unknown as Pkcs11HealthDetails;
        expect(details.tokenLabel).toBe("main");
        expect(details.slot).toBe(main.slot.toString());
        await seal.finalize();
      }
    });

    it("the Vault config block with slot as a decimal string works end to end", async () => {
      const seal = createPkcs11Seal(
        {
          lib: hsm.lib,
          slot: main.slot.toString(),
          pin: main.pin,
          key_label: "k1",
          generate_key: "true",
        },
        {},
      );
      seals.push(seal);
      await seal.init();
      const pt = utf8("vault config");
      expect(Buffer.from(await seal.decrypt(await seal.encrypt(pt))).toString()).toBe("vault config");
    });

    it("two tokens with the same label: refuses and asks for serial; serial picks one", async () => {
      const err = await rejection(make({}, dupA).init());
      expect(err).toBeInstanceOf(SealConfigError);
      expect((err as SealConfigError).field).toBe("token_label");
      expect(err.message).toMatch(/2 tokens are labelled "dup".*set serial/);
      const seal = make({ serial: dupB.serial }, dupB);
      await seal.init();
      expect(((await seal.health()).details as unknown as Pkcs11HealthDetails).tokenSerial).toBe(dupB.serial);
    });

    it("names what is present when nothing matches", async () => {
      const byLabel = await rejection(make({ tokenLabel: "nope" }).init());
      expect((byLabel as SealConfigError).field).toBe("token_label");
      expect(byLabel.message).toMatch(/no token labelled "nope".*"main"/);
      const bySlot = await rejection(make({ slot: "12345", tokenLabel: undefined }).init());
      expect((bySlot as SealConfigError).field).toBe("slot");
      expect(bySlot.message).toMatch(/no initialised token in slot 12345.*token_label is more stable/);
      const mismatch = await rejection(make({ slot: other.slot }).init());
      expect(mismatch.message).toMatch(/holds token "other", not "main"/);
    });
  });

  describe("library", () => {
    it("a wrong library path is a clear configuration error", async () => {
      const missing = await rejection(make({ lib: "/opt/nowhere/libpkcs11.so" }).init());
      expect(missing).toBeInstanceOf(SealConfigError);
      expect((missing as SealConfigError).field).toBe("lib");
      expect(missing.message).toMatch(/no PKCS#11 library at \/opt\/nowhere\/libpkcs11.so/);
      const relative = await rejection(make({ lib: "libsofthsm2.so" }).init());
      expect(relative.message).toMatch(/not an absolute path/);
      const notPkcs11 = await rejection(make({ lib: "/etc/hostname" }).init());
      expect((notPkcs11 as SealConfigError).field).toBe("lib");
      expect(notPkcs11.message).toMatch(/cannot load \/etc\/hostname as a PKCS#11 library/);
      expect(loadedModuleCount()).toBe(0);
    });

    it("shares one loaded module between seals and releases it after the last finalize", async () => {
      const a = make();
      const b = make();
      await Promise.all([a.init(), b.init()]);
      expect(loadedModuleCount()).toBe(1);
      await a.finalize();
      expect(loadedModuleCount()).toBe(1);
      expect(Buffer.from(await b.decrypt(await b.encrypt(utf8("still here")))).toString()).toBe("still here");
      await b.finalize();
      expect(loadedModuleCount()).toBe(0);
    });
  });

  describe("PIN", () => {
    it("a wrong PIN fails on the first attempt with exactly one C_Login, and is never sent again", async () => {
      const events: Pkcs11TraceEvent[] = [];
      const seal = make({ pin: "wrong-pin", trace: (e) => events.push(e) }, other);
      const err = await rejection(seal.init());
      expect(err).toBeInstanceOf(SealConfigError);
      expect((err as SealConfigError).field).toBe("pin");
      expect(err.message).toMatch(/rejected the PIN \(C_Login returned CKR_PIN_INCORRECT \(0xa0\)\)/);
      const logins = () => events.filter((e) => e.call === "C_Login");
      expect(logins()).toHaveLength(1);
      expect(logins()[0]?.rv).toBe(pkcs11js.CKR_PIN_INCORRECT);
      // Retrying init (or another seal with the same PIN) does not burn another attempt.
      const again = await rejection(seal.init());
      expect(again.message).toMatch(/already rejected this PIN/);
      const events2: Pkcs11TraceEvent[] = [];
      await rejection(make({ pin: "wrong-pin", trace: (e) => events2.push(e) }, other).init());
      expect(logins()).toHaveLength(1);
      expect(events2.filter((e) => e.call === "C_Login")).toHaveLength(0);
      // The right PIN still works: the token was not locked.
      const good = make({}, other);
      await good.init();
      expect(good.keyId()).toMatch(/^k1:[0-9a-f]{8}$/);
    });

    it("a second seal on a logged-in token must present the same PIN", async () => {
      const first = make();
      await first.init();
      const err = await rejection(make({ pin: "not-the-pin" }).init());
      expect(err).toBeInstanceOf(SealConfigError);
      expect((err as SealConfigError).field).toBe("pin");
    });
  });

  describe("keys", () => {
    it("generate_key creates a sensitive, non-extractable AES-256 token key; key id is <label>:<CKA_ID hex>", async () => {
      const seal = make({ keyLabel: "generated", keyId: "0xc0ffee01" });
      await seal.init();
      expect(seal.keyId()).toBe("generated:c0ffee01");
      expect(seal.mechanism).toBe(CKM_AES_GCM);
      const s = raw.session("main", main.pin);
      const [key] = raw.find(s, [{ type: pkcs11js.CKA_LABEL, value: "generated" }]);
      expect(key).toBeDefined();
      const attrs = raw.attributes(s, key as Buffer, [
        pkcs11js.CKA_TOKEN,
        pkcs11js.CKA_SENSITIVE,
        pkcs11js.CKA_EXTRACTABLE,
        pkcs11js.CKA_VALUE_LEN,
        pkcs11js.CKA_ID,
      ]);
      expect(attrs.get(pkcs11js.CKA_TOKEN)?.[0]).toBe(1);
      expect(attrs.get(pkcs11js.CKA_SENSITIVE)?.[0]).toBe(1);
      expect(attrs.get(pkcs11js.CKA_EXTRACTABLE)?.[0]).toBe(0);
      expect(attrs.get(pkcs11js.CKA_VALUE_LEN)?.readUInt32LE(0)).toBe(32);
      expect(attrs.get(pkcs11js.CKA_ID)?.toString("hex")).toBe("c0ffee01");
      // A second seal finds the same key instead of creating another.
      const again = make({ keyLabel: "generated" });
      await again.init();
      expect(again.keyId()).toBe("generated:c0ffee01");
      expect(raw.find(s, [{ type: pkcs11js.CKA_LABEL, value: "generated" }])).toHaveLength(1);
      raw.lib.C_CloseSession(s);
    });

    it("a missing key without generate_key is SealKeyNotFoundError naming the label", async () => {
      const err = await rejection(make({ keyLabel: "absent-key", generateKey: false }).init());
      expect(err).toBeInstanceOf(SealKeyNotFoundError);
      expect(err.message).toMatch(/no key labelled "absent-key" on token "main"/);
      expect(err.message).toMatch(/generate_key = true/);
      expect(loadedModuleCount()).toBe(0);
    });

    it("finds a key by CKA_ID alone", async () => {
      const s = raw.session("main", main.pin);
      raw.generateAesKey(s, "by-id", Buffer.from("0a0b0c", "hex"));
      raw.lib.C_CloseSession(s);
      const seal = make({ keyLabel: undefined, keyId: "0a0b0c", generateKey: false });
      await seal.init();
      expect(seal.keyId()).toBe("by-id:0a0b0c");
    });

    it("a key the token does not let encrypt (CKA_ENCRYPT false) is a configuration error naming the key, not an outage", async () => {
      const s = raw.session("main", main.pin);
      raw.lib.C_GenerateKey(s, { mechanism: pkcs11js.CKM_AES_KEY_GEN }, [
        { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_SECRET_KEY },
        { type: pkcs11js.CKA_KEY_TYPE, value: pkcs11js.CKK_AES },
        { type: pkcs11js.CKA_VALUE_LEN, value: 32 },
        { type: pkcs11js.CKA_TOKEN, value: true },
        { type: pkcs11js.CKA_PRIVATE, value: true },
        { type: pkcs11js.CKA_LABEL, value: "wrap-only" },
        { type: pkcs11js.CKA_ID, value: Buffer.from("77", "hex") },
        { type: pkcs11js.CKA_ENCRYPT, value: false },
        { type: pkcs11js.CKA_DECRYPT, value: false },
        { type: pkcs11js.CKA_WRAP, value: true },
        { type: pkcs11js.CKA_UNWRAP, value: true },
      ]);
      raw.lib.C_CloseSession(s);
      const err = await rejection(make({ keyLabel: "wrap-only", generateKey: false }).init());
      expect(err).toBeInstanceOf(SealConfigError);
      expect((err as SealConfigError).field).toBe("key_label");
      expect(err.message).toMatch(/"wrap-only:77".*CKR_KEY_FUNCTION_NOT_PERMITTED.*CKA_ENCRYPT/);
    });

    it("two keys under one label: refuses and asks for key_id", async () => {
      const s = raw.session("main", main.pin);
      raw.generateAesKey(s, "twice", Buffer.from("01", "hex"));
      raw.generateAesKey(s, "twice", Buffer.from("02", "hex"));
      raw.lib.C_CloseSession(s);
      const err = await rejection(make({ keyLabel: "twice", generateKey: false }).init());
      expect((err as SealConfigError).field).toBe("key_label");
      expect(err.message).toMatch(/2 keys are labelled "twice".*set key_id/);
      const seal = make({ keyLabel: "twice", keyId: "02", generateKey: false });
      await seal.init();
      expect(seal.keyId()).toBe("twice:02");
    });

    it("rotation: a new key_label encrypts new blobs; blobs of the old key still decrypt by the key they name", async () => {
      const old = make({ keyLabel: "rot-1" });
      await old.init();
      const blob = await old.encrypt(utf8("written with rot-1"), { aad: utf8("p") });
      await old.finalize();
      const next = make({ keyLabel: "rot-2" });
      await next.init();
      expect(next.keyId()).not.toBe(old.keyId());
      expect(next.keyId()).toMatch(/^rot-2:/);
      const back = await next.decrypt(decodeBlobInfo(encodeBlobInfo(blob)), { aad: utf8("p") });
      expect(Buffer.from(back).toString()).toBe("written with rot-1");
      const fresh = await next.encrypt(utf8("new"));
      expect(fresh.keyInfo?.keyId).toBe(next.keyId());
      // Once the old key is gone, its blobs fail with SealKeyNotFoundError naming it.
      const s = raw.session("main", main.pin);
      expect(raw.destroy(s, "rot-1")).toBe(1);
      raw.lib.C_CloseSession(s);
      const gone = make({ keyLabel: "rot-2" });
      await gone.init();
      const err = await rejection(gone.decrypt(blob, { aad: utf8("p") }));
      expect(err).toBeInstanceOf(SealKeyNotFoundError);
      expect(err.message).toMatch(/no key labelled "rot-1"/);
    });

    it("mechanism must fit the key type", async () => {
      const err = await rejection(make({ mechanism: "0x0009", keyLabel: "k1" }).init());
      expect((err as SealConfigError).field).toBe("mechanism");
      expect(err.message).toMatch(/needs an RSA key.*is AES/);
    });
  });

  describe("blob format", () => {
    it("AES-GCM: direct up to maxDirectBytes, envelope above and for empty values, recorded in the blob", async () => {
      const seal = make({ maxDirectBytes: 100 });
      await seal.init();
      const direct = await seal.encrypt(randomBytes(100));
      expect(direct.keyInfo?.mechanism).toBe(CKM_AES_GCM);
      expect(direct.keyInfo?.flags).toBe(0);
      expect(direct.iv).toHaveLength(12);
      expect(direct.ciphertext).toHaveLength(116);
      expect(direct.keyInfo?.wrappedKey).toHaveLength(0);
      for (const size of [101, 0]) {
        const env = await seal.encrypt(randomBytes(size));
        expect(env.keyInfo?.flags).toBe(FLAG_ENVELOPE);
        expect(env.keyInfo?.mechanism).toBe(CKM_AES_GCM);
        expect(env.keyInfo?.wrappedKey).toHaveLength(12 + 32 + 16);
        expect(env.iv).toHaveLength(12);
        expect(env.ciphertext).toHaveLength(size + 16);
        expect(await seal.decrypt(env)).toHaveLength(size);
      }
      // Flipping the envelope flag makes the blob undecryptable, never a wrong plaintext.
      const lying = decodeBlobInfo(encodeBlobInfo(direct));
      if (lying.keyInfo) lying.keyInfo.flags = FLAG_ENVELOPE;
      await expect(seal.decrypt(lying)).rejects.toBeInstanceOf(SealDecryptError);
      const future = decodeBlobInfo(encodeBlobInfo(direct));
      if (future.keyInfo) future.keyInfo.flags = 0x100;
      await expect(seal.decrypt(future)).rejects.toThrow(/unknown flags 0x100/);
    });

    it("AES-GCM blobs are standard GCM: iv, ciphertext || tag, AAD (checked against node:crypto with an imported key)", async () => {
      const key = randomBytes(32);
      const s = raw.session("main", main.pin);
      raw.importAesKey(s, "known", Buffer.from("0042", "hex"), key);
      raw.lib.C_CloseSession(s);
      const seal = make({ keyLabel: "known", generateKey: false });
      await seal.init();
      expect(seal.keyId()).toBe("known:0042");
      const pt = randomBytes(300);
      const aad = Buffer.from("core/hsm/barrier-unseal-keys");
      const blob = await seal.encrypt(pt, { aad });
      const d = createDecipheriv("aes-256-gcm", key, blob.iv);
      d.setAAD(aad);
      d.setAuthTag(Buffer.from(blob.ciphertext.subarray(-16)));
      const back = Buffer.concat([d.update(blob.ciphertext.subarray(0, -16)), d.final()]);
      expect(back.equals(pt)).toBe(true);
      // A blob written elsewhere (OpenBao's pkcs11 wrapper records no mechanism) decrypts too.
      const iv = randomBytes(12);
      const c = createCipheriv("aes-256-gcm", key, iv);
      const ct = Buffer.concat([c.update(pt), c.final(), c.getAuthTag()]);
      const foreign = createBlobInfo({ ciphertext: ct, iv, keyInfo: { keyId: "known:0042" } });
      expect(Buffer.from(await seal.decrypt(foreign)).equals(pt)).toBe(true);
    });

    it("AES-CBC-PAD + HMAC: HMAC over iv || ct recorded with its key id; verified before decrypting", async () => {
      const seal = make({
        keyLabel: "cbc",
        hmacKeyLabel: "cbc-mac",
        mechanism: "0x1085",
        maxDirectBytes: 1000,
      });
      await seal.init();
      const blob = await seal.encrypt(randomBytes(100));
      expect(blob.keyInfo?.mechanism).toBe(CKM_AES_CBC_PAD);
      expect(blob.keyInfo?.hmacMechanism).toBe(0x0251);
      expect(blob.keyInfo?.hmacKeyId).toMatch(/^cbc-mac:[0-9a-f]{8}$/);
      expect(blob.iv).toHaveLength(16);
      expect(blob.ciphertext).toHaveLength(112);
      expect(blob.hmac).toHaveLength(32);
      // generate_key made a 32-byte generic-secret HMAC key: sensitive, not extractable, sign/verify.
      const s = raw.session("main", main.pin);
      const [mac] = raw.find(s, [{ type: pkcs11js.CKA_LABEL, value: "cbc-mac" }]);
      const macAttrs = raw.attributes(s, mac as Buffer, [
        pkcs11js.CKA_KEY_TYPE,
        pkcs11js.CKA_VALUE_LEN,
        pkcs11js.CKA_SENSITIVE,
        pkcs11js.CKA_EXTRACTABLE,
        pkcs11js.CKA_SIGN,
      ]);
      raw.lib.C_CloseSession(s);
      expect(macAttrs.get(pkcs11js.CKA_KEY_TYPE)?.readUInt32LE(0)).toBe(pkcs11js.CKK_GENERIC_SECRET);
      expect(macAttrs.get(pkcs11js.CKA_VALUE_LEN)?.readUInt32LE(0)).toBe(32);
      expect(macAttrs.get(pkcs11js.CKA_SENSITIVE)?.[0]).toBe(1);
      expect(macAttrs.get(pkcs11js.CKA_EXTRACTABLE)?.[0]).toBe(0);
      expect(macAttrs.get(pkcs11js.CKA_SIGN)?.[0]).toBe(1);
      const events: Pkcs11TraceEvent[] = [];
      const traced = make({
        keyLabel: "cbc",
        hmacKeyLabel: "cbc-mac",
        mechanism: "0x1085",
        trace: (e) => events.push(e),
      });
      await traced.init();
      events.length = 0;
      const bad = decodeBlobInfo(encodeBlobInfo(blob));
      bad.hmac[0] = (bad.hmac[0] as number) ^ 1;
      const err = await rejection(traced.decrypt(bad));
      expect(err).toBeInstanceOf(SealDecryptError);
      expect(err.message).toMatch(/HMAC check failed/);
      expect(events.some((e) => e.call === "C_Verify")).toBe(true);
      expect(events.some((e) => e.call === "C_Decrypt" || e.call === "C_DecryptInit")).toBe(false);
    });

    it("RSA-OAEP: always an envelope; the OAEP hash is recorded; SoftHSM's sha1-only limit gets a clear error", async () => {
      const err = await rejection(make({ keyLabel: "rsa", mechanism: "0x0009" }).init());
      expect(err).toBeInstanceOf(SealConfigError);
      expect((err as SealConfigError).field).toBe("rsa_oaep_hash");
      expect(err.message).toMatch(/SoftHSM supports only sha1: set rsa_oaep_hash = "sha1"/);
      const seal = make({ keyLabel: "rsa", mechanism: "0x0009", rsaOaepHash: "sha1" });
      await seal.init();
      const blob = await seal.encrypt(utf8("tiny"));
      expect(blob.keyInfo?.mechanism).toBe(CKM_RSA_PKCS_OAEP);
      expect(blob.keyInfo?.flags).toBe(FLAG_ENVELOPE | (1 << 4));
      expect(blob.keyInfo?.wrappedKey).toHaveLength(256);
      // generate_key made an RSA key pair; the private half cannot leave the token.
      const s = raw.session("main", main.pin);
      const priv = raw.find(s, [
        { type: pkcs11js.CKA_LABEL, value: "rsa" },
        { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_PRIVATE_KEY },
      ]);
      expect(priv).toHaveLength(1);
      const privAttrs = raw.attributes(s, priv[0] as Buffer, [
        pkcs11js.CKA_EXTRACTABLE,
        pkcs11js.CKA_SENSITIVE,
      ]);
      raw.lib.C_CloseSession(s);
      expect(privAttrs.get(pkcs11js.CKA_EXTRACTABLE)?.[0]).toBe(0);
      expect(privAttrs.get(pkcs11js.CKA_SENSITIVE)?.[0]).toBe(1);
      // The default mechanism for an RSA key is OAEP.
      const byType = make({ keyLabel: "rsa", rsaOaepHash: "sha1", generateKey: false });
      await byType.init();
      expect(byType.mechanism).toBe(CKM_RSA_PKCS_OAEP);
      expect(Buffer.from(await byType.decrypt(blob)).toString()).toBe("tiny");
    });

    it("default_key_label decrypts blobs that name no key", async () => {
      const seal = make({ keyLabel: "legacy", keyId: "99" });
      await seal.init();
      const blob = await seal.encrypt(utf8("old data"));
      const unnamed = decodeBlobInfo(encodeBlobInfo(blob));
      if (unnamed.keyInfo) unnamed.keyInfo.keyId = "";
      await expect(seal.decrypt(unnamed)).rejects.toBeInstanceOf(SealKeyNotFoundError);
      const withDefault = make({ keyLabel: "legacy", defaultKeyLabel: "legacy" });
      await withDefault.init();
      expect(Buffer.from(await withDefault.decrypt(unnamed)).toString()).toBe("old data");
    });
  });

  describe("Vault Enterprise blobs", () => {
    it("a key_id / hmac_key_id that is a bare label (Vault tracks labels, not <label>:<CKA_ID>) finds the key by label", async () => {
      const gcm = make({ keyLabel: "vault-hsm-key" });
      await gcm.init();
      const blob = await gcm.encrypt(utf8("vault data"));
      const vaultStyle = decodeBlobInfo(encodeBlobInfo(blob));
      if (vaultStyle.keyInfo) vaultStyle.keyInfo.keyId = "vault-hsm-key";
      expect(Buffer.from(await gcm.decrypt(vaultStyle)).toString()).toBe("vault data");

      const cbc = make({ keyLabel: "vault-cbc", hmacKeyLabel: "vault-hmac", mechanism: "0x1085" });
      await cbc.init();
      const cbcBlob = decodeBlobInfo(encodeBlobInfo(await cbc.encrypt(utf8("vault cbc"))));
      if (cbcBlob.keyInfo) {
        cbcBlob.keyInfo.keyId = "vault-cbc";
        cbcBlob.keyInfo.hmacKeyId = "vault-hmac";
      }
      expect(Buffer.from(await cbc.decrypt(cbcBlob)).toString()).toBe("vault cbc");
      // A label that is not on the token is still a missing key, named by its label.
      if (vaultStyle.keyInfo) vaultStyle.keyInfo.keyId = "vault-hsm-key-old";
      const err = await rejection(gcm.decrypt(vaultStyle));
      expect(err).toBeInstanceOf(SealKeyNotFoundError);
      expect(err.message).toMatch(/labelled "vault-hsm-key-old"/);
    });
  });

  describe("capabilities", () => {
    it("hsmGeneratedIv on a token that uses the caller's IV fails init with a clear message", async () => {
      const err = await rejection(make({ hsmGeneratedIv: true }).init());
      expect(err).toBeInstanceOf(SealUnavailableError);
      expect(err.message).toMatch(/hsmGeneratedIv is set but the HSM did not write an IV/);
    });
  });

  describe("health", () => {
    it("reports token, key id, pool use and the last error", async () => {
      const seal = make({ maxParallel: 3 });
      await seal.init();
      const h = await seal.health();
      expect(h.healthy).toBe(true);
      expect(h.keyId).toBe(seal.keyId());
      const d = h.details as unknown as Pkcs11HealthDetails;
      expect(d.tokenLabel).toBe("main");
      expect(d.tokenSerial).toBe(main.serial);
      expect(d.library).toMatch(/SoftHSM/);
      expect(d.mechanism).toBe("CKM_AES_GCM (0x1087)");
      expect(d.pool.max).toBe(3);
      expect(d.pool.busy).toBe(0);
      expect(d.reconnects).toBe(0);
      expect(d.lastError).toBeUndefined();
      await seal.finalize();
      expect((await seal.health()).healthy).toBe(false);
    });

    it("finalize waits for a health check in flight instead of tearing the sessions down under it", async () => {
      const events: Pkcs11TraceEvent[] = [];
      const seal = make({ trace: (e) => events.push(e) });
      await seal.init();
      let settled = false;
      const health = seal.health().then((h) => {
        settled = true;
        return h;
      });
      // Let the health check reach the HSM (its C_Encrypt runs on the thread pool).
      await new Promise((r) => setImmediate(r));
      await seal.finalize();
      expect(settled).toBe(true);
      const h = await health;
      expect(h.message).toBeUndefined();
      expect(h.healthy).toBe(true);
    });
  });
});

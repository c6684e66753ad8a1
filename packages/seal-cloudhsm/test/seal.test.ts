/**
 * CloudHsmSeal through cloudhsm-sim: the HSM-generated IV in the blob, the 16 KiB split, the key
 * template, the PIN and login rules, and the reconnect-and-retry path under transient failures.
 */
import { SealConfigError, SealUnavailableError } from "@bulwark/seal";
import { FLAG_ENVELOPE, Pkcs11Seal, type Pkcs11TraceEvent } from "@bulwark/seal-pkcs11";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { type CloudHsmHealthDetails, CloudHsmSeal, type CloudHsmSealOptions } from "../src/index.js";
import { k, RawSim } from "./raw.js";
import { CU, SIM_LIB, type SimToken, SOFTHSM_LIB, type SoftHsm, simAvailable, startSoftHsm } from "./sim.js";

const available = simAvailable();
let hsm: SoftHsm;
let token: SimToken;
let other: SimToken;
let raw: RawSim;
if (available) {
  hsm = startSoftHsm();
  token = hsm.createToken("cavium");
  other = hsm.createToken("second-cluster");
}
const seals: Pkcs11Seal[] = [];
const utf8 = (s: string) => new TextEncoder().encode(s);

beforeAll(() => {
  // Owns C_Initialize of the sim for the whole file, so seals come and go without finalizing it.
  if (available) raw = new RawSim(SIM_LIB);
});
afterEach(async () => {
  await Promise.all(seals.splice(0).map((s) => s.finalize()));
});
afterAll(() => {
  raw?.finalize();
  hsm?.stop();
});

function make(options: Partial<CloudHsmSealOptions> = {}): CloudHsmSeal {
  const seal = new CloudHsmSeal({
    lib: SIM_LIB,
    pin: token.pin,
    keyLabel: "seal-key",
    generateKey: true,
    retryBaseMs: 1,
    ...options,
  });
  seals.push(seal);
  return seal;
}

/**
 * Runs `fn` on a logged-in raw session of the sim and closes it again: an open session keeps the
 * token logged in for the whole process (login is per token and application), which would let a
 * later wrong PIN ride on it.
 */
function withSession<T>(fn: (s: Buffer) => T): T {
  const s = raw.session("cavium", token.pin);
  try {
    return fn(s);
  } finally {
    raw.lib.C_CloseSession(s);
  }
}

const bool = (v: unknown) => Buffer.isBuffer(v) && v.length === 1 && v[0] !== 0;
const ulong = (v: unknown) => (Buffer.isBuffer(v) ? Number(v.readBigUInt64LE(0)) : Number.NaN);

function tracer(): { events: Pkcs11TraceEvent[]; trace: (e: Pkcs11TraceEvent) => void } {
  const events: Pkcs11TraceEvent[] = [];
  return { events, trace: (e) => events.push(e) };
}

describe.skipIf(!available)("CloudHsmSeal on cloudhsm-sim", () => {
  it("AES-GCM with the HSM's IV: a zeroed IV goes in, the IV the HSM wrote is stored in the blob", async () => {
    const t = tracer();
    const seal = make({ trace: t.trace });
    await seal.init();
    expect(seal.keyId()).toMatch(/^seal-key:[0-9a-f]{8}$/);
    const blobs = await Promise.all(Array.from({ length: 20 }, (_, i) => seal.encrypt(utf8(`value ${i}`))));
    const ivs = new Set(blobs.map((b) => Buffer.from(b.iv).toString("hex")));
    expect(ivs.size).toBe(20);
    for (const b of blobs) {
      expect(b.iv).toHaveLength(12);
      expect(Buffer.from(b.iv).equals(Buffer.alloc(12))).toBe(false);
      expect(b.keyInfo).toMatchObject({ mechanism: 0x1087, keyId: seal.keyId(), flags: 0 });
    }
    expect(await Promise.all(blobs.map((b) => seal.decrypt(b)))).toEqual(
      blobs.map((_, i) => utf8(`value ${i}`)),
    );
    // The seal never asked for randomness itself for GCM: the IV came from the HSM.
    const calls = t.events.map((e) => e.call);
    expect(calls).not.toContain("C_GenerateRandom");
    expect(calls.filter((c) => c === "C_Encrypt").length).toBeGreaterThanOrEqual(20);
    // Read-write sessions only (the sim refuses others, so this is also what made init work).
    expect(t.events.filter((e) => e.call === "C_OpenSession").every((e) => e.rv === 0)).toBe(true);
  });

  it("values up to 16 KiB go to the HSM in one call, larger ones through an HSM-wrapped data key", async () => {
    const seal = make();
    await seal.init();
    for (const [size, flags] of [
      [16 * 1024, 0],
      [16 * 1024 + 1, FLAG_ENVELOPE],
      [20 * 1024, FLAG_ENVELOPE],
      [1024 * 1024, FLAG_ENVELOPE],
    ] as const) {
      const value = new Uint8Array(size).map((_, i) => i * 7);
      const blob = await seal.encrypt(value, { aad: utf8(`aad ${size}`) });
      expect(blob.keyInfo?.flags, `${size} bytes`).toBe(flags);
      if (flags === FLAG_ENVELOPE) {
        // The data key went through the HSM: HSM IV || wrapped key || tag.
        expect(blob.keyInfo?.wrappedKey).toHaveLength(12 + 32 + 16);
      }
      expect(
        Buffer.from(await seal.decrypt(blob, { aad: utf8(`aad ${size}`) })).equals(Buffer.from(value)),
      ).toBe(true);
    }
  });

  it("the generated key: AES-256 token key, explicitly non-extractable, sensitive, with a CKA_ID of its own", async () => {
    const seal = make({ keyLabel: "template-key" });
    await seal.init();
    const a = withSession((s) => {
      const found = raw.find(s, [{ type: k("CKA_LABEL"), value: "template-key" }]);
      expect(found).toHaveLength(1);
      return raw.attributes(s, found[0] as Buffer, [
        k("CKA_EXTRACTABLE"),
        k("CKA_SENSITIVE"),
        k("CKA_TOKEN"),
        k("CKA_PRIVATE"),
        k("CKA_ID"),
        k("CKA_VALUE_LEN"),
      ]);
    });
    // The sim defaults CKA_EXTRACTABLE to TRUE as CloudHSM does: false here means the template said so.
    expect(bool(a.get(k("CKA_EXTRACTABLE")))).toBe(false);
    expect(bool(a.get(k("CKA_SENSITIVE")))).toBe(true);
    expect(bool(a.get(k("CKA_TOKEN")))).toBe(true);
    expect(bool(a.get(k("CKA_PRIVATE")))).toBe(true);
    expect(ulong(a.get(k("CKA_VALUE_LEN")))).toBe(32);
    const id = a.get(k("CKA_ID")) as Buffer;
    expect(id).toHaveLength(4);
    expect(seal.keyId()).toBe(`template-key:${id.toString("hex")}`);
  });

  it("generate_key with a key_id another key already has: a config error naming CKA_ID uniqueness", async () => {
    const first = make({ keyLabel: "id-owner", keyId: "0xc0ffee01" });
    await first.init();
    const dup = make({ keyLabel: "id-thief", keyId: "0xc0ffee01" });
    const err = await dup.init().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SealConfigError);
    expect((err as SealConfigError).field).toBe("key_id");
    expect((err as Error).message).toMatch(/CKA_ID 0xc0ffee01 .*CKR_ATTRIBUTE_VALUE_INVALID.*unique/);
  });

  it("token by label or by 64-bit slot id; the default is the first cluster's slot", async () => {
    const bySlot = make({ slot: "0x2000000000000002", pin: other.pin, keyLabel: "k2" });
    await bySlot.init();
    const byLabel = make({ tokenLabel: "second-cluster", pin: other.pin, keyLabel: "k2" });
    await byLabel.init();
    expect(byLabel.keyId()).toBe(bySlot.keyId());
    const d1 = (await bySlot.health()).details as unknown as CloudHsmHealthDetails;
    expect(d1).toMatchObject({
      slot: "2305843009213693954",
      tokenLabel: "second-cluster",
      profile: "cloudhsm",
      cryptoUser: CU,
      cluster: undefined,
      mechanism: "CKM_AES_GCM (0x1087)",
    });
    expect(d1.library).toMatch(/cloudhsm-sim/);
    const byDefault = make();
    await byDefault.init();
    expect(((await byDefault.health()).details as unknown as CloudHsmHealthDetails).tokenLabel).toBe(
      "cavium",
    );
  });

  it("a wrong password: exactly one C_Login, a clear error, and no further attempt on retry", async () => {
    const t = tracer();
    const seal = make({ pin: `${CU}:not-the-password`, trace: t.trace });
    const err = await seal.init().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SealConfigError);
    expect((err as SealConfigError).field).toBe("pin");
    expect((err as Error).message).toMatch(
      /CloudHSM refused the login of crypto user "crypto_user" \(C_Login returned CKR_PIN_INCORRECT \(0xa0\)\)/,
    );
    expect((err as Error).message).toMatch(/No further attempt was made/);
    expect((err as Error).message).not.toContain("not-the-password");
    expect(t.events.filter((e) => e.call === "C_Login")).toEqual([expect.objectContaining({ rv: 0xa0 })]);
    // Trying again (same seal, or a new one with the same PIN) sends nothing to the HSM.
    const again = await seal.init().catch((e: unknown) => e);
    expect((again as Error).message).toMatch(/already rejected this PIN/);
    const second = make({ pin: `${CU}:not-the-password`, trace: t.trace });
    await expect(second.init()).rejects.toThrow(/already rejected this PIN/);
    expect(t.events.filter((e) => e.call === "C_Login")).toHaveLength(1);
  });

  it("PIN format errors never reach the HSM", () => {
    const t = tracer();
    expect(() => make({ pin: token.password, trace: t.trace })).toThrow(SealConfigError);
    expect(() => make({ pin: `:${token.password}`, trace: t.trace })).toThrow(/no crypto user/);
    expect(t.events).toEqual([]);
  });

  it("transient failures (CKR_DEVICE_ERROR) → reconnect and retry; every operation succeeds", async () => {
    const t = tracer();
    const seal = make({ trace: t.trace, maxParallel: 4 });
    await seal.init();
    const blob = await seal.encrypt(utf8("before the fault"));
    withSession((s) => raw.control(s, "fail-gcm 2 0x30"));
    expect(await seal.decrypt(blob)).toEqual(utf8("before the fault"));
    const after = await seal.encrypt(utf8("during the fault"));
    expect(await seal.decrypt(after)).toEqual(utf8("during the fault"));
    const health = (await seal.health()).details as unknown as CloudHsmHealthDetails;
    expect(health.reconnects).toBeGreaterThanOrEqual(1);
    expect(health.lastError?.message).toMatch(/CKR_DEVICE_ERROR/);
    expect(t.events.filter((e) => e.rv === 0x30)).toHaveLength(2);
  });

  it("a lost connection (every session dropped, login gone) → log in again and carry on", async () => {
    const t = tracer();
    const seal = make({ trace: t.trace });
    await seal.init();
    const blob = await seal.encrypt(utf8("x"));
    // The control session is dropped with the others (and the login with them).
    raw.control(raw.session("cavium", token.pin), "drop-sessions");
    t.events.length = 0;
    expect(await seal.decrypt(blob)).toEqual(utf8("x"));
    const calls = t.events.map((e) => `${e.call}:${e.rv}`);
    // The stale session fails, the seal logs in again from scratch, and the retry succeeds.
    expect(calls[0]).toBe("C_DecryptInit:179");
    expect(calls).toContain("C_Login:0");
    expect(calls.at(-1)).toBe("C_Decrypt:0");
    expect(((await seal.health()).details as unknown as CloudHsmHealthDetails).reconnects).toBe(1);
  });

  it("a failure that does not go away: bounded retries, then SealUnavailableError", async () => {
    const t = tracer();
    const seal = make({ trace: t.trace, maxRetries: 2 });
    await seal.init();
    withSession((s) => raw.control(s, "fail-gcm 1000 0x30"));
    try {
      const err = await seal.encrypt(utf8("never")).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(SealUnavailableError);
      expect((err as Error).message).toMatch(/after 3 attempt\(s\) with reconnects/);
      expect(t.events.filter((e) => e.call === "C_Encrypt" && e.rv === 0x30)).toHaveLength(3);
    } finally {
      withSession((s) => raw.control(s, "reset"));
    }
    expect(await seal.decrypt(await seal.encrypt(utf8("back")))).toEqual(utf8("back"));
  });

  it("blobs are plain PKCS#11 seal blobs: the pkcs11 seal on the same token (SoftHSM directly) reads them", async () => {
    const seal = make();
    await seal.init();
    const small = await seal.encrypt(utf8("small"), { aad: utf8("a") });
    const large = await seal.encrypt(new Uint8Array(40_000).fill(9));
    const direct = new Pkcs11Seal({
      lib: SOFTHSM_LIB,
      tokenLabel: "cavium",
      pin: token.password,
      keyLabel: "seal-key",
    });
    seals.push(direct);
    await direct.init();
    expect(direct.keyId()).toBe(seal.keyId());
    expect(direct.type).toBe(seal.type);
    expect(await direct.decrypt(small, { aad: utf8("a") })).toEqual(utf8("small"));
    expect(await direct.decrypt(large)).toEqual(new Uint8Array(40_000).fill(9));
    // And the other way round (a caller-made IV is fine for decryption).
    expect(await seal.decrypt(await direct.encrypt(utf8("back")))).toEqual(utf8("back"));
  });
});

/**
 * Proof that cloudhsm-sim enforces what it claims: generic PKCS#11 code — the plain Pkcs11Seal
 * without the CloudHSM profile, graphene's defaults, raw pkcs11js calls — fails against it in the
 * ways AWS documents for Client SDK 5, and works once it follows CloudHSM's rules.
 */
import { SealConfigError, SealError } from "@bulwark/seal";
import { Pkcs11CallError, Pkcs11Seal, type Pkcs11SealOptions } from "@bulwark/seal-pkcs11";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { ckrOf, graphene, k, RawSim } from "./raw.js";
import { SIM_LIB, type SimToken, SOFTHSM_LIB, type SoftHsm, simAvailable, startSoftHsm } from "./sim.js";

const available = simAvailable();
let hsm: SoftHsm;
let token: SimToken;
if (available) {
  hsm = startSoftHsm();
  token = hsm.createToken("cavium");
}
const seals: Pkcs11Seal[] = [];
afterEach(async () => {
  await Promise.all(seals.splice(0).map((s) => s.finalize()));
});
afterAll(() => hsm?.stop());

function plain(options: Partial<Pkcs11SealOptions> = {}): Pkcs11Seal {
  const seal = new Pkcs11Seal({
    lib: SIM_LIB,
    tokenLabel: token.label,
    pin: token.pin,
    keyLabel: "plain-key",
    generateKey: true,
    ...options,
  });
  seals.push(seal);
  return seal;
}

async function initError(seal: Pkcs11Seal): Promise<SealError> {
  try {
    await seal.init();
  } catch (err) {
    expect(err).toBeInstanceOf(SealError);
    return err as SealError;
  }
  return expect.fail("init succeeded");
}

describe.skipIf(!available)("generic PKCS#11 code against cloudhsm-sim", () => {
  it("plain Pkcs11Seal: its random caller IV is refused (CKR_MECHANISM_PARAM_INVALID) in the init self-test", async () => {
    const err = await initError(plain());
    expect(err).toBeInstanceOf(SealConfigError);
    expect((err as SealConfigError).field).toBe("mechanism");
    expect(err.message).toMatch(/C_EncryptInit returned CKR_MECHANISM_PARAM_INVALID \(0x71\)/);
    expect(err.cause).toBeInstanceOf(Pkcs11CallError);
    // The same seal on SoftHSM directly (same token, bare user PIN) works: the sim made the difference.
    const direct = plain({ lib: SOFTHSM_LIB, pin: token.password });
    await direct.init();
    expect(await direct.decrypt(await direct.encrypt(new Uint8Array([1, 2, 3])))).toEqual(
      new Uint8Array([1, 2, 3]),
    );
  });

  it("plain Pkcs11Seal with a SoftHSM-style PIN (no crypto user): CKR_PIN_INCORRECT", async () => {
    const err = await initError(plain({ pin: token.password }));
    expect(err).toBeInstanceOf(SealConfigError);
    expect(err.message).toMatch(/C_Login returned CKR_PIN_INCORRECT/);
  });

  it("PKCS#11 seal with HSM IVs but no 16 KiB limit: a 20 KiB value fails with CKR_DATA_LEN_RANGE", async () => {
    const seal = plain({ hsmGeneratedIv: true, gcmIvBits: 0, maxDirectBytes: 1 << 20 });
    await seal.init();
    const small = await seal.encrypt(new Uint8Array(16 * 1024));
    expect(small.keyInfo?.flags).toBe(0); // direct: one GCM call of exactly 16 KiB
    const err = await seal.encrypt(new Uint8Array(20 * 1024)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SealError);
    expect((err as Error).message).toMatch(/C_Encrypt returned CKR_DATA_LEN_RANGE \(0x21\)/);
  });

  it("raw pkcs11js: a read-only session is refused with CKR_FUNCTION_FAILED; read-write works", () => {
    const raw = new RawSim(SIM_LIB);
    try {
      const slot = raw.slotOf("cavium");
      expect(ckrOf(() => raw.lib.C_OpenSession(slot, k("CKF_SERIAL_SESSION")))).toBe(
        k("CKR_FUNCTION_FAILED"),
      );
      const rw = raw.lib.C_OpenSession(slot, k("CKF_SERIAL_SESSION") | k("CKF_RW_SESSION"));
      expect(raw.lib.C_GetSessionInfo(rw).flags & k("CKF_RW_SESSION")).toBe(k("CKF_RW_SESSION"));
      raw.lib.C_CloseSession(rw);
    } finally {
      raw.finalize();
    }
  });

  it("graphene: Slot.open() without flags (read-only, graphene's default) is refused", () => {
    const mod = graphene.Module.load(SIM_LIB, "cloudhsm-sim");
    mod.initialize();
    try {
      const slots = mod.getSlots(true);
      expect(slots.length).toBe(1);
      expect(ckrOf(() => slots.items(0).open())).toBe(k("CKR_FUNCTION_FAILED"));
      expect(() => slots.items(0).open(k("CKF_SERIAL_SESSION") | k("CKF_RW_SESSION"))).not.toThrow();
    } finally {
      mod.finalize();
      mod.close();
    }
  });

  it("raw pkcs11js: 64-bit slot id; multi-part GCM refused (CKR_MECHANISM_INVALID); a caller IV refused", () => {
    const raw = new RawSim(SIM_LIB);
    try {
      const slot = raw.slotOf("cavium");
      expect(slot.readBigUInt64LE(0)).toBe(2305843009213693953n);
      const s = raw.session("cavium", token.pin);
      // A key the seal created earlier in this file (a token object).
      const [key] = raw.find(s, [{ type: k("CKA_LABEL"), value: "plain-key" }]);
      expect(key).toBeDefined();
      const gcm = (iv: Buffer) => ({
        mechanism: k("CKM_AES_GCM"),
        parameter: { type: k("CK_PARAMS_AES_GCM_v240"), iv, ivBits: 0, tagBits: 128 },
      });
      expect(ckrOf(() => raw.lib.C_EncryptInit(s, gcm(Buffer.alloc(12, 7)), key as Buffer))).toBe(
        k("CKR_MECHANISM_PARAM_INVALID"),
      );
      const iv = Buffer.alloc(12);
      raw.lib.C_EncryptInit(s, gcm(iv), key as Buffer);
      expect(ckrOf(() => raw.lib.C_EncryptUpdate(s, Buffer.alloc(32), Buffer.alloc(64)))).toBe(
        k("CKR_MECHANISM_INVALID"),
      );
      // Single-part with a zeroed IV: the HSM's IV arrives in the buffer passed at C_EncryptInit.
      raw.lib.C_EncryptInit(s, gcm(iv), key as Buffer);
      const ct = raw.lib.C_Encrypt(s, Buffer.alloc(32, 1), Buffer.alloc(48));
      expect(ct.length).toBe(48);
      expect(iv.equals(Buffer.alloc(12))).toBe(false);
      raw.lib.C_CloseSession(s);
    } finally {
      raw.finalize();
    }
  });
});

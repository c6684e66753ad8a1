import { AesGcmKey } from "@bulwark/crypto";
import fc from "fast-check";
import { beforeEach, describe, expect, it } from "vitest";
import { AesGcmBarrier, type BarrierLogger } from "./barrier.js";
import {
  KEYRING_PATH,
  OPENBAO_ROOT_KEY_PATH,
  ROOT_KEY_PATH,
  SHAMIR_KEK_PATH,
  UPGRADE_PREFIX,
} from "./constants.js";
import {
  BarrierAlreadyInitializedError,
  BarrierCiphertextError,
  BarrierError,
  BarrierInvalidKeyError,
  BarrierNotInitializedError,
  BarrierSealedError,
} from "./errors.js";
import { decryptFrame, encryptFrame, frameTerm } from "./frame.js";
import { deserializeKey, Keyring } from "./keyring.js";
import { eventually, hex, RecordingBackend, seq, text, utf8 } from "./test-helpers.js";

const ROOT = seq(0, 32);
const ROOT2 = seq(100, 32);
const KEK = seq(200, 32);

async function expectCode(p: Promise<unknown>, code: string): Promise<void> {
  await expect(p).rejects.toBeInstanceOf(BarrierError);
  await p.catch((e: BarrierError) => expect(e.code).toBe(code));
}

/** Reads core/keyring with the root key, lets `edit` change it, and writes it back. */
async function editKeyring(storage: RecordingBackend, root: Uint8Array, edit: (k: Keyring) => void) {
  const rootKey = new AesGcmKey(root);
  const raw = (await storage.raw(KEYRING_PATH)) as Uint8Array;
  const ring = Keyring.deserialize(decryptFrame(new Map([[1, rootKey]]), KEYRING_PATH, raw));
  edit(ring);
  await storage.inner.put({
    key: KEYRING_PATH,
    value: encryptFrame(rootKey, 1, KEYRING_PATH, ring.serialize()),
  });
}

describe("AesGcmBarrier lifecycle", () => {
  let storage: RecordingBackend;
  let barrier: AesGcmBarrier;

  beforeEach(() => {
    storage = new RecordingBackend();
    barrier = new AesGcmBarrier(storage);
  });

  it("initialize writes core/keyring (term 1 framing, root key) and core/master, and stays sealed", async () => {
    expect(await barrier.initialized()).toBe(false);
    await barrier.initialize(ROOT);
    expect(await barrier.initialized()).toBe(true);
    expect(barrier.sealed).toBe(true);
    const raw = (await storage.raw(KEYRING_PATH)) as Uint8Array;
    expect(hex(raw.subarray(0, 5))).toBe("0000000102");
    const json = text(decryptFrame(new Map([[1, new AesGcmKey(ROOT)]]), KEYRING_PATH, raw));
    expect(json).toMatch(
      /^\{"MasterKey":"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=","Keys":\[\{"Term":1,"Version":1,"Value":"[A-Za-z0-9+/]{43}=","InstallTime":"[^"]+","encryptions":1\}\],"RotationConfig":\{"Disabled":false,"MaxOperations":3865470566,"Interval":0\}\}$/,
    );
    // core/master: the root-key record under term 1, which only the term key opens.
    const ring = Keyring.deserialize(json);
    const master = (await storage.raw(ROOT_KEY_PATH)) as Uint8Array;
    expect(frameTerm(master)).toBe(1);
    const termKeys = new Map([[1, new AesGcmKey(ring.activeKey().value)]]);
    expect(text(decryptFrame(termKeys, ROOT_KEY_PATH, master))).toBe(
      '{"Term":1,"Version":1,"Value":"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=","InstallTime":"0001-01-01T00:00:00Z"}',
    );
    expect(await storage.raw(SHAMIR_KEK_PATH)).toBeUndefined();
  });

  it("writes the CSPs with sealWrap: true, keyring before root-key copy before KEK", async () => {
    await barrier.initialize(ROOT, KEK);
    expect(storage.puts.map((p) => [p.key, p.sealWrap])).toEqual([
      [KEYRING_PATH, true],
      [ROOT_KEY_PATH, true],
      [SHAMIR_KEK_PATH, true],
    ]);
  });

  it("refuses a second initialize (already_initialized)", async () => {
    await barrier.initialize(ROOT);
    await expect(barrier.initialize(ROOT2)).rejects.toBeInstanceOf(BarrierAlreadyInitializedError);
    await expectCode(barrier.initialize(ROOT2), "already_initialized");
  });

  it("refuses unseal before initialize (not_initialized)", async () => {
    await expect(barrier.unseal(ROOT)).rejects.toBeInstanceOf(BarrierNotInitializedError);
  });

  it("refuses a wrong root key with BarrierInvalidKeyError and stays sealed", async () => {
    await barrier.initialize(ROOT);
    const err = await barrier.unseal(ROOT2).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BarrierInvalidKeyError);
    expect((err as BarrierError).code).toBe("invalid_key");
    expect((err as Error).message).toMatch(/^Unseal failed, invalid key/);
    expect(barrier.sealed).toBe(true);
  });

  it("validates key sizes before touching storage", async () => {
    await expectCode(barrier.initialize(seq(0, 16)), "invalid_argument");
    await expectCode(barrier.initialize(ROOT, seq(0, 5)), "invalid_argument");
    await expectCode(barrier.unseal(seq(0, 31)), "invalid_argument");
    expect(storage.puts).toEqual([]);
  });

  it("unseal opens the barrier; unsealing twice is a no-op; seal is idempotent", async () => {
    await barrier.initialize(ROOT);
    await barrier.unseal(ROOT);
    expect(barrier.sealed).toBe(false);
    await barrier.unseal(ROOT);
    expect(barrier.keyStatus().term).toBe(1);
    barrier.seal();
    barrier.seal();
    expect(barrier.sealed).toBe(true);
    await barrier.unseal(ROOT);
    expect(barrier.sealed).toBe(false);
  });

  it("a sealed barrier refuses every data and key operation", async () => {
    await barrier.initialize(ROOT);
    const ops: Array<[string, () => unknown]> = [
      ["get", () => barrier.get("a")],
      ["put", () => barrier.put({ key: "a", value: utf8("v") })],
      ["delete", () => barrier.delete("a")],
      ["list", () => barrier.list("")],
      ["encrypt", () => barrier.encrypt("a", utf8("v"))],
      ["decrypt", () => barrier.decrypt("a", new Uint8Array(40))],
      ["rotate", () => barrier.rotate()],
      ["rekey", () => barrier.rekey(ROOT2)],
      ["keyStatus", () => barrier.keyStatus()],
      ["rotationConfig", () => barrier.rotationConfig()],
      ["setRotationConfig", () => barrier.setRotationConfig({ disabled: true })],
      ["checkAutoRotate", () => barrier.checkAutoRotate()],
      ["reloadKeyring", () => barrier.reloadKeyring()],
      ["reloadRootKey", () => barrier.reloadRootKey()],
      ["checkUpgrade", () => barrier.checkUpgrade()],
      ["shamirKek", () => barrier.shamirKek()],
      ["setShamirKek", () => barrier.setShamirKek(KEK)],
      ["verifyRootKey", () => barrier.verifyRootKey(ROOT)],
    ];
    for (const [name, op] of ops) {
      let err: unknown;
      try {
        await op();
      } catch (e) {
        err = e;
      }
      expect(err, name).toBeInstanceOf(BarrierSealedError);
      expect((err as BarrierError).code, name).toBe("sealed");
      expect((err as Error).message, name).toMatch(/Bulwark is sealed/);
    }
  });
});

describe("AesGcmBarrier data path", () => {
  let storage: RecordingBackend;
  let barrier: AesGcmBarrier;

  beforeEach(async () => {
    storage = new RecordingBackend();
    barrier = new AesGcmBarrier(storage);
    await barrier.initialize(ROOT);
    await barrier.unseal(ROOT);
  });

  it("round-trips values and stores only barrier ciphertext", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.stringMatching(/^[a-z0-9]{1,8}(\/[a-z0-9]{1,8}){0,3}$/),
        fc.uint8Array({ minLength: 8, maxLength: 300 }),
        async (key, value) => {
          await barrier.put({ key, value });
          const raw = (await storage.raw(key)) as Uint8Array;
          expect(raw.length).toBe(value.length + 33);
          expect(hex(raw.subarray(0, 5))).toBe("0000000102");
          expect(Buffer.from(raw).includes(Buffer.from(value))).toBe(false);
          expect(hex((await barrier.get(key))?.value as Uint8Array)).toBe(hex(value));
        },
      ),
      { numRuns: 50 },
    );
  });

  it("get of a missing key is undefined; delete and list pass through", async () => {
    expect(await barrier.get("nope")).toBeUndefined();
    await barrier.put({ key: "a/b", value: utf8("1") });
    await barrier.put({ key: "a/c/d", value: utf8("2") });
    expect(await barrier.list("a/")).toEqual(["b", "c/"]);
    await barrier.delete("a/b");
    expect(await barrier.get("a/b")).toBeUndefined();
    expect(await barrier.list("a/")).toEqual(["c/"]);
  });

  it("passes sealWrap through to storage unchanged", async () => {
    await barrier.put({ key: "wrapped", value: utf8("x"), sealWrap: true });
    await barrier.put({ key: "plain", value: utf8("y") });
    await barrier.put({ key: "off", value: utf8("z"), sealWrap: false });
    const flags = Object.fromEntries(storage.puts.slice(-3).map((p) => [p.key, p.sealWrap]));
    expect(flags).toEqual({ wrapped: true, plain: undefined, off: false });
  });

  it("a ciphertext moved to another key fails authentication", async () => {
    await barrier.put({ key: "secret/a", value: utf8("value a") });
    await storage.inner.put({ key: "secret/b", value: (await storage.raw("secret/a")) as Uint8Array });
    const err = await barrier.get("secret/b").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BarrierCiphertextError);
    expect((err as BarrierCiphertextError).code).toBe("authentication_failed");
  });

  it("any flipped byte in storage is a typed error, never a wrong value", async () => {
    await barrier.put({ key: "k", value: utf8("the secret value") });
    const good = (await storage.raw("k")) as Uint8Array;
    for (let i = 0; i < good.length; i++) {
      const bad = new Uint8Array(good);
      bad[i] = (bad[i] as number) ^ 0x01;
      await storage.inner.put({ key: "k", value: bad });
      await expect(barrier.get("k")).rejects.toBeInstanceOf(BarrierCiphertextError);
    }
  });

  it("encrypt/decrypt use the same format and count encryptions", async () => {
    const before = barrier.keyStatus().encryptions;
    const ct = barrier.encrypt("wal/1", utf8("entry"));
    expect(frameTerm(ct)).toBe(1);
    expect(text(barrier.decrypt("wal/1", ct))).toBe("entry");
    expect(() => barrier.decrypt("wal/2", ct)).toThrow(BarrierCiphertextError);
    expect(barrier.keyStatus().encryptions).toBe(before + 1);
  });

  it("rejects non-byte values with invalid_argument", async () => {
    await expectCode(barrier.put({ key: "k", value: "text" as unknown as Uint8Array }), "invalid_argument");
    expect(() => barrier.encrypt(5 as unknown as string, utf8("x"))).toThrow(BarrierError);
  });

  it("stores and reads the Shamir KEK", async () => {
    expect(await barrier.shamirKek()).toBeUndefined();
    await barrier.setShamirKek(KEK);
    expect(hex((await barrier.shamirKek()) as Uint8Array)).toBe(hex(KEK));
    expect(storage.puts.at(-1)).toMatchObject({ key: SHAMIR_KEK_PATH, sealWrap: true });
    await expectCode(barrier.setShamirKek(seq(0, 3)), "invalid_argument");
  });

  it("reads the KEK written by initialize", async () => {
    const s = new RecordingBackend();
    const b = new AesGcmBarrier(s);
    await b.initialize(ROOT, KEK);
    await b.unseal(ROOT);
    expect(hex((await b.shamirKek()) as Uint8Array)).toBe(hex(KEK));
  });
});

describe("AesGcmBarrier rotation", () => {
  it("keeps old data readable, writes new data with the new term, and persists the keyring first", async () => {
    const storage = new RecordingBackend();
    const barrier = new AesGcmBarrier(storage, { upgradeGracePeriodMs: 60_000 });
    await barrier.initialize(ROOT);
    await barrier.unseal(ROOT);
    await barrier.put({ key: "old", value: utf8("written under term 1") });
    const mark = storage.puts.length;
    const status = await barrier.rotate();
    expect(status.term).toBe(2);
    expect(storage.puts.slice(mark).map((p) => p.key)).toEqual([
      KEYRING_PATH,
      ROOT_KEY_PATH,
      `${UPGRADE_PREFIX}1`,
    ]);
    await barrier.put({ key: "new", value: utf8("written under term 2") });
    expect(frameTerm((await storage.raw("new")) as Uint8Array)).toBe(2);
    expect(frameTerm((await storage.raw("old")) as Uint8Array)).toBe(1);
    expect(text((await barrier.get("old"))?.value as Uint8Array)).toBe("written under term 1");
    // core/master is now under term 2; the keyring is still framed with term 1.
    expect(frameTerm((await storage.raw(ROOT_KEY_PATH)) as Uint8Array)).toBe(2);
    expect(frameTerm((await storage.raw(KEYRING_PATH)) as Uint8Array)).toBe(1);
    // A fresh barrier sees both terms.
    const again = new AesGcmBarrier(storage);
    await again.unseal(ROOT);
    expect(again.keyStatus().term).toBe(2);
    expect(text((await again.get("old"))?.value as Uint8Array)).toBe("written under term 1");
    barrier.seal();
  });

  it("writes core/upgrade/<N> (term N+1 under term N) and deletes it after the grace period", async () => {
    const storage = new RecordingBackend();
    const barrier = new AesGcmBarrier(storage, { upgradeGracePeriodMs: 30 });
    await barrier.initialize(ROOT);
    await barrier.unseal(ROOT);
    await barrier.rotate();
    const raw = (await storage.raw(`${UPGRADE_PREFIX}1`)) as Uint8Array;
    expect(frameTerm(raw)).toBe(1);
    const rec = deserializeKey(barrier.decrypt(`${UPGRADE_PREFIX}1`, raw));
    expect(rec.term).toBe(2);
    expect(rec.encryptions).toBe(0);
    expect(await eventually(async () => (await storage.raw(`${UPGRADE_PREFIX}1`)) === undefined)).toBe(true);
    expect(storage.deletes).toContain(`${UPGRADE_PREFIX}1`);
  });

  it("sealing cancels the pending upgrade-entry deletion", async () => {
    const storage = new RecordingBackend();
    const barrier = new AesGcmBarrier(storage, { upgradeGracePeriodMs: 20 });
    await barrier.initialize(ROOT);
    await barrier.unseal(ROOT);
    await barrier.rotate();
    barrier.seal();
    await new Promise((r) => setTimeout(r, 80));
    expect(await storage.raw(`${UPGRADE_PREFIX}1`)).toBeDefined();
    // A node that becomes active cleans up what is left.
    const next = new AesGcmBarrier(storage, { upgradeGracePeriodMs: 10 });
    await next.unseal(ROOT);
    expect(await next.scheduleUpgradeCleanup()).toBe(1);
    expect(await eventually(async () => (await storage.raw(`${UPGRADE_PREFIX}1`)) === undefined)).toBe(true);
  });

  it("a crash after the keyring write leaves the rotated keyring (upgrade entry missing)", async () => {
    const storage = new RecordingBackend();
    const barrier = new AesGcmBarrier(storage);
    await barrier.initialize(ROOT);
    await barrier.unseal(ROOT);
    storage.failPut = (k) => k.startsWith(UPGRADE_PREFIX);
    await expect(barrier.rotate()).rejects.toThrow(/injected failure/);
    const fresh = new AesGcmBarrier(storage);
    await fresh.unseal(ROOT);
    expect(fresh.keyStatus().term).toBe(2);
  });

  it("keeps writes made during a rotation readable", async () => {
    const storage = new RecordingBackend();
    const barrier = new AesGcmBarrier(storage);
    await barrier.initialize(ROOT);
    await barrier.unseal(ROOT);
    const writes = Array.from({ length: 40 }, (_, i) => barrier.put({ key: `k/${i}`, value: utf8(`v${i}`) }));
    await Promise.all([...writes, barrier.rotate(), barrier.rotate()]);
    for (let i = 0; i < 40; i++)
      expect(text((await barrier.get(`k/${i}`))?.value as Uint8Array)).toBe(`v${i}`);
    expect(barrier.keyStatus().term).toBe(3);
  });
});

describe("AesGcmBarrier rekey", () => {
  it("re-encrypts the keyring under the new root key; data stays readable; the old key no longer unseals", async () => {
    const storage = new RecordingBackend();
    const barrier = new AesGcmBarrier(storage);
    await barrier.initialize(ROOT);
    await barrier.unseal(ROOT);
    await barrier.put({ key: "data", value: utf8("kept") });
    const mark = storage.puts.length;
    await barrier.rekey(ROOT2);
    expect(storage.puts.slice(mark).map((p) => p.key)).toEqual([KEYRING_PATH, ROOT_KEY_PATH]);
    expect(barrier.verifyRootKey(ROOT2)).toBe(true);
    expect(barrier.verifyRootKey(ROOT)).toBe(false);
    expect(text((await barrier.get("data"))?.value as Uint8Array)).toBe("kept");
    const other = new AesGcmBarrier(storage);
    await expect(other.unseal(ROOT)).rejects.toBeInstanceOf(BarrierInvalidKeyError);
    await other.unseal(ROOT2);
    expect(text((await other.get("data"))?.value as Uint8Array)).toBe("kept");
    const record = deserializeKey((await other.get(ROOT_KEY_PATH))?.value as Uint8Array);
    expect(hex(record.value)).toBe(hex(ROOT2));
  });

  it("a failed core/master write puts the previous keyring back: the old root key still unseals", async () => {
    const storage = new RecordingBackend();
    const barrier = new AesGcmBarrier(storage);
    await barrier.initialize(ROOT);
    await barrier.unseal(ROOT);
    await barrier.put({ key: "data", value: utf8("kept") });
    storage.failPut = (k) => k === ROOT_KEY_PATH;
    await expect(barrier.rekey(ROOT2)).rejects.toThrow(/injected failure/);
    // In memory nothing changed, and on storage neither: the caller was told the rekey failed.
    expect(barrier.verifyRootKey(ROOT)).toBe(true);
    storage.failPut = undefined;
    const fresh = new AesGcmBarrier(storage);
    await expect(fresh.unseal(ROOT2)).rejects.toBeInstanceOf(BarrierInvalidKeyError);
    await fresh.unseal(ROOT);
    expect(text((await fresh.get("data"))?.value as Uint8Array)).toBe("kept");
    expect(hex(deserializeKey((await fresh.get(ROOT_KEY_PATH))?.value as Uint8Array).value)).toBe(hex(ROOT));
  });

  it("a failed core/master write during rotate puts the previous keyring back", async () => {
    const storage = new RecordingBackend();
    const barrier = new AesGcmBarrier(storage);
    await barrier.initialize(ROOT);
    await barrier.unseal(ROOT);
    storage.failPut = (k) => k === ROOT_KEY_PATH;
    await expect(barrier.rotate()).rejects.toThrow(/injected failure/);
    storage.failPut = undefined;
    expect(barrier.keyStatus().term).toBe(1);
    const fresh = new AesGcmBarrier(storage);
    await fresh.unseal(ROOT);
    expect(fresh.keyStatus().term).toBe(1);
  });

  it("a failed core/master write during initialize leaves the storage uninitialized", async () => {
    const storage = new RecordingBackend();
    const barrier = new AesGcmBarrier(storage);
    storage.failPut = (k) => k === ROOT_KEY_PATH;
    await expect(barrier.initialize(ROOT)).rejects.toThrow(/injected failure/);
    storage.failPut = undefined;
    expect(await barrier.initialized()).toBe(false);
    await barrier.initialize(ROOT);
    await barrier.unseal(ROOT);
  });

  it("when the previous keyring cannot be put back either, the error says which root key now opens it", async () => {
    const storage = new RecordingBackend();
    const barrier = new AesGcmBarrier(storage);
    await barrier.initialize(ROOT);
    await barrier.unseal(ROOT);
    await barrier.put({ key: "data", value: utf8("kept") });
    let keyringWrites = 0;
    // Like a crash between the two writes: core/master fails, and so does the restore.
    storage.failPut = (k) => k === ROOT_KEY_PATH || (k === KEYRING_PATH && ++keyringWrites > 1);
    const err = await barrier.rekey(ROOT2).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BarrierError);
    expect((err as BarrierError).code).toBe("keyring_not_restored");
    expect((err as Error).message).toMatch(/new root key/);
    // In memory nothing changed.
    expect(barrier.verifyRootKey(ROOT)).toBe(true);
    storage.failPut = undefined;
    const fresh = new AesGcmBarrier(storage);
    await fresh.unseal(ROOT2);
    expect(text((await fresh.get("data"))?.value as Uint8Array)).toBe("kept");
    // core/master (still the old copy) decrypts with the term keys.
    expect(hex(deserializeKey((await fresh.get(ROOT_KEY_PATH))?.value as Uint8Array).value)).toBe(hex(ROOT));
  });

  it("validates the new root key", async () => {
    const barrier = new AesGcmBarrier(new RecordingBackend());
    await barrier.initialize(ROOT);
    await barrier.unseal(ROOT);
    await expectCode(barrier.rekey(seq(0, 8)), "invalid_argument");
  });
});

describe("AesGcmBarrier standby", () => {
  async function pair(grace = 60_000) {
    const storage = new RecordingBackend();
    const active = new AesGcmBarrier(storage, { upgradeGracePeriodMs: grace });
    await active.initialize(ROOT);
    await active.unseal(ROOT);
    const standby = new AesGcmBarrier(storage);
    await standby.unseal(ROOT);
    return { storage, active, standby };
  }

  it("follows rotations through core/upgrade/<N> with checkUpgrade", async () => {
    const { active, standby } = await pair();
    expect(await standby.checkUpgrade()).toBe(false);
    await active.rotate();
    await active.rotate();
    await active.put({ key: "fresh", value: utf8("term 3") });
    const err = await standby.get("fresh").catch((e: unknown) => e);
    expect((err as BarrierCiphertextError).code).toBe("unknown_term");
    expect(await standby.checkUpgrade()).toBe(true);
    expect(standby.keyStatus().term).toBe(3);
    expect(text((await standby.get("fresh"))?.value as Uint8Array)).toBe("term 3");
    expect(await standby.checkUpgrade()).toBe(false);
    active.seal();
  });

  it("follows a rekey via reloadRootKey then reloadKeyring", async () => {
    const { active, standby } = await pair();
    await active.rekey(ROOT2);
    await active.rotate();
    // The old root key in memory no longer opens the keyring.
    await expect(standby.reloadKeyring()).rejects.toBeInstanceOf(BarrierInvalidKeyError);
    // core/master is under term 2 now: catch up on terms, then the root key, then the keyring.
    await expect(standby.reloadRootKey()).rejects.toBeInstanceOf(BarrierCiphertextError);
    await standby.checkUpgrade();
    await standby.reloadRootKey();
    expect(standby.verifyRootKey(ROOT2)).toBe(true);
    await standby.reloadKeyring();
    expect(standby.keyStatus().term).toBe(2);
    active.seal();
  });

  it("reads OpenBao's core/root-key when core/master is absent", async () => {
    const { storage, active, standby } = await pair();
    await active.rekey(ROOT2);
    const record = (await active.get(ROOT_KEY_PATH))?.value as Uint8Array;
    await active.put({ key: OPENBAO_ROOT_KEY_PATH, value: record });
    await storage.inner.delete(ROOT_KEY_PATH);
    await standby.reloadRootKey();
    expect(standby.verifyRootKey(ROOT2)).toBe(true);
  });

  it("reloadRootKey is a no-op when neither record exists", async () => {
    const { storage, standby } = await pair();
    await storage.inner.delete(ROOT_KEY_PATH);
    await standby.reloadRootKey();
    expect(standby.verifyRootKey(ROOT)).toBe(true);
  });

  it("reloadKeyring reports a missing keyring", async () => {
    const { storage, standby } = await pair();
    await storage.inner.delete(KEYRING_PATH);
    await expectCode(standby.reloadKeyring(), "keyring_missing");
  });
});

describe("AesGcmBarrier rotation policy", () => {
  let storage: RecordingBackend;
  let barrier: AesGcmBarrier;
  let clock: Date;

  beforeEach(async () => {
    storage = new RecordingBackend();
    clock = new Date("2024-03-01T00:00:00Z");
    barrier = new AesGcmBarrier(storage, { now: () => clock });
    await barrier.initialize(ROOT);
    await barrier.unseal(ROOT);
  });

  it("validates setRotationConfig with clear errors", async () => {
    const bad: Array<[object, RegExp]> = [
      [{ maxOperations: 999_999 }, /between 1000000 and 3865470566/],
      [{ maxOperations: 3_865_470_567 }, /between/],
      [{ maxOperations: 1.5e6 + 0.5 }, /between/],
      [{ intervalMs: 1000 }, /at least 86400000/],
      [{ intervalMs: -1 }, /intervalMs/],
      [{ intervalMs: 86_400_000.5 }, /whole number/],
      [{ disabled: "yes" }, /boolean/],
      [{ maxOps: 5 }, /unknown rotation config field "maxOps"/],
    ];
    for (const [cfg, msg] of bad) {
      const err = await barrier.setRotationConfig(cfg as never).catch((e: unknown) => e);
      expect(err, JSON.stringify(cfg)).toBeInstanceOf(BarrierError);
      expect((err as BarrierError).code).toBe("invalid_rotation_config");
      expect((err as Error).message).toMatch(msg);
    }
    expect(barrier.rotationConfig()).toEqual({
      disabled: false,
      maxOperations: 3_865_470_566,
      intervalMs: 0,
    });
  });

  it("persists a valid config (Interval in Go nanoseconds)", async () => {
    await barrier.setRotationConfig({ maxOperations: 2_000_000, intervalMs: 48 * 3600_000 });
    expect(barrier.rotationConfig()).toEqual({
      disabled: false,
      maxOperations: 2_000_000,
      intervalMs: 48 * 3600_000,
    });
    const raw = (await storage.raw(KEYRING_PATH)) as Uint8Array;
    const json = text(decryptFrame(new Map([[1, new AesGcmKey(ROOT)]]), KEYRING_PATH, raw));
    expect(json).toContain(
      '"RotationConfig":{"Disabled":false,"MaxOperations":2000000,"Interval":172800000000000}',
    );
    const other = new AesGcmBarrier(storage);
    await other.unseal(ROOT);
    expect(other.rotationConfig().maxOperations).toBe(2_000_000);
    // An unchanged config writes nothing.
    const mark = storage.puts.length;
    await barrier.setRotationConfig({ maxOperations: 2_000_000 });
    expect(storage.puts.length).toBe(mark);
  });

  it("persists the encryption counter when nothing is due", async () => {
    expect(barrier.keyStatus().encryptions).toBe(1); // the core/master write at initialize
    for (let i = 0; i < 5; i++) await barrier.put({ key: `k${i}`, value: utf8("v") });
    expect(barrier.keyStatus().encryptions).toBe(6);
    expect(await barrier.checkAutoRotate()).toBeUndefined();
    // 6 + 1 for the core/master write of this persist.
    expect(barrier.keyStatus().encryptions).toBe(7);
    const other = new AesGcmBarrier(storage);
    await other.unseal(ROOT);
    expect(other.keyStatus().encryptions).toBe(7);
    // Nothing new: nothing written.
    const mark = storage.puts.length;
    expect(await barrier.checkAutoRotate()).toBeUndefined();
    expect(storage.puts.length).toBe(mark);
  });

  it("rotates when encryptions exceed maxOperations (counter preloaded through the keyring JSON)", async () => {
    barrier.seal();
    await editKeyring(storage, ROOT, (ring) => {
      ring.setRotationConfig({ maxOperations: 1_000_000 });
      ring.activeKey().encryptions = 999_998;
    });
    await barrier.unseal(ROOT);
    expect(barrier.keyStatus().encryptions).toBe(999_998);
    barrier.encrypt("a", utf8("x"));
    barrier.encrypt("a", utf8("x"));
    expect(await barrier.checkAutoRotate()).toBeUndefined(); // 1_000_000 is not more than the limit
    barrier.encrypt("a", utf8("x"));
    expect(await barrier.checkAutoRotate()).toBe("reached max operations");
    expect(barrier.keyStatus().term).toBe(2);
    expect(barrier.keyStatus().encryptions).toBe(1);
  });

  it("rotates when the interval has passed", async () => {
    await barrier.setRotationConfig({ intervalMs: 24 * 3600_000 });
    clock = new Date("2024-03-02T00:00:00Z");
    expect(await barrier.checkAutoRotate()).toBeUndefined();
    clock = new Date("2024-03-02T00:00:00.001Z");
    expect(await barrier.checkAutoRotate()).toBe("rotation interval reached");
    expect(barrier.keyStatus()).toMatchObject({ term: 2, installTime: clock });
  });

  it("rotates an untracked key older than a year (Vault's legacy rotation)", async () => {
    barrier.seal();
    await editKeyring(storage, ROOT, (ring) => {
      ring.activeKey().encryptions = 0;
    });
    await barrier.unseal(ROOT);
    clock = new Date("2025-03-02T00:00:00Z");
    expect(await barrier.checkAutoRotate()).toBe("legacy rotation");
  });

  it("does not rotate when rotation is disabled", async () => {
    await barrier.setRotationConfig({ disabled: true, intervalMs: 24 * 3600_000 });
    clock = new Date("2030-01-01T00:00:00Z");
    expect(await barrier.checkAutoRotate()).toBeUndefined();
    expect(barrier.keyStatus().term).toBe(1);
  });
});

describe("AesGcmBarrier concurrency and hygiene", () => {
  it("seal during unseal wins: unseal fails and nothing is installed", async () => {
    const storage = new RecordingBackend();
    const barrier = new AesGcmBarrier(storage);
    await barrier.initialize(ROOT);
    storage.getDelayMs = 20;
    const pending = barrier.unseal(ROOT);
    await new Promise((r) => setTimeout(r, 5));
    barrier.seal();
    await expect(pending).rejects.toBeInstanceOf(BarrierSealedError);
    expect(barrier.sealed).toBe(true);
  });

  it("a get in flight when the barrier seals fails with sealed", async () => {
    const storage = new RecordingBackend();
    const barrier = new AesGcmBarrier(storage);
    await barrier.initialize(ROOT);
    await barrier.unseal(ROOT);
    await barrier.put({ key: "k", value: utf8("v") });
    storage.getDelayMs = 20;
    const pending = barrier.get("k");
    barrier.seal();
    await expect(pending).rejects.toBeInstanceOf(BarrierSealedError);
  });

  it("never logs key material", async () => {
    const lines: string[] = [];
    const logger: BarrierLogger = {
      debug: (m, f) => lines.push(`${m} ${JSON.stringify(f)}`),
      info: (m, f) => lines.push(`${m} ${JSON.stringify(f)}`),
      warn: (m, f) => lines.push(`${m} ${JSON.stringify(f)}`),
    };
    const storage = new RecordingBackend();
    const barrier = new AesGcmBarrier(storage, { logger, upgradeGracePeriodMs: 1 });
    await barrier.initialize(ROOT, KEK);
    await barrier.unseal(ROOT);
    await barrier.rotate();
    await barrier.rekey(ROOT2);
    const standby = new AesGcmBarrier(storage, { logger });
    await standby.unseal(ROOT2);
    barrier.seal();
    expect(lines.length).toBeGreaterThan(4);
    const all = lines.join("\n");
    for (const k of [ROOT, ROOT2, KEK]) {
      expect(all).not.toContain(Buffer.from(k).toString("base64"));
      expect(all).not.toContain(hex(k));
    }
  });

  it("rejects bad options", () => {
    expect(() => new AesGcmBarrier(new RecordingBackend(), { upgradeGracePeriodMs: -1 })).toThrow(
      BarrierError,
    );
    expect(() => new AesGcmBarrier({} as never)).toThrow(/missing get/);
  });
});

describe("AesGcmBarrier seal during key management", () => {
  /** A put of `key` that waits until `release()` is called; `reached` resolves when it started. */
  function hold(storage: RecordingBackend, key: string) {
    let release = (): void => {};
    let reached = (): void => {};
    const started = new Promise<void>((r) => {
      reached = r;
    });
    const gate = new Promise<void>((r) => {
      release = r;
    });
    storage.holdPut = (k) => {
      if (k !== key) return undefined;
      storage.holdPut = undefined;
      reached();
      return gate;
    };
    return { started, release };
  }

  it("a seal while the upgrade entry is written schedules no cleanup that outlives the seal", async () => {
    const storage = new RecordingBackend();
    const barrier = new AesGcmBarrier(storage, { upgradeGracePeriodMs: 20 });
    await barrier.initialize(ROOT);
    await barrier.unseal(ROOT);
    const h = hold(storage, `${UPGRADE_PREFIX}1`);
    const pending = barrier.rotate();
    await h.started;
    barrier.seal();
    h.release();
    await expect(pending).rejects.toBeInstanceOf(BarrierSealedError);
    // Unsealed again (e.g. as a standby): the cancelled cleanup must not fire now.
    await barrier.unseal(ROOT);
    await new Promise((r) => setTimeout(r, 80));
    expect(storage.deletes).not.toContain(`${UPGRADE_PREFIX}1`);
    expect(await storage.raw(`${UPGRADE_PREFIX}1`)).toBeDefined();
  });

  it("a seal while rekey persists fails it and leaves the storage opening with the old root key", async () => {
    const storage = new RecordingBackend();
    const barrier = new AesGcmBarrier(storage);
    await barrier.initialize(ROOT);
    await barrier.unseal(ROOT);
    await barrier.put({ key: "data", value: utf8("kept") });
    const h = hold(storage, ROOT_KEY_PATH);
    const pending = barrier.rekey(ROOT2);
    await h.started;
    barrier.seal();
    h.release();
    await expect(pending).rejects.toBeInstanceOf(BarrierSealedError);
    const fresh = new AesGcmBarrier(storage);
    await fresh.unseal(ROOT);
    expect(text((await fresh.get("data"))?.value as Uint8Array)).toBe("kept");
  });

  it("a seal while rotate persists fails it and writes nothing more (another node may be active now)", async () => {
    const storage = new RecordingBackend();
    const barrier = new AesGcmBarrier(storage);
    await barrier.initialize(ROOT);
    await barrier.unseal(ROOT);
    const h = hold(storage, KEYRING_PATH);
    const pending = barrier.rotate();
    await h.started;
    const mark = storage.puts.length;
    barrier.seal();
    h.release();
    await expect(pending).rejects.toBeInstanceOf(BarrierSealedError);
    // Only the write already in flight landed: a keyring with term 2 next to a core/master that
    // term 1 still decrypts, which opens and reads fine (no root key changed).
    expect(storage.puts.slice(mark).map((p) => p.key)).toEqual([KEYRING_PATH]);
    expect(storage.deletes).toEqual([]);
    await barrier.unseal(ROOT);
    expect(barrier.keyStatus().term).toBe(2);
    await barrier.reloadRootKey();
  });
});

describe("keyStatus install time", () => {
  it("reports a term's InstallTime as stored, nanoseconds included (OpenBao's key-status), and as a Date", async () => {
    const storage = new RecordingBackend();
    const barrier = new AesGcmBarrier(storage);
    await barrier.initialize(ROOT);
    const rootKey = new AesGcmKey(ROOT);
    const raw = (await storage.raw(KEYRING_PATH)) as Uint8Array;
    const json = text(decryptFrame(new Map([[1, rootKey]]), KEYRING_PATH, raw)).replace(
      /"InstallTime":"[^"]+"/,
      '"InstallTime":"2026-12-07T23:18:55.378226857Z"',
    );
    await storage.inner.put({ key: KEYRING_PATH, value: encryptFrame(rootKey, 1, KEYRING_PATH, utf8(json)) });
    await barrier.unseal(ROOT);
    const ks = barrier.keyStatus();
    expect(ks.installTimeText).toBe("2026-12-07T23:18:55.378226857Z");
    expect(ks.installTime.toISOString()).toBe("2026-12-07T23:18:55.378Z");
  });
});

import { randomBytes } from "@bulwark/crypto";
import { decodeBlobInfo, parseSealWrapped, ShamirSeal, StaticKeySeal } from "@bulwark/seal";
import { FaultInjectingBackend, StorageUnavailableError, withFaults } from "@bulwark/storage";
import { MemoryBackend } from "@bulwark/storage-memory";
import { describe, expect, it } from "vitest";
import { CoreError } from "./errors.js";
import { JOURNAL_PATH } from "./journal.js";
import { type RekeyResult, SealedStore } from "./sealed-store.js";
import {
  activeHaNode,
  codeOf,
  dec,
  enc,
  haNode,
  haOpen,
  initStaticA,
  snapshot,
  staticA,
  staticB,
  unsealWith,
  waitFor,
} from "./test-support.js";

async function shamirStore(shares = 5, threshold = 3) {
  const storage = new MemoryBackend();
  const store = await SealedStore.open({ storage });
  const init = await store.initialize({ secretShares: shares, secretThreshold: threshold });
  return { storage, store, init };
}

describe("SealedStore with the Shamir seal", () => {
  it("initialises sealed, reports t/n, and unseals with a threshold of shares", async () => {
    const { store, init } = await shamirStore();
    expect(init.keys).toHaveLength(5);
    expect(init.keysBase64).toHaveLength(5);
    expect(init.recoveryKeys).toEqual([]);
    const s0 = store.status();
    expect(s0).toMatchObject({
      type: "shamir",
      initialized: true,
      sealed: true,
      t: 3,
      n: 5,
      progress: 0,
      recoverySeal: false,
    });
    const s1 = await store.unseal(init.keys[0] as string);
    expect(s1.progress).toBe(1);
    expect(s1.nonce).toMatch(/^[0-9a-f-]{36}$/);
    await store.unseal(init.keysBase64[3] as string);
    const s3 = await store.unseal(init.keys[4] as string);
    expect(s3).toMatchObject({ sealed: false, progress: 0, active: true });
    await store.put("secret/a", enc("one"));
    expect(dec(await store.get("secret/a"))).toBe("one");
  });

  it("opens and unseals OpenBao 2.6 data, whose core/seal-config has no stored_shares (the modern layout)", async () => {
    const { storage, init } = await shamirStore();
    // What OpenBao 2.6.2 writes (checked with its binary): the field is gone, the root key is
    // stored at core/hsm/barrier-unseal-keys as since Vault 1.3.
    const openbao = {
      type: "shamir",
      secret_shares: 5,
      secret_threshold: 3,
      pgp_keys: null,
      nonce: "",
      backup: false,
    };
    await storage.put({ key: "core/seal-config", value: enc(JSON.stringify(openbao)) });
    const store = await SealedStore.open({ storage });
    expect(store.status()).toMatchObject({ initialized: true, sealed: true, t: 3, n: 5 });
    for (const k of init.keys.slice(0, 3)) await store.unseal(k);
    expect(store.sealed).toBe(false);
  });

  it("refuses real legacy data (the shares are the root key, nothing stored) with advice that fits it", async () => {
    const { storage } = await shamirStore();
    const legacy = {
      type: "shamir",
      secret_shares: 5,
      secret_threshold: 3,
      pgp_keys: null,
      nonce: "",
      backup: false,
    };
    await storage.put({ key: "core/seal-config", value: enc(JSON.stringify(legacy)) });
    await storage.delete("core/hsm/barrier-unseal-keys");
    await expect(SealedStore.open({ storage })).rejects.toThrow(
      /legacy Shamir seal: core\/seal-config has no stored_shares and there is no stored root key \(core\/hsm\/barrier-unseal-keys\)/,
    );
  });

  it("ignores duplicate shares and discards progress on reset", async () => {
    const { store, init } = await shamirStore();
    await store.unseal(init.keys[0] as string);
    const dup = await store.unseal(init.keys[0] as string);
    expect(dup.progress).toBe(1);
    const reset = await store.unseal(undefined, { reset: true });
    expect(reset).toMatchObject({ progress: 0, nonce: "", sealed: true });
  });

  it("shares that cannot be combined (same x coordinate, x = 0) are an invalid key and reset progress", async () => {
    const { store, init } = await shamirStore(3, 2);
    const good = Buffer.from(init.keys[0] as string, "hex");
    const sameX = Buffer.from(good);
    sameX[0] = (sameX[0] as number) ^ 1; // other y, same x
    const zeroX = Buffer.from(good);
    zeroX[32] = 0;
    for (const bad of [sameX, zeroX]) {
      await store.unseal(init.keys[0] as string);
      expect(await codeOf(store.unseal(bad))).toBe("invalid_key");
      expect(store.status()).toMatchObject({ sealed: true, progress: 0 });
    }
  });

  it("a wrong key resets progress with 'invalid key' and changes nothing in storage", async () => {
    const { storage, store, init } = await shamirStore(3, 2);
    const before = await snapshot(storage);
    await store.unseal(init.keys[0] as string);
    const wrong = Buffer.from(init.keys[1] as string, "hex");
    wrong[3] = (wrong[3] as number) ^ 0xff;
    await expect(store.unseal(wrong)).rejects.toThrow(/invalid key/);
    expect(store.status()).toMatchObject({ sealed: true, progress: 0 });
    expect(await snapshot(storage)).toEqual(before);
    await unsealWith(store, [init.keys[1] as string, init.keys[2] as string]);
    expect(store.sealed).toBe(false);
  });

  it("seal() zeroes keys and refuses every data operation until unsealed again", async () => {
    const { store, init } = await shamirStore(1, 1);
    await store.unseal(init.keys[0] as string);
    await store.put("k", enc("v"));
    await store.seal();
    for (const p of [
      store.get("k"),
      store.put("k", enc("x")),
      store.delete("k"),
      store.list(""),
      store.rotate(),
    ]) {
      expect(await codeOf(p)).toBe("sealed");
    }
    await store.unseal(init.keys[0] as string);
    expect(dec(await store.get("k"))).toBe("v");
  });

  it("refuses a second initialize and bad share parameters with messages naming the field", async () => {
    const { store } = await shamirStore();
    expect(await codeOf(store.initialize({ secretShares: 3, secretThreshold: 2 }))).toBe(
      "already_initialized",
    );
    const fresh = await SealedStore.open({ storage: new MemoryBackend() });
    await expect(fresh.initialize({ secretShares: 5, secretThreshold: 1 })).rejects.toThrow(
      /secret_threshold/,
    );
    await expect(
      fresh.initialize({ secretShares: 3, secretThreshold: 2, recoveryShares: 3 }),
    ).rejects.toThrow(/recovery_shares/);
    await expect(fresh.initialize({})).rejects.toThrow(/secret_shares/);
    expect(fresh.status().initialized).toBe(false);
  });

  it("rotates the barrier key and keeps old data readable", async () => {
    const { store, init } = await shamirStore(1, 1);
    await store.unseal(init.keys[0] as string);
    await store.put("old", enc("before"));
    const s = await store.rotate();
    expect(s.term).toBe(2);
    await store.put("new", enc("after"));
    expect(store.keyStatus().term).toBe(2);
    expect(dec(await store.get("old"))).toBe("before");
    expect(dec(await store.get("new"))).toBe("after");
  });

  it("rekeys the unseal keys: new shares work, old ones do not, data survives", async () => {
    const { store, init } = await shamirStore(3, 2);
    await unsealWith(store, init.keys.slice(0, 2));
    await store.put("secret/x", enc("kept"));
    const op = await store.rekeyInit({ secretShares: 4, secretThreshold: 3 });
    expect(op).toMatchObject({ started: true, t: 3, n: 4, progress: 0, required: 2 });
    expect(await codeOf(store.rekeyUpdate(init.keys[0] as string, "not-the-nonce"))).toBe("nonce_mismatch");
    await store.rekeyUpdate(init.keys[0] as string, op.nonce);
    const done = (await store.rekeyUpdate(init.keys[2] as string, op.nonce)) as RekeyResult;
    expect(done.complete).toBe(true);
    expect(done.keys).toHaveLength(4);
    expect(store.status()).toMatchObject({ t: 3, n: 4 });
    await store.seal();
    await expect(unsealWith(store, init.keys)).rejects.toThrow(/invalid key/);
    await unsealWith(store, done.keys.slice(1, 4));
    expect(dec(await store.get("secret/x"))).toBe("kept");
  });

  it("verifyKeyShares accepts a threshold of current shares and rejects others, changing nothing", async () => {
    const { storage, store, init } = await shamirStore(3, 2);
    await unsealWith(store, init.keys.slice(0, 2));
    const before = await snapshot(storage);
    await store.verifyKeyShares([init.keys[2] as string, init.keys[0] as string]);
    const other = await shamirStore(3, 2);
    expect(await codeOf(store.verifyKeyShares(other.init.keys.slice(0, 2)))).toBe("invalid_key");
    expect(await codeOf(store.verifyKeyShares([init.keys[0] as string]))).toBe("invalid_request");
    expect(await snapshot(storage)).toEqual(before);
  });

  it("verifyKeyShares (generate-root) with other shares names the unseal key, not a rekey", async () => {
    const { store, init } = await shamirStore(3, 2);
    await unsealWith(store, init.keys.slice(0, 2));
    const other = await shamirStore(3, 2);
    const err = await store.verifyKeyShares(other.init.keys.slice(0, 2)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CoreError);
    expect((err as CoreError).message).not.toMatch(/rekey/);
    expect((err as CoreError).message).toMatch(/invalid key.*current unseal key/);
  });

  it("a rekey authorised with wrong shares fails and keeps the old keys", async () => {
    const { store, init } = await shamirStore(3, 2);
    await unsealWith(store, init.keys.slice(0, 2));
    const other = await shamirStore(3, 2);
    const op = await store.rekeyInit({ secretShares: 3, secretThreshold: 2 });
    await store.rekeyUpdate(other.init.keys[0] as string, op.nonce);
    expect(await codeOf(store.rekeyUpdate(other.init.keys[1] as string, op.nonce))).toBe("invalid_key");
    await store.seal();
    await unsealWith(store, init.keys.slice(1, 3));
    expect(store.sealed).toBe(false);
  });

  it("leaves seal-wrap requests unwrapped: the Shamir seal cannot wrap", async () => {
    const { storage, store, init } = await shamirStore(1, 1);
    await store.unseal(init.keys[0] as string);
    await store.put("secret/w", enc("wrapped?"), { sealWrap: true });
    const raw = (await storage.get("secret/w"))?.value as Uint8Array;
    expect(raw[0]).toBe(0); // barrier ciphertext: term bytes first, no BlobInfo
    expect(dec(await store.get("secret/w"))).toBe("wrapped?");
  });
});

describe("SealedStore with an auto seal", () => {
  async function autoStore() {
    const storage = new MemoryBackend();
    const store = await SealedStore.open({ storage, seal: staticA() });
    const init = await store.initialize({ recoveryShares: 3, recoveryThreshold: 2 });
    return { storage, store, init };
  }

  it("initialises unsealed, stores the wrapped root key and recovery key, and auto-unseals on open", async () => {
    const { storage, store, init } = await autoStore();
    expect(init.keys).toEqual([]);
    expect(init.recoveryKeys).toHaveLength(3);
    expect(store.status()).toMatchObject({
      type: "static",
      sealed: false,
      t: 2,
      n: 3,
      recoverySeal: true,
      recoverySealType: "shamir",
    });
    await store.put("secret/db", enc("pw"));
    const stored = decodeBlobInfo((await storage.get("core/hsm/barrier-unseal-keys"))?.value as Uint8Array);
    expect(stored.keyInfo?.keyId).toBe("key-a");
    expect(JSON.parse(dec((await storage.get("core/seal-config"))?.value) as string)).toMatchObject({
      type: "static",
      secret_shares: 1,
      secret_threshold: 1,
      stored_shares: 1,
    });
    expect(JSON.parse(dec((await storage.get("core/recovery-config"))?.value) as string)).toMatchObject({
      type: "shamir",
      secret_shares: 3,
      secret_threshold: 2,
    });
    const again = await SealedStore.open({ storage, seal: staticA() });
    expect(again.sealed).toBe(false);
    expect(dec(await again.get("secret/db"))).toBe("pw");
  });

  it("seal-wraps the keyring and flagged entries: stored bytes end with the 's' canary", async () => {
    const { storage, store } = await autoStore();
    await store.put("secret/w", enc("double"), { sealWrap: true });
    await store.put("secret/plain", enc("single"));
    const canary = (k: string) => storage.get(k).then((e) => e?.value.at(-1));
    expect(await canary("secret/w")).toBe(0x73);
    expect(await canary("core/keyring")).toBe(0x73);
    // A plain barrier value ends with its GCM tag (last byte 's' once in 256 runs): tell it from a
    // seal-wrapped one by parsing, not by its last byte.
    const plain = await storage.get("secret/plain");
    if (plain === undefined) throw new Error("secret/plain was not stored");
    expect(parseSealWrapped(plain.value)).toBeUndefined();
    expect(dec(await store.get("secret/w"))).toBe("double");
  });

  it("disableSealWrap (disable_sealwrap): nothing new is wrapped, and rewrap() unwraps what was", async () => {
    const { storage, store } = await autoStore();
    await store.put("secret/w", enc("double"), { sealWrap: true });
    await store.close();
    const wrapped = (k: string) =>
      storage.get(k).then((e) => e !== undefined && parseSealWrapped(e.value) !== undefined);
    expect(await wrapped("core/keyring")).toBe(true);
    expect(await wrapped("secret/w")).toBe(true);
    const off = await SealedStore.open({ storage, seal: staticA(), disableSealWrap: true });
    expect(off.sealed).toBe(false);
    await off.put("secret/new", enc("single"), { sealWrap: true });
    expect(await wrapped("secret/new")).toBe(false);
    const r = await off.rewrap();
    expect(r.failed).toBe(0);
    expect(r.rewrapped).toBeGreaterThanOrEqual(2); // the keyring (and the root-key copy) and secret/w
    expect(await wrapped("core/keyring")).toBe(false);
    expect(await wrapped("secret/w")).toBe(false);
    expect(dec(await off.get("secret/w"))).toBe("double");
    await off.close();
    // Still opens afterwards: every value is barrier-encrypted only, as OpenBao stores it.
    const again = await SealedStore.open({ storage, seal: staticA(), disableSealWrap: true });
    expect(dec(await again.get("secret/w"))).toBe("double");
    await again.close();
  });

  it("stays sealed and says why when the seal cannot decrypt the stored keys", async () => {
    const { storage } = await autoStore();
    const wrong = new StaticKeySeal({ key: randomBytes(32), keyId: "key-a" });
    const store = await SealedStore.open({ storage, seal: wrong });
    expect(store.sealed).toBe(true);
    expect(store.status().sealedReason).toMatch(
      /stored unseal keys are present but the seal could not decrypt them/,
    );
    await expect(store.get("x")).rejects.toThrow(/could not decrypt/);
  });

  it("unseals with recovery shares after a manual seal, and rejects wrong ones", async () => {
    const { store, init } = await autoStore();
    await store.seal();
    expect(store.status()).toMatchObject({ sealed: true, t: 2 });
    const bad = randomBytes(33);
    await store.unseal(init.recoveryKeys[0] as string);
    expect(await codeOf(store.unseal(bad))).toBe("invalid_key");
    await unsealWith(store, init.recoveryKeys.slice(1, 3));
    expect(store.sealed).toBe(false);
  });

  it("verifyKeyShares checks recovery shares without touching the stored keys", async () => {
    const { storage, store, init } = await autoStore();
    const before = await snapshot(storage);
    await store.verifyKeyShares(init.recoveryKeys.slice(1, 3));
    expect(await codeOf(store.verifyKeyShares([randomBytes(33), randomBytes(33)]))).not.toBe("resolved");
    expect(await snapshot(storage)).toEqual(before);
  });

  it("refuses secret_shares other than 1", async () => {
    const store = await SealedStore.open({ storage: new MemoryBackend(), seal: staticA() });
    await expect(store.initialize({ secretShares: 5, secretThreshold: 3 })).rejects.toThrow(
      /secret_shares not applicable to seal type static/,
    );
  });

  it("rekeys the recovery keys and the root key (authorised by recovery shares)", async () => {
    const { storage, store, init } = await autoStore();
    await store.put("d", enc("data"));
    const rootBlobBefore = (await storage.get("core/hsm/barrier-unseal-keys"))?.value;
    const op = await store.rekeyInit({ target: "barrier" });
    expect(op.required).toBe(2);
    await store.rekeyUpdate(init.recoveryKeys[0] as string, op.nonce);
    const root = (await store.rekeyUpdate(init.recoveryKeys[1] as string, op.nonce)) as RekeyResult;
    expect(root.keys).toEqual([]);
    expect((await storage.get("core/hsm/barrier-unseal-keys"))?.value).not.toEqual(rootBlobBefore);
    const rop = await store.rekeyInit({ target: "recovery", secretShares: 5, secretThreshold: 4 });
    await unsealWithRekey(store, init.recoveryKeys.slice(0, 2), rop.nonce);
    const fresh = await SealedStore.open({ storage, seal: staticA() });
    expect(dec(await fresh.get("d"))).toBe("data");
    expect(fresh.status()).toMatchObject({ t: 4, n: 5 });
  });

  it("upgrades stored keys to the seal's new key id and re-wraps seal-wrapped entries", async () => {
    const { storage, store } = await autoStore();
    await store.put("secret/w", enc("wrapped"), { sealWrap: true });
    await store.close();
    const upgraded = await SealedStore.open({ storage, seal: staticB() });
    expect(upgraded.sealed).toBe(false);
    for (const k of ["core/hsm/barrier-unseal-keys", "core/recovery-key"]) {
      expect(decodeBlobInfo((await storage.get(k))?.value as Uint8Array).keyInfo?.keyId).toBe("key-b");
    }
    const r = await upgraded.rewrap();
    expect(r.rewrapped).toBeGreaterThanOrEqual(2); // secret/w and the keyring at least
    const onlyB = await SealedStore.open({ storage, seal: staticB(false) });
    expect(dec(await onlyB.get("secret/w"))).toBe("wrapped");
  });
});

async function unsealWithRekey(store: SealedStore, keys: string[], nonce: string) {
  let last: unknown;
  for (const k of keys) last = await store.rekeyUpdate(k, nonce);
  return last;
}

describe("seal migration", () => {
  it("Shamir → auto: unseal shares become recovery shares, the store then auto-unseals", async () => {
    const { storage, store, init } = await shamirStore(3, 2);
    await unsealWith(store, init.keys.slice(0, 2));
    await store.put("secret/m", enc("migrated"));
    await store.close();
    const migrating = await SealedStore.open({ storage, seal: staticA(), migrationSeal: new ShamirSeal() });
    expect(migrating.status()).toMatchObject({ sealed: true, migration: true, type: "shamir" });
    expect(await codeOf(migrating.unseal(init.keys[0] as string))).toBe("migration");
    await unsealWith(migrating, init.keys.slice(1, 3), { migrate: true });
    expect(migrating.status()).toMatchObject({
      sealed: false,
      migration: false,
      type: "static",
      recoverySeal: true,
      t: 2,
      n: 3,
    });
    await migrating.close();
    const auto = await SealedStore.open({ storage, seal: staticA() });
    expect(auto.sealed).toBe(false);
    expect(dec(await auto.get("secret/m"))).toBe("migrated");
    expect(await storage.get("core/shamir-kek")).toBeUndefined();
    await auto.seal();
    await unsealWith(auto, [init.keys[2] as string, init.keys[0] as string]);
    expect(auto.sealed).toBe(false);
  });

  it("auto → Shamir: recovery shares become unseal shares and wrapped values are unwrapped", async () => {
    const storage = new MemoryBackend();
    const first = await SealedStore.open({ storage, seal: staticA() });
    const init = await first.initialize({ recoveryShares: 3, recoveryThreshold: 2 });
    await first.put("secret/w", enc("was wrapped"), { sealWrap: true });
    await first.close();
    const migrating = await SealedStore.open({ storage, seal: new ShamirSeal(), migrationSeal: staticA() });
    expect(migrating.sealed).toBe(true);
    expect(migrating.status().migration).toBe(true);
    await unsealWith(migrating, init.recoveryKeys.slice(0, 2), { migrate: true });
    expect(migrating.status()).toMatchObject({ type: "shamir", t: 2, n: 3, recoverySeal: false });
    const unwrapped = await storage.get("secret/w");
    if (unwrapped === undefined) throw new Error("secret/w is gone after the migration");
    expect(parseSealWrapped(unwrapped.value)).toBeUndefined();
    expect(await storage.get("core/recovery-key")).toBeUndefined();
    await migrating.close();
    const shamir = await SealedStore.open({ storage });
    await unsealWith(shamir, init.recoveryKeys.slice(1, 3));
    expect(dec(await shamir.get("secret/w"))).toBe("was wrapped");
  });

  it("auto → auto: the recovery key is kept and every wrapped value moves to the new seal", async () => {
    const storage = new MemoryBackend();
    const init = await initStaticA(storage, (first) =>
      first.put("secret/w", enc("moves"), { sealWrap: true }),
    );
    const migrating = await SealedStore.open({ storage, seal: staticB(false), migrationSeal: staticA() });
    await migrating.unseal(init.recoveryKeys[0] as string, { migrate: true });
    await migrating.close();
    const onlyB = await SealedStore.open({ storage, seal: staticB(false) });
    expect(onlyB.sealed).toBe(false);
    expect(dec(await onlyB.get("secret/w"))).toBe("moves");
    await onlyB.seal();
    await onlyB.unseal(init.recoveryKeys[0] as string);
    expect(onlyB.sealed).toBe(false);
  });

  for (const dir of ["Shamir → auto", "auto → Shamir", "auto → auto"] as const) {
    it(`${dir}: a failing read after the migration is committed does not fail the unseal`, async () => {
      const mem = new MemoryBackend();
      const fromShamir = dir === "Shamir → auto";
      const first = await SealedStore.open({ storage: mem, ...(fromShamir ? {} : { seal: staticA() }) });
      const init = await first.initialize(
        fromShamir ? { secretShares: 3, secretThreshold: 2 } : { recoveryShares: 3, recoveryThreshold: 2 },
      );
      const shares = fromShamir ? init.keys : init.recoveryKeys;
      if (fromShamir) await unsealWith(first, shares.slice(0, 2));
      await first.put("secret/m", enc("migrated"));
      await first.close();
      let committed = false;
      let failed = 0;
      const storage = new FaultInjectingBackend(mem, {
        fault: ({ op, key }) => {
          if (op === "delete" && key === JOURNAL_PATH) committed = true;
          if (committed && op === "get" && failed === 0) {
            failed++;
            return new StorageUnavailableError(`injected fault on get ${key}`);
          }
          return undefined;
        },
      });
      const target =
        dir === "auto → Shamir" ? new ShamirSeal() : dir === "auto → auto" ? staticB(false) : staticA();
      const source = fromShamir ? new ShamirSeal() : staticA();
      const migrating = await SealedStore.open({ storage, seal: target, migrationSeal: source });
      await unsealWith(migrating, shares.slice(0, 2), { migrate: true });
      expect(failed).toBe(1);
      expect(migrating.status()).toMatchObject({
        sealed: false,
        migration: false,
        type: target.type,
        t: 2,
        n: 3,
      });
      expect(dec(await migrating.get("secret/m"))).toBe("migrated");
      await migrating.close();
    });
  }

  it("a store sealed by another seal type says how to migrate", async () => {
    const { storage } = await shamirStore();
    const store = await SealedStore.open({ storage, seal: staticA() });
    expect(store.sealed).toBe(true);
    expect(store.status().sealedReason).toMatch(/configure the "shamir" seal as the migration source/);
  });

  it("unseal on a store sealed by another seal type says so, not 'invalid key' or a missing record", async () => {
    const shamir = await shamirStore(1, 1);
    const auto = new MemoryBackend();
    const init = await initStaticA(auto);
    for (const [store, share] of [
      [await SealedStore.open({ storage: shamir.storage, seal: staticA() }), shamir.init.keys[0]],
      [await SealedStore.open({ storage: auto }), init.recoveryKeys[0]],
    ] as const) {
      const err = await store.unseal(share as string).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(CoreError);
      expect((err as CoreError).code).toBe("invalid_request");
      expect((err as CoreError).message).toMatch(/storage is sealed with seal type .* migration source/);
      await store.close();
    }
  });
});

describe("activeTerm without HA", () => {
  it("is undefined while sealed and changes across a seal and unseal", async () => {
    const { store, init } = await shamirStore();
    expect(store.activeTerm).toBeUndefined();
    await unsealWith(store, init.keys.slice(0, 3));
    const first = store.activeTerm;
    expect(first).toBeTypeOf("number");
    expect(store.activeTerm).toBe(first);
    await store.seal();
    expect(store.activeTerm).toBeUndefined();
    await unsealWith(store, init.keys.slice(0, 3));
    expect(store.activeTerm).toBeTypeOf("number");
    expect(store.activeTerm).not.toBe(first);
    await store.close();
  });

  it("an unseal that failed after becoming active does not hand its term to the next unseal", async () => {
    const mem = new MemoryBackend();
    const init = await initStaticA(mem, (first) => first.put("secret/w", enc("v"), { sealWrap: true }));
    const migrating = await SealedStore.open({
      storage: mem,
      seal: staticB(false),
      migrationSeal: staticA(),
    });
    await migrating.unseal(init.recoveryKeys[0] as string, { migrate: true });
    await migrating.close();
    // The disabled seal is still configured, so every unseal re-wraps (lists storage) once active.
    let failing = false;
    let termWhileFailing: number | undefined;
    const storage = new FaultInjectingBackend(mem, {
      fault: ({ op }) => {
        if (!failing || op !== "list") return undefined;
        termWhileFailing = store.activeTerm;
        return new Error("injected list failure");
      },
    });
    const store = await SealedStore.open({ storage, seal: staticB(false), migrationSeal: staticA() });
    expect(store.sealed).toBe(false);
    await store.seal();
    failing = true;
    expect(await codeOf(store.unseal(init.recoveryKeys[0] as string))).not.toBe("resolved");
    failing = false;
    expect(termWhileFailing).toBeTypeOf("number");
    expect(store.status()).toMatchObject({ sealed: true, active: false });
    await store.unseal(init.recoveryKeys[0] as string);
    expect(store.activeTerm).toBeTypeOf("number");
    expect(store.activeTerm).not.toBe(termWhileFailing);
    await store.close();
  });
});

describe("HA", () => {
  it("one node is active; a standby refuses writes, follows rotations and takes over when the active seals", async () => {
    const storage = new MemoryBackend();
    const { node: a } = await activeHaNode(storage, "a", { standbyPollMs: 20 });
    const b = await haOpen(storage, "b", { standbyPollMs: 20 });
    expect(b.sealed).toBe(false);
    await new Promise((r) => setTimeout(r, 50));
    expect(b.status().active).toBe(false);
    expect(await codeOf(b.put("x", enc("no")))).toBe("standby");
    await a.put("shared", enc("from a"));
    expect(dec(await b.get("shared"))).toBe("from a");
    await a.rotate();
    await a.put("after-rotate", enc("term 2"));
    await waitFor(() => b.keyStatus().term === 2);
    expect(dec(await b.get("after-rotate"))).toBe("term 2");
    await a.seal();
    await waitFor(() => b.status().active);
    await b.put("x", enc("b writes now"));
    expect(dec(await b.get("x"))).toBe("b writes now");
    await b.close();
  });

  it("a standby's background catch-up that fails after the upgrade check is logged, never an unhandled rejection", async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (e: unknown) => unhandled.push(e);
    process.on("unhandledRejection", onUnhandled);
    try {
      const memory = new MemoryBackend();
      const { node: a } = await activeHaNode(memory, "a");
      let failRootKey = false;
      const storage = new FaultInjectingBackend(memory, {
        fault: ({ op, key }) =>
          failRootKey && op === "get" && key === "core/master"
            ? new Error("injected core/master read failure")
            : undefined,
      });
      const debug: string[] = [];
      const logger = { debug: (msg: string) => debug.push(msg), info() {}, warn() {}, error() {} };
      const b = await SealedStore.open({
        storage,
        seal: staticA(),
        ha: memory,
        nodeId: "b",
        standbyPollMs: 10,
        logger,
      });
      expect(b.status().active).toBe(false);
      // The upgrade check succeeds, the root-key reload that follows it fails.
      failRootKey = true;
      await waitFor(() => debug.includes("standby upgrade check failed"));
      await new Promise((r) => setTimeout(r, 30));
      expect(unhandled).toEqual([]);
      await b.close();
      await a.close();
    } finally {
      process.off("unhandledRejection", onUnhandled);
    }
  });

  it("activeTerm: defined only on the active node, and new after every step-down or seal", async () => {
    const storage = new MemoryBackend();
    const a = await haOpen(storage, "a");
    expect(a.activeTerm).toBeUndefined();
    await a.initialize({ recoveryShares: 1, recoveryThreshold: 1 });
    await waitFor(() => a.status().active);
    const first = a.activeTerm;
    expect(first).toBeTypeOf("number");
    const b = await haOpen(storage, "b");
    await new Promise((r) => setTimeout(r, 30));
    expect(b.sealed).toBe(false);
    expect(b.activeTerm).toBeUndefined();
    // a loses the lock: b takes over; when a is active again its term is not the one it had.
    expect(storage.forceRelease("core/lock")).toBe(true);
    await waitFor(() => b.status().active);
    expect(a.activeTerm).toBeUndefined();
    expect(b.activeTerm).toBeTypeOf("number");
    await b.close();
    await waitFor(() => a.status().active);
    expect(a.activeTerm).toBeTypeOf("number");
    expect(a.activeTerm).not.toBe(first);
    await a.close();
    expect(a.activeTerm).toBeUndefined();
  });

  it("leader(): the active node advertises its address; standbys report it; a graceful close withdraws it", async () => {
    const storage = new MemoryBackend();
    const open = (nodeId: string) => haNode(storage, nodeId);
    const a = await open("a");
    await expect(a.leader()).rejects.toThrow(/sealed/);
    await a.initialize({ recoveryShares: 1, recoveryThreshold: 1 });
    await waitFor(() => a.status().active);
    const la = await a.leader();
    expect(la).toMatchObject({
      haEnabled: true,
      isSelf: true,
      leaderAddress: "https://a:8200",
      leaderNodeId: "a",
    });
    expect(la.activeTime).toBeInstanceOf(Date);
    expect(await storage.get("core/leader/a")).toBeDefined(); // through the barrier: ciphertext
    const b = await open("b");
    await new Promise((r) => setTimeout(r, 30));
    expect(await b.leader()).toEqual({
      haEnabled: true,
      isSelf: false,
      leaderAddress: "https://a:8200",
      leaderNodeId: "a",
    });
    await a.close();
    expect(await storage.get("core/leader/a")).toBeUndefined();
    await waitFor(() => b.status().active);
    expect(await b.leader()).toMatchObject({ isSelf: true, leaderAddress: "https://b:8200" });
    await b.close();
  });

  it("a standby reads a value written under a key term it has not polled for yet", async () => {
    const storage = new MemoryBackend();
    const { node: a } = await activeHaNode(storage, "a");
    const b = await haOpen(storage, "b", { standbyPollMs: 60_000 });
    expect(b.sealed).toBe(false);
    await a.rotate();
    await a.put("fresh", enc("under term 2"));
    expect(dec(await b.get("fresh"))).toBe("under term 2");
    expect(dec((await b.storage.get("fresh"))?.value)).toBe("under term 2");
    await a.close();
    await b.close();
  });

  it("a standby catches up from the keyring once the upgrade entries are gone", async () => {
    const storage = new MemoryBackend();
    const opts = { storage, seal: staticA(), ha: storage, barrier: { upgradeGracePeriodMs: 0 } };
    const a = await SealedStore.open({ ...opts, nodeId: "a" });
    await a.initialize({ recoveryShares: 1, recoveryThreshold: 1 });
    await waitFor(() => a.status().active);
    const b = await SealedStore.open({ ...opts, nodeId: "b", standbyPollMs: 60_000 });
    await a.rotate();
    await a.rotate();
    await a.put("fresh", enc("under term 3"));
    await new Promise((r) => setTimeout(r, 20));
    expect(await storage.list("core/upgrade/")).toEqual([]);
    expect(dec(await b.get("fresh"))).toBe("under term 3");
    await a.close();
    await b.close();
  });

  it("a new active node removes advertisements left by nodes that lost the lock (as Vault)", async () => {
    const storage = new MemoryBackend();
    const open = (nodeId: string) => haNode(storage, nodeId);
    const a = await open("a");
    await a.initialize({ recoveryShares: 1, recoveryThreshold: 1 });
    await waitFor(() => a.status().active);
    const b = await open("b");
    // a dies without stepping down: its advertisement stays behind.
    expect(storage.forceRelease("core/lock")).toBe(true);
    await waitFor(() => b.status().active);
    expect(await storage.get("core/leader/a")).toBeUndefined();
    expect(await storage.get("core/leader/b")).toBeDefined();
    await a.close();
    await b.close();
  });

  it("leader() without HA: this node, with its redirect address", async () => {
    const storage = new MemoryBackend();
    const s = await SealedStore.open({ storage, seal: staticA(), redirectAddr: "http://solo:8200" });
    await s.initialize({ recoveryShares: 1, recoveryThreshold: 1 });
    expect(await s.leader()).toMatchObject({
      haEnabled: false,
      isSelf: true,
      leaderAddress: "http://solo:8200",
    });
    await s.close();
  });

  it("a standby refuses writes through the storage view too (engines write through it)", async () => {
    const storage = new MemoryBackend();
    const { node: a } = await activeHaNode(storage, "a");
    await a.storage.put({ key: "logical/x", value: enc("from a") });
    const b = await haOpen(storage, "b");
    await new Promise((r) => setTimeout(r, 30));
    expect(dec((await b.storage.get("logical/x"))?.value)).toBe("from a");
    expect(await b.storage.list("logical/")).toEqual(["x"]);
    expect(await codeOf(b.storage.put({ key: "logical/x", value: enc("from b") }))).toBe("standby");
    expect(await codeOf(b.storage.delete("logical/x"))).toBe("standby");
    expect(dec((await a.storage.get("logical/x"))?.value)).toBe("from a");
    await b.seal();
    expect(await codeOf(b.storage.get("logical/x"))).toBe("sealed");
    await b.close();
    await a.close();
  });

  it("steps down when the lock is lost, and the standby takes over", async () => {
    const storage = new MemoryBackend();
    const { node: a } = await activeHaNode(storage, "a");
    const b = await haOpen(storage, "b");
    await new Promise((r) => setTimeout(r, 30));
    expect(b.status().active).toBe(false);
    // The lock is taken away from a (as when a Consul session expires): b is first in the queue.
    expect(storage.forceRelease("core/lock")).toBe(true);
    await waitFor(() => b.status().active);
    expect(a.status().active).toBe(false);
    expect(await codeOf(a.put("x", enc("deposed")))).toBe("standby");
    expect((await storage.lockWith("core/lock", "probe").value()).value).toBe("b");
    await a.close();
    await b.close();
  });
});

describe("seal migration with HA", () => {
  it("a node unsealed with migrate only migrates once it holds the lock", async () => {
    const storage = new MemoryBackend();
    const { node: a, init } = await activeHaNode(storage, "a");
    await a.put("secret/w", enc("moves"), { sealWrap: true });
    const storedBefore = (await storage.get("core/hsm/barrier-unseal-keys"))?.value;
    const b = await SealedStore.open({
      storage,
      seal: staticB(false),
      migrationSeal: staticA(),
      ha: storage,
      nodeId: "b",
    });
    expect(b.status()).toMatchObject({ sealed: true, migration: true });
    await b.unseal(init.recoveryKeys[0] as string, { migrate: true });
    // b is unsealed but standby: nothing migrated while a is active.
    expect(b.sealed).toBe(false);
    await new Promise((r) => setTimeout(r, 30));
    expect(b.status()).toMatchObject({ active: false, migration: true });
    expect((await storage.get("core/hsm/barrier-unseal-keys"))?.value).toEqual(storedBefore);
    await a.close();
    await waitFor(() => b.status().active);
    expect(b.status()).toMatchObject({ migration: false, type: "static" });
    expect(
      decodeBlobInfo((await storage.get("core/hsm/barrier-unseal-keys"))?.value as Uint8Array).keyInfo?.keyId,
    ).toBe("key-b");
    expect(dec(await b.get("secret/w"))).toBe("moves");
    await b.close();
    const onlyB = await SealedStore.open({ storage, seal: staticB(false) });
    expect(onlyB.sealed).toBe(false);
    expect(dec(await onlyB.get("secret/w"))).toBe("moves");
  });

  it("a migration that failed on a storage fault is retried at the next takeover, not dropped", async () => {
    const mem = new MemoryBackend();
    const init = await initStaticA(mem, (first) => first.put("secret/w", enc("moves"), { sealWrap: true }));
    let faults = 0;
    const storage = withFaults(mem, {
      fault: ({ op, key }) =>
        op === "put" && key === "core/hsm/barrier-unseal-keys" && faults++ === 0
          ? new StorageUnavailableError("injected fault")
          : undefined,
    });
    const a = await SealedStore.open({
      storage,
      seal: staticB(false),
      migrationSeal: staticA(),
      ha: storage,
      nodeId: "a",
    });
    await a.unseal(init.recoveryKeys[0] as string, { migrate: true });
    await waitFor(() => a.status().active, 4000);
    expect(faults).toBeGreaterThan(1);
    expect(a.status()).toMatchObject({ migration: false, type: "static" });
    expect(
      decodeBlobInfo((await mem.get("core/hsm/barrier-unseal-keys"))?.value as Uint8Array).keyInfo?.keyId,
    ).toBe("key-b");
    expect(dec(await a.get("secret/w"))).toBe("moves");
    await a.close();
  });

  it("Shamir → auto on a single HA node migrates when it takes the free lock", async () => {
    const storage = new MemoryBackend();
    const first = await SealedStore.open({ storage });
    const init = await first.initialize({ secretShares: 3, secretThreshold: 2 });
    await first.close();
    const m = await SealedStore.open({
      storage,
      seal: staticA(),
      migrationSeal: new ShamirSeal(),
      ha: storage,
    });
    await unsealWith(m, init.keys.slice(0, 2), { migrate: true });
    await waitFor(() => m.status().active);
    expect(m.status()).toMatchObject({ type: "static", migration: false, recoverySeal: true });
    await m.close();
  });
});

describe("rollback journal", () => {
  it("open() restores records from an interrupted step", async () => {
    const { storage, store, init } = await shamirStore(1, 1);
    await store.unseal(init.keys[0] as string);
    await store.put("keep", enc("me"));
    await store.close();
    const before = await snapshot(storage);
    // Simulate a crash mid-rekey: a journal with the old records, then a damaged keyring.
    const { Journal } = await import("./journal.js");
    await new Journal(storage).begin("rekey", ["core/keyring", "core/seal-config"]);
    await storage.put({ key: "core/keyring", value: randomBytes(80) });
    const reopened = await SealedStore.open({ storage });
    expect(await storage.get(JOURNAL_PATH)).toBeUndefined();
    expect(await snapshot(storage)).toEqual(before);
    await reopened.unseal(init.keys[0] as string);
    expect(dec(await reopened.get("keep"))).toBe("me");
  });
});

describe("initialize after its records are committed", () => {
  for (const kind of ["shamir", "auto"] as const) {
    it(`${kind}: a failing read afterwards still returns the shares (the store is initialised with them)`, async () => {
      const mem = new MemoryBackend();
      let committed = false;
      let failed = 0;
      const storage = new FaultInjectingBackend(mem, {
        fault: ({ op, key }) => {
          if (op === "delete" && key === JOURNAL_PATH) committed = true;
          // Auto seal: the config re-read and the keyring read of the unseal that follows.
          if (committed && op === "get" && failed < (kind === "auto" ? 2 : 1)) {
            failed++;
            return new StorageUnavailableError(`injected fault on get ${key}`);
          }
          return undefined;
        },
      });
      const seal = kind === "auto" ? staticA() : undefined;
      const store = await SealedStore.open({ storage, ...(seal ? { seal } : {}) });
      const init = await store.initialize(
        kind === "auto"
          ? { recoveryShares: 1, recoveryThreshold: 1 }
          : { secretShares: 1, secretThreshold: 1 },
      );
      expect(failed).toBe(kind === "auto" ? 2 : 1);
      expect(store.status()).toMatchObject({ initialized: true, sealed: true });
      if (kind === "auto") expect(store.status().sealedReason).toMatch(/unsealing right after init failed/);
      const share = (kind === "auto" ? init.recoveryKeys[0] : init.keys[0]) as string;
      expect(share).toBeTypeOf("string");
      // The returned share is the store's key.
      const again = await SealedStore.open({ storage: mem, ...(kind === "auto" ? { seal: staticA() } : {}) });
      if (kind === "auto") await again.seal();
      await again.unseal(share);
      expect(again.sealed).toBe(false);
      await again.close();
      await store.close();
    });
  }
});

describe("rekey after its records are committed", () => {
  for (const target of ["barrier", "recovery"] as const) {
    it(`${target}: a failing read afterwards still returns the new shares`, async () => {
      const mem = new MemoryBackend();
      let armed = false;
      let committed = false;
      let failed = 0;
      const storage = new FaultInjectingBackend(mem, {
        fault: ({ op, key }) => {
          if (!armed) return undefined;
          if (op === "delete" && key === JOURNAL_PATH) committed = true;
          if (committed && op === "get" && failed === 0) {
            failed++;
            return new StorageUnavailableError(`injected fault on get ${key}`);
          }
          return undefined;
        },
      });
      const auto = target === "recovery";
      const store = await SealedStore.open({ storage, ...(auto ? { seal: staticA() } : {}) });
      const init = await store.initialize(
        auto ? { recoveryShares: 1, recoveryThreshold: 1 } : { secretShares: 1, secretThreshold: 1 },
      );
      const old = (auto ? init.recoveryKeys[0] : init.keys[0]) as string;
      if (!auto) await store.unseal(old);
      const op = await store.rekeyInit({ target, secretShares: 2, secretThreshold: 2 });
      armed = true;
      const r = (await store.rekeyUpdate(old, op.nonce)) as RekeyResult;
      armed = false;
      expect(failed).toBe(1);
      expect(r.keys).toHaveLength(2);
      expect(store.status()).toMatchObject({ t: 2, n: 2 });
      await store.seal();
      await unsealWith(store, r.keys);
      expect(store.sealed).toBe(false);
      await store.close();
    });
  }
});

describe("unseal when storage fails", () => {
  for (const kind of ["shamir", "auto"] as const) {
    it(`${kind}: a storage fault is reported as such, not as 'invalid key'`, async () => {
      let failing = false;
      const storage = new FaultInjectingBackend(new MemoryBackend(), {
        fault: ({ op, key }) =>
          failing && op === "get" && (key === "core/hsm/barrier-unseal-keys" || key === "core/recovery-key")
            ? new StorageUnavailableError(`injected fault on get ${key}`)
            : undefined,
      });
      const store = await SealedStore.open({ storage, ...(kind === "auto" ? { seal: staticA() } : {}) });
      const init = await store.initialize(
        kind === "auto"
          ? { recoveryShares: 1, recoveryThreshold: 1 }
          : { secretShares: 1, secretThreshold: 1 },
      );
      if (kind === "auto") await store.seal();
      const share = (kind === "auto" ? init.recoveryKeys[0] : init.keys[0]) as string;
      failing = true;
      const err = await store.unseal(share).catch((e: unknown) => e);
      failing = false;
      expect(err).toBeInstanceOf(StorageUnavailableError);
      expect((err as Error).message).not.toMatch(/invalid key/);
      await store.unseal(share);
      expect(store.sealed).toBe(false);
      await store.close();
    });
  }
});

describe("errors", () => {
  it("unseal before init says the store is not initialized", async () => {
    const store = await SealedStore.open({ storage: new MemoryBackend() });
    const e = await store.unseal("00").catch((x: unknown) => x);
    expect(e).toBeInstanceOf(CoreError);
    expect((e as CoreError).code).toBe("not_initialized");
  });

  it("a malformed share is an invalid request naming the field", async () => {
    const { store } = await shamirStore();
    await expect(store.unseal("not hex or base64 !!")).rejects.toThrow(
      /key must be a key share in hex or base64/,
    );
    await expect(store.unseal("abcd")).rejects.toThrow(/16 to 33 bytes/);
  });
});

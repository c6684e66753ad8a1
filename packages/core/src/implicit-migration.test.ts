import { JOURNAL_PATH, SEAL_CONFIG_PATH } from "@bulwark/barrier";
import { ShamirSeal } from "@bulwark/seal";
import type { Backend } from "@bulwark/storage";
import { MemoryBackend } from "@bulwark/storage-memory";
import { describe, expect, it } from "vitest";
import { CoreError } from "./errors.js";
import { SealedStore } from "./sealed-store.js";
import { dec, enc, initStaticA, staticA, unsealWith } from "./test-support.js";

/** Shamir data with one value, the store closed. */
async function shamirData(storage: Backend = new MemoryBackend()) {
  const first = await SealedStore.open({ storage });
  const init = await first.initialize({ secretShares: 3, secretThreshold: 2 });
  await unsealWith(first, init.keys.slice(0, 2));
  await first.put("secret/a", enc("kept"));
  await first.close();
  return { storage, init };
}

describe("implicit Shamir → auto-seal migration (Vault's adjustForSealMigration)", () => {
  it("an auto seal over Shamir data enters migration mode and reports it", async () => {
    const { storage, init } = await shamirData();
    const store = await SealedStore.open({ storage, seal: staticA(), implicitMigration: true });
    expect(store.implicitMigration).toEqual({ from: "shamir", to: "static" });
    expect(store.migrationPending).toBe(true);
    expect(store.sealed).toBe(true);
    expect(store.status()).toMatchObject({ type: "shamir", migration: true, t: 2, n: 3 });
    expect(store.status().sealedReason).toBeUndefined();
    // Without migrate the unseal is refused as in explicit migration mode.
    const err = await store.unseal(init.keys[0] as string).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CoreError);
    expect((err as CoreError).code).toBe("migration");
    await unsealWith(store, init.keys.slice(0, 2), { migrate: true });
    expect(store.sealed).toBe(false);
    expect(store.status()).toMatchObject({
      type: "static",
      migration: false,
      recoverySeal: true,
      t: 2,
      n: 3,
    });
    expect(dec(await store.get("secret/a"))).toBe("kept");
    await store.close();
    // Migrated: the auto seal alone now unseals by itself, and the old shares are recovery shares.
    const after = await SealedStore.open({ storage, seal: staticA(), implicitMigration: true });
    expect(after.implicitMigration).toBeUndefined();
    expect(after.sealed).toBe(false);
    await after.seal();
    await unsealWith(after, init.keys.slice(1, 3));
    expect(dec(await after.get("secret/a"))).toBe("kept");
    await after.close();
  });

  it("is decided after an interrupted step is rolled back, not on the raw record before it", async () => {
    const { storage, init } = await shamirData();
    // A crashed migration left the seal config saying "static" and a journal restoring "shamir".
    const saved = await storage.get(SEAL_CONFIG_PATH);
    const journal = {
      op: "seal-migration",
      entries: [
        { key: SEAL_CONFIG_PATH, value: Buffer.from(saved?.value ?? new Uint8Array()).toString("base64") },
      ],
    };
    await storage.put({
      key: SEAL_CONFIG_PATH,
      value: enc(JSON.stringify({ type: "static", secret_shares: 1, secret_threshold: 1, stored_shares: 1 })),
    });
    await storage.put({ key: JOURNAL_PATH, value: enc(JSON.stringify(journal)) });
    const store = await SealedStore.open({ storage, seal: staticA(), implicitMigration: true });
    expect(store.implicitMigration).toEqual({ from: "shamir", to: "static" });
    await unsealWith(store, init.keys.slice(0, 2), { migrate: true });
    expect(dec(await store.get("secret/a"))).toBe("kept");
    await store.close();
  });

  it("is off by default: the store stays sealed and says how to migrate", async () => {
    const { storage } = await shamirData();
    const store = await SealedStore.open({ storage, seal: staticA() });
    expect(store.implicitMigration).toBeUndefined();
    expect(store.migrationPending).toBe(false);
    expect(store.status().sealedReason).toMatch(/configure the "shamir" seal as the migration source/);
    await store.close();
  });

  it("does nothing when the data already uses the auto seal, a migration seal is given, or the seal is Shamir", async () => {
    const auto = new MemoryBackend();
    await initStaticA(auto);
    const onAuto = await SealedStore.open({ storage: auto, seal: staticA(), implicitMigration: true });
    expect(onAuto.implicitMigration).toBeUndefined();
    expect(onAuto.sealed).toBe(false);
    await onAuto.close();

    const { storage } = await shamirData();
    const explicit = await SealedStore.open({
      storage,
      seal: staticA(),
      migrationSeal: new ShamirSeal(),
      implicitMigration: true,
    });
    expect(explicit.implicitMigration).toBeUndefined();
    expect(explicit.migrationPending).toBe(true);
    await explicit.close();
    const shamir = await SealedStore.open({ storage, implicitMigration: true });
    expect(shamir.implicitMigration).toBeUndefined();
    expect(shamir.migrationPending).toBe(false);
    await shamir.close();

    const empty = await SealedStore.open({
      storage: new MemoryBackend(),
      seal: staticA(),
      implicitMigration: true,
    });
    expect(empty.implicitMigration).toBeUndefined();
    await empty.initialize({ recoveryShares: 1, recoveryThreshold: 1 });
    expect(empty.implicitMigration).toBeUndefined();
    expect(empty.sealed).toBe(false);
    await empty.close();
  });
});

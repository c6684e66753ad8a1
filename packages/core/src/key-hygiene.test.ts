import { randomBytes as realRandomBytes } from "@bulwark/crypto";
import { ShamirSeal, StaticKeySeal } from "@bulwark/seal";
import { FaultInjectingBackend, StorageUnavailableError } from "@bulwark/storage";
import { MemoryBackend } from "@bulwark/storage-memory";
import { beforeEach, describe, expect, it, vi } from "vitest";
import { SealedStore } from "./sealed-store.js";

// Every buffer the store creates for a root key, KEK, recovery key or key share must be zeroed
// once it is no longer needed — on failure paths too.
const captured: Uint8Array[] = [];
/** The modules SealedStore's code lives in (the facade and the collaborators it is split into). */
const STORE_MODULES = /core\/src\/(sealed-store|initialize|rekey|seal-migration|key-records|unseal)\.ts/;
/** Whether the mocked function was called directly by the store (not by the barrier, say). */
const fromStore = () => {
  const frames = (new Error().stack ?? "").split("\n").slice(1);
  const caller = frames.find((f) => !f.includes("key-hygiene.test.ts")) ?? "";
  return STORE_MODULES.test(caller);
};

vi.mock("@bulwark/crypto", async (importOriginal) => {
  const real = await importOriginal<typeof import("@bulwark/crypto")>();
  return {
    ...real,
    randomBytes: (n: number) => {
      const b = real.randomBytes(n);
      if (fromStore()) captured.push(b);
      return b;
    },
    shamirSplit: async (secret: Uint8Array, shares: number, threshold: number) => {
      const direct = fromStore();
      const parts = await real.shamirSplit(secret, shares, threshold);
      if (direct) captured.push(...parts);
      return parts;
    },
  };
});

/** Every share buffer parseKeyShare handed to the store. */
const parsed: Uint8Array[] = [];
vi.mock("./shares.js", async (importOriginal) => {
  const real = await importOriginal<typeof import("./shares.js")>();
  return {
    ...real,
    parseKeyShare: (input: Uint8Array | string, field?: string) => {
      const b = real.parseKeyShare(input, field);
      parsed.push(b);
      return b;
    },
  };
});

const allZero = (b: Uint8Array) => b.every((x) => x === 0);
const sealKey = realRandomBytes(32);
const seal = () => new StaticKeySeal({ key: sealKey, keyId: "k" });

/** Fails every put/delete while `failing` is true. */
function faulty() {
  const state = { failing: false };
  const storage = new FaultInjectingBackend(new MemoryBackend(), {
    fault: (ctx) =>
      state.failing && (ctx.op === "put" || ctx.op === "delete") && ctx.key !== "core/bulwark-rollback"
        ? new StorageUnavailableError(`injected fault on ${ctx.op} ${ctx.key}`)
        : undefined,
  });
  return { storage, state };
}

beforeEach(() => {
  captured.length = 0;
});

describe("key material is zeroed", () => {
  it("initialize (Shamir): the returned shares' buffers", async () => {
    const store = await SealedStore.open({ storage: new MemoryBackend() });
    const init = await store.initialize({ secretShares: 3, secretThreshold: 2 });
    expect(init.keys).toHaveLength(3);
    expect(captured.length).toBeGreaterThanOrEqual(5); // root key, KEK, 3 shares
    expect(captured.filter((b) => !allZero(b))).toEqual([]);
  });

  it("initialize (auto seal) that fails on storage: root key, recovery key and shares", async () => {
    const { storage, state } = faulty();
    const store = await SealedStore.open({ storage, seal: seal() });
    state.failing = true;
    await expect(store.initialize({ recoveryShares: 3, recoveryThreshold: 2 })).rejects.toThrow();
    expect(captured.length).toBeGreaterThanOrEqual(1);
    expect(captured.filter((b) => !allZero(b))).toEqual([]);
  });

  it("a recovery rekey that fails on storage: new recovery key and shares", async () => {
    const { storage, state } = faulty();
    const store = await SealedStore.open({ storage, seal: seal() });
    const init = await store.initialize({ recoveryShares: 1, recoveryThreshold: 1 });
    const op = await store.rekeyInit({ target: "recovery", secretShares: 3, secretThreshold: 2 });
    captured.length = 0;
    state.failing = true;
    await expect(store.rekeyUpdate(init.recoveryKeys[0] as string, op.nonce)).rejects.toThrow();
    expect(captured.length).toBeGreaterThanOrEqual(4);
    expect(captured.filter((b) => !allZero(b))).toEqual([]);
  });
});

describe("a failed initialize (Shamir)", () => {
  it("leaves no KEK in the Shamir seal", async () => {
    // Fails after the KEK is set: storing the root key wrapped by it.
    const storage = new FaultInjectingBackend(new MemoryBackend(), {
      fault: (ctx) =>
        ctx.op === "put" && ctx.key === "core/hsm/barrier-unseal-keys"
          ? new StorageUnavailableError("injected fault on put core/hsm/barrier-unseal-keys")
          : undefined,
    });
    const shamir = new ShamirSeal();
    const store = await SealedStore.open({ storage, seal: shamir });
    await expect(store.initialize({ secretShares: 3, secretThreshold: 2 })).rejects.toThrow(/injected/);
    expect(store.status().initialized).toBe(false);
    expect(shamir.hasKey).toBe(false);
  });
});

describe("key shares that are refused", () => {
  it("unseal, rekey and verifyKeyShares zero the parsed share when it is refused", async () => {
    const store = await SealedStore.open({ storage: new MemoryBackend() });
    const init = await store.initialize({ secretShares: 3, secretThreshold: 2 });
    const good = init.keys[0] as string;
    const sameX = Buffer.from(init.keys[1] as string, "hex");
    sameX[32] = Buffer.from(good, "hex")[32] as number; // same x coordinate: cannot combine
    const truncated = good.slice(0, 30); // 15 bytes: not a share
    parsed.length = 0;
    await store.unseal(good);
    await expect(store.unseal(sameX.toString("hex"))).rejects.toThrow(/invalid key/);
    await expect(store.unseal(truncated)).rejects.toThrow(/16 to 33 bytes/);
    await store.unseal(init.keys[1] as string);
    await store.unseal(init.keys[2] as string);
    expect(store.sealed).toBe(false);
    await expect(store.verifyKeyShares([good, sameX.toString("hex")])).rejects.toThrow(/invalid key/);
    const op = await store.rekeyInit({ secretShares: 3, secretThreshold: 2 });
    await store.rekeyUpdate(good, op.nonce);
    await expect(store.rekeyUpdate(sameX.toString("hex"), op.nonce)).rejects.toThrow(/invalid key/);
    expect(parsed.length).toBeGreaterThanOrEqual(8);
    expect(parsed.filter((b) => !allZero(b))).toEqual([]);
    await store.close();
  });
});

describe("a failed seal migration", () => {
  it("auto → Shamir: the Shamir seal does not keep the KEK (the recovery key)", async () => {
    const { storage, state } = faulty();
    const first = await SealedStore.open({ storage, seal: seal() });
    const init = await first.initialize({ recoveryShares: 1, recoveryThreshold: 1 });
    await first.close();
    const shamir = new ShamirSeal();
    const migrating = await SealedStore.open({ storage, seal: shamir, migrationSeal: seal() });
    state.failing = true;
    await expect(migrating.unseal(init.recoveryKeys[0] as string, { migrate: true })).rejects.toThrow();
    expect(migrating.sealed).toBe(true);
    expect(shamir.hasKey).toBe(false);
  });

  it("Shamir → auto: the Shamir seal does not keep the KEK", async () => {
    const { storage, state } = faulty();
    const first = await SealedStore.open({ storage });
    const init = await first.initialize({ secretShares: 1, secretThreshold: 1 });
    await first.close();
    const shamir = new ShamirSeal();
    const migrating = await SealedStore.open({ storage, seal: seal(), migrationSeal: shamir });
    state.failing = true;
    await expect(migrating.unseal(init.keys[0] as string, { migrate: true })).rejects.toThrow();
    expect(migrating.sealed).toBe(true);
    expect(shamir.hasKey).toBe(false);
  });
});

describe("no key copies left in Node's Buffer pool", () => {
  it("encoding shares and decoding shares and the stored root key leave no unzeroed copy", async () => {
    const copies: Buffer[] = [];
    const realFrom = Buffer.from.bind(Buffer) as (...a: unknown[]) => Buffer;
    const spy = vi.spyOn(Buffer, "from").mockImplementation(((...args: unknown[]) => {
      const direct = /(sealed-store|key-records|shares)\.ts/.test(
        (new Error().stack ?? "")
          .split("\n")
          .slice(1)
          .find((f) => !f.includes("key-hygiene.test.ts") && !f.includes("node_modules")) ?? "",
      );
      const b = realFrom(...args);
      if (direct && !(args[0] instanceof ArrayBuffer)) copies.push(b);
      return b;
    }) as typeof Buffer.from);
    try {
      const store = await SealedStore.open({ storage: new MemoryBackend() });
      const init = await store.initialize({ secretShares: 3, secretThreshold: 2 });
      await store.unseal(init.keys[0] as string);
      await store.unseal(init.keysBase64[1] as string);
      expect(store.sealed).toBe(false);
      expect(copies.length).toBeGreaterThanOrEqual(3);
      expect(copies.filter((b) => !allZero(b))).toEqual([]);
      await store.close();
    } finally {
      spy.mockRestore();
    }
  });
});

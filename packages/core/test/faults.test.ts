import { randomBytes } from "@bulwark/crypto";
import { ShamirSeal, StaticKeySeal } from "@bulwark/seal";
import { FaultInjectingBackend, StorageError, StorageUnavailableError } from "@bulwark/storage";
import { MemoryBackend } from "@bulwark/storage-memory";
import { describe, expect, it } from "vitest";
import { CoreError, type RekeyResult, SealedStore } from "../src/index.js";

// Storage faults during every lifecycle step (QUALITY.md): the k-th write of the step fails; the
// step reports a typed error; once storage is healthy again the same step succeeds and the data
// written before is intact.

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array | undefined) => (b === undefined ? undefined : new TextDecoder().decode(b));
const key = randomBytes(32);
const staticSeal = () => new StaticKeySeal({ key, keyId: "faults" });

interface Harness {
  storage: FaultInjectingBackend;
  inner: MemoryBackend;
  /** Fail the `failAt`-th put/delete after arming; 0 = never. */
  arm(failAt: number): void;
  disarm(): number;
}

function harness(inner = new MemoryBackend()): Harness {
  let armed = false;
  let failAt = 0;
  let seen = 0;
  const storage = new FaultInjectingBackend(inner, {
    fault: (ctx) => {
      if (!armed || (ctx.op !== "put" && ctx.op !== "delete")) return undefined;
      seen++;
      return seen === failAt
        ? new StorageUnavailableError(`injected fault on ${ctx.op} ${ctx.key}`)
        : undefined;
    },
  });
  return {
    storage,
    inner,
    arm(n) {
      armed = true;
      failAt = n;
      seen = 0;
    },
    disarm() {
      armed = false;
      return seen;
    },
  };
}

interface Step {
  name: string;
  /** Brings fresh storage to the state before the step; returns what the step needs. */
  setup(h: Harness): Promise<{ store: SealedStore; shares: string[] }>;
  run(store: SealedStore, shares: string[], h: Harness): Promise<SealedStore>;
  verify(store: SealedStore, h: Harness): Promise<void>;
}

async function shamirReady(h: Harness) {
  const store = await SealedStore.open({ storage: h.storage });
  const init = await store.initialize({ secretShares: 3, secretThreshold: 2 });
  for (const s of init.keys.slice(0, 2)) await store.unseal(s);
  await store.put("data/x", enc("kept"));
  return { store, shares: init.keys };
}

async function autoReady(h: Harness) {
  const store = await SealedStore.open({ storage: h.storage, seal: staticSeal() });
  const init = await store.initialize({ recoveryShares: 3, recoveryThreshold: 2 });
  await store.put("data/x", enc("kept"), { sealWrap: true });
  return { store, shares: init.recoveryKeys };
}

const steps: Step[] = [
  {
    name: "initialize (Shamir)",
    setup: async (h) => ({ store: await SealedStore.open({ storage: h.storage }), shares: [] }),
    run: async (store) => {
      const init = await store.initialize({ secretShares: 3, secretThreshold: 2 });
      for (const s of init.keys.slice(1, 3)) await store.unseal(s);
      return store;
    },
    verify: async (store) => {
      await store.put("data/new", enc("ok"));
      expect(dec(await store.get("data/new"))).toBe("ok");
    },
  },
  {
    name: "initialize (auto seal)",
    setup: async (h) => ({
      store: await SealedStore.open({ storage: h.storage, seal: staticSeal() }),
      shares: [],
    }),
    run: async (store) => {
      await store.initialize({ recoveryShares: 2, recoveryThreshold: 2 });
      return store;
    },
    verify: async (store, h) => {
      expect(store.sealed).toBe(false);
      expect((await SealedStore.open({ storage: h.inner, seal: staticSeal() })).sealed).toBe(false);
    },
  },
  {
    name: "rotate",
    setup: autoReady,
    run: async (store) => {
      await store.rotate();
      return store;
    },
    verify: async (store) => {
      expect(store.keyStatus().term).toBeGreaterThanOrEqual(2);
      expect(dec(await store.get("data/x"))).toBe("kept");
    },
  },
  {
    name: "rekey (Shamir unseal keys)",
    setup: shamirReady,
    run: async (store, shares) => {
      const op = await store.rekeyInit({ secretShares: 2, secretThreshold: 2 });
      await store.rekeyUpdate(shares[0] as string, op.nonce);
      const r = (await store.rekeyUpdate(shares[2] as string, op.nonce)) as RekeyResult;
      await store.seal();
      for (const s of r.keys) await store.unseal(s);
      return store;
    },
    verify: async (store) => {
      expect(store.status()).toMatchObject({ sealed: false, n: 2 });
      expect(dec(await store.get("data/x"))).toBe("kept");
    },
  },
  {
    name: "rekey (recovery keys)",
    setup: autoReady,
    run: async (store, shares) => {
      const op = await store.rekeyInit({ target: "recovery", secretShares: 4, secretThreshold: 2 });
      await store.rekeyUpdate(shares[0] as string, op.nonce);
      await store.rekeyUpdate(shares[1] as string, op.nonce);
      return store;
    },
    verify: async (store) => {
      expect(store.status()).toMatchObject({ t: 2, n: 4 });
      expect(dec(await store.get("data/x"))).toBe("kept");
    },
  },
  {
    name: "seal migration Shamir → auto",
    setup: async (h) => {
      const { store, shares } = await shamirReady(h);
      await store.close();
      return {
        store: await SealedStore.open({
          storage: h.storage,
          seal: staticSeal(),
          migrationSeal: new ShamirSeal(),
        }),
        shares,
      };
    },
    run: async (store, shares) => {
      for (const s of shares.slice(0, 2)) await store.unseal(s, { migrate: true });
      return store;
    },
    verify: async (store, h) => {
      expect(store.status()).toMatchObject({ sealed: false, type: "static" });
      expect(dec(await store.get("data/x"))).toBe("kept");
      expect((await SealedStore.open({ storage: h.inner, seal: staticSeal() })).sealed).toBe(false);
    },
  },
];

async function countWrites(step: Step): Promise<number> {
  const h = harness();
  const { store, shares } = await step.setup(h);
  h.arm(0);
  await step.run(store, shares, h);
  return h.disarm();
}

describe("storage faults during lifecycle steps", () => {
  for (const step of steps) {
    it(`${step.name}: each failed write → typed error, then a retry succeeds`, async () => {
      const writes = await countWrites(step);
      expect(writes).toBeGreaterThan(0);
      for (let k = 1; k <= writes; k++) {
        const h = harness();
        const { store, shares } = await step.setup(h);
        h.arm(k);
        const err = await step.run(store, shares, h).then(
          () => undefined,
          (e: unknown) => e,
        );
        h.disarm();
        expect(err, `${step.name}: write ${k}/${writes} failed but the step succeeded`).toBeDefined();
        expect(
          err instanceof StorageError || err instanceof CoreError,
          `${step.name} write ${k}: ${String(err)}`,
        ).toBe(true);
        // The store may have sealed itself to stay consistent; a fresh open must be usable.
        const after = await step.run(store, shares, h);
        await step.verify(after, h);
      }
    }, 60_000);
  }
});

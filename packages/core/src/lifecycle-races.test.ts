import { decodeBlobInfo, ShamirSeal } from "@bulwark/seal";
import { type Entry, StorageUnavailableError, withFaults } from "@bulwark/storage";
import { MemoryBackend } from "@bulwark/storage-memory";
import { describe, expect, it, vi } from "vitest";
import { SealedStore } from "./sealed-store.js";
import {
  activeHaNode,
  codeOf,
  dec,
  enc,
  haNode,
  haOpen,
  initStaticA,
  staticA,
  staticB,
  waitFor,
} from "./test-support.js";

describe("HA node taking over", () => {
  it("becomes active while a (finished) migration seal is still configured", async () => {
    const storage = new MemoryBackend();
    const init = await initStaticA(storage, (first) =>
      first.put("secret/w", enc("moves"), { sealWrap: true }),
    );
    const migrating = await SealedStore.open({ storage, seal: staticB(false), migrationSeal: staticA() });
    await migrating.unseal(init.recoveryKeys[0] as string, { migrate: true });
    await migrating.close();
    // The operator has not removed the disabled seal block yet; the node runs with HA.
    const node = await SealedStore.open({
      storage,
      seal: staticB(false),
      migrationSeal: staticA(),
      ha: storage,
      nodeId: "n1",
    });
    expect(node.sealed).toBe(false);
    await waitFor(() => node.status().active);
    await node.put("after", enc("ok"));
    expect(dec(await node.get("secret/w"))).toBe("moves");
    await node.close();
  });

  it("upgrades the stored keys to the seal's current key id", async () => {
    const storage = new MemoryBackend();
    await initStaticA(storage);
    const node = await SealedStore.open({ storage, seal: staticB(), ha: storage, nodeId: "n1" });
    await waitFor(() => node.status().active);
    for (const k of ["core/hsm/barrier-unseal-keys", "core/recovery-key"]) {
      expect(decodeBlobInfo((await storage.get(k))?.value as Uint8Array).keyInfo?.keyId).toBe("key-b");
    }
    await node.close();
  });
});

/** Runs `during` after reading `key` once armed, returning the value read before it (a stale read). */
class RacingBackend extends MemoryBackend {
  armed: { key: string; during: () => Promise<void> } | undefined;
  override async get(key: string): Promise<Entry | undefined> {
    const e = await super.get(key);
    const a = this.armed;
    if (a !== undefined && a.key === key) {
      this.armed = undefined;
      await a.during();
    }
    return e;
  }
}

describe("rewrap after auto → Shamir migration", () => {
  it("does not overwrite a write made while the entry was being unwrapped", async () => {
    const storage = new RacingBackend();
    const init = await initStaticA(storage, (first) => first.put("secret/w", enc("old"), { sealWrap: true }));
    const migrating = await SealedStore.open({ storage, seal: new ShamirSeal(), migrationSeal: staticA() });
    storage.armed = {
      key: "secret/w",
      during: async () => {
        await migrating.put("secret/w", enc("new"), { sealWrap: true });
      },
    };
    await migrating.unseal(init.recoveryKeys[0] as string, { migrate: true });
    expect(storage.armed).toBeUndefined();
    expect(dec(await migrating.get("secret/w"))).toBe("new");
    await migrating.close();
  });
});

/** The next `get` of `key` after `arm(key)` waits until `open()` is called. */
class GatedBackend extends MemoryBackend {
  #gate: Promise<void> | undefined;
  #key = "";
  #open: (() => void) | undefined;
  hit = false;
  arm(key: string): void {
    this.#key = key;
    this.#gate = new Promise((r) => {
      this.#open = r;
    });
  }
  open(): void {
    this.#open?.();
  }
  override async get(key: string): Promise<Entry | undefined> {
    const gate = this.#gate;
    if (gate !== undefined && key === this.#key) {
      this.#gate = undefined;
      this.hit = true;
      await gate;
    }
    return super.get(key);
  }
}

describe("HA takeover interrupted by seal", () => {
  it("a takeover from before a seal/unseal cycle does not demote the new session", async () => {
    const storage = new GatedBackend();
    const { node: holder, init } = await activeHaNode(storage, "holder");
    const node = await haOpen(storage, "n1");
    expect(node.sealed).toBe(false);
    await new Promise((r) => setTimeout(r, 20));
    expect(node.status().active).toBe(false);
    // n1 takes the lock and starts taking over; its seal-key upgrade check stalls on storage.
    storage.arm("core/hsm/barrier-unseal-keys");
    await holder.close();
    await waitFor(() => storage.hit);
    // Meanwhile n1 is sealed and unsealed again: a new HA session takes over.
    await node.seal();
    await node.unseal(init.recoveryKeys[0] as string);
    await waitFor(() => node.status().active);
    // The stalled takeover of the old session now finishes.
    storage.open();
    await new Promise((r) => setTimeout(r, 50));
    expect(node.status().active).toBe(true);
    expect((await storage.lockWith("core/lock", "probe").value()).value).toBe("n1");
    await node.put("still", enc("active"));
    await node.close();
  });
});

describe("automatic rotation timer", () => {
  it("each HA takeover replaces the check timer instead of adding one", async () => {
    const live = new Set<unknown>();
    let created = 0;
    const realSet = globalThis.setInterval;
    const realClear = globalThis.clearInterval;
    const setSpy = vi.spyOn(globalThis, "setInterval").mockImplementation(((fn: () => void, ms?: number) => {
      const t = realSet(fn, ms);
      if (ms === 4321) {
        created++;
        live.add(t);
      }
      return t;
    }) as typeof setInterval);
    const clearSpy = vi.spyOn(globalThis, "clearInterval").mockImplementation(((t?: NodeJS.Timeout) => {
      live.delete(t);
      realClear(t);
    }) as typeof clearInterval);
    try {
      const storage = new MemoryBackend();
      const { node } = await activeHaNode(storage, "n1", { autoRotateCheckMs: 4321 });
      for (let i = 0; i < 3; i++) {
        expect(storage.forceRelease("core/lock")).toBe(true);
        // With no other node, n1 steps down and takes the lock straight back.
        await waitFor(() => created === i + 2 && node.status().active);
      }
      expect(live.size).toBe(1);
      await node.close();
      expect(live.size).toBe(0);
    } finally {
      setSpy.mockRestore();
      clearSpy.mockRestore();
    }
  });
});

describe("rollback journal with HA", () => {
  it("a node opening while another holds the lock leaves that node's journal alone; a takeover rolls it back", async () => {
    const storage = new MemoryBackend();
    const { node: a } = await activeHaNode(storage, "a");
    await a.put("keep", enc("me"));
    // a is in the middle of a lifecycle step: journal written, a record already changed.
    const { Journal, JOURNAL_PATH } = await import("./journal.js");
    const before = (await storage.get("core/recovery-config"))?.value as Uint8Array;
    await new Journal(storage).begin("rekey-recovery", ["core/recovery-config"]);
    const changed = new TextEncoder().encode('{"type":"shamir","secret_shares":3,"secret_threshold":2}');
    await storage.put({ key: "core/recovery-config", value: changed });
    const b = await haOpen(storage, "b");
    expect(b.sealed).toBe(false);
    expect(await storage.get(JOURNAL_PATH)).toBeDefined();
    expect((await storage.get("core/recovery-config"))?.value).toEqual(changed);
    // a dies without finishing: b takes over and rolls the step back before serving.
    expect(storage.forceRelease("core/lock")).toBe(true);
    await a.close();
    await waitFor(() => b.status().active);
    expect(await storage.get(JOURNAL_PATH)).toBeUndefined();
    expect((await storage.get("core/recovery-config"))?.value).toEqual(before);
    expect(dec(await b.get("keep"))).toBe("me");
    await b.close();
  });
});

describe("HA takeover that loses the lock midway", () => {
  it("a node deposed while taking over does not migrate, advertise or become active", async () => {
    const storage = new GatedBackend();
    const init = await initStaticA(storage, (first) => first.put("secret/w", enc("kept")));
    const a = await SealedStore.open({
      storage,
      seal: staticB(false),
      migrationSeal: staticA(),
      ha: storage,
      nodeId: "a",
    });
    // a takes the free lock and starts taking over; its journal check stalls on storage.
    storage.arm("core/bulwark-rollback");
    await a.unseal(init.recoveryKeys[0] as string, { migrate: true });
    await waitFor(() => storage.hit);
    const b = await haOpen(storage, "b");
    expect(b.sealed).toBe(false);
    // a loses the lock (session expired) before its takeover finishes; b becomes active.
    expect(storage.forceRelease("core/lock")).toBe(true);
    await waitFor(() => b.status().active);
    storage.open();
    await new Promise((r) => setTimeout(r, 50));
    expect(a.status().active).toBe(false);
    expect(
      decodeBlobInfo((await storage.get("core/hsm/barrier-unseal-keys"))?.value as Uint8Array).keyInfo?.keyId,
    ).toBe("key-a");
    expect(await storage.get("core/leader/a")).toBeUndefined();
    expect((await storage.lockWith("core/lock", "probe").value()).value).toBe("b");
    await b.put("secret/after", enc("b writes"));
    expect(dec(await b.get("secret/w"))).toBe("kept");
    await a.close();
    await b.close();
  });
});

describe("seal() during an HA takeover's migration", () => {
  it("the store stays sealed when the interrupted migration rolls back", async () => {
    const storage = new GatedBackend();
    const init = await initStaticA(storage);
    const a = await SealedStore.open({
      storage,
      seal: staticB(false),
      migrationSeal: staticA(),
      ha: storage,
      nodeId: "a",
    });
    // Read only by the migration's rollback journal (auto → auto has no Shamir KEK).
    storage.arm("core/shamir-kek");
    await a.unseal(init.recoveryKeys[0] as string, { migrate: true });
    await waitFor(() => storage.hit);
    await a.seal();
    expect(a.sealed).toBe(true);
    storage.open();
    await new Promise((r) => setTimeout(r, 50));
    expect(a.status()).toMatchObject({ sealed: true, active: false, migration: true });
    expect(
      decodeBlobInfo((await storage.get("core/hsm/barrier-unseal-keys"))?.value as Uint8Array).keyInfo?.keyId,
    ).toBe("key-a");
    expect(await storage.get("core/bulwark-rollback")).toBeUndefined();
    await a.close();
  });
});

describe("a failed rekey that cannot restore the keys in memory", () => {
  it("leaves the node sealed and releases the HA lock, so a standby takes over", async () => {
    let failing = false;
    const storage = withFaults(new MemoryBackend(), {
      fault: ({ op, key }) =>
        failing &&
        ((op === "put" && key === "core/hsm/barrier-unseal-keys") || (op === "get" && key === "core/keyring"))
          ? new StorageUnavailableError("injected fault")
          : undefined,
    });
    const { node: a, init } = await activeHaNode(storage, "a");
    await a.put("secret/x", enc("survives"));
    const b = await haOpen(storage, "b");
    expect(b.sealed).toBe(false);
    const op = await a.rekeyInit({ target: "barrier" });
    failing = true;
    expect(await codeOf(a.rekeyUpdate(init.recoveryKeys[0] as string, op.nonce))).not.toBe("resolved");
    failing = false;
    expect(a.status()).toMatchObject({ sealed: true, active: false });
    expect(a.status().sealedReason).toMatch(/rekey failed and the store could not be restored/);
    await waitFor(() => b.status().active, 1000);
    expect(dec(await b.get("secret/x"))).toBe("survives");
    await a.close();
    await b.close();
  });

  it("Shamir: the seal keeps no KEK once the store is left sealed", async () => {
    let failing = false;
    const storage = withFaults(new MemoryBackend(), {
      fault: ({ op, key }) =>
        failing &&
        ((op === "put" && key === "core/hsm/barrier-unseal-keys") || (op === "get" && key === "core/keyring"))
          ? new StorageUnavailableError("injected fault")
          : undefined,
    });
    const seal = new ShamirSeal();
    const store = await SealedStore.open({ storage, seal });
    const init = await store.initialize({ secretShares: 1, secretThreshold: 1 });
    await store.unseal(init.keys[0] as string);
    const op = await store.rekeyInit({ secretShares: 1, secretThreshold: 1 });
    failing = true;
    expect(await codeOf(store.rekeyUpdate(init.keys[0] as string, op.nonce))).not.toBe("resolved");
    failing = false;
    expect(store.status()).toMatchObject({ sealed: true, active: false });
    expect(seal.hasKey).toBe(false);
    // The old key still unseals (storage was rolled back).
    await store.unseal(init.keys[0] as string);
    expect(store.sealed).toBe(false);
    await store.close();
  });
});

describe("close() during an HA takeover", () => {
  it("leaves no automatic-rotation timer behind when the takeover finishes afterwards", async () => {
    const live = new Set<unknown>();
    const realSet = globalThis.setInterval;
    const realClear = globalThis.clearInterval;
    const setSpy = vi.spyOn(globalThis, "setInterval").mockImplementation(((fn: () => void, ms?: number) => {
      const t = realSet(fn, ms);
      if (ms === 4322) live.add(t);
      return t;
    }) as typeof setInterval);
    const clearSpy = vi.spyOn(globalThis, "clearInterval").mockImplementation(((t?: NodeJS.Timeout) => {
      live.delete(t);
      realClear(t);
    }) as typeof clearInterval);
    try {
      const storage = new GatedBackend();
      const opts = { storage, seal: staticA(), ha: storage, autoRotateCheckMs: 4322 };
      const holder = await SealedStore.open({ ...opts, nodeId: "holder" });
      await holder.initialize({ recoveryShares: 1, recoveryThreshold: 1 });
      await waitFor(() => holder.status().active);
      const node = await SealedStore.open({ ...opts, seal: staticA(), nodeId: "n1" });
      expect(node.sealed).toBe(false);
      // n1 takes over once holder closes; its seal-key upgrade check (the takeover's last read)
      // stalls on storage.
      storage.arm("core/recovery-key");
      await holder.close();
      await waitFor(() => storage.hit);
      await node.close();
      expect(live.size).toBe(0);
      storage.open();
      await new Promise((r) => setTimeout(r, 50));
      expect(node.status().active).toBe(false);
      expect(live.size).toBe(0);
    } finally {
      setSpy.mockRestore();
      clearSpy.mockRestore();
    }
  });
});

describe("initialize on two HA nodes at once", () => {
  it("exactly one initializes; the other is told the store is already initialized", async () => {
    const storage = new MemoryBackend();
    const a = await SealedStore.open({ storage, ha: storage, nodeId: "a" });
    const b = await SealedStore.open({ storage, ha: storage, nodeId: "b" });
    const results = await Promise.allSettled([
      a.initialize({ secretShares: 1, secretThreshold: 1 }),
      b.initialize({ secretShares: 1, secretThreshold: 1 }),
    ]);
    const ok = results.filter((r) => r.status === "fulfilled");
    const failed = results.filter((r) => r.status === "rejected");
    expect(ok).toHaveLength(1);
    expect(failed).toHaveLength(1);
    expect(((failed[0] as PromiseRejectedResult).reason as { code?: string }).code).toBe(
      "already_initialized",
    );
    const keys = (ok[0] as PromiseFulfilledResult<{ keys: string[] }>).value.keys;
    await a.unseal(keys[0] as string);
    await b.unseal(keys[0] as string);
    expect(a.sealed || b.sealed).toBe(false);
    await a.close();
    await b.close();
  });
});

describe("upgradeSealKeys racing a rekey", () => {
  it("does not put the old root key back over the one a rekey just stored", async () => {
    const storage = new RacingBackend();
    const first = await SealedStore.open({ storage, seal: staticA() });
    const init = await first.initialize({ recoveryShares: 1, recoveryThreshold: 1 });
    await first.put("secret/x", enc("kept"));
    const underA = (await storage.get("core/hsm/barrier-unseal-keys"))?.value as Uint8Array;
    await first.close();
    const store = await SealedStore.open({ storage, seal: staticB() });
    expect(store.sealed).toBe(false);
    // The stored root key is still wrapped by the previous seal key (e.g. a KMS alias re-pointed).
    await storage.put({ key: "core/hsm/barrier-unseal-keys", value: underA });
    const op = await store.rekeyInit({ target: "barrier" });
    let rekeyed: Promise<unknown> | undefined;
    storage.armed = {
      key: "core/hsm/barrier-unseal-keys",
      during: async () => {
        // The rekey completes while the upgrade holds what it read (unless it must wait its turn).
        rekeyed = store.rekeyUpdate(init.recoveryKeys[0] as string, op.nonce);
        await Promise.race([rekeyed, new Promise((r) => setTimeout(r, 100))]);
      },
    };
    await store.upgradeSealKeys();
    await rekeyed;
    await store.close();
    const again = await SealedStore.open({ storage, seal: staticB() });
    expect(again.status().sealedReason).toBeUndefined();
    expect(dec(await again.get("secret/x"))).toBe("kept");
    await again.close();
  });
});

/** `put` of `key`, once armed, runs `during` and then fails (a storage fault mid-step). */
class FailingPutBackend extends MemoryBackend {
  armed: { key: string; during: () => Promise<void> } | undefined;
  override async put(entry: Entry): Promise<void> {
    const a = this.armed;
    if (a !== undefined && a.key === entry.key) {
      this.armed = undefined;
      await a.during();
      throw new StorageUnavailableError(`injected fault on put ${entry.key}`);
    }
    return super.put(entry);
  }
}

describe("rotate racing a rekey that rolls back", () => {
  it("data written under a key term added during the rekey stays readable", async () => {
    const storage = new FailingPutBackend();
    const store = await SealedStore.open({ storage, seal: staticA() });
    const init = await store.initialize({ recoveryShares: 1, recoveryThreshold: 1 });
    const op = await store.rekeyInit({ target: "barrier" });
    let rotated: Promise<unknown> | undefined;
    let written: Promise<unknown> | undefined;
    storage.armed = {
      key: "core/hsm/barrier-unseal-keys",
      during: async () => {
        rotated = store.rotate().then(() => store.put("secret/after-rotate", enc("mine")));
        await Promise.race([rotated, new Promise((r) => setTimeout(r, 100))]);
        written = store.put("secret/during", enc("also mine"));
        await written;
      },
    };
    expect(await codeOf(store.rekeyUpdate(init.recoveryKeys[0] as string, op.nonce))).not.toBe("resolved");
    await rotated;
    await written;
    expect(dec(await store.get("secret/after-rotate"))).toBe("mine");
    expect(dec(await store.get("secret/during"))).toBe("also mine");
    await store.close();
    const again = await SealedStore.open({ storage, seal: staticA() });
    expect(dec(await again.get("secret/after-rotate"))).toBe("mine");
    expect(dec(await again.get("secret/during"))).toBe("also mine");
    await again.close();
  });
});

describe("close() when finalizing the seal fails", () => {
  it("still finalizes the migration seal (its HSM/KMS session would leak)", async () => {
    const storage = new MemoryBackend();
    const target = staticB(false);
    const failing = new Proxy(target, {
      get(t, p) {
        if (p === "finalize") return () => Promise.reject(new Error("HSM session already gone"));
        const v = Reflect.get(t, p, t);
        return typeof v === "function" ? v.bind(t) : v;
      },
    });
    const source = staticA();
    const finalized = vi.spyOn(source, "finalize");
    const store = await SealedStore.open({ storage, seal: failing, migrationSeal: source });
    await expect(store.close()).rejects.toThrow(/HSM session already gone/);
    expect(finalized).toHaveBeenCalled();
  });
});

describe("a rekey whose rollback could not delete the journal", () => {
  it("a later rotation is not undone by that journal at the next open", async () => {
    let putFault = false;
    let deleteFault = false;
    const mem = new MemoryBackend();
    const storage = withFaults(mem, {
      fault: ({ op, key }) => {
        if (putFault && op === "put" && key === "core/hsm/barrier-unseal-keys") {
          putFault = false;
          return new StorageUnavailableError("injected fault (step)");
        }
        if (deleteFault && op === "delete" && key === "core/bulwark-rollback") {
          deleteFault = false;
          return new StorageUnavailableError("injected fault (rollback)");
        }
        return undefined;
      },
    });
    const store = await SealedStore.open({ storage, seal: staticA() });
    const init = await store.initialize({ recoveryShares: 1, recoveryThreshold: 1 });
    const op = await store.rekeyInit({ target: "barrier" });
    putFault = true;
    deleteFault = true;
    expect(await codeOf(store.rekeyUpdate(init.recoveryKeys[0] as string, op.nonce))).not.toBe("resolved");
    // Rolled back in storage and in memory; only the journal itself is left behind.
    expect(store.sealed).toBe(false);
    expect(await mem.get("core/bulwark-rollback")).toBeDefined();
    await store.rotate();
    await store.put("secret/new-term", enc("kept"));
    await store.close();
    const again = await SealedStore.open({ storage: mem, seal: staticA() });
    expect(again.sealed).toBe(false);
    expect(dec(await again.get("secret/new-term"))).toBe("kept");
    await again.close();
  });
});

describe("leader() on a standby during a failover", () => {
  it("does not keep reporting a new active node without its address once it has advertised", async () => {
    const storage = new GatedBackend();
    const open = (nodeId: string) => haNode(storage, nodeId);
    const a = await open("a");
    await a.initialize({ recoveryShares: 1, recoveryThreshold: 1 });
    await waitFor(() => a.status().active);
    const b = await open("b");
    const c = await open("c");
    expect(await c.leader()).toMatchObject({ leaderNodeId: "a", leaderAddress: "https://a:8200" });
    // b takes the lock when a closes; its takeover stalls before it advertises.
    storage.arm("core/bulwark-rollback");
    await a.close();
    await waitFor(() => storage.hit);
    await new Promise((r) => setTimeout(r, 1100)); // c's cached answer about a has expired
    expect(await c.leader()).toMatchObject({ leaderNodeId: "b", leaderAddress: "" });
    storage.open();
    await waitFor(() => b.status().active);
    expect(await c.leader()).toMatchObject({ leaderNodeId: "b", leaderAddress: "https://b:8200" });
    await b.close();
    await c.close();
  });
});

import { SealedStore } from "@bulwark/core";
import { randomBytes } from "@bulwark/crypto";
import { StaticKeySeal } from "@bulwark/seal";
import { afterAll, afterEach, beforeAll, expect, it } from "vitest";
import { ConsulBackend } from "../src/index.js";
import { ConsulAgent } from "./consul-agent.js";
import { describeConsul } from "./gate.js";
import { destroySession, destroySessionSync, holderSession } from "./helpers.js";

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array | undefined) => (b === undefined ? undefined : new TextDecoder().decode(b));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitFor(cond: () => boolean, timeoutMs: number, what: string): Promise<number> {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(10);
  }
  return Date.now() - t0;
}

// Short lock timings keep the suite fast; the bound checked is the lock_wait_time + 5 s.
const LOCK_WAIT_MS = 3000;
const LOCK_DELAY_MS = 1000;

describeConsul("two SealedStore nodes on one Consul (StaticKeySeal auto seal)", () => {
  let agent: ConsulAgent;
  const sealKey = randomBytes(32);
  const seal = () => new StaticKeySeal({ key: sealKey, keyId: "consul-ha" });
  const backends: ConsulBackend[] = [];
  const stores: SealedStore[] = [];
  let n = 0;

  beforeAll(async () => {
    agent = await ConsulAgent.start();
  }, 60_000);
  afterEach(async () => {
    await Promise.allSettled(stores.splice(0).map((s) => s.close()));
    await Promise.allSettled(backends.splice(0).map((b) => b.close()));
  });
  afterAll(async () => {
    await agent?.stop();
  });

  /** One node: its own ConsulBackend instance (storage and HA lock), on the shared path. */
  async function node(path: string, nodeId: string): Promise<{ store: SealedStore; storage: ConsulBackend }> {
    const storage = new ConsulBackend({
      address: agent.address,
      path,
      sessionTtlMs: 10_000,
      lockWaitTimeMs: LOCK_WAIT_MS,
      lockDelayMs: LOCK_DELAY_MS,
    });
    backends.push(storage);
    const store = await SealedStore.open({
      storage,
      ha: storage,
      seal: seal(),
      nodeId,
      standbyPollMs: 100,
      storageType: "consul",
    });
    stores.push(store);
    return { store, storage };
  }

  async function cluster(): Promise<{
    a: SealedStore;
    b: SealedStore;
    storageA: ConsulBackend;
    storageB: ConsulBackend;
    path: string;
  }> {
    const path = `core-ha-${process.pid}-${++n}/`;
    const { store: a, storage: storageA } = await node(path, "node-a");
    await a.initialize({ recoveryShares: 1, recoveryThreshold: 1 });
    await waitFor(() => a.status().active, 10_000, "node-a to become active");
    const { store: b, storage: storageB } = await node(path, "node-b");
    expect(b.status().sealed, b.status().sealedReason).toBe(false);
    return { a, b, storageA, storageB, path };
  }

  it("only one node is active; the standby follows a keyring rotation through the upgrade entries", async () => {
    const { a, b, storageA, path } = await cluster();
    await sleep(300);
    expect(a.status()).toMatchObject({ active: true, haEnabled: true, storageType: "consul" });
    expect(b.status()).toMatchObject({ active: false, sealed: false, haEnabled: true });
    expect(await storageA.lockWith("core/lock", "probe").value()).toEqual({ held: true, value: "node-a" });
    expect(storageA.fencing?.key).toBe(`${path}core/lock`);
    await expect(b.put("x", enc("from the standby"))).rejects.toMatchObject({ code: "standby" });

    await a.put("before-rotate", enc("term 1"));
    const rotated = await a.rotate();
    expect(rotated.term).toBe(2);
    await a.put("after-rotate", enc("term 2"));
    await waitFor(() => b.keyStatus().term === 2, 5000, "the standby to load term 2");
    expect(dec(await b.get("before-rotate"))).toBe("term 1");
    expect(dec(await b.get("after-rotate"))).toBe("term 2");
  });

  it("destroying the active node's session: the standby takes over within lock_wait_time + 5 s, the old node's writes are fenced, no acknowledged write is lost", async () => {
    const { a, b, storageA, storageB, path } = await cluster();
    await sleep(200);
    expect(b.status().active).toBe(false);

    // A stream of writes on the active node.
    const acked = new Map<string, string>();
    const rejected: { name?: string; code?: string }[] = [];
    let stop = false;
    const stream = (async () => {
      for (let i = 0; !stop; i++) {
        const key = `stream/${String(i).padStart(5, "0")}`;
        try {
          await a.put(key, enc(`value ${i}`));
          acked.set(key, `value ${i}`);
        } catch (err) {
          rejected.push(err as { name?: string; code?: string });
        }
        await sleep(5);
      }
    })();
    await sleep(300);

    const session = await holderSession(agent.url, `${path}core/lock`);
    // Taken away while this process's event loop is blocked: node-a still believes it is active
    // when the next write starts, so that write can only be stopped by the fence.
    destroySessionSync(agent.url, session);
    const destroyedAt = Date.now();
    const late = a.put("late-write", enc("from the deposed node"));
    await expect(late).rejects.toMatchObject({ name: "FencedWriteError", code: "fenced_write" });

    const stepDownMs = await waitFor(() => !a.status().active, 5000, "node-a to step down");
    const failoverMs = await waitFor(() => b.status().active, LOCK_WAIT_MS + 5000, "node-b to become active");
    const failoverTotal = Date.now() - destroyedAt;
    stop = true;
    await stream;

    expect(failoverTotal).toBeLessThan(LOCK_WAIT_MS + 5000);
    expect(await storageB.lockWith("core/lock", "probe").value()).toEqual({ held: true, value: "node-b" });
    // The deposed node refuses writes: as a standby in core, or by the fence if it raced.
    await expect(a.put("later", enc("x"))).rejects.toMatchObject({ code: "standby" });
    for (const r of rejected) expect(["fenced_write", "standby"]).toContain(r.code);
    expect(storageA.fencing?.lost ?? true).toBe(true);

    // Every write node-a acknowledged is readable on the new active node; the fenced one is not.
    expect(acked.size).toBeGreaterThan(10);
    for (const [key, value] of acked) expect(dec(await b.get(key)), key).toBe(value);
    expect(await b.get("late-write")).toBeUndefined();
    expect(await b.list("stream/")).toHaveLength(acked.size);
    await b.put("new-active", enc("node-b writes"));
    expect(dec(await b.get("new-active"))).toBe("node-b writes");
    console.info(
      `[storage-consul] failover after session destroy: node-a stepped down in ${stepDownMs} ms, ` +
        `node-b active ${failoverTotal} ms after the destroy (lock_wait_time ${LOCK_WAIT_MS} ms, lock_delay ${LOCK_DELAY_MS} ms); ` +
        `${acked.size} acknowledged writes, ${rejected.length} rejected, 0 lost`,
    );
    expect(failoverMs).toBeLessThanOrEqual(failoverTotal);
  });

  it("the deposed node waits as a standby and takes over again when the new active node closes", async () => {
    const { a, b, path } = await cluster();
    await sleep(200);
    await destroySession(agent.url, await holderSession(agent.url, `${path}core/lock`));
    await waitFor(() => b.status().active, LOCK_WAIT_MS + 5000, "node-b to take over");
    await a.put("x", enc("x")).catch(() => undefined);
    expect(a.status().active).toBe(false);
    await b.put("from-b", enc("written by b"));
    const closedAt = Date.now();
    await b.close();
    // A graceful close releases the lock (no lock-delay): node-a is back at once.
    await waitFor(() => a.status().active, 5000, "node-a to take over again");
    const handover = Date.now() - closedAt;
    expect(handover).toBeLessThan(LOCK_DELAY_MS + 2000);
    expect(dec(await a.get("from-b"))).toBe("written by b");
    await a.put("a-again", enc("fenced by a new session"));
    expect(dec(await a.get("a-again"))).toBe("fenced by a new session");
    console.info(`[storage-consul] graceful hand-over on close: ${handover} ms`);
  });
});

import { afterAll, beforeAll, expect, it } from "vitest";
import { ConsulBackend, type ConsulBackendOptions } from "../src/index.js";
import { ConsulAgent } from "./consul-agent.js";
import { describeConsul } from "./gate.js";

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array | undefined) => (b === undefined ? undefined : new TextDecoder().decode(b));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describeConsul("Consul agent restarted mid-run (single server, raft on disk)", () => {
  let agent: ConsulAgent;
  const open: ConsulBackend[] = [];
  let n = 0;
  const backend = (opts: ConsulBackendOptions = {}) => {
    const b = new ConsulBackend({
      address: agent.address,
      path: `restart-${++n}/`,
      retryBudgetMs: 30_000,
      requestTimeoutMs: 3000,
      lockWaitTimeMs: 2000,
      lockDelayMs: 0,
      ...opts,
    });
    open.push(b);
    return b;
  };

  beforeAll(async () => {
    agent = await ConsulAgent.start({ mode: "server" });
  }, 60_000);
  afterAll(async () => {
    await Promise.all(open.map((b) => b.close()));
    await agent?.stop();
  });

  it("a stream of writes and reads rides out the restart; every acknowledged write is readable", async () => {
    const b = backend();
    const acked: string[] = [];
    let failures = 0;
    let stop = false;
    let slowest = 0;
    const stream = (async () => {
      for (let i = 0; !stop; i++) {
        const key = `stream/${String(i).padStart(5, "0")}`;
        const t0 = Date.now();
        try {
          await b.put({ key, value: enc(`v${i}`) });
          acked.push(key);
          expect(dec((await b.get(key))?.value)).toBe(`v${i}`);
        } catch {
          failures++;
        }
        slowest = Math.max(slowest, Date.now() - t0);
        await sleep(20);
      }
    })();
    await sleep(300);
    const before = acked.length;
    const t0 = Date.now();
    await agent.restart();
    const during = acked.length;
    await sleep(500);
    stop = true;
    await stream;
    const restartMs = Date.now() - t0;
    expect(failures, "writes that failed instead of being retried").toBe(0);
    expect(before).toBeGreaterThan(3);
    // Writes went on after the restart, on the same backend instance.
    expect(acked.length).toBeGreaterThan(during + 3);
    // At least one write waited out the outage inside the backend's retries.
    expect(slowest).toBeGreaterThan(500);
    for (const key of acked) expect((await b.get(key))?.value, key).toBeDefined();
    expect(await b.list("stream/")).toHaveLength(acked.length);
    expect(slowest).toBeLessThan(restartMs + 2000);
  });

  it("a held lock survives a restart shorter than its TTL; fenced writes resume", async () => {
    const b = backend({ sessionTtlMs: 15_000 });
    const leadership = await b.lockWith("core/lock", "node-a").acquire();
    await b.put({ key: "before", value: enc("1") });
    await agent.restart();
    await b.put({ key: "after", value: enc("2") });
    expect(leadership.aborted).toBe(false);
    expect(b.fencing?.lost).toBe(false);
    expect(dec((await b.get("before"))?.value)).toBe("1");
    expect(dec((await b.get("after"))?.value)).toBe("2");
    await b
      .lockWith("core/lock", "x")
      .value()
      .then((v) => expect(v).toEqual({ held: true, value: "node-a" }));
  });

  it("renewal failing for longer than session_ttl ends leadership; after the agent is back the lock is taken again", async () => {
    const ttl = 2000;
    const b = backend({ sessionTtlMs: ttl, retryBudgetMs: 20_000 });
    const lock = b.lockWith("core/lock", "node-a");
    const leadership = await lock.acquire();
    await agent.halt();
    const t0 = Date.now();
    const reason = await new Promise<Error>((res) =>
      leadership.addEventListener("abort", () => res(leadership.reason as Error), { once: true }),
    );
    const detected = Date.now() - t0;
    expect(reason.message).toMatch(/failed to renew the Consul session for more than the TTL \(2s\)/);
    expect(detected).toBeLessThan(ttl + 2500);
    // The deposed node refuses writes locally until it holds the lock again.
    await expect(b.put({ key: "x", value: enc("x") })).rejects.toMatchObject({ name: "FencedWriteError" });
    await agent.restart();
    // The old session may linger until Consul expires it; the lock waits it out.
    const again = await lock.acquire();
    expect(again.aborted).toBe(false);
    await b.put({ key: "x", value: enc("y") });
    expect(dec((await b.get("x"))?.value)).toBe("y");
  });
});

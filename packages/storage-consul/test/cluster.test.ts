import { afterAll, beforeAll, expect, it } from "vitest";
import { ConsulBackend } from "../src/index.js";
import { type ConsulAgent, ConsulCluster } from "./consul-agent.js";
import { describeConsul } from "./gate.js";

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array | undefined) => (b === undefined ? undefined : new TextDecoder().decode(b));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describeConsul("3-server Consul cluster on 127.0.0.2–127.0.0.4", () => {
  let cluster: ConsulCluster;
  const open: ConsulBackend[] = [];

  beforeAll(async () => {
    cluster = await ConsulCluster.start();
  }, 90_000);
  afterAll(async () => {
    await Promise.all(open.map((b) => b.close()));
    await cluster?.stop();
  });

  it("stopping the leader during a stream of fenced writes: writes resume after re-election, none acknowledged is lost", async () => {
    const leader = await cluster.leader();
    const follower = cluster.agents.find((a) => a !== leader) as ConsulAgent;
    const other = cluster.agents.find((a) => a !== leader && a !== follower) as ConsulAgent;
    const b = new ConsulBackend({
      address: follower.address,
      path: "cluster/",
      sessionTtlMs: 10_000,
      lockWaitTimeMs: 2000,
      lockDelayMs: 0,
      retryBudgetMs: 30_000,
      requestTimeoutMs: 5000,
    });
    open.push(b);
    const leadership = await b.lockWith("core/lock", "node-a").acquire();

    const acked: { key: string; at: number }[] = [];
    const failed: unknown[] = [];
    let stop = false;
    const writer = async (w: number) => {
      for (let i = 0; !stop; i++) {
        const key = `w${w}/${String(i).padStart(5, "0")}`;
        try {
          await b.put({ key, value: enc(key) });
          acked.push({ key, at: Date.now() });
        } catch (err) {
          failed.push(err);
        }
      }
    };
    const writers = [0, 1, 2, 3].map(writer);
    await sleep(500);
    const beforeStop = acked.length;
    const stoppedAt = Date.now();
    await leader.halt("SIGKILL");
    const newLeader = await cluster.leader();
    const electedMs = Date.now() - stoppedAt;
    // Let the stream run on for a while under the new leader.
    const resumedFrom = acked.length;
    await sleep(1000);
    stop = true;
    await Promise.all(writers);

    expect(newLeader).not.toBe(leader);
    expect(failed, "writes must be retried through the election, not fail").toEqual([]);
    expect(beforeStop).toBeGreaterThan(10);
    expect(acked.length).toBeGreaterThan(resumedFrom + 10);
    const firstAfter = acked.find((a) => a.at > stoppedAt + electedMs);
    expect(firstAfter, "a write acknowledged after re-election").toBeDefined();
    // The lock and its fence survived the leader change (sessions live in raft).
    expect(leadership.aborted).toBe(false);
    expect(b.fencing?.lost).toBe(false);

    // Every acknowledged write is there, read through another surviving server, consistently.
    const check = new ConsulBackend({ address: other.address, path: "cluster/", consistencyMode: "strong" });
    open.push(check);
    for (const { key } of acked) expect(dec((await check.get(key))?.value), key).toBe(key);
    const listed = (await Promise.all([0, 1, 2, 3].map((w) => check.list(`w${w}/`)))).flat();
    expect(listed.length).toBeGreaterThanOrEqual(acked.length);
    console.info(
      `[storage-consul] leader stopped: new leader after ${electedMs} ms; ${beforeStop} writes before, ${acked.length} acknowledged in total, 0 lost`,
    );
  });
});

import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import type { StorageError } from "@bulwark/storage";
import { afterAll, afterEach, beforeAll, expect, it } from "vitest";
import { ConsulHttp } from "../src/client.js";
import { resolveOptions } from "../src/config.js";
import { ConsulBackend, type ConsulBackendOptions } from "../src/index.js";
import { ConsulAgent } from "./consul-agent.js";
import { describeConsul } from "./gate.js";
import { ConsulProxy, deleteTree, destroySessionSync, holderSession, putSync, rawPair } from "./helpers.js";

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array | undefined) => (b === undefined ? undefined : new TextDecoder().decode(b));

async function rejection(p: Promise<unknown>): Promise<StorageError> {
  try {
    await p;
  } catch (err) {
    return err as StorageError;
  }
  throw new Error("expected the operation to fail");
}

function aborted(signal: AbortSignal, ms = 5000): Promise<unknown> {
  if (signal.aborted) return Promise.resolve(signal.reason);
  return new Promise((res, rej) => {
    const t = setTimeout(() => rej(new Error(`leadership signal did not abort within ${ms} ms`)), ms);
    signal.addEventListener(
      "abort",
      () => {
        clearTimeout(t);
        res(signal.reason);
      },
      { once: true },
    );
  });
}

describeConsul("fenced writes, retries and error mapping (consul -dev)", () => {
  let agent: ConsulAgent;
  let proxy: ConsulProxy;
  const open: ConsulBackend[] = [];
  let n = 0;
  const run = `fence-${process.pid}-${Date.now()}`;

  beforeAll(async () => {
    agent = await ConsulAgent.start();
    proxy = await new ConsulProxy(agent.url).start();
  }, 60_000);
  afterEach(async () => {
    proxy.intercept = undefined;
    proxy.delayMs = 0;
    proxy.seen.length = 0;
    await Promise.all(open.splice(0).map((b) => b.close()));
  });
  afterAll(async () => {
    await proxy?.stop();
    await agent?.stop();
    await deleteTree(agent.url, run).catch(() => undefined);
  });

  /** A backend on its own path, talking to Consul through the recording proxy by default. */
  const backend = (opts: ConsulBackendOptions = {}, direct = false): ConsulBackend => {
    const b = new ConsulBackend({
      address: direct ? agent.address : proxy.address,
      path: `${run}/${++n}/`,
      lockWaitTimeMs: 2000,
      lockDelayMs: 0,
      ...opts,
    });
    open.push(b);
    return b;
  };
  const txnBodies = () =>
    proxy.matching("PUT", "/v1/txn").map((r) => JSON.parse(r.body) as { KV: Record<string, unknown> }[]);

  /** Answers every /v1/txn with a 500 carrying `body`; `sent.n` counts the txn requests. */
  const failTxns = (body: string): { n: number } => {
    const sent = { n: 0 };
    proxy.intercept = (req) => {
      if (!req.url.startsWith("/v1/txn")) return undefined;
      sent.n++;
      return { status: 500, body };
    };
    return sent;
  };

  /**
   * With every txn failing with an ambiguous 500 (`body`), a check-and-set transaction on "guard"
   * is sent once, not replayed, and said to be perhaps applied. Returns the txn counter.
   */
  const expectCheckAndSetNotReplayed = async (b: ConsulBackend, body: string): Promise<{ n: number }> => {
    const sent = failTxns(body);
    const err = await rejection(
      b.transaction([
        { op: "check", key: "guard", value: enc("v") },
        { op: "put", entry: { key: "guard", value: enc("w") } },
      ]),
    );
    expect(err).toMatchObject({ name: "StorageUnavailableError", code: "unavailable" });
    expect(err.message).toMatch(/may or may not have been applied: read the keys before retrying/);
    expect(sent.n).toBe(1);
    return sent;
  };

  it("without the lock, put/delete are plain KV requests; while held, each write is a txn led by check-session", async () => {
    const b = backend();
    await b.put({ key: "plain", value: enc("1") });
    await b.delete("plain");
    expect(proxy.matching("PUT", `/v1/kv/${encodeURIComponent(`${b.path}plain`)}`)).toHaveLength(1);
    expect(proxy.matching("DELETE", `/v1/kv/${encodeURIComponent(`${b.path}plain`)}`)).toHaveLength(1);
    expect(txnBodies()).toEqual([]);
    expect(b.fencing).toBeUndefined();

    const lock = b.lockWith("core/lock", "node-a");
    await lock.acquire();
    const session = await holderSession(agent.url, `${b.path}core/lock`);
    expect(b.fencing).toEqual({ key: `${b.path}core/lock`, session, lost: false });
    await b.put({ key: "fenced", value: enc("2") });
    await b.delete("gone");
    await b.transaction([
      { op: "put", entry: { key: "t/1", value: enc("3") } },
      { op: "check", key: "fenced", value: enc("2") },
    ]);
    const check = { KV: { Verb: "check-session", Key: `${b.path}core/lock`, Session: session } };
    const bodies = txnBodies();
    expect(bodies).toHaveLength(3);
    for (const body of bodies) expect(body[0]).toEqual(check);
    expect(bodies[0]?.[1]).toEqual({ KV: { Verb: "set", Key: `${b.path}fenced`, Value: "Mg==" } });
    expect(bodies[1]?.[1]).toEqual({ KV: { Verb: "delete", Key: `${b.path}gone` } });
    expect(bodies[2]?.[2]).toMatchObject({ KV: { Verb: "check-index", Key: `${b.path}fenced` } });
    expect(dec((await b.get("t/1"))?.value)).toBe("3");
    // No plain KV writes were sent while the lock was held.
    expect(
      proxy.seen.filter(
        (r) => r.method !== "GET" && r.url.startsWith("/v1/kv/") && !r.url.includes("core%2Flock"),
      ),
    ).toHaveLength(2);
  });

  it("a write after the session was taken away is rejected by Consul's check-session: FencedWriteError, leadership ends, nothing written", async () => {
    const b = backend();
    const lock = b.lockWith("core/lock", "node-a");
    const leadership = await lock.acquire();
    const session = await holderSession(agent.url, `${b.path}core/lock`);
    // Blocks this event loop while the session is destroyed: the lock's watch cannot have seen it
    // when put() runs, so the rejection comes from Consul, not from local state.
    destroySessionSync(agent.url, session);
    const err = await rejection(b.put({ key: "late", value: enc("x") }));
    expect(err).toMatchObject({ name: "FencedWriteError", code: "fenced_write" });
    expect(err.message).toMatch(
      /^lock has changed ownership before attempting write: put "late" was rejected/,
    );
    expect(err.message).toMatch(/failed session check|session/);
    expect(await aborted(leadership)).toMatchObject({ name: "StorageUnavailableError" });
    expect(await rawPair(agent.url, `${b.path}late`)).toBeUndefined();
    expect(b.fencing).toMatchObject({ session, lost: true });

    // Later writes are refused locally, without a request.
    const before = proxy.seen.length;
    for (const write of [
      () => b.put({ key: "later", value: enc("y") }),
      () => b.delete("late"),
      () => b.transaction([{ op: "put", entry: { key: "t", value: enc("z") } }]),
    ]) {
      const e = await rejection(write());
      expect(e).toMatchObject({ name: "FencedWriteError", code: "fenced_write" });
      expect(e.message).toMatch(
        /this node lost the HA lock at .*core\/lock.*until it acquires the lock again/,
      );
    }
    expect(proxy.seen.slice(before).filter((r) => r.method !== "GET")).toEqual([]);
    // Reads still work on a deposed node.
    expect(await b.get("late")).toBeUndefined();

    // release() acknowledges the loss: the node is an ordinary (unfenced) client again.
    await lock.release();
    expect(b.fencing).toBeUndefined();
    await b.put({ key: "after-release", value: enc("ok") });
    expect(dec((await b.get("after-release"))?.value)).toBe("ok");
  });

  it("the watch notices a destroyed session without any write, and re-acquiring fences with the new session", async () => {
    const b = backend();
    const lock = b.lockWith("core/lock", "node-a");
    const first = await lock.acquire();
    const s1 = await holderSession(agent.url, `${b.path}core/lock`);
    await fetch(`${agent.url}/v1/session/destroy/${s1}`, { method: "PUT" });
    const reason = (await aborted(first)) as Error;
    expect(reason.message).toMatch(/no longer held by this node's session|was invalidated/);
    expect(b.fencing?.lost).toBe(true);
    const second = await lock.acquire();
    expect(second.aborted).toBe(false);
    const s2 = await holderSession(agent.url, `${b.path}core/lock`);
    expect(s2).not.toBe(s1);
    expect(b.fencing).toEqual({ key: `${b.path}core/lock`, session: s2, lost: false });
    await b.put({ key: "k", value: enc("v") });
    expect(txnBodies().at(-1)?.[0]).toMatchObject({ KV: { Verb: "check-session", Session: s2 } });
  });

  it("a deposed handle that asks again at once yields to the standby already waiting", async () => {
    const a = backend({ lockDelayMs: 500 });
    const b = new ConsulBackend({
      address: proxy.address,
      path: a.path,
      lockWaitTimeMs: 2000,
      lockDelayMs: 500,
    });
    open.push(b);
    const lockA = a.lockWith("core/lock", "node-a");
    const leadA = await lockA.acquire();
    const waitingB = b.lockWith("core/lock", "node-b").acquire();
    await new Promise((r) => setTimeout(r, 100));
    await fetch(`${agent.url}/v1/session/destroy/${await holderSession(agent.url, `${a.path}core/lock`)}`, {
      method: "PUT",
    });
    await aborted(leadA);
    // node-a competes again immediately, as core's HA loop does.
    const againA = lockA.acquire();
    const leadB = await waitingB;
    expect(leadB.aborted).toBe(false);
    expect(await a.lockWith("core/lock", "probe").value()).toEqual({ held: true, value: "node-b" });
    expect(
      await Promise.race([
        againA.then(() => "acquired"),
        new Promise((r) => setTimeout(() => r("waiting"), 300)),
      ]),
    ).toBe("waiting");
    await b.close();
    await againA;
    expect(await a.lockWith("core/lock", "probe").value()).toEqual({ held: true, value: "node-a" });
  });

  it("a failing check in a fenced transaction names the caller's op index and keeps the lock", async () => {
    const b = backend();
    await b.put({ key: "guard", value: enc("v1") });
    const lock = b.lockWith("core/lock", "node-a");
    const leadership = await lock.acquire();
    const err = await rejection(
      b.transaction([
        { op: "put", entry: { key: "x", value: enc("1") } },
        { op: "delete", key: "guard" },
        { op: "check", key: "guard", value: enc("wrong") },
      ]),
    );
    expect(err).toMatchObject({ name: "TransactionError", code: "transaction_failed", failedIndex: 2 });
    // Checks see the earlier ops of their transaction (like the memory backend): guard is deleted by op 1.
    expect(err.message).toMatch(
      /check on "guard" \(op 2\) failed: an earlier op of this transaction deletes it/,
    );
    expect(leadership.aborted).toBe(false);
    expect(b.fencing?.lost).toBe(false);
    expect(dec((await b.get("guard"))?.value)).toBe("v1");
  });

  it("Consul-side check failures are reported at the caller's index, not shifted by the fence", async () => {
    const b = backend();
    await b.put({ key: "guard", value: enc("v1") });
    const lock = b.lockWith("core/lock", "node-a");
    await lock.acquire();
    // Make the check-index op fail at Consul: change guard after the check was planned.
    let rewritten = false;
    proxy.intercept = (req) => {
      if (req.url.startsWith("/v1/txn") && !rewritten) {
        rewritten = true;
        // Synchronously, so it lands before the proxy forwards the transaction.
        putSync(`${agent.url}/v1/kv/${b.path}guard`, "v2");
      }
      return undefined;
    };
    const err = await rejection(
      b.transaction([
        { op: "put", entry: { key: "x", value: enc("1") } },
        { op: "check", key: "guard", value: enc("v1") },
      ]),
    );
    expect(err).toMatchObject({ name: "TransactionError", code: "transaction_failed", failedIndex: 1 });
    expect(err.message).toMatch(/at op 1 \("guard"\): failed index check/);
    expect(b.fencing?.lost).toBe(false);
    expect(await b.get("x")).toBeUndefined();
  });

  it("a check sees the earlier ops of its own transaction, as in the memory backend (unfenced and fenced)", async () => {
    for (const fenced of [false, true]) {
      const b = backend();
      if (fenced) await b.lockWith("core/lock", "node-a").acquire();
      await b.put({ key: "k", value: enc("v1") });
      await b.put({ key: "gone", value: enc("x") });
      await b.transaction([
        { op: "put", entry: { key: "k", value: enc("v2") } },
        { op: "check", key: "k", value: enc("v2") },
        { op: "delete", key: "gone" },
        { op: "check", key: "gone", value: undefined },
        { op: "put", entry: { key: "new", value: enc("n") } },
        { op: "check", key: "new", value: enc("n") },
      ]);
      expect(dec((await b.get("k"))?.value)).toBe("v2");
      expect(await b.get("gone")).toBeUndefined();
      expect(dec((await b.get("new"))?.value)).toBe("n");
      // A check against the value from before the transaction fails at its own index.
      const err = await rejection(
        b.transaction([
          { op: "put", entry: { key: "k", value: enc("v3") } },
          { op: "check", key: "k", value: enc("v2") },
        ]),
      );
      expect(err).toMatchObject({ name: "TransactionError", failedIndex: 1 });
      expect(dec((await b.get("k"))?.value)).toBe("v2");
      expect(b.fencing?.lost ?? false).toBe(false);
    }
  });

  it("a fenced put whose base64 body exceeds txn_max_req_len fails with ValueTooLargeError before sending", async () => {
    const b = backend();
    const big = new Uint8Array(400 * 1024).fill(7);
    await b.put({ key: "big", value: big });
    const lock = b.lockWith("core/lock", "node-a");
    await lock.acquire();
    const before = proxy.matching("PUT", "/v1/txn").length;
    const err = await rejection(b.put({ key: "big", value: big }));
    expect(err).toMatchObject({
      name: "ValueTooLargeError",
      code: "value_too_large",
      key: "big",
      size: 400 * 1024,
    });
    expect((err as unknown as { limit: number }).limit).toBeGreaterThan(380 * 1024);
    expect((err as unknown as { limit: number }).limit).toBeLessThan(384 * 1024);
    expect(proxy.matching("PUT", "/v1/txn").length).toBe(before);
    await b.put({ key: "fits", value: new Uint8Array(300 * 1024) });
  });

  it("Consul's own 413 maps to ValueTooLargeError when the configured txn limit is above the server's", async () => {
    const b = backend({ txnMaxRequestBytes: 4 * 1024 * 1024 });
    const lock = b.lockWith("core/lock", "node-a");
    await lock.acquire();
    const err = await rejection(b.put({ key: "big", value: new Uint8Array(500 * 1024) }));
    expect(err).toMatchObject({
      name: "ValueTooLargeError",
      code: "value_too_large",
      key: "big",
      limit: 524_288,
    });
    expect(proxy.matching("PUT", "/v1/txn").length).toBeGreaterThan(0);
  });

  it("values over 512 KiB fail before any request", async () => {
    const b = backend();
    const before = proxy.seen.length;
    const err = await rejection(b.put({ key: "huge", value: new Uint8Array(512 * 1024 + 1) }));
    expect(err).toMatchObject({ name: "ValueTooLargeError", limit: 524_288 });
    const err2 = await rejection(
      b.transaction([{ op: "put", entry: { key: "huge", value: new Uint8Array(512 * 1024 + 1) } }]),
    );
    expect(err2).toMatchObject({ name: "ValueTooLargeError" });
    expect(proxy.seen.length).toBe(before);
  });

  it("only the lock on ha_lock_key fences; other lock keys do not", async () => {
    const b = backend();
    await b.lockWith("locks/other", "node-a").acquire();
    expect(b.fencing).toBeUndefined();
    await b.put({ key: "k", value: enc("v") });
    expect(txnBodies()).toEqual([]);
    const c = backend({ haLockKey: "locks/custom" });
    await c.lockWith("locks/custom", "node-c").acquire();
    expect(c.fencing?.key).toBe(`${c.path}locks/custom`);
  });

  it("retries 500 'No cluster leader' until Consul answers", async () => {
    const b = backend({ retryBudgetMs: 5000 });
    let failures = 0;
    proxy.intercept = (req) => {
      if (req.url.startsWith("/v1/kv/") && failures < 3) {
        failures++;
        return { status: 500, body: "No cluster leader" };
      }
      return undefined;
    };
    await b.put({ key: "k", value: enc("v") });
    expect(failures).toBe(3);
    failures = 0;
    expect(dec((await b.get("k"))?.value)).toBe("v");
    expect(failures).toBe(3);
    failures = 0;
    expect(await b.list("")).toEqual(["k"]);
    expect(proxy.matching("GET", "/v1/kv/").length).toBeGreaterThanOrEqual(8);
  });

  it("does not replay a check-and-set transaction after an ambiguous 500; plain writes are replayed", async () => {
    const b = backend({ retryBudgetMs: 2000 });
    await b.put({ key: "guard", value: enc("v") });
    const txns = await expectCheckAndSetNotReplayed(b, "rpc error: timed out enqueuing operation");
    // Puts and deletes only: replaying them is harmless, so they are retried.
    txns.n = 0;
    const err2 = await rejection(b.transaction([{ op: "put", entry: { key: "a", value: enc("1") } }]));
    expect(err2.message).toMatch(
      /unavailable \(HTTP 500: rpc error: timed out enqueuing operation\) after \d+ attempts/,
    );
    expect(txns.n).toBeGreaterThan(1);
  });

  it("a 429 (Consul's rate limit refused the request, nothing applied) is retried, check-and-set transactions too", async () => {
    const b = backend({ retryBudgetMs: 5000 });
    await b.put({ key: "guard", value: enc("v") });
    let txns = 0;
    proxy.intercept = (req) => {
      if (req.url.startsWith("/v1/txn") && txns < 2) {
        txns++;
        return { status: 429, body: "rate limit exceeded, try again later" };
      }
      return undefined;
    };
    await b.transaction([
      { op: "check", key: "guard", value: enc("v") },
      { op: "put", entry: { key: "guard", value: enc("w") } },
    ]);
    expect(txns).toBe(2);
    expect(dec((await b.get("guard"))?.value)).toBe("w");
  });

  it("a 500 'rpc error making call: EOF' (the server dropped the forwarded write) is ambiguous: no check-and-set replay", async () => {
    const b = backend({ retryBudgetMs: 2000 });
    await b.put({ key: "guard", value: enc("v") });
    await expectCheckAndSetNotReplayed(b, "rpc error making call: EOF");
  });

  it("while the lock is held, a fenced check-and-set transaction is not replayed after an ambiguous 500 either", async () => {
    const b = backend({ retryBudgetMs: 2000 }, false);
    await b.put({ key: "guard", value: enc("v") });
    await b.lockWith("core/lock", "node-a").acquire();
    expect(b.fencing?.lost).toBe(false);
    const txns = await expectCheckAndSetNotReplayed(b, "rpc error: timed out enqueuing operation");
    // A fenced plain put is still replayed.
    txns.n = 0;
    await rejection(b.put({ key: "a", value: enc("1") }));
    expect(txns.n).toBeGreaterThan(1);
  });

  it("a fenced put whose first attempt was applied but unanswered, then fenced on the replay, does not claim it was not written", async () => {
    const b = backend({ retryBudgetMs: 5000 });
    const leadership = await b.lockWith("core/lock", "node-a").acquire();
    const session = await holderSession(agent.url, `${b.path}core/lock`);
    let txns = 0;
    proxy.intercept = (req) => {
      if (!req.url.startsWith("/v1/txn") || ++txns > 1) return undefined;
      // Applied at Consul, the answer lost; then the lock is taken away before the replay.
      putSync(`${agent.url}/v1/txn`, req.body);
      destroySessionSync(agent.url, session);
      return { status: 500, body: "rpc error: timed out enqueuing operation" };
    };
    const err = await rejection(b.put({ key: "maybe", value: enc("m") }));
    expect(txns).toBe(2);
    expect(dec((await b.get("maybe"))?.value)).toBe("m");
    // Still a FencedWriteError (the node must step down), but one that says the write may have landed.
    expect(err).toMatchObject({ name: "FencedWriteError", code: "fenced_write" });
    expect(err.message).not.toMatch(/was rejected because/);
    expect(err.message).toMatch(/may have been applied before the lock was lost/);
    await aborted(leadership);
  });

  it("an unreachable agent fails with StorageUnavailableError naming the address after the retry budget", async () => {
    const dead = new ConsulBackend({ address: "127.0.0.1:1", retryBudgetMs: 300 });
    open.push(dead);
    const started = Date.now();
    const err = await rejection(dead.get("k"));
    expect(Date.now() - started).toBeGreaterThanOrEqual(250);
    expect(err).toMatchObject({ name: "StorageUnavailableError", code: "unavailable" });
    expect(err.message).toMatch(
      /^get "k": Consul at http:\/\/127\.0\.0\.1:1 is unavailable \(.*ECONNREFUSED.*\) after \d+ attempts over \d+ ms; check that the agent is running/,
    );
  });

  it("consistency_mode strong sends ?consistent on reads and lists", async () => {
    const b = backend({ consistencyMode: "strong" });
    await b.put({ key: "k", value: enc("v") });
    proxy.seen.length = 0;
    await b.get("k");
    await b.list("");
    await b.lockWith("core/lock", "n").value();
    const gets = proxy.matching("GET", "/v1/kv/");
    expect(gets).toHaveLength(3);
    for (const g of gets) expect(g.url).toMatch(/[?&]consistent=1/);
  });

  it("close() releases a held lock at once and refuses later calls", async () => {
    const b = backend({}, true);
    const observer = new ConsulBackend({ address: agent.address, path: b.path });
    open.push(observer);
    const leadership = await b.lockWith("core/lock", "node-a").acquire();
    expect(await observer.lockWith("core/lock", "x").value()).toEqual({ held: true, value: "node-a" });
    await b.close();
    expect(leadership.aborted).toBe(true);
    expect(await observer.lockWith("core/lock", "x").value()).toEqual({ held: false });
    const err = await rejection(b.get("k"));
    expect(err).toMatchObject({
      name: "StorageUnavailableError",
      message: "the Consul backend was closed; open a new one",
    });
    expect(() => b.lockWith("core/lock", "again")).toThrow(/closed/);
  });

  it("close() while a release() is in flight waits for it: the key is free and the session gone afterwards", async () => {
    const b = backend({ lockDelayMs: 5000 });
    const lock = b.lockWith("core/lock", "node-a");
    await lock.acquire();
    const session = lock.session as string;
    // Slow requests, so close() lands while release() is still talking to Consul.
    proxy.delayMs = 150;
    const releasing = lock.release();
    await new Promise((r) => setTimeout(r, 20));
    await b.close();
    await releasing;
    expect((await rawPair(agent.url, `${b.path}core/lock`))?.Session).toBeUndefined();
    const info = (await (await fetch(`${agent.url}/v1/session/info/${session}`)).json()) as unknown[] | null;
    expect(info ?? []).toEqual([]);
  });

  it("a second close() waits for the first: when either resolves, the lock is free", async () => {
    const b = backend({ lockDelayMs: 5000 });
    await b.lockWith("core/lock", "node-a").acquire();
    proxy.delayMs = 100;
    const first = b.close();
    await b.close();
    expect((await rawPair(agent.url, `${b.path}core/lock`))?.Session).toBeUndefined();
    await first;
  });

  it("max_parallel bounds the storage requests in flight", async () => {
    const b = backend({ maxParallel: 3 });
    proxy.delayMs = 20;
    proxy.maxInFlight = 0;
    await Promise.all(Array.from({ length: 30 }, (_, i) => b.put({ key: `p/${i}`, value: enc(String(i)) })));
    expect(proxy.maxInFlight).toBe(3);
    proxy.delayMs = 0;
    expect(await b.list("p/")).toHaveLength(30);
  });

  it('the lock session is named "Bulwark Lock" with session_ttl; release() and an aborted wait destroy their sessions', async () => {
    const sessions = async () =>
      (await (await fetch(`${agent.url}/v1/session/list`)).json()) as {
        ID: string;
        Name: string;
        TTL: string;
        LockDelay: number;
      }[];
    const b = backend({ sessionTtlMs: 12_000, lockDelayMs: 2000 });
    const lock = b.lockWith("core/lock", "node-a");
    await lock.acquire();
    const id = lock.session as string;
    expect((await sessions()).find((s) => s.ID === id)).toMatchObject({
      Name: "Bulwark Lock",
      TTL: "12s",
      LockDelay: 2e9,
    });
    await lock.release();
    expect((await sessions()).some((s) => s.ID === id)).toBe(false);
    expect(lock.session).toBeUndefined();

    const holder = b.lockWith("core/lock", "holder");
    await holder.acquire();
    const before = new Set((await sessions()).map((s) => s.ID));
    const giveUp = new AbortController();
    const waiting = b.lockWith("core/lock", "waiter").acquire(giveUp.signal);
    await new Promise((r) => setTimeout(r, 200));
    const during = (await sessions()).filter((s) => !before.has(s.ID));
    expect(during).toHaveLength(1);
    giveUp.abort();
    await expect(waiting).rejects.toMatchObject({ name: "AbortError" });
    const deadline = Date.now() + 2000;
    while ((await sessions()).some((s) => s.ID === during[0]?.ID) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 20));
    }
    expect((await sessions()).some((s) => s.ID === during[0]?.ID)).toBe(false);
  });

  it("close() ends a pending wait with StorageUnavailableError", async () => {
    const holder = backend();
    await holder.lockWith("core/lock", "holder").acquire();
    const waiter = new ConsulBackend({ address: agent.address, path: holder.path, lockWaitTimeMs: 5000 });
    const pending = waiter.lockWith("core/lock", "waiter").acquire();
    await new Promise((r) => setTimeout(r, 100));
    // close() waits for the wait to end, so the rejection lands before close() resolves.
    const ended = expect(pending).rejects.toMatchObject({
      name: "StorageUnavailableError",
      message: "the Consul backend was closed while waiting for the lock",
    });
    await waiter.close();
    await ended;
  });

  it("close() during a pending wait destroys the wait's session before it resolves (no session left to expire)", async () => {
    const sessionIds = async () =>
      new Set(
        ((await (await fetch(`${agent.url}/v1/session/list`)).json()) as { ID: string }[]).map((s) => s.ID),
      );
    const holder = backend({}, true);
    await holder.lockWith("core/lock", "holder").acquire();
    const before = await sessionIds();
    const waiter = new ConsulBackend({ address: agent.address, path: holder.path, lockWaitTimeMs: 5000 });
    const pending = waiter.lockWith("core/lock", "waiter").acquire();
    pending.catch(() => undefined);
    let during: string[] = [];
    for (let i = 0; i < 100 && during.length === 0; i++) {
      await new Promise((r) => setTimeout(r, 20));
      during = [...(await sessionIds())].filter((id) => !before.has(id));
    }
    expect(during).toHaveLength(1);
    await waiter.close();
    await expect(pending).rejects.toMatchObject({ name: "StorageUnavailableError" });
    expect((await sessionIds()).has(during[0] as string)).toBe(false);
  });

  it("lock handles used only for value() (core's leader lookups) are not kept alive by the backend", async () => {
    setFlagsFromString("--expose-gc");
    const gc = runInNewContext("gc") as () => void;
    const b = backend({}, true);
    const refs: WeakRef<object>[] = [];
    // Each handle lives only inside these calls.
    const probe = async (i: number): Promise<unknown> => {
      const lock = b.lockWith("core/lock", `probe-${i}`);
      refs.push(new WeakRef(lock));
      return (await lock.value()).held;
    };
    const holdAndRelease = async (): Promise<void> => {
      const lock = b.lockWith("core/lock", "held");
      refs.push(new WeakRef(lock));
      await lock.acquire();
      await lock.release();
    };
    for (let i = 0; i < 20; i++) expect(await probe(i)).toBe(false);
    // An acquired-and-released handle is not kept either.
    await holdAndRelease();
    for (let i = 0; i < 10 && refs.some((r) => r.deref() !== undefined); i++) {
      await new Promise((r) => setTimeout(r, 20));
      gc();
    }
    expect(refs.filter((r) => r.deref() !== undefined)).toHaveLength(0);
  });

  it("a request started with an already-aborted signal is not sent (a blocking query would otherwise run out its wait)", async () => {
    const http = new ConsulHttp(resolveOptions({ address: proxy.address }), 4);
    try {
      const first = await http.raw.kv.get({ key: `${run}/abort-probe`, buffer: true, ctx: http.ctx().ctx });
      const index = first[0].headers?.["x-consul-index"] as string;
      const gone = new AbortController();
      gone.abort();
      proxy.seen.length = 0;
      const started = Date.now();
      const outcome = await http
        .retry(
          "blocking read",
          async () => {
            const { ctx, done } = http.ctx(gone.signal);
            try {
              return await http.raw.kv.get({
                key: `${run}/abort-probe`,
                buffer: true,
                ctx,
                index,
                wait: "3s",
              });
            } finally {
              done();
            }
          },
          { idempotent: true, signal: gone.signal },
        )
        .then(
          () => "resolved",
          (err: Error) => err.name,
        );
      expect(outcome).toBe("AbortError");
      expect(Date.now() - started).toBeLessThan(1000);
      expect(proxy.seen).toEqual([]);
    } finally {
      http.close();
    }
  });

  it("a session_ttl Consul refuses is a clear error on acquire", async () => {
    // The test agents allow TTLs down to 1s; Consul caps them at 24h.
    const b = backend({ sessionTtlMs: 25 * 3_600_000 });
    const err = await rejection(b.lockWith("core/lock", "n").acquire());
    expect(err.message).toMatch(
      /^Consul refused session_ttl 90000s \(.*Invalid Session TTL.*\): Consul accepts from the servers' session_ttl_min \(10s by default\) up to 24h$/,
    );
  });
});

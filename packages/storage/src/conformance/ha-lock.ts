/** The conformance section "HA lock": `lockWith()` on one and on two nodes. */
import { describe, expect, it, type TestContext } from "vitest";
import type { HAConformanceTarget } from "../testing.js";
import type { Lock } from "../types.js";
import { aborted, rejection, stillPending, within } from "./shared.js";

/** What the HA tests need from the suite: the target, and the afterEach cleanup's hooks. */
export interface HALockContext {
  /** The HA target for the running test's backend (`options.ha(backend)`), `undefined` to skip. */
  target: () => HAConformanceTarget | undefined;
  /** Remembers a lock so that afterEach releases it, however the test ends. */
  track: (lock: Lock) => void;
  /** The running test's signal for lock waits; afterEach aborts it, so no wait outlives its test. */
  waits: () => AbortSignal;
}

/** How long "still waiting" is observed before a lock hand-over is triggered. */
const QUIET_MS = 100;
const LOCK = "core/lock";

/** Registers the HA lock tests (the caller registers them only when `options.ha` is given). */
export function registerHALockTests(kit: HALockContext): void {
  describe("HA lock", () => {
    registerHoldingTests(kit);
    registerWaitingTests(kit);
  });
}

/** The running test's HA target with `handover` defaulted and a `lock()` that tracks its locks. */
function haTarget(kit: HALockContext, ctx: TestContext) {
  const t = kit.target();
  if (t === undefined) return ctx.skip("no HA target (options.ha)");
  const handover = t.handoverTimeoutMs ?? 5000;
  const lock = (key: string, value: string, node: "a" | "b" = "a"): Lock => {
    const l = (node === "a" ? t.backend : (t.peer ?? t.backend)).lockWith(key, value);
    kit.track(l);
    return l;
  };
  return { ...t, handover, lock };
}

/** Taking, observing, handing over and releasing the lock. */
function registerHoldingTests(kit: HALockContext): void {
  const target = (ctx: TestContext) => haTarget(kit, ctx);
  const { waits } = kit;

  it("value() of a lock nobody holds is { held: false }", async (ctx) => {
    const { lock } = target(ctx);
    const v = await lock(LOCK, "node-a").value();
    expect(v.held).toBe(false);
    expect(v.value ?? "").toBe("");
  });

  it("acquire() takes the lock; value() reports the holder's value from any node", async (ctx) => {
    const { lock } = target(ctx);
    const a = lock(LOCK, "node-a");
    const leadership = await a.acquire(waits());
    expect(leadership.aborted).toBe(false);
    expect(await a.value()).toEqual({ held: true, value: "node-a" });
    expect(await lock(LOCK, "observer", "b").value()).toEqual({ held: true, value: "node-a" });
  });

  it("a second node waits until the first releases (mutual exclusion)", async (ctx) => {
    const { lock, handover } = target(ctx);
    const a = lock(LOCK, "node-a");
    const b = lock(LOCK, "node-b", "b");
    const leadA = await a.acquire(waits());
    const pb = b.acquire(waits());
    expect(await stillPending(pb, QUIET_MS), "node-b acquired a held lock").toBe(true);
    expect(await b.value()).toEqual({ held: true, value: "node-a" });
    await a.release();
    await within(aborted(leadA), handover, "node-a's leadership signal to abort on release");
    const leadB = await within(pb, handover, "node-b to acquire after node-a released");
    expect(leadB.aborted).toBe(false);
    expect(await a.value()).toEqual({ held: true, value: "node-b" });
  });

  it("a release hands the lock to exactly one of two waiters", async (ctx) => {
    const { lock, handover } = target(ctx);
    const a = lock(LOCK, "node-a");
    await a.acquire(waits());
    const b = lock(LOCK, "node-b", "b");
    const c = lock(LOCK, "node-c", "b");
    const pb = b.acquire(waits()).then((signal) => ({ handle: b, value: "node-b", signal }));
    const pc = c.acquire(waits()).then((signal) => ({ handle: c, value: "node-c", signal }));
    // Settled by afterEach's abort when the test fails early: not an unhandled rejection.
    pb.catch(() => {});
    pc.catch(() => {});
    expect(await stillPending(Promise.race([pb, pc]), QUIET_MS), "a waiter acquired a held lock").toBe(true);
    await a.release();
    const first = await within(Promise.race([pb, pc]), handover, "a waiter to acquire after the release");
    const other = first.handle === b ? pc : pb;
    expect(await stillPending(other, QUIET_MS), "both waiters hold the lock after one release").toBe(true);
    expect(await a.value()).toEqual({ held: true, value: first.value });
    await first.handle.release();
    const second = await within(other, handover, "the other waiter to acquire after the second release");
    expect(first.signal.aborted).toBe(true);
    expect(second.signal.aborted).toBe(false);
    expect(await a.value()).toEqual({ held: true, value: second.value });
  });

  it("release() frees the lock and the same handle can acquire it again", async (ctx) => {
    const { lock, handover } = target(ctx);
    const a = lock(LOCK, "node-a");
    const first = await a.acquire(waits());
    await a.release();
    expect(first.aborted).toBe(true);
    expect((await a.value()).held).toBe(false);
    const second = await within(a.acquire(waits()), handover, "re-acquire after release");
    expect(second.aborted).toBe(false);
    expect(await a.value()).toEqual({ held: true, value: "node-a" });
  });
}

/** Releases by non-holders, abandoned and pre-aborted waits, independent keys, forced loss. */
function registerWaitingTests(kit: HALockContext): void {
  const target = (ctx: TestContext) => haTarget(kit, ctx);
  const { waits } = kit;

  it("release() without holding the lock does not disturb the holder", async (ctx) => {
    const { lock } = target(ctx);
    const idle = lock(LOCK, "idle", "b");
    await idle.release();
    const holder = lock(LOCK, "holder");
    const lead = await holder.acquire(waits());
    await idle.release();
    expect(lead.aborted).toBe(false);
    expect(await idle.value()).toEqual({ held: true, value: "holder" });
  });

  it("aborting a wait rejects with AbortError and leaves no trace", async (ctx) => {
    const { lock, handover } = target(ctx);
    const a = lock(LOCK, "node-a");
    await a.acquire(waits());
    const giveUp = new AbortController();
    const pb = lock(LOCK, "node-b", "b").acquire(giveUp.signal);
    expect(await stillPending(pb, QUIET_MS)).toBe(true);
    giveUp.abort();
    const err = await within(rejection(pb), handover, "the aborted acquire to reject");
    expect(err).toMatchObject({ name: "AbortError" });
    await a.release();
    // node-b gave up, so nobody holds the lock now and a third node gets it at once.
    expect((await a.value()).held).toBe(false);
    const c = lock(LOCK, "node-c", "b");
    await within(c.acquire(waits()), handover, "node-c to acquire the free lock");
    expect(await a.value()).toEqual({ held: true, value: "node-c" });
  });

  it("an already-aborted signal rejects with AbortError and does not take a free lock", async (ctx) => {
    const { lock } = target(ctx);
    const a = lock(LOCK, "node-a");
    const err = await rejection(a.acquire(AbortSignal.abort()));
    expect(err).toMatchObject({ name: "AbortError" });
    expect((await a.value()).held).toBe(false);
  });

  it("locks on different keys are independent", async (ctx) => {
    const { lock, handover } = target(ctx);
    await lock("locks/one", "node-a").acquire(waits());
    const two = lock("locks/two", "node-b", "b");
    await within(two.acquire(waits()), handover, "a lock on another key");
    expect(await two.value()).toEqual({ held: true, value: "node-b" });
  });

  it("forced loss aborts the holder's leadership signal and the waiter takes over", async (ctx) => {
    const { lock, handover, breakLock } = target(ctx);
    if (breakLock === undefined) return ctx.skip("no breakLock in the HA target");
    const a = lock(LOCK, "node-a");
    const leadA = await a.acquire(waits());
    const b = lock(LOCK, "node-b", "b");
    const pb = b.acquire(waits());
    expect(await stillPending(pb, QUIET_MS)).toBe(true);
    await breakLock(LOCK);
    await within(aborted(leadA), handover, "node-a's leadership signal to abort on forced loss");
    await within(pb, handover, "node-b to take over after the forced loss");
    expect(await a.value()).toEqual({ held: true, value: "node-b" });
    // The deposed node's release must not free its successor's lock.
    await a.release();
    expect(await b.value()).toEqual({ held: true, value: "node-b" });
  });
}

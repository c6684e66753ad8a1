import { StorageError } from "@bulwark/storage";
import { describe, expect, it } from "vitest";
import { MemoryBackend } from "./memory-backend.js";

/** Resolves to "pending" when `p` has not settled after the event loop has turned a few times. */
async function state(p: Promise<unknown>): Promise<"pending" | "resolved" | "rejected"> {
  const pending = Symbol("pending");
  const r = await Promise.race([
    p.then(
      () => "resolved" as const,
      () => "rejected" as const,
    ),
    new Promise<symbol>((res) => setTimeout(() => res(pending), 5)),
  ]);
  return r === pending ? "pending" : (r as "resolved" | "rejected");
}

describe("MemoryBackend.lockWith", () => {
  it("grants the lock to one holder at a time, in FIFO order", async () => {
    const b = new MemoryBackend();
    const a = b.lockWith("core/lock", "node-a");
    const c = b.lockWith("core/lock", "node-c");
    const d = b.lockWith("core/lock", "node-d");
    const leadA = await a.acquire();
    const pc = c.acquire();
    const pd = d.acquire();
    expect(await state(pc)).toBe("pending");
    expect(await a.value()).toEqual({ held: true, value: "node-a" });
    await a.release();
    expect(leadA.aborted).toBe(true);
    const leadC = await pc;
    expect(await state(pd)).toBe("pending");
    expect(await d.value()).toEqual({ held: true, value: "node-c" });
    await c.release();
    expect(leadC.aborted).toBe(true);
    await pd;
    expect(await a.value()).toEqual({ held: true, value: "node-d" });
    await d.release();
    expect(await a.value()).toEqual({ held: false });
  });

  it("aborting a wait rejects with AbortError and leaves no trace in the queue", async () => {
    const b = new MemoryBackend();
    const a = b.lockWith("k", "a");
    const w = b.lockWith("k", "w");
    const n = b.lockWith("k", "n");
    await a.acquire();
    const ac = new AbortController();
    const pw = w.acquire(ac.signal);
    const pn = n.acquire();
    ac.abort(new Error("shutting down"));
    const err = await pw.catch((e: unknown) => e);
    expect(err).toMatchObject({ name: "AbortError" });
    expect((err as Error).cause).toMatchObject({ message: "shutting down" });
    await a.release();
    await pn;
    expect(await w.value()).toEqual({ held: true, value: "n" });
    // The aborted handle can wait again later.
    const again = w.acquire();
    await n.release();
    await again;
    expect(await w.value()).toEqual({ held: true, value: "w" });
  });

  it("an already-aborted signal rejects at once, even when the lock is free", async () => {
    const b = new MemoryBackend();
    const l = b.lockWith("k", "v");
    await expect(l.acquire(AbortSignal.abort())).rejects.toMatchObject({ name: "AbortError" });
    expect(await l.value()).toEqual({ held: false });
  });

  it("forceRelease aborts the holder's signal with a reason and hands the lock on", async () => {
    const b = new MemoryBackend();
    const a = b.lockWith("k", "a");
    const c = b.lockWith("k", "c");
    const lead = await a.acquire();
    const pc = c.acquire();
    expect(b.forceRelease("k")).toBe(true);
    expect(lead.aborted).toBe(true);
    expect(lead.reason).toMatchObject({ code: "unavailable" });
    await pc;
    // The deposed handle's release must not free its successor's hold.
    await a.release();
    expect(await a.value()).toEqual({ held: true, value: "c" });
    await c.release();
    expect(b.forceRelease("k")).toBe(false);
  });

  it("acquire while holding returns the same signal; a second concurrent wait is refused", async () => {
    const b = new MemoryBackend();
    const a = b.lockWith("k", "a");
    const w = b.lockWith("k", "w");
    const s1 = await a.acquire();
    expect(await a.acquire()).toBe(s1);
    const first = w.acquire();
    await expect(w.acquire()).rejects.toThrow(/already waiting/);
    await a.release();
    await first;
    expect(await w.value()).toEqual({ held: true, value: "w" });
  });

  it("the second concurrent wait is a StorageError invalid_operation (the caller's bug), message as before", async () => {
    const b = new MemoryBackend();
    const a = b.lockWith("k", "a");
    const w = b.lockWith("k", "w");
    await a.acquire();
    const first = w.acquire();
    const err = await w.acquire().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StorageError);
    expect(err).toMatchObject({
      domain: "storage",
      code: "invalid_operation",
      message: 'acquire() is already waiting for HA lock "k" on this handle; await or abort that call first',
    });
    await a.release();
    await first;
  });

  it("locks on different keys, or on different backends, are independent", async () => {
    const b1 = new MemoryBackend();
    const b2 = new MemoryBackend();
    await b1.lockWith("x", "1").acquire();
    await b1.lockWith("y", "2").acquire();
    await b2.lockWith("x", "3").acquire();
    expect(await b1.lockWith("x", "?").value()).toEqual({ held: true, value: "1" });
    expect(await b2.lockWith("x", "?").value()).toEqual({ held: true, value: "3" });
  });

  it("a holder that re-acquires from its leadership signal's abort handler queues behind the waiter", async () => {
    for (const lose of ["forceRelease", "release"] as const) {
      const b = new MemoryBackend();
      const a = b.lockWith("core/lock", "node-a");
      const w = b.lockWith("core/lock", "node-w");
      const leadA = await a.acquire();
      const pw = w.acquire();
      let again: Promise<AbortSignal> | undefined;
      // A standby loop that tries again as soon as it hears of the loss, synchronously.
      leadA.addEventListener("abort", () => {
        again = a.acquire();
      });
      if (lose === "forceRelease") b.forceRelease("core/lock");
      else await a.release();
      const leadW = await pw;
      expect(await state(again as Promise<AbortSignal>), `${lose}: node-a got the lock back at once`).toBe(
        "pending",
      );
      expect(await w.value(), lose).toEqual({ held: true, value: "node-w" });
      expect(leadW.aborted, `${lose}: node-w's leadership`).toBe(false);
      await w.release();
      expect((await (again as Promise<AbortSignal>)).aborted).toBe(false);
      expect(await w.value()).toEqual({ held: true, value: "node-a" });
    }
  });

  it("release without holding is a no-op", async () => {
    const b = new MemoryBackend();
    const a = b.lockWith("k", "a");
    await a.release();
    const other = b.lockWith("k", "o");
    await other.acquire();
    await a.release();
    expect(await a.value()).toEqual({ held: true, value: "o" });
  });
});

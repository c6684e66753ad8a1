import { errorKinds } from "@bulwark/errors";
import { SealUnavailableError } from "@bulwark/seal";
import { describe, expect, it } from "vitest";
import { PoolClosedError, poolSizeFor, SessionPool } from "./session-pool.js";

function fakePool(max: number) {
  let next = 1;
  const opened: number[] = [];
  const closed: number[] = [];
  const pool = new SessionPool(
    max,
    () => {
      const h = Buffer.alloc(8);
      h.writeUInt32LE(next, 0);
      opened.push(next++);
      return h;
    },
    (h) => {
      closed.push(h.readUInt32LE(0));
    },
  );
  return { pool, opened, closed };
}

const id = (h: Buffer) => h.readUInt32LE(0);

describe("SessionPool", () => {
  it("opens lazily up to max, then queues callers in FIFO order", async () => {
    const { pool, opened } = fakePool(2);
    const a = await pool.acquire();
    const b = await pool.acquire();
    expect(opened).toEqual([1, 2]);
    const order: number[] = [];
    const c = pool.acquire().then((h) => {
      order.push(1);
      return h;
    });
    const d = pool.acquire().then((h) => {
      order.push(2);
      return h;
    });
    expect(pool.stats()).toEqual({ open: 2, busy: 2, waiting: 2, max: 2 });
    pool.release(a, "ok");
    pool.release(b, "ok");
    expect(id(await c)).toBe(1);
    expect(id(await d)).toBe(2);
    expect(order).toEqual([1, 2]);
    expect(opened).toEqual([1, 2]);
  });

  it("never hands one session to two callers at once", async () => {
    const { pool } = fakePool(3);
    const inUse = new Set<number>();
    let overlaps = 0;
    await Promise.all(
      Array.from({ length: 50 }, async (_, i) => {
        const h = await pool.acquire();
        if (inUse.has(id(h))) overlaps++;
        inUse.add(id(h));
        await new Promise((r) => setTimeout(r, i % 3));
        inUse.delete(id(h));
        pool.release(h, "ok");
      }),
    );
    expect(overlaps).toBe(0);
    expect(pool.stats().open).toBeLessThanOrEqual(3);
  });

  it("closes discarded sessions, forgets gone ones, and opens a fresh one for a waiter", async () => {
    const { pool, opened, closed } = fakePool(1);
    const a = await pool.acquire();
    const waiting = pool.acquire();
    pool.release(a, "discard");
    expect(closed).toEqual([1]);
    const b = await waiting;
    expect(id(b)).toBe(2);
    pool.release(b, "gone");
    expect(closed).toEqual([1]); // a session the HSM dropped is not closed again
    expect(pool.stats().open).toBe(0);
    expect(opened).toEqual([1, 2]);
  });

  it("close() rejects waiters with PoolClosedError and closes busy sessions on release", async () => {
    const { pool, closed } = fakePool(1);
    const a = await pool.acquire();
    const waiting = pool.acquire();
    pool.close(false);
    await expect(waiting).rejects.toBeInstanceOf(PoolClosedError);
    await expect(pool.acquire()).rejects.toBeInstanceOf(PoolClosedError);
    pool.release(a, "ok");
    expect(closed).toEqual([1]);
  });

  it("PoolClosedError's kind is '<package>:<Class>' like every Bulwark error (seal/unavailable)", async () => {
    const { pool } = fakePool(1);
    pool.close(false);
    const err: unknown = await pool.acquire().catch((e: unknown) => e);
    expect(PoolClosedError.kind).toBe("@bulwark/seal-pkcs11:PoolClosedError");
    expect(errorKinds(err)[0]).toBe("@bulwark/seal-pkcs11:PoolClosedError");
    expect(err).toBeInstanceOf(SealUnavailableError);
    expect(err).toMatchObject({ name: "PoolClosedError", domain: "seal", code: "unavailable" });
  });

  it("close(gone) does not close idle sessions the HSM already dropped", async () => {
    const { pool, closed } = fakePool(2);
    const a = await pool.acquire();
    pool.release(a, "ok");
    pool.close(true);
    expect(closed).toEqual([]);
    expect(pool.stats().open).toBe(0);
  });

  it("close(gone) does not close busy sessions on release either (their handle numbers may be reused)", async () => {
    const { pool, closed } = fakePool(2);
    const a = await pool.acquire();
    const b = await pool.acquire();
    pool.close(true);
    // An operation that finished just before the HSM dropped the sessions comes back "ok".
    pool.release(a, "ok");
    pool.release(b, "discard");
    expect(closed).toEqual([]);
    expect(pool.stats().open).toBe(0);
  });

  it("a failed reopen for one waiter does not strand the waiters behind it", async () => {
    let next = 1;
    let failOpens = 0;
    const pool = new SessionPool(
      1,
      () => {
        if (failOpens > 0) {
          failOpens--;
          throw new Error("C_OpenSession returned CKR_FUNCTION_FAILED");
        }
        const h = Buffer.alloc(8);
        h.writeUInt32LE(next++, 0);
        return h;
      },
      () => undefined,
    );
    const a = await pool.acquire();
    const first = pool.acquire();
    const second = pool.acquire();
    failOpens = 1;
    pool.release(a, "discard");
    await expect(first).rejects.toThrow("CKR_FUNCTION_FAILED");
    // The pool has room again (nothing is busy): the next waiter gets a session, not an endless wait.
    const outcome = await Promise.race([
      second.then((h) => `session ${id(h)}`),
      new Promise((r) => setTimeout(() => r("still waiting"), 50)),
    ]);
    expect(outcome).toBe("session 2");
    expect(pool.stats()).toEqual({ open: 1, busy: 1, waiting: 0, max: 1 });
  });

  it("passes an open failure to the caller", async () => {
    const pool = new SessionPool(
      1,
      () => {
        throw new Error("C_OpenSession failed");
      },
      () => undefined,
    );
    await expect(pool.acquire()).rejects.toThrow("C_OpenSession failed");
    expect(pool.stats().open).toBe(0);
  });
});

describe("poolSizeFor", () => {
  it("uses the token's read-write limit minus the login session, capped at 16", () => {
    expect(poolSizeFor(0, undefined)).toBe(16); // CK_EFFECTIVELY_INFINITE
    expect(poolSizeFor(2 ** 64 - 1, undefined)).toBe(16); // CK_UNAVAILABLE_INFORMATION
    expect(poolSizeFor(5, undefined)).toBe(4);
    expect(poolSizeFor(1024, undefined)).toBe(16);
  });

  it("takes max_parallel when the token allows it, and says what to set when it does not", () => {
    expect(poolSizeFor(0, 64)).toBe(64);
    expect(poolSizeFor(9, 8)).toBe(8);
    expect(() => poolSizeFor(9, 9)).toThrow(/set max_parallel to 8 or less/);
    expect(() => poolSizeFor(1, undefined)).toThrow(/needs two/);
  });
});

describe("SessionPool: abort while waiting", () => {
  it("an aborted signal rejects with its reason and opens nothing", async () => {
    const { pool, opened } = fakePool(1);
    const reason = new Error("gave up");
    await expect(pool.acquire(AbortSignal.abort(reason))).rejects.toBe(reason);
    expect(opened).toEqual([]);
    expect(pool.stats()).toEqual({ open: 0, busy: 0, waiting: 0, max: 1 });
  });

  it("an abort while waiting leaves the queue: the released session goes to the next waiter", async () => {
    const { pool } = fakePool(1);
    const a = await pool.acquire();
    const controller = new AbortController();
    const gaveUp = pool.acquire(controller.signal);
    const next = pool.acquire();
    expect(pool.stats().waiting).toBe(2);
    controller.abort("timeout");
    await expect(gaveUp).rejects.toBe("timeout");
    expect(pool.stats().waiting).toBe(1);
    pool.release(a, "ok");
    expect(id(await next)).toBe(id(a));
    expect(pool.stats()).toEqual({ open: 1, busy: 1, waiting: 0, max: 1 });
  });

  it("a waiter served before the abort keeps its session; the later abort changes nothing", async () => {
    const { pool } = fakePool(1);
    const a = await pool.acquire();
    const controller = new AbortController();
    const waiting = pool.acquire(controller.signal);
    pool.release(a, "ok");
    const h = await waiting;
    controller.abort();
    expect(id(h)).toBe(id(a));
    expect(pool.stats()).toEqual({ open: 1, busy: 1, waiting: 0, max: 1 });
  });
});

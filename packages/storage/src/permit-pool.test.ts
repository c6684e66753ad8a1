import { describe, expect, it } from "vitest";
import { deferred, MapBackend } from "../test/map-backend.js";
import { DEFAULT_PARALLEL_OPERATIONS, PermitPool, PermitPoolBackend, withPermitPool } from "./permit-pool.js";
import { type Backend, isHABackend, isTransactional, type Lock } from "./types.js";

const bytes = (s: string): Uint8Array => new TextEncoder().encode(s);
const tick = (): Promise<void> => new Promise((r) => setTimeout(r, 0));

describe("PermitPoolBackend", () => {
  it("never runs more than maxParallel operations at once, and runs them all", async () => {
    const inner = new MapBackend();
    const gate = deferred();
    inner.gate = gate.promise;
    const pool = new PermitPoolBackend(inner, 3);
    const calls = [
      ...Array.from({ length: 5 }, (_, i) => pool.put({ key: `k${i}`, value: bytes(String(i)) })),
      pool.get("k0"),
      pool.list(""),
      pool.delete("zz"),
      pool.transaction?.([{ op: "put", entry: { key: "t", value: bytes("t") } }]),
    ];
    await tick();
    expect(inner.inFlight).toBe(3);
    expect(pool.active).toBe(3);
    expect(pool.waiting).toBe(calls.length - 3);
    gate.resolve();
    await Promise.all(calls);
    expect(inner.maxInFlight).toBe(3);
    expect(pool.active).toBe(0);
    expect(pool.waiting).toBe(0);
    expect([...inner.data.keys()].sort()).toEqual(["k0", "k1", "k2", "k3", "k4", "t"]);
  });

  it(`defaults to ${DEFAULT_PARALLEL_OPERATIONS} parallel operations, like Vault`, async () => {
    const inner = new MapBackend();
    const gate = deferred();
    inner.gate = gate.promise;
    const pool = withPermitPool(inner);
    expect(pool.maxParallel).toBe(128);
    const calls = Array.from({ length: 200 }, (_, i) => pool.get(`k${i}`));
    await tick();
    expect(inner.inFlight).toBe(128);
    gate.resolve();
    await Promise.all(calls);
    expect(inner.maxInFlight).toBe(128);
  });

  it("serves waiting operations in arrival order", async () => {
    const inner = new MapBackend();
    const gate = deferred();
    inner.gate = gate.promise;
    const pool = new PermitPoolBackend(inner, 1);
    const calls = ["a", "b", "c", "d"].map((k) => pool.get(k));
    await tick();
    gate.resolve();
    await Promise.all(calls);
    expect(inner.started).toEqual(["a", "b", "c", "d"]);
  });

  it("passes results and errors through, and a failed operation frees its permit", async () => {
    const failing: Backend = {
      get: async () => {
        throw new Error("boom");
      },
      put: () => {
        // A synchronous throw must not leak the permit either.
        throw new Error("sync boom");
      },
      delete: async () => {},
      list: async (p) => [`${p}x`],
    };
    const pool = new PermitPoolBackend(failing, 1);
    await expect(pool.get("k")).rejects.toThrow("boom");
    await expect(pool.put({ key: "k", value: bytes("v") })).rejects.toThrow("sync boom");
    expect(pool.active).toBe(0);
    expect(await pool.list("a/")).toEqual(["a/x"]);
  });

  it("returns what the inner backend returns", async () => {
    const inner = new MapBackend();
    const pool = withPermitPool(inner, 2);
    await pool.put({ key: "a/b", value: bytes("v") });
    expect(await pool.get("a/b")).toEqual({ key: "a/b", value: bytes("v") });
    expect(await pool.list("")).toEqual(["a/"]);
    await pool.delete("a/b");
    expect(await pool.get("a/b")).toBeUndefined();
  });

  it("offers transaction only when the inner backend is transactional", async () => {
    const inner = new MapBackend();
    const tx = withPermitPool(inner, 2);
    expect(isTransactional(tx)).toBe(true);
    expect(tx.transactionLimits).toBe(inner.transactionLimits);
    await tx.transaction([{ op: "put", entry: { key: "t", value: bytes("1") } }]);
    expect(inner.data.has("t")).toBe(true);

    const plain: Backend = {
      get: inner.get.bind(inner),
      put: inner.put.bind(inner),
      delete: inner.delete.bind(inner),
      list: inner.list.bind(inner),
    };
    const wrapped = withPermitPool(plain, 2);
    expect(isTransactional(wrapped)).toBe(false);
    expect("transaction" in wrapped).toBe(false);
    expect(isHABackend(wrapped)).toBe(false);
  });

  it("passes lockWith through without taking a permit", async () => {
    const inner = new MapBackend();
    const gate = deferred();
    inner.gate = gate.promise;
    const lock: Lock = {
      acquire: async () => new AbortController().signal,
      release: async () => {},
      value: async () => ({ held: true, value: "v" }),
    };
    const ha = Object.assign(inner, { lockWith: (_key: string, _value: string) => lock });
    const pool = withPermitPool(ha, 1);
    const blocked = pool.get("k");
    await tick();
    expect(pool.waiting).toBe(0);
    expect(isHABackend(pool)).toBe(true);
    // The pool is saturated by the gated get, yet the lock is usable.
    expect(pool.lockWith("core/lock", "v")).toBe(lock);
    expect(await pool.lockWith("core/lock", "v").value()).toEqual({ held: true, value: "v" });
    gate.resolve();
    await blocked;
  });

  it.each([0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY])(
    "rejects maxParallel %s with a clear error",
    (n) => {
      expect(() => new PermitPoolBackend(new MapBackend(), n)).toThrow(
        /maxParallel must be a positive integer \(Vault's default is 128\)/,
      );
    },
  );
});

describe("PermitPool", () => {
  it("rejects a size that is not a positive integer (a pool of 0 or NaN would hang every run)", () => {
    for (const size of [0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY]) {
      expect(() => new PermitPool(size), `size ${size}`).toThrow(RangeError);
    }
    expect(() => new PermitPool(0)).toThrow(/positive integer/);
  });

  it("a function that throws synchronously frees its permit", async () => {
    const pool = new PermitPool(1);
    await expect(
      pool.run(() => {
        throw new Error("sync");
      }),
    ).rejects.toThrow("sync");
    expect(pool.active).toBe(0);
    expect(await pool.run(async () => 7)).toBe(7);
  });
});

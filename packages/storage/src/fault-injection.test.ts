import { afterEach, describe, expect, it, vi } from "vitest";
import { MapBackend } from "../test/map-backend.js";
import { StorageUnavailableError } from "./errors.js";
import { type FaultContext, FaultInjectingBackend, withFaults } from "./fault-injection.js";
import { type Backend, isHABackend, isTransactional, type Lock } from "./types.js";

const bytes = (s: string): Uint8Array => new TextEncoder().encode(s);

describe("FaultInjectingBackend", () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it("passes every call through when no fault is configured", async () => {
    const inner = new MapBackend();
    const b = withFaults(inner);
    await b.put({ key: "a/b", value: bytes("v") });
    expect(await b.get("a/b")).toEqual({ key: "a/b", value: bytes("v") });
    expect(await b.list("")).toEqual(["a/"]);
    await b.transaction([{ op: "delete", key: "a/b" }]);
    await b.delete("x");
    expect(inner.data.size).toBe(0);
    expect(b.callCount()).toBe(5);
    expect(b.callCount("put")).toBe(1);
  });

  it("fails exactly the calls the predicate picks, without reaching the inner backend", async () => {
    const inner = new MapBackend();
    const seen: FaultContext[] = [];
    const b = new FaultInjectingBackend(inner, {
      fault: (ctx) => {
        seen.push(ctx);
        return ctx.op === "put" && ctx.call === 2 ? new Error(`disk full at ${ctx.key}`) : undefined;
      },
    });
    await b.put({ key: "one", value: bytes("1") });
    await expect(b.put({ key: "two", value: bytes("2") })).rejects.toThrow("disk full at two");
    await b.put({ key: "three", value: bytes("3") });
    await b.get("two");
    expect([...inner.data.keys()]).toEqual(["one", "three"]);
    expect(seen.map((c) => [c.op, c.key, c.call, c.totalCall])).toEqual([
      ["put", "one", 1, 1],
      ["put", "two", 2, 2],
      ["put", "three", 3, 3],
      ["get", "two", 1, 4],
    ]);
  });

  it("failAfter lets the first N calls through and fails every later one", async () => {
    const inner = new MapBackend();
    const b = new FaultInjectingBackend(inner, { failAfter: 3 });
    await b.put({ key: "a", value: bytes("1") });
    await b.get("a");
    await b.list("");
    const err = await b.put({ key: "b", value: bytes("2") }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StorageUnavailableError);
    expect(err).toMatchObject({ code: "unavailable" });
    expect((err as Error).message).toMatch(/injected fault: put "b" is call 4, after failAfter \(3\)/);
    await expect(b.get("a")).rejects.toBeInstanceOf(StorageUnavailableError);
    expect(inner.data.has("b")).toBe(false);
  });

  it("failAfter 0 fails every call", async () => {
    const b = new FaultInjectingBackend(new MapBackend(), { failAfter: 0 });
    await expect(b.list("")).rejects.toMatchObject({ code: "unavailable" });
    await expect(b.delete("k")).rejects.toMatchObject({ code: "unavailable" });
  });

  it("transaction goes through the predicate as op 'transaction' with its ops", async () => {
    const inner = new MapBackend();
    const seen: FaultContext[] = [];
    const b = withFaults(inner, {
      fault: (ctx) => {
        seen.push(ctx);
        return ctx.op === "transaction" ? new StorageUnavailableError("txn endpoint down") : undefined;
      },
    });
    expect(isTransactional(b)).toBe(true);
    expect(b.transactionLimits).toBe(inner.transactionLimits);
    const ops = [{ op: "put" as const, entry: { key: "k", value: bytes("v") } }];
    await expect(b.transaction(ops)).rejects.toThrow("txn endpoint down");
    expect(inner.data.size).toBe(0);
    expect(seen).toEqual([{ op: "transaction", key: "", call: 1, totalCall: 1, ops }]);
  });

  it("has no transaction or lockWith when the inner backend lacks them", () => {
    const inner = new MapBackend();
    const plain: Backend = {
      get: (k) => inner.get(k),
      put: (e) => inner.put(e),
      delete: (k) => inner.delete(k),
      list: (p) => inner.list(p),
    };
    const b = withFaults(plain, { failAfter: 1 });
    expect(isTransactional(b)).toBe(false);
    expect(isHABackend(b)).toBe(false);
  });

  it("passes lockWith through untouched", async () => {
    const lock: Lock = {
      acquire: async () => new AbortController().signal,
      release: async () => {},
      value: async () => ({ held: false }),
    };
    const inner = Object.assign(new MapBackend(), { lockWith: () => lock });
    const b = withFaults(inner, { failAfter: 0 });
    expect(b.lockWith("core/lock", "node")).toBe(lock);
    expect(b.callCount()).toBe(0);
  });

  it("injects per-operation latency, also before an injected failure", async () => {
    vi.useFakeTimers();
    const inner = new MapBackend();
    const b = new FaultInjectingBackend(inner, {
      latencyMs: { put: 50, get: 10 },
      fault: (ctx) => (ctx.op === "get" ? new Error("late failure") : undefined),
    });
    let putDone = false;
    const put = b.put({ key: "k", value: bytes("v") }).then(() => {
      putDone = true;
    });
    await vi.advanceTimersByTimeAsync(49);
    expect(putDone).toBe(false);
    expect(inner.data.size).toBe(0);
    await vi.advanceTimersByTimeAsync(1);
    await put;
    expect(putDone).toBe(true);

    let getSettled = false;
    const get = b.get("k").catch((e: unknown) => {
      getSettled = true;
      return e;
    });
    await vi.advanceTimersByTimeAsync(9);
    expect(getSettled).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect(await get).toMatchObject({ message: "late failure" });

    // Operations without a latency entry run at once.
    expect(await b.list("")).toEqual(["k"]);
  });

  it("a single latency number applies to every operation", async () => {
    vi.useFakeTimers();
    const b = new FaultInjectingBackend(new MapBackend(), { latencyMs: 20 });
    let done = false;
    const p = b.list("").then(() => {
      done = true;
    });
    await vi.advanceTimersByTimeAsync(19);
    expect(done).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    await p;
    expect(done).toBe(true);
  });

  it("rejects invalid options, naming the field", () => {
    const inner = new MapBackend();
    expect(() => new FaultInjectingBackend(inner, { failAfter: -1 })).toThrow(/failAfter/);
    expect(() => new FaultInjectingBackend(inner, { failAfter: 1.5 })).toThrow(/failAfter/);
    expect(() => new FaultInjectingBackend(inner, { latencyMs: -5 })).toThrow(/latencyMs/);
    expect(() => new FaultInjectingBackend(inner, { latencyMs: { put: Number.NaN } })).toThrow(
      /latencyMs.put/,
    );
    expect(
      () => new FaultInjectingBackend(inner, { latencyMs: { lock: 5 } as unknown as { put: number } }),
    ).toThrow(/latencyMs.lock is not a storage operation/);
  });
});

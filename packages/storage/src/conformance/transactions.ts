/**
 * The conformance section "transactions": all-or-nothing application, checks, the declared limits,
 * and isolation from concurrent readers and writers.
 */
import { describe, expect, it, type TestContext } from "vitest";
import { isTransactional, type TransactionalBackend, type TxnOp } from "../types.js";
import {
  allKeys,
  type ConformanceContext,
  codeOf,
  enc,
  expectBytes,
  expectStorageError,
  pseudoRandomBytes,
  rejection,
} from "./shared.js";

/**
 * Registers the transaction tests. They run when the backend is transactional, and are reported
 * skipped when it is not — or failed, when `options.transactional` is `true`. The caller does not
 * register them at all when `options.transactional` is `false`.
 */
export function registerTransactionTests(kit: ConformanceContext): void {
  describe("transactions", () => {
    registerAtomicityTests(kit);
    registerIsolationAndLimitTests(kit);
  });
}

/** The backend as a transactional one, or a skip (or failure, when required) when it is not. */
function transactionalBackend(kit: ConformanceContext, ctx: TestContext): TransactionalBackend {
  const b = kit.backend();
  if (!isTransactional(b)) {
    expect(
      kit.options.transactional,
      "options.transactional is true but the backend has no transaction()",
    ).not.toBe(true);
    return ctx.skip("backend is not transactional");
  }
  return b;
}

/** A transaction applies all of its operations, or — on a failed check, a bad key or value — none. */
function registerAtomicityTests(kit: ConformanceContext): void {
  const txBackend = (ctx: TestContext) => transactionalBackend(kit, ctx);
  const { maxValueSize } = kit.options;

  it("declares positive integer transactionLimits", async (ctx) => {
    const b = txBackend(ctx);
    expect(Number.isSafeInteger(b.transactionLimits.maxEntries)).toBe(true);
    expect(b.transactionLimits.maxEntries).toBeGreaterThan(0);
    expect(Number.isSafeInteger(b.transactionLimits.maxBytes)).toBe(true);
    expect(b.transactionLimits.maxBytes).toBeGreaterThan(0);
  });

  it("applies mixed puts and deletes together", async (ctx) => {
    const b = txBackend(ctx);
    await b.put({ key: "old/1", value: enc("o1") });
    await b.put({ key: "old/2", value: enc("o2") });
    await b.transaction([
      { op: "put", entry: { key: "new/1", value: enc("n1") } },
      { op: "delete", key: "old/1" },
      { op: "put", entry: { key: "old/2", value: enc("replaced") } },
      { op: "delete", key: "never/existed" },
    ]);
    expect(await allKeys(b)).toEqual(["new/1", "old/2"]);
    expectBytes((await b.get("old/2"))?.value, enc("replaced"), "old/2");
    expectBytes((await b.get("new/1"))?.value, enc("n1"), "new/1");
  });

  it("an empty transaction succeeds and changes nothing", async (ctx) => {
    const b = txBackend(ctx);
    await b.put({ key: "k", value: enc("v") });
    await b.transaction([]);
    expect(await allKeys(b)).toEqual(["k"]);
  });

  it("passing checks (value matches, key absent) let the transaction apply", async (ctx) => {
    const b = txBackend(ctx);
    await b.put({ key: "guard", value: enc("v1") });
    await b.transaction([
      { op: "check", key: "guard", value: enc("v1") },
      { op: "check", key: "absent", value: undefined },
      { op: "put", entry: { key: "guard", value: enc("v2") } },
    ]);
    expectBytes((await b.get("guard"))?.value, enc("v2"), "guard after the transaction");
  });

  it("a failing check applies nothing and names the failing op in failedIndex", async (ctx) => {
    const b = txBackend(ctx);
    await b.put({ key: "guard", value: enc("v1") });
    await b.put({ key: "keep", value: enc("k") });
    for (const [failing, ops] of [
      [
        2,
        [
          { op: "put", entry: { key: "x", value: enc("1") } },
          { op: "delete", key: "keep" },
          { op: "check", key: "guard", value: enc("wrong") },
          { op: "put", entry: { key: "y", value: enc("2") } },
        ],
      ],
      [
        1,
        [
          { op: "delete", key: "keep" },
          { op: "check", key: "guard", value: undefined },
        ],
      ],
      [
        0,
        [
          { op: "check", key: "absent", value: enc("anything") },
          { op: "put", entry: { key: "x", value: enc("1") } },
        ],
      ],
    ] as const satisfies readonly (readonly [number, readonly TxnOp[]])[]) {
      const err = await rejection(b.transaction(ops));
      expectStorageError(err, "TransactionError", "transaction_failed");
      expect(err).toMatchObject({ failedIndex: failing });
      expect(await allKeys(b)).toEqual(["guard", "keep"]);
      expectBytes((await b.get("guard"))?.value, enc("v1"), "guard after the rolled-back transaction");
    }
  });

  it("an invalid key anywhere in the transaction applies nothing", async (ctx) => {
    const b = txBackend(ctx);
    const err = await rejection(
      b.transaction([
        { op: "put", entry: { key: "fine", value: enc("1") } },
        { op: "delete", key: "a/../b" },
      ]),
    );
    expectStorageError(err, "InvalidKeyError", "invalid_key");
    expect(await b.list("")).toEqual([]);
  });

  if (maxValueSize !== undefined) {
    it("a value over maxValueSize anywhere in the transaction applies nothing", async (ctx) => {
      const b = txBackend(ctx);
      await b.put({ key: "keep", value: enc("k") });
      const err = await rejection(
        b.transaction([
          { op: "put", entry: { key: "fine", value: enc("1") } },
          { op: "delete", key: "keep" },
          { op: "put", entry: { key: "huge", value: new Uint8Array(maxValueSize + 1) } },
        ]),
      );
      expect(err).toBeInstanceOf(Error);
      expect(["value_too_large", "transaction_too_large"]).toContain(codeOf(err));
      expect(await allKeys(b)).toEqual(["keep"]);
      expectBytes((await b.get("keep"))?.value, enc("k"), "keep after the rejected transaction");
    });
  }
}

/** Concurrent readers and check-and-set writers, the declared limits' edges, and input copying. */
function registerIsolationAndLimitTests(kit: ConformanceContext): void {
  const txBackend = (ctx: TestContext) => transactionalBackend(kit, ctx);
  const { concurrency, maxValueSize } = kit.options;

  it("a concurrent list never sees half of a transaction", async (ctx) => {
    const b = txBackend(ctx);
    // Each transaction moves one key (delete + put); a listing must show exactly one of the two.
    await b.put({ key: "m/a", value: enc("1") });
    let done = false;
    const seen: string[] = [];
    const reader = async (): Promise<void> => {
      while (!done) {
        seen.push(JSON.stringify(await b.list("m/")));
        // Yield to timers too, so a backend that applies ops on later ticks gets observed.
        await new Promise((resolve) => setTimeout(resolve, 0));
      }
    };
    const readers = Array.from({ length: 4 }, reader);
    try {
      for (let i = 0; i < 10; i++) {
        const [from, to] = i % 2 === 0 ? ["a", "b"] : ["b", "a"];
        await b.transaction([
          { op: "delete", key: `m/${from}` },
          { op: "put", entry: { key: `m/${to}`, value: enc(String(i)) } },
        ]);
      }
    } finally {
      done = true;
      await Promise.all(readers);
    }
    const torn = seen.filter((l) => l !== '["a"]' && l !== '["b"]');
    expect(torn, `listings taken during the transactions (${seen.length} in all)`).toEqual([]);
  });

  it("exactly maxEntries operations are accepted", async (ctx) => {
    const b = txBackend(ctx);
    const { maxEntries, maxBytes } = b.transactionLimits;
    const ops: TxnOp[] = Array.from({ length: maxEntries }, (_, i) => ({
      op: "put",
      entry: { key: `t/${i}`, value: enc("v") },
    }));
    const bytes = ops.reduce((n, o) => n + (o.op === "put" ? o.entry.key.length + 1 : 0), 0);
    if (bytes > maxBytes) ctx.skip(`${maxEntries} small puts already exceed maxBytes (${maxBytes})`);
    await b.transaction(ops);
    expect(await b.list("t/")).toHaveLength(maxEntries);
  });

  it("maxEntries + 1 operations fail with transaction_too_large and apply nothing", async (ctx) => {
    const b = txBackend(ctx);
    const { maxEntries } = b.transactionLimits;
    const ops: TxnOp[] = Array.from({ length: maxEntries + 1 }, (_, i) => ({
      op: "put",
      entry: { key: `t/${i}`, value: enc("v") },
    }));
    const err = await rejection(b.transaction(ops));
    expectStorageError(err, "TransactionError", "transaction_too_large");
    expect(await b.list("")).toEqual([]);
  });

  it("more than maxBytes fails with transaction_too_large and applies nothing", async (ctx) => {
    const b = txBackend(ctx);
    const { maxEntries, maxBytes } = b.transactionLimits;
    // The fewest ops whose values alone exceed maxBytes, each within maxValueSize.
    const perValue = Math.min(maxValueSize ?? maxBytes + 1, maxBytes + 1);
    const count = Math.ceil((maxBytes + 1) / perValue);
    if (count > maxEntries) {
      ctx.skip(`maxBytes (${maxBytes}) cannot be exceeded within maxEntries values of maxValueSize`);
    }
    const ops: TxnOp[] = Array.from({ length: count }, (_, i) => ({
      op: "put",
      entry: { key: `big/${i}`, value: pseudoRandomBytes(perValue, i + 1) },
    }));
    const err = await rejection(b.transaction(ops));
    expectStorageError(err, "TransactionError", "transaction_too_large");
    expect(await b.list("")).toEqual([]);
  });

  it("transaction values are copied: mutating them afterwards changes nothing", async (ctx) => {
    const b = txBackend(ctx);
    const v = enc("original");
    await b.transaction([{ op: "put", entry: { key: "k", value: v } }]);
    v.fill(0x21);
    expectBytes((await b.get("k"))?.value, enc("original"), "after mutating the transaction input");
  });

  it("concurrent check-and-set increments never lose an update", async (ctx) => {
    const b = txBackend(ctx);
    const workers = Math.min(20, concurrency);
    await b.put({ key: "counter", value: enc("0") });
    let conflicts = 0;
    const increment = async (): Promise<void> => {
      for (let attempt = 0; attempt < 1000; attempt++) {
        const old = (await b.get("counter"))?.value ?? enc("0");
        const next = enc(String(Number(new TextDecoder().decode(old)) + 1));
        try {
          await b.transaction([
            { op: "check", key: "counter", value: old },
            { op: "put", entry: { key: "counter", value: next } },
          ]);
          return;
        } catch (err) {
          if (codeOf(err) !== "transaction_failed") throw err;
          conflicts++;
        }
      }
      throw new Error("check-and-set did not succeed in 1000 attempts");
    };
    await Promise.all(Array.from({ length: workers }, increment));
    const final = new TextDecoder().decode((await b.get("counter"))?.value);
    expect(final, `after ${conflicts} conflicts`).toBe(String(workers));
  });
}

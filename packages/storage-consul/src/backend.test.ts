import { StorageError, type TxnOp } from "@bulwark/storage";
import { afterEach, describe, expect, it } from "vitest";
import { ConsulBackend } from "./backend.js";

// Nothing listens on port 1: an op that got as far as a request would fail as unavailable.
const open: ConsulBackend[] = [];
const offline = (): ConsulBackend => {
  const b = new ConsulBackend({ address: "127.0.0.1:1", retryBudgetMs: 0 });
  open.push(b);
  return b;
};
afterEach(async () => {
  await Promise.all(open.splice(0).map((b) => b.close()));
});

describe("ConsulBackend HA lock misuse", () => {
  it("a second concurrent acquire() on one handle is a StorageError invalid_operation, message as before", async () => {
    const lock = offline().lockWith("core/lock", "node-a");
    const first = lock.acquire().catch((e: unknown) => e);
    const err = await lock.acquire().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StorageError);
    expect(err).toMatchObject({
      domain: "storage",
      code: "invalid_operation",
      message:
        'acquire() is already waiting for HA lock "core/lock" on this handle; await or abort that call first',
    });
    await first;
  });
});

describe("ConsulBackend input validation (before any request)", () => {
  it("a check op whose value is not a Uint8Array is a TypeError naming the op", async () => {
    const b = offline();
    const bad = [
      { op: "put", entry: { key: "k", value: new Uint8Array([1]) } },
      { op: "check", key: "guard", value: "v1" },
    ] as unknown as TxnOp[];
    await expect(b.transaction(bad)).rejects.toThrow(
      new TypeError('transaction op 1 (check "guard"): value must be a Uint8Array or undefined, got string'),
    );
  });

  it("ops that are not an array, or an op that is not an object, are TypeErrors", async () => {
    const b = offline();
    await expect(b.transaction(undefined as unknown as TxnOp[])).rejects.toThrow(
      new TypeError("transaction(ops): ops must be an array, got undefined"),
    );
    await expect(b.transaction([null] as unknown as TxnOp[])).rejects.toThrow(
      new TypeError('transaction op 0: unknown op undefined; expected "put", "delete" or "check"'),
    );
  });
});

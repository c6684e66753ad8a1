import { InvalidKeyError, TransactionError, ValueTooLargeError } from "@bulwark/storage";
import { describe, expect, it } from "vitest";
import { MemoryBackend } from "./memory-backend.js";

const bytes = (s: string): Uint8Array => new TextEncoder().encode(s);
const text = (b: Uint8Array | undefined): string | undefined =>
  b === undefined ? undefined : new TextDecoder().decode(b);

describe("MemoryBackend", () => {
  it("puts, gets, overwrites, lists and deletes", async () => {
    const b = new MemoryBackend();
    await b.put({ key: "core/keyring", value: bytes("k1") });
    await b.put({ key: "core/seal-config", value: bytes("s") });
    await b.put({ key: "logical/x/y", value: bytes("v") });
    await b.put({ key: "core/keyring", value: bytes("k2") });
    expect(text((await b.get("core/keyring"))?.value)).toBe("k2");
    expect(await b.list("")).toEqual(["core/", "logical/"]);
    expect(await b.list("core/")).toEqual(["keyring", "seal-config"]);
    await b.delete("logical/x/y");
    await b.delete("never/was");
    expect(await b.list("")).toEqual(["core/"]);
    expect(b.size).toBe(2);
  });

  it("stores a zero-length value and reads it back as zero bytes", async () => {
    const b = new MemoryBackend();
    await b.put({ key: "empty", value: new Uint8Array(0) });
    const got = await b.get("empty");
    expect(got).toBeDefined();
    expect(got?.value).toHaveLength(0);
    expect(await b.list("")).toEqual(["empty"]);
  });

  it("copies values on put and on get", async () => {
    const b = new MemoryBackend();
    const pool = new Uint8Array([9, 9, 1, 2, 3, 9]);
    const view = pool.subarray(2, 5);
    await b.put({ key: "k", value: view });
    view.fill(0);
    const first = await b.get("k");
    expect(first?.value).toEqual(new Uint8Array([1, 2, 3]));
    expect(first?.value.buffer.byteLength).toBe(3);
    first?.value.fill(7);
    expect((await b.get("k"))?.value).toEqual(new Uint8Array([1, 2, 3]));
  });

  it("does not persist the sealWrap hint", async () => {
    const b = new MemoryBackend();
    await b.put({ key: "k", value: bytes("v"), sealWrap: true });
    expect(await b.get("k")).toEqual({ key: "k", value: bytes("v") });
  });

  it("validates keys and prefixes on every call", async () => {
    const b = new MemoryBackend();
    await expect(b.get("../x")).rejects.toBeInstanceOf(InvalidKeyError);
    await expect(b.put({ key: "/abs", value: bytes("v") })).rejects.toMatchObject({ code: "invalid_key" });
    await expect(b.delete("a//b")).rejects.toBeInstanceOf(InvalidKeyError);
    await expect(b.list("a")).rejects.toBeInstanceOf(InvalidKeyError);
    expect(() => b.lockWith("", "v")).toThrow(InvalidKeyError);
    expect(b.size).toBe(0);
  });

  it("rejects non-byte values with a TypeError", async () => {
    const b = new MemoryBackend();
    await expect(b.put({ key: "k", value: "text" as unknown as Uint8Array })).rejects.toThrow(TypeError);
  });

  it("enforces maxValueSize: the limit passes, limit+1 fails and leaves the old value", async () => {
    const b = new MemoryBackend({ maxValueSize: 16 });
    await b.put({ key: "k", value: new Uint8Array(16) });
    const err = await b.put({ key: "k", value: new Uint8Array(17).fill(1) }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ValueTooLargeError);
    expect(err).toMatchObject({ code: "value_too_large", size: 17, limit: 16, key: "k" });
    expect((await b.get("k"))?.value).toEqual(new Uint8Array(16));
  });

  it("rejects invalid options, naming the field", () => {
    expect(() => new MemoryBackend({ maxValueSize: 0 })).toThrow(/maxValueSize/);
    expect(() => new MemoryBackend({ transactionLimits: { maxEntries: 1.5 } })).toThrow(
      /transactionLimits.maxEntries/,
    );
    expect(() => new MemoryBackend({ transactionLimits: { maxBytes: -1 } })).toThrow(
      /transactionLimits.maxBytes/,
    );
  });

  it("lists correctly among 10k keys", async () => {
    const b = new MemoryBackend();
    for (let i = 0; i < 10_000; i++) {
      await b.put({ key: `d${i % 10}/k${String(i).padStart(5, "0")}`, value: new Uint8Array(1) });
    }
    const top = await b.list("");
    const d3 = await b.list("d3/");
    expect(top).toEqual(["d0/", "d1/", "d2/", "d3/", "d4/", "d5/", "d6/", "d7/", "d8/", "d9/"]);
    expect(d3).toHaveLength(1000);
    expect(d3[0]).toBe("k00003");
  });
});

describe("MemoryBackend.transaction", () => {
  it("defaults to Vault's historic limits and accepts overrides", () => {
    expect(new MemoryBackend().transactionLimits).toEqual({ maxEntries: 63, maxBytes: 131072 });
    expect(new MemoryBackend({ transactionLimits: { maxEntries: 5 } }).transactionLimits).toEqual({
      maxEntries: 5,
      maxBytes: 131072,
    });
  });

  it("applies puts and deletes together", async () => {
    const b = new MemoryBackend();
    await b.put({ key: "old", value: bytes("o") });
    await b.transaction([
      { op: "put", entry: { key: "a", value: bytes("1") } },
      { op: "delete", key: "old" },
      { op: "put", entry: { key: "b/c", value: bytes("2") } },
    ]);
    expect(await b.list("")).toEqual(["a", "b/"]);
  });

  it("a failing check rolls back everything and names the failing op", async () => {
    const b = new MemoryBackend();
    await b.put({ key: "guard", value: bytes("v1") });
    const err = await b
      .transaction([
        { op: "put", entry: { key: "x", value: bytes("1") } },
        { op: "check", key: "guard", value: bytes("v1") },
        { op: "delete", key: "guard" },
        { op: "check", key: "absent", value: bytes("?") },
      ])
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TransactionError);
    expect(err).toMatchObject({ code: "transaction_failed", failedIndex: 3 });
    expect(await b.list("")).toEqual(["guard"]);
  });

  it("checks see earlier ops of the same transaction", async () => {
    const b = new MemoryBackend();
    await b.transaction([
      { op: "check", key: "k", value: undefined },
      { op: "put", entry: { key: "k", value: bytes("new") } },
      { op: "check", key: "k", value: bytes("new") },
    ]);
    expect(text((await b.get("k"))?.value)).toBe("new");
    await expect(
      b.transaction([
        { op: "delete", key: "k" },
        { op: "check", key: "k", value: bytes("new") },
      ]),
    ).rejects.toMatchObject({ failedIndex: 1 });
    expect(text((await b.get("k"))?.value)).toBe("new");
  });

  it("the last write to a key wins", async () => {
    const b = new MemoryBackend();
    await b.transaction([
      { op: "put", entry: { key: "k", value: bytes("1") } },
      { op: "delete", key: "k" },
      { op: "put", entry: { key: "j", value: bytes("2") } },
      { op: "put", entry: { key: "j", value: bytes("3") } },
    ]);
    expect(await b.get("k")).toBeUndefined();
    expect(text((await b.get("j"))?.value)).toBe("3");
  });

  it("enforces entry and byte limits before applying anything", async () => {
    const b = new MemoryBackend({ transactionLimits: { maxEntries: 2, maxBytes: 10 } });
    const tooMany = b.transaction([
      { op: "put", entry: { key: "a", value: bytes("1") } },
      { op: "put", entry: { key: "b", value: bytes("1") } },
      { op: "put", entry: { key: "c", value: bytes("1") } },
    ]);
    await expect(tooMany).rejects.toMatchObject({ name: "TransactionError", code: "transaction_too_large" });
    // key (1 byte) + value (10 bytes) = 11 > 10
    await expect(
      b.transaction([{ op: "put", entry: { key: "a", value: new Uint8Array(10) } }]),
    ).rejects.toMatchObject({ code: "transaction_too_large" });
    await b.transaction([{ op: "put", entry: { key: "a", value: new Uint8Array(9) } }]);
    expect(await b.list("")).toEqual(["a"]);
  });

  it("rejects an invalid key or an oversized value anywhere in the list, applying nothing", async () => {
    const b = new MemoryBackend({ maxValueSize: 4 });
    await expect(
      b.transaction([
        { op: "put", entry: { key: "ok", value: bytes("1") } },
        { op: "delete", key: "a/../b" },
      ]),
    ).rejects.toBeInstanceOf(InvalidKeyError);
    await expect(
      b.transaction([
        { op: "put", entry: { key: "ok", value: bytes("1") } },
        { op: "put", entry: { key: "big", value: new Uint8Array(5) } },
      ]),
    ).rejects.toBeInstanceOf(ValueTooLargeError);
    await expect(
      b.transaction([{ op: "bogus", key: "k" } as unknown as { op: "delete"; key: string }]),
    ).rejects.toThrow(/unknown op "bogus"/);
    expect(b.size).toBe(0);
  });

  it("check compares exact bytes, including length and empty values", async () => {
    const b = new MemoryBackend();
    await b.put({ key: "k", value: bytes("abc") });
    await b.put({ key: "e", value: new Uint8Array(0) });
    await expect(b.transaction([{ op: "check", key: "k", value: bytes("ab") }])).rejects.toBeInstanceOf(
      TransactionError,
    );
    await expect(b.transaction([{ op: "check", key: "e", value: undefined }])).rejects.toBeInstanceOf(
      TransactionError,
    );
    await b.transaction([
      { op: "check", key: "k", value: bytes("abc") },
      { op: "check", key: "e", value: new Uint8Array(0) },
    ]);
  });

  it("an empty transaction succeeds and changes nothing", async () => {
    const b = new MemoryBackend();
    await b.transaction([]);
    expect(b.size).toBe(0);
  });
});

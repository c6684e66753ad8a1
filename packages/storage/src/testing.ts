/**
 * The storage conformance suite. Every built-in backend runs it, and so should every plugin:
 *
 *   runBackendConformance("MyBackend", async () => ({ backend: new MyBackend(), cleanup }), { ... });
 *
 * It registers one vitest `describe()` block; each test gets a fresh, empty backend from the
 * factory and calls `cleanup` afterwards.
 */
import { afterEach, beforeEach, describe, expect, it, type TestContext } from "vitest";
import type { StorageErrorCode } from "./errors.js";
import { directChildren } from "./keys.js";
import { type Backend, type HABackend, isTransactional, type Lock, type TxnOp } from "./types.js";

/** What the suite needs to exercise a backend's HA lock. */
export interface HAConformanceTarget {
  /** The HA backend under test (often the backend itself). */
  backend: HABackend;
  /** A second node on the same storage, for the two-node tests. Default: `backend` again. */
  peer?: HABackend;
  /**
   * Takes the lock on `key` away from its current holder, as a lost session would (for Consul:
   * destroy the holder's session). Enables the forced-loss tests.
   */
  breakLock?: (key: string) => Promise<void>;
  /** How long a lock hand-over or loss may take before the test fails, in ms. Default 5000. */
  handoverTimeoutMs?: number;
}

export interface BackendConformanceOptions<B extends Backend = Backend> {
  /** The backend's value size limit in bytes. Enables the "limit passes, limit + 1 fails" tests. */
  maxValueSize?: number;
  /**
   * How a zero-length value reads back: `"stored"` (as zero bytes; the default) or `"missing"`
   * (`get` returns `undefined`, as with Vault's file backend, where a zero-length file is missing).
   */
  emptyValue?: "stored" | "missing";
  /**
   * `true`: the backend must be transactional and the transaction tests run; `false`: they do not
   * run. Default: they run when `isTransactional(backend)`, and are reported skipped otherwise.
   */
  transactional?: boolean;
  /**
   * `true`: the backend must have `probe()` and the probe tests run; `false`: they do not run.
   * Default: they run when the backend has `probe()`, and are reported skipped otherwise.
   */
  probe?: boolean;
  /** The HA lock to test, or `undefined` to skip the HA tests (the default). */
  ha?: (backend: B) => HAConformanceTarget | undefined;
  /** Size of the random binary round trip. Default: `maxValueSize` capped at 1 MiB. */
  largeValueSize?: number;
  /** Number of concurrent operations in the concurrency tests. Default 200. */
  concurrency?: number;
  /** Per-test timeout in ms; raise it for backends behind a network. Default 30 000. */
  testTimeoutMs?: number;
}

export interface BackendUnderTest<B extends Backend = Backend> {
  /** A fresh backend with no keys in it. */
  backend: B;
  /** Called after each test, also when it failed. */
  cleanup?: () => Promise<void>;
}

const MIB = 1024 * 1024;
/** How long "still waiting" is observed before a lock hand-over is triggered. */
const QUIET_MS = 100;

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);

/** Deterministic pseudo-random bytes (xorshift32), so a failure reproduces. */
function pseudoRandomBytes(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  let x = seed >>> 0 || 0x9e3779b9;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    out[i] = x & 0xff;
  }
  return out;
}

/** Byte equality with a short message (vitest's diff of a 1 MiB array is unreadable). */
function expectBytes(actual: Uint8Array | undefined, expected: Uint8Array, what: string): void {
  expect(actual, `${what}: value missing`).toBeDefined();
  const a = actual as Uint8Array;
  expect(a, `${what}: value is not a Uint8Array`).toBeInstanceOf(Uint8Array);
  expect(a.length, `${what}: length`).toBe(expected.length);
  let first = -1;
  for (let i = 0; i < a.length; i++) {
    if (a[i] !== expected[i]) {
      first = i;
      break;
    }
  }
  expect(first, `${what}: first differing byte index`).toBe(-1);
}

async function rejection(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  throw new Error("expected the operation to fail, but it succeeded");
}

/**
 * Checks a storage error by `name` and `code`, not `instanceof`: a plugin may be built against
 * another copy of `@bulwark/storage` (a nested install, a bundled build), whose classes differ.
 */
function expectStorageError(err: unknown, name: string, code: StorageErrorCode, what?: string): void {
  expect(err, what).toBeInstanceOf(Error);
  expect(err, what).toMatchObject({ name, code });
}

/** Whether `p` is still unsettled after `ms`. */
async function stillPending(p: Promise<unknown>, ms: number): Promise<boolean> {
  const pending = Symbol("pending");
  let timer: ReturnType<typeof setTimeout> | undefined;
  const r = await Promise.race([
    p.then(
      () => "settled",
      () => "settled",
    ),
    new Promise<symbol>((res) => {
      timer = setTimeout(() => res(pending), ms);
    }),
  ]);
  clearTimeout(timer);
  return r === pending;
}

/** `p`, or a rejection naming `what` when it takes longer than `ms`. */
async function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, rej) => {
    timer = setTimeout(() => rej(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Resolves when `signal` aborts (at once if it already has). */
function aborted(signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((res) => signal.addEventListener("abort", () => res(), { once: true }));
}

async function allKeys(b: Backend, prefix = ""): Promise<string[]> {
  const out: string[] = [];
  for (const name of await b.list(prefix)) {
    if (name.endsWith("/")) out.push(...(await allKeys(b, prefix + name)));
    else out.push(prefix + name);
  }
  return out;
}

const BAD_KEYS: readonly (readonly [string, string])[] = [
  ["", "empty key"],
  ["/abs", "leading '/'"],
  ["folder/", "trailing '/'"],
  ["a//b", "'//'"],
  ["..", "'..' alone"],
  ["../escape", "leading '..' segment"],
  ["a/../b", "inner '..' segment"],
  ["a/..", "trailing '..' segment"],
  // In a file layout "a/./b" is the file "a/b": two keys, one record.
  [".", "'.' alone"],
  ["a/./b", "inner '.' segment"],
  ["a/.", "trailing '.' segment"],
  ["a\u0000b", "NUL byte"],
];

const BAD_PREFIXES: readonly (readonly [string, string])[] = [
  ["a", "no trailing '/'"],
  ["/", "'/' alone"],
  ["/a/", "leading '/'"],
  ["a//", "'//'"],
  ["../", "'..' segment"],
  ["a/../", "inner '..' segment"],
  ["./", "'.' segment"],
];

/** Keys that trip up URL-, path- or shell-based encodings. */
const UNUSUAL_KEYS = [
  "with space",
  "percent%2Fencoded",
  "query?x=1&y=2",
  "hash#fragment",
  "plus+sign",
  "colon:at@",
  "dot.in.name",
  ".hidden",
  "_underscore",
  "quote'double\"",
  "unicode/ключ/日本語",
  "emoji/🔐",
];

/**
 * Registers a `describe(name)` block that checks `factory`'s backends against the `Backend`
 * contract (and the transaction and HA-lock contracts where they apply). See the package README
 * for what each option changes.
 */
export function runBackendConformance<B extends Backend>(
  name: string,
  factory: () => Promise<BackendUnderTest<B>>,
  options: BackendConformanceOptions<B> = {},
): void {
  const emptyValue = options.emptyValue ?? "stored";
  const concurrency = options.concurrency ?? 200;
  const maxValueSize = options.maxValueSize;
  const largeValueSize = options.largeValueSize ?? Math.min(maxValueSize ?? MIB, MIB);
  const timeout = options.testTimeoutMs ?? 30_000;

  describe(name, { timeout }, () => {
    let current: BackendUnderTest<B> | undefined;
    let locks: Lock[] = [];
    let waits = new AbortController();

    beforeEach(async () => {
      current = await factory();
      locks = [];
      waits = new AbortController();
    });

    afterEach(async () => {
      // Abandon waits and free locks a failed test left behind, so cleanup cannot hang.
      waits.abort();
      await Promise.allSettled(locks.map((l) => l.release()));
      const c = current;
      current = undefined;
      await c?.cleanup?.();
    });

    const backend = (): B => {
      if (current === undefined) throw new Error("conformance: the factory did not produce a backend");
      return current.backend;
    };

    describe("basic operations", () => {
      it("a new backend is empty", async () => {
        const b = backend();
        expect(await b.list("")).toEqual([]);
        expect(await b.get("missing")).toBeUndefined();
      });

      it("put then get returns the same key and bytes", async () => {
        const b = backend();
        await b.put({ key: "core/keyring", value: enc("hello") });
        const got = await b.get("core/keyring");
        expect(got?.key).toBe("core/keyring");
        expectBytes(got?.value, enc("hello"), "get after put");
      });

      it("put overwrites an existing value", async () => {
        const b = backend();
        await b.put({ key: "k", value: enc("first, longer value") });
        await b.put({ key: "k", value: enc("second") });
        expectBytes((await b.get("k"))?.value, enc("second"), "after overwrite");
        expect(await b.list("")).toEqual(["k"]);
      });

      it("delete removes the key, and deleting a missing key is a no-op", async () => {
        const b = backend();
        await b.put({ key: "a/b", value: enc("v") });
        await b.delete("a/b");
        expect(await b.get("a/b")).toBeUndefined();
        await b.delete("a/b");
        await b.delete("never/existed");
        expect(await b.list("")).toEqual([]);
      });

      it("a folder name is not a key", async () => {
        const b = backend();
        await b.put({ key: "f/x", value: enc("v") });
        expect(await b.get("f")).toBeUndefined();
        await b.delete("f");
        expectBytes((await b.get("f/x"))?.value, enc("v"), "key inside the folder");
      });

      it("a key and a folder with the same name coexist", async () => {
        const b = backend();
        await b.put({ key: "a", value: enc("file") });
        await b.put({ key: "a/b", value: enc("nested") });
        expectBytes((await b.get("a"))?.value, enc("file"), "a");
        expectBytes((await b.get("a/b"))?.value, enc("nested"), "a/b");
        expect(await b.list("")).toEqual(["a", "a/"]);
      });

      it("the sealWrap hint is not persisted", async () => {
        const b = backend();
        await b.put({ key: "k", value: enc("v"), sealWrap: true });
        expect((await b.get("k"))?.sealWrap ?? false).toBe(false);
      });

      it("keys with unusual characters round-trip", async () => {
        const b = backend();
        for (const [i, key] of UNUSUAL_KEYS.entries()) await b.put({ key, value: enc(`v${i}`) });
        for (const [i, key] of UNUSUAL_KEYS.entries()) {
          expectBytes((await b.get(key))?.value, enc(`v${i}`), `key ${JSON.stringify(key)}`);
        }
        expect((await allKeys(b)).sort()).toEqual([...UNUSUAL_KEYS].sort());
      });
    });

    if (options.probe !== false) {
      describe("probe", () => {
        /** The backend's probe, or a skip (or failure, when required) when it has none. */
        const probeOf = (ctx: TestContext): (() => Promise<void>) => {
          const b = backend();
          if (typeof b.probe !== "function") {
            expect(options.probe, "options.probe is true but the backend has no probe()").not.toBe(true);
            return ctx.skip("backend has no probe()");
          }
          return b.probe.bind(b);
        };

        it("probe() resolves on a usable backend and leaves an empty one empty", async (ctx) => {
          const probe = probeOf(ctx);
          await probe();
          expect(await backend().list("")).toEqual([]);
          expect(await backend().get("probe")).toBeUndefined();
        });

        it("probe() changes no entry, and can run again and alongside writes", async (ctx) => {
          const probe = probeOf(ctx);
          const b = backend();
          await b.put({ key: "core/seal-config", value: enc("kept") });
          await Promise.all([probe(), probe(), b.put({ key: "core/other", value: enc("written") })]);
          expect(await b.list("")).toEqual(["core/"]);
          expect(await b.list("core/")).toEqual(["other", "seal-config"]);
          expectBytes((await b.get("core/seal-config"))?.value, enc("kept"), "entry after probe");
        });
      });
    }

    describe("values", () => {
      it("all 256 byte values round-trip", async () => {
        const b = backend();
        const all = Uint8Array.from({ length: 256 }, (_, i) => i);
        await b.put({ key: "bytes", value: all });
        expectBytes((await b.get("bytes"))?.value, all, "all byte values");
      });

      it(`random binary of ${largeValueSize} bytes round-trips`, async () => {
        const b = backend();
        const big = pseudoRandomBytes(largeValueSize, 42);
        await b.put({ key: "big", value: big });
        expectBytes((await b.get("big"))?.value, big, "large value");
      });

      if (emptyValue === "stored") {
        it("a zero-length value is stored and read back as zero bytes", async () => {
          const b = backend();
          await b.put({ key: "empty", value: new Uint8Array(0) });
          const got = await b.get("empty");
          expect(got, "get of a zero-length value").toBeDefined();
          expect(got?.value.length).toBe(0);
          expect(await b.list("")).toEqual(["empty"]);
        });
      } else {
        it("a zero-length value reads back as missing", async () => {
          const b = backend();
          await b.put({ key: "empty", value: new Uint8Array(0) });
          expect(await b.get("empty")).toBeUndefined();
        });
      }

      it("a view into a larger buffer stores only the view's bytes", async () => {
        const b = backend();
        const pool = pseudoRandomBytes(64, 7);
        const view = pool.subarray(10, 30);
        await b.put({ key: "view", value: view });
        expectBytes((await b.get("view"))?.value, pool.slice(10, 30), "stored view");
      });

      it("mutating the buffer passed to put does not change stored data", async () => {
        const b = backend();
        const value = enc("original");
        await b.put({ key: "k", value });
        value.fill(0x21);
        expectBytes((await b.get("k"))?.value, enc("original"), "after mutating the input");
      });

      it("mutating a buffer returned by get does not change stored data", async () => {
        const b = backend();
        await b.put({ key: "k", value: enc("original") });
        const first = await b.get("k");
        first?.value.fill(0x21);
        expectBytes((await b.get("k"))?.value, enc("original"), "after mutating a returned value");
      });

      if (maxValueSize !== undefined) {
        it(`a value of exactly maxValueSize (${maxValueSize}) bytes is accepted`, async () => {
          const b = backend();
          const v = pseudoRandomBytes(maxValueSize, 3);
          await b.put({ key: "limit", value: v });
          expectBytes((await b.get("limit"))?.value, v, "value at the limit");
        });

        it("a value of maxValueSize + 1 bytes fails with ValueTooLargeError and changes nothing", async () => {
          const b = backend();
          await b.put({ key: "limit", value: enc("before") });
          const err = await rejection(b.put({ key: "limit", value: new Uint8Array(maxValueSize + 1) }));
          expectStorageError(err, "ValueTooLargeError", "value_too_large");
          expectBytes((await b.get("limit"))?.value, enc("before"), "value after the rejected put");
        });
      }
    });

    describe("list", () => {
      it("returns direct children, sub-folders with a trailing '/', sorted, prefix stripped", async () => {
        const b = backend();
        for (const key of ["sys/z", "sys/a/b/c", "sys/m", "sys/a/x", "sys/b/y", "core/k", "top"]) {
          await b.put({ key, value: enc(key) });
        }
        expect(await b.list("")).toEqual(["core/", "sys/", "top"]);
        expect(await b.list("sys/")).toEqual(["a/", "b/", "m", "z"]);
        expect(await b.list("sys/a/")).toEqual(["b/", "x"]);
        expect(await b.list("sys/a/b/")).toEqual(["c"]);
      });

      it("sorts by code unit, not by locale", async () => {
        const b = backend();
        for (const key of ["b", "B", "a", "A", "1", "_", "~"]) await b.put({ key, value: enc(key) });
        expect(await b.list("")).toEqual(["1", "A", "B", "_", "a", "b", "~"]);
      });

      it("a missing prefix, or a prefix that names a key, lists as []", async () => {
        const b = backend();
        await b.put({ key: "x", value: enc("v") });
        expect(await b.list("nothing/")).toEqual([]);
        expect(await b.list("x/")).toEqual([]);
        expect(await b.list("deep/missing/path/")).toEqual([]);
      });

      it("a folder disappears when its last key is deleted", async () => {
        const b = backend();
        await b.put({ key: "a/b/c/d", value: enc("1") });
        await b.put({ key: "a/b/e", value: enc("2") });
        await b.delete("a/b/c/d");
        expect(await b.list("a/b/")).toEqual(["e"]);
        expect(await b.list("a/b/c/")).toEqual([]);
        await b.delete("a/b/e");
        expect(await b.list("")).toEqual([]);
        expect(await b.list("a/")).toEqual([]);
      });

      it("keeps names that share a prefix apart ('a', 'a-b', 'a/b', 'ab')", async () => {
        const b = backend();
        for (const key of ["ab", "a/b", "a", "a-b", "a0"]) await b.put({ key, value: enc(key) });
        expect(await b.list("")).toEqual(["a", "a-b", "a/", "a0", "ab"]);
        expect(await b.list("a/")).toEqual(["b"]);
      });

      it("matches directChildren() over a generated tree", async () => {
        const b = backend();
        const segs = ["a", "b", "ab", "a-", "0", "z~"];
        const keys = new Set<string>();
        const rnd = pseudoRandomBytes(400, 11);
        for (let i = 0; i + 3 < rnd.length && keys.size < 80; i += 4) {
          const depth = 1 + ((rnd[i] as number) % 3);
          const parts: string[] = [];
          for (let d = 0; d < depth; d++)
            parts.push(segs[(rnd[i + 1 + d] as number) % segs.length] as string);
          keys.add(parts.join("/"));
        }
        for (const key of keys) await b.put({ key, value: enc(key) });
        const folders = new Set<string>([""]);
        for (const key of keys) {
          const parts = key.split("/");
          for (let d = 1; d < parts.length; d++) folders.add(`${parts.slice(0, d).join("/")}/`);
        }
        for (const prefix of folders) {
          expect(await b.list(prefix), `list(${JSON.stringify(prefix)})`).toEqual(
            directChildren(prefix, keys),
          );
        }
      });
    });

    describe("key validation", () => {
      for (const [key, why] of BAD_KEYS) {
        it(`rejects ${JSON.stringify(key)} (${why}) on get, put and delete with InvalidKeyError`, async () => {
          const b = backend();
          for (const [op, call] of [
            ["get", () => b.get(key)],
            ["put", () => b.put({ key, value: enc("v") })],
            ["delete", () => b.delete(key)],
          ] as const) {
            const err = await rejection(call());
            expectStorageError(err, "InvalidKeyError", "invalid_key", `${op}(${JSON.stringify(key)})`);
          }
          expect(await b.list("")).toEqual([]);
        });
      }

      for (const [prefix, why] of BAD_PREFIXES) {
        it(`rejects list(${JSON.stringify(prefix)}) (${why}) with InvalidKeyError`, async () => {
          const b = backend();
          await b.put({ key: "a/b", value: enc("v") });
          const err = await rejection(b.list(prefix));
          expectStorageError(err, "InvalidKeyError", "invalid_key");
        });
      }
    });

    describe("concurrency", () => {
      it(`${concurrency} concurrent puts of distinct keys are all readable`, async () => {
        const b = backend();
        const keys = Array.from({ length: concurrency }, (_, i) => `c/${String(i).padStart(4, "0")}`);
        await Promise.all(keys.map((key, i) => b.put({ key, value: pseudoRandomBytes(64, i + 1) })));
        const got = await Promise.all(keys.map((key) => b.get(key)));
        for (const [i, e] of got.entries()) {
          expectBytes(e?.value, pseudoRandomBytes(64, i + 1), `key ${keys[i]}`);
        }
        expect(await b.list("c/")).toEqual(keys.map((k) => k.slice(2)));
      });

      it(`${concurrency} concurrent puts to one key leave exactly one of the written values`, async () => {
        const b = backend();
        // Values differ in length and content, so a torn or mixed write cannot match any of them.
        // Within the backend's limit: a correct backend with a small maxValueSize must pass.
        const values = Array.from({ length: concurrency }, (_, i) => {
          const v = pseudoRandomBytes(
            Math.min(1024 + i * 13, maxValueSize ?? Number.POSITIVE_INFINITY),
            i + 1000,
          );
          new DataView(v.buffer).setUint32(0, i);
          return v;
        });
        const reads: Promise<void>[] = [];
        const check = (v: Uint8Array | undefined, what: string): void => {
          if (v === undefined) return;
          const i = v.length >= 4 ? new DataView(v.buffer, v.byteOffset, v.length).getUint32(0) : -1;
          const expected = values[i];
          expect(expected, `${what}: value matches no written value`).toBeDefined();
          expectBytes(v, expected as Uint8Array, what);
        };
        const writes = values.map((value, i) => {
          // Interleave reads with the writes: every read sees nothing or one whole value.
          if (i % 10 === 0) reads.push(b.get("one").then((e) => check(e?.value, `concurrent read ${i}`)));
          return b.put({ key: "one", value });
        });
        await Promise.all([...writes, ...reads]);
        const final = (await b.get("one"))?.value;
        expect(final).toBeDefined();
        check(final, "final value");
      });
    });

    // Not registered at all for a backend declared non-transactional (an empty describe fails in vitest).
    if (options.transactional !== false) {
      describe("transactions", () => {
        /** The backend as a transactional one, or a skip (or failure, when required) when it is not. */
        const txBackend = (ctx: TestContext) => {
          const b = backend();
          if (!isTransactional(b)) {
            expect(
              options.transactional,
              "options.transactional is true but the backend has no transaction()",
            ).not.toBe(true);
            return ctx.skip("backend is not transactional");
          }
          return b;
        };

        if (options.transactional !== false) {
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
              expectBytes(
                (await b.get("guard"))?.value,
                enc("v1"),
                "guard after the rolled-back transaction",
              );
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
              expect(["value_too_large", "transaction_too_large"]).toContain(
                (err as { code?: unknown }).code,
              );
              expect(await allKeys(b)).toEqual(["keep"]);
              expectBytes((await b.get("keep"))?.value, enc("k"), "keep after the rejected transaction");
            });
          }

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
                  if ((err as { code?: unknown } | undefined)?.code !== "transaction_failed") throw err;
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
      });
    }

    if (options.ha === undefined) return;
    const ha = options.ha;

    describe("HA lock", () => {
      const LOCK = "core/lock";

      const target = (ctx: TestContext) => {
        const t = ha(backend());
        if (t === undefined) return ctx.skip("no HA target (options.ha)");
        const handover = t.handoverTimeoutMs ?? 5000;
        const lock = (key: string, value: string, node: "a" | "b" = "a"): Lock => {
          const l = (node === "a" ? t.backend : (t.peer ?? t.backend)).lockWith(key, value);
          locks.push(l);
          return l;
        };
        return { ...t, handover, lock };
      };

      it("value() of a lock nobody holds is { held: false }", async (ctx) => {
        const { lock } = target(ctx);
        const v = await lock(LOCK, "node-a").value();
        expect(v.held).toBe(false);
        expect(v.value ?? "").toBe("");
      });

      it("acquire() takes the lock; value() reports the holder's value from any node", async (ctx) => {
        const { lock } = target(ctx);
        const a = lock(LOCK, "node-a");
        const leadership = await a.acquire(waits.signal);
        expect(leadership.aborted).toBe(false);
        expect(await a.value()).toEqual({ held: true, value: "node-a" });
        expect(await lock(LOCK, "observer", "b").value()).toEqual({ held: true, value: "node-a" });
      });

      it("a second node waits until the first releases (mutual exclusion)", async (ctx) => {
        const { lock, handover } = target(ctx);
        const a = lock(LOCK, "node-a");
        const b = lock(LOCK, "node-b", "b");
        const leadA = await a.acquire(waits.signal);
        const pb = b.acquire(waits.signal);
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
        await a.acquire(waits.signal);
        const b = lock(LOCK, "node-b", "b");
        const c = lock(LOCK, "node-c", "b");
        const pb = b.acquire(waits.signal).then((signal) => ({ handle: b, value: "node-b", signal }));
        const pc = c.acquire(waits.signal).then((signal) => ({ handle: c, value: "node-c", signal }));
        // Settled by afterEach's abort when the test fails early: not an unhandled rejection.
        pb.catch(() => {});
        pc.catch(() => {});
        expect(await stillPending(Promise.race([pb, pc]), QUIET_MS), "a waiter acquired a held lock").toBe(
          true,
        );
        await a.release();
        const first = await within(Promise.race([pb, pc]), handover, "a waiter to acquire after the release");
        const other = first.handle === b ? pc : pb;
        expect(await stillPending(other, QUIET_MS), "both waiters hold the lock after one release").toBe(
          true,
        );
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
        const first = await a.acquire(waits.signal);
        await a.release();
        expect(first.aborted).toBe(true);
        expect((await a.value()).held).toBe(false);
        const second = await within(a.acquire(waits.signal), handover, "re-acquire after release");
        expect(second.aborted).toBe(false);
        expect(await a.value()).toEqual({ held: true, value: "node-a" });
      });

      it("release() without holding the lock does not disturb the holder", async (ctx) => {
        const { lock } = target(ctx);
        const idle = lock(LOCK, "idle", "b");
        await idle.release();
        const holder = lock(LOCK, "holder");
        const lead = await holder.acquire(waits.signal);
        await idle.release();
        expect(lead.aborted).toBe(false);
        expect(await idle.value()).toEqual({ held: true, value: "holder" });
      });

      it("aborting a wait rejects with AbortError and leaves no trace", async (ctx) => {
        const { lock, handover } = target(ctx);
        const a = lock(LOCK, "node-a");
        await a.acquire(waits.signal);
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
        await within(c.acquire(waits.signal), handover, "node-c to acquire the free lock");
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
        await lock("locks/one", "node-a").acquire(waits.signal);
        const two = lock("locks/two", "node-b", "b");
        await within(two.acquire(waits.signal), handover, "a lock on another key");
        expect(await two.value()).toEqual({ held: true, value: "node-b" });
      });

      it("forced loss aborts the holder's leadership signal and the waiter takes over", async (ctx) => {
        const { lock, handover, breakLock } = target(ctx);
        if (breakLock === undefined) return ctx.skip("no breakLock in the HA target");
        const a = lock(LOCK, "node-a");
        const leadA = await a.acquire(waits.signal);
        const b = lock(LOCK, "node-b", "b");
        const pb = b.acquire(waits.signal);
        expect(await stillPending(pb, QUIET_MS)).toBe(true);
        await breakLock(LOCK);
        await within(aborted(leadA), handover, "node-a's leadership signal to abort on forced loss");
        await within(pb, handover, "node-b to take over after the forced loss");
        expect(await a.value()).toEqual({ held: true, value: "node-b" });
        // The deposed node's release must not free its successor's lock.
        await a.release();
        expect(await b.value()).toEqual({ held: true, value: "node-b" });
      });
    });
  });
}

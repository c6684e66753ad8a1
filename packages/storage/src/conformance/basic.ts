/** The conformance sections "basic operations" and "probe". */
import { describe, expect, it, type TestContext } from "vitest";
import { allKeys, type ConformanceContext, enc, expectBytes } from "./shared.js";

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

/** get, put, delete and list on a handful of keys: the `Backend` contract's core. */
export function registerBasicTests(kit: ConformanceContext): void {
  const { backend } = kit;
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
}

/**
 * `probe()`: run when the backend has one, reported skipped when it has none — or failed, when
 * `options.probe` is `true`. Not registered at all when `options.probe` is `false`.
 */
export function registerProbeTests(kit: ConformanceContext): void {
  const { backend, options } = kit;
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

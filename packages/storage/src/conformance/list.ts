/** The conformance section "list": direct children, folders, order. */
import { describe, expect, it } from "vitest";
import { directChildren } from "../keys.js";
import { type ConformanceContext, enc, pseudoRandomBytes } from "./shared.js";

/** `list(prefix)` returns the direct children, folders with a trailing '/', sorted by code unit. */
export function registerListTests(kit: ConformanceContext): void {
  const { backend } = kit;
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
        const depth = 1 + ((rnd[i] ?? 0) % 3);
        const parts: string[] = [];
        for (let d = 0; d < depth; d++) parts.push(segs[(rnd[i + 1 + d] ?? 0) % segs.length] ?? "");
        keys.add(parts.join("/"));
      }
      for (const key of keys) await b.put({ key, value: enc(key) });
      const folders = new Set<string>([""]);
      for (const key of keys) {
        const parts = key.split("/");
        for (let d = 1; d < parts.length; d++) folders.add(`${parts.slice(0, d).join("/")}/`);
      }
      for (const prefix of folders) {
        expect(await b.list(prefix), `list(${JSON.stringify(prefix)})`).toEqual(directChildren(prefix, keys));
      }
    });
  });
}

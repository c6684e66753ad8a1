import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { InvalidKeyError } from "./errors.js";
import { directChildren, validateKey, validatePrefix } from "./keys.js";

const segment = fc
  .string({ unit: fc.constantFrom("a", "b", "-", "0", "~", "."), minLength: 1, maxLength: 4 })
  .filter((s) => s !== ".." && s !== ".");
const key = fc.array(segment, { minLength: 1, maxLength: 5 }).map((segs) => segs.join("/"));
const prefix = fc
  .array(segment, { maxLength: 3 })
  .map((segs) => (segs.length === 0 ? "" : `${segs.join("/")}/`));

describe("validateKey", () => {
  it.each([["core/keyring"], ["a"], ["a/b/c"], ["with space/ключ"], ["..."], ["a..b"]])("accepts %j", (k) => {
    expect(() => validateKey(k)).not.toThrow();
  });

  it.each([
    ["", "empty"],
    ["/a", "relative"],
    ["a/", "folder"],
    ["a//b", "empty segments"],
    ["..", "'..'"],
    ["../a", "'..'"],
    ["a/../b", "'..'"],
    ["a/..", "'..'"],
    ["a/./b", "'.'"],
    [".", "'.'"],
    ["a\0b", "NUL"],
  ])("rejects %j with InvalidKeyError mentioning %s", (k, reason) => {
    let err: unknown;
    try {
      validateKey(k);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(InvalidKeyError);
    expect(err).toMatchObject({ code: "invalid_key", key: k });
    expect((err as Error).message).toContain(reason);
  });

  it("rejects non-strings", () => {
    expect(() => validateKey(42 as unknown as string)).toThrow(/must be strings/);
  });

  it("accepts every generated key made of valid segments", () => {
    fc.assert(fc.property(key, (k) => validateKey(k) === undefined));
  });

  it("rejects any key with a '..' segment inserted anywhere", () => {
    fc.assert(
      fc.property(fc.array(segment, { maxLength: 4 }), fc.nat(), (segs, at) => {
        const parts = [...segs];
        parts.splice(at % (parts.length + 1), 0, "..");
        expect(() => validateKey(parts.join("/"))).toThrow(InvalidKeyError);
      }),
    );
  });
});

describe("validatePrefix", () => {
  it.each([[""], ["a/"], ["a/b/"]])("accepts %j", (p) => {
    expect(() => validatePrefix(p)).not.toThrow();
  });

  it.each([["a"], ["/"], ["/a/"], ["a//"], ["../"], ["a/../"], ["//"]])("rejects %j", (p) => {
    expect(() => validatePrefix(p)).toThrow(InvalidKeyError);
  });

  it("accepts every generated folder prefix", () => {
    fc.assert(fc.property(prefix, (p) => validatePrefix(p) === undefined));
  });
});

describe("directChildren", () => {
  it("lists direct children with sub-folders marked by a trailing '/'", () => {
    const keys = ["a", "a/b", "a/c/d", "ab", "a-b", "b/x"];
    expect(directChildren("", keys)).toEqual(["a", "a-b", "a/", "ab", "b/"]);
    expect(directChildren("a/", keys)).toEqual(["b", "c/"]);
    expect(directChildren("zzz/", keys)).toEqual([]);
  });

  it("output is sorted, unique, and names contain no '/' except a trailing one", () => {
    fc.assert(
      fc.property(fc.array(key, { maxLength: 50 }), prefix, (keys, p) => {
        const out = directChildren(p, keys);
        expect(out).toEqual([...out].sort());
        expect(new Set(out).size).toBe(out.length);
        for (const name of out) {
          expect(name.length).toBeGreaterThan(0);
          expect(name.slice(0, -1)).not.toContain("/");
        }
      }),
    );
  });

  it("every key under the prefix is covered by exactly one child, and every child by a key", () => {
    fc.assert(
      fc.property(fc.array(key, { maxLength: 50 }), prefix, (keys, p) => {
        const out = new Set(directChildren(p, keys));
        const under = keys.filter((k) => k.startsWith(p));
        for (const k of under) {
          const rest = k.slice(p.length);
          const slash = rest.indexOf("/");
          expect(out.has(slash === -1 ? rest : rest.slice(0, slash + 1))).toBe(true);
        }
        for (const child of out) {
          expect(under.some((k) => (child.endsWith("/") ? k.startsWith(p + child) : k === p + child))).toBe(
            true,
          );
        }
      }),
    );
  });
});

import { directChildren } from "@bulwark/storage";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { SortedKeys } from "./sorted-keys.js";

// Small alphabet so that shared name prefixes, '-' (sorts before '/') and '0' (sorts after '/') are common.
const segment = fc.string({ unit: fc.constantFrom("a", "b", "-", "0", "~"), minLength: 1, maxLength: 3 });
const key = fc.array(segment, { minLength: 1, maxLength: 4 }).map((segs) => segs.join("/"));

describe("SortedKeys", () => {
  it("children() equals directChildren() for any key set and prefix", () => {
    fc.assert(
      fc.property(fc.uniqueArray(key, { maxLength: 60 }), fc.array(segment, { maxLength: 2 }), (keys, p) => {
        const sk = new SortedKeys();
        for (const k of keys) sk.insert(k);
        const prefix = p.length === 0 ? "" : `${p.join("/")}/`;
        expect(sk.children(prefix)).toEqual(directChildren(prefix, keys));
      }),
    );
  });

  it("insert is idempotent and remove of a missing key is a no-op", () => {
    const sk = new SortedKeys();
    sk.insert("b");
    sk.insert("a");
    sk.insert("b");
    sk.remove("zzz");
    expect(sk.size).toBe(2);
    expect(sk.children("")).toEqual(["a", "b"]);
    sk.remove("a");
    expect(sk.children("")).toEqual(["b"]);
  });
});

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

  it("any interleaving of inserts, removes and listings matches a plain set", () => {
    // A small pool, so keys are inserted, removed and inserted again between listings.
    const pooled = fc.constantFrom("a", "a/b", "a-b");
    const op = fc.oneof(
      fc.record({ kind: fc.constant("insert" as const), key: pooled }),
      fc.record({ kind: fc.constant("remove" as const), key: pooled }),
      fc.record({ kind: fc.constant("list" as const), prefix: fc.array(segment, { maxLength: 2 }) }),
    );
    fc.assert(
      fc.property(fc.array(op, { minLength: 10, maxLength: 60, size: "max" }), (ops) => {
        const sk = new SortedKeys();
        const model = new Set<string>();
        for (const o of ops) {
          if (o.kind === "insert") {
            sk.insert(o.key);
            model.add(o.key);
          } else if (o.kind === "remove") {
            sk.remove(o.key);
            model.delete(o.key);
          } else {
            const prefix = o.prefix.length === 0 ? "" : `${o.prefix.join("/")}/`;
            expect(sk.children(prefix)).toEqual(directChildren(prefix, [...model]));
          }
          expect(sk.size).toBe(model.size);
        }
        expect(sk.children("")).toEqual(directChildren("", [...model]));
      }),
      { numRuns: 300 },
    );
  });
});

/** The conformance section "key validation": keys and prefixes every backend must refuse. */
import { describe, expect, it } from "vitest";
import { type ConformanceContext, enc, expectStorageError, rejection } from "./shared.js";

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

/** One test per bad key (get, put and delete) and per bad prefix (list): InvalidKeyError. */
export function registerKeyValidationTests(kit: ConformanceContext): void {
  const { backend } = kit;
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
}

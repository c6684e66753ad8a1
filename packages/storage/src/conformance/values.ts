/** The conformance section "values": what bytes a backend stores, and whose buffers it keeps. */
import { describe, expect, it } from "vitest";
import {
  type ConformanceContext,
  enc,
  expectBytes,
  expectStorageError,
  pseudoRandomBytes,
  rejection,
} from "./shared.js";

/**
 * Binary round trips, zero-length values (`options.emptyValue` says how they read back), buffer
 * ownership, and — with `options.maxValueSize` — the size limit's edge.
 */
export function registerValueTests(kit: ConformanceContext): void {
  const { backend } = kit;
  const { emptyValue, largeValueSize, maxValueSize } = kit.options;
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
}

/** The conformance section "concurrency": many operations in flight at once. */
import { describe, expect, it } from "vitest";
import { type ConformanceContext, expectBytes, pseudoRandomBytes } from "./shared.js";

/** `options.concurrency` puts at once, to distinct keys and to one key. */
export function registerConcurrencyTests(kit: ConformanceContext): void {
  const { backend } = kit;
  const { concurrency, maxValueSize } = kit.options;
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
}

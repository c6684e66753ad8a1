import { describe, expect, it } from "vitest";
import { cloneMetadata, MetadataCache } from "./metadata-cache.js";
import type { KeyMetadata } from "./v2-records.js";

const meta = (current: number): KeyMetadata => ({
  key: "a",
  created_time: { seconds: 1_767_225_600, nanos: 0 },
  updated_time: { seconds: 1_767_225_600, nanos: 0 },
  current_version: current,
  oldest_version: 0,
  max_versions: 0,
  cas_required: false,
  custom_metadata: new Map([["owner", "ops"]]),
  metadata_cas_required: false,
  current_metadata_version: 0,
  versions: new Map([[current, { created_time: { seconds: 1_767_225_600, nanos: 5 }, destroyed: false }]]),
});

describe("MetadataCache", () => {
  it("caches what a reader loaded, and only while the active term is unchanged", () => {
    let term: number | undefined = 1;
    const c = new MetadataCache(() => term);
    const at = c.snapshot();
    const m = c.fill("a", meta(1), at);
    expect(c.get("a")).toBe(m);
    term = 2;
    expect(c.get("a")).toBeUndefined();
    expect(c.size).toBe(0);
  });

  it("caches nothing while the store is not active", () => {
    const c = new MetadataCache(() => undefined);
    c.fill("a", meta(1), c.snapshot());
    c.endWrite("b", meta(1), undefined);
    expect(c.get("a")).toBeUndefined();
    expect(c.get("b")).toBeUndefined();
  });

  it("a read that overlapped a write (begun or ended) does not put its record back", () => {
    const c = new MetadataCache(() => 1);
    const beforeWrite = c.snapshot();
    c.beginWrite("a");
    const duringWrite = c.snapshot();
    c.endWrite("a", meta(2), 1);
    expect(c.get("a")?.current_version).toBe(2);
    // Both readers loaded version 1 from storage before the write landed.
    c.fill("a", meta(1), beforeWrite);
    c.fill("a", meta(1), duringWrite);
    expect(c.get("a")?.current_version).toBe(2);
  });

  it("a write whose outcome is unknown (stored undefined) leaves nothing cached", () => {
    const c = new MetadataCache(() => 1);
    c.fill("a", meta(1), c.snapshot());
    c.beginWrite("a");
    expect(c.get("a")).toBeUndefined();
    c.endWrite("a", undefined, 1);
    expect(c.get("a")).toBeUndefined();
  });

  it("a write that began in an earlier term does not cache its record", () => {
    let term = 1;
    const c = new MetadataCache(() => term);
    c.beginWrite("a");
    term = 2;
    c.endWrite("a", meta(2), 1);
    expect(c.get("a")).toBeUndefined();
  });

  it("cached records are frozen; clones are independent and writable", () => {
    const c = new MetadataCache(() => 1);
    const m = c.fill("a", meta(1), c.snapshot()) as KeyMetadata;
    expect(() => {
      m.current_version = 9;
    }).toThrow(TypeError);
    expect(() => {
      (m.versions.get(1) as { destroyed: boolean }).destroyed = true;
    }).toThrow(TypeError);
    // The maps too: set, delete and clear throw (Object.freeze alone leaves them working).
    expect(() => m.custom_metadata.set("owner", "x")).toThrow(TypeError);
    expect(() => m.custom_metadata.delete("owner")).toThrow(TypeError);
    expect(() => m.versions.set(2, { destroyed: false })).toThrow(TypeError);
    expect(() => m.versions.clear()).toThrow(TypeError);
    const copy = cloneMetadata(m);
    copy.current_version = 2;
    (copy.versions.get(1) as { destroyed: boolean }).destroyed = true;
    copy.versions.set(2, { destroyed: false });
    copy.custom_metadata.set("owner", "dev");
    expect(m.current_version).toBe(1);
    expect(m.versions.get(1)?.destroyed).toBe(false);
    expect(m.versions.size).toBe(1);
    expect(m.custom_metadata.get("owner")).toBe("ops");
  });

  it("holds at most maxEntries records, dropping the oldest", () => {
    const c = new MetadataCache(() => 1, 2);
    for (const k of ["a", "b", "c"]) c.fill(k, meta(1), c.snapshot());
    expect(c.size).toBe(2);
    expect(c.get("a")).toBeUndefined();
    expect(c.get("c")).toBeDefined();
    expect(() => new MetadataCache(() => 1, 0)).toThrow(/maxEntries must be a positive integer/);
  });
});

import { FaultInjectingBackend, InvalidKeyError, StorageUnavailableError } from "@bulwark/storage";
import { MemoryBackend } from "@bulwark/storage-memory";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { type KvEngine, KvError, type KvRequest, type KvResponse, PrefixView } from "./common.js";
import { KvV1 } from "./kv-v1.js";
import { KvV2 } from "./kv-v2.js";

const req = (
  operation: KvRequest["operation"],
  path: string,
  body?: unknown,
  query: Record<string, string> = {},
): KvRequest => ({
  operation,
  path,
  body,
  query,
});

/** A read's `data` field, whether the engine sent it as an object or as JSON text. */
async function read(
  kv: KvEngine,
  path: string,
  query: Record<string, string> = {},
): Promise<KvResponse & { value: unknown }> {
  const r = await kv.handle(req("read", path, undefined, query));
  return { ...r, value: r.rawData !== undefined ? JSON.parse(r.rawData) : r.data };
}

async function status(p: Promise<unknown>): Promise<number> {
  try {
    await p;
    return 200;
  } catch (e) {
    if (e instanceof KvError) return e.status;
    if ((e as { status?: number }).status !== undefined) return (e as { status: number }).status;
    throw e;
  }
}

function v2(): { kv: KvEngine; storage: MemoryBackend } {
  const storage = new MemoryBackend();
  return { kv: new KvV2(new PrefixView(storage, "logical/x/", false)), storage };
}

describe("KV v1", () => {
  it("writes, reads, lists and deletes", async () => {
    const kv = new KvV1(new PrefixView(new MemoryBackend(), "logical/a/", false));
    await kv.handle(req("write", "app/db", { password: "p" }));
    await kv.handle(req("write", "app/api", { key: "k" }));
    await kv.handle(req("write", "top", { x: "1" }));
    expect((await read(kv, "app/db")).value).toEqual({ password: "p" });
    expect((await kv.handle(req("list", ""))).data).toEqual({ keys: ["app/", "top"] });
    expect((await kv.handle(req("list", "app"))).data).toEqual({ keys: ["api", "db"] });
    await kv.handle(req("delete", "app/db"));
    expect(await status(kv.handle(req("read", "app/db")))).toBe(404);
    expect(await kv.exists("app/api")).toBe(true);
    expect(await kv.exists("app/db")).toBe(false);
  });

  it("refuses empty data, non-object bodies and bad paths", async () => {
    const kv = new KvV1(new PrefixView(new MemoryBackend(), "logical/a/", false));
    expect(await status(kv.handle(req("write", "a", {})))).toBe(400);
    expect(await status(kv.handle(req("write", "a", [1, 2])))).toBe(400);
    expect(await status(kv.handle(req("write", "a/../b", { x: 1 })))).toBe(400);
    expect(await status(kv.handle(req("write", "a//b", { x: 1 })))).toBe(400);
    expect(await status(kv.handle(req("read", "")))).toBe(400);
  });
});

describe("KV v2", () => {
  it("keeps versions and reads any of them", async () => {
    const { kv } = v2();
    const w1 = await kv.handle(req("write", "data/app", { data: { v: "1" } }));
    expect(w1.data).toMatchObject({ version: 1, destroyed: false, deletion_time: "" });
    await kv.handle(req("write", "data/app", { data: { v: "2" } }));
    const latest = await read(kv, "data/app");
    expect(latest.value).toMatchObject({ data: { v: "2" }, metadata: { version: 2 } });
    const first = await read(kv, "data/app", { version: "1" });
    expect(first.value).toMatchObject({ data: { v: "1" }, metadata: { version: 1 } });
    const meta = await kv.handle(req("read", "metadata/app"));
    expect(meta.data).toMatchObject({ current_version: 2, oldest_version: 1, max_versions: 0 });
    expect(Object.keys((meta.data as { versions: object }).versions)).toEqual(["1", "2"]);
  });

  it("any JSON object round-trips exactly through a write and a read", async () => {
    const { kv } = v2();
    await fc.assert(
      fc.asyncProperty(fc.dictionary(fc.string(), fc.jsonValue()), async (data) => {
        await kv.handle(req("write", "data/prop", { data }));
        const r = await read(kv, "data/prop");
        expect((r.value as { data: unknown }).data).toEqual(JSON.parse(JSON.stringify(data)));
      }),
      { numRuns: 200 },
    );
  });

  it("check-and-set: cas must match the current version; cas=0 only creates", async () => {
    const { kv } = v2();
    await kv.handle(req("write", "data/k", { data: { a: 1 }, options: { cas: 0 } }));
    expect(await status(kv.handle(req("write", "data/k", { data: { a: 2 }, options: { cas: 0 } })))).toBe(
      400,
    );
    expect(await status(kv.handle(req("write", "data/k", { data: { a: 2 }, options: { cas: 5 } })))).toBe(
      400,
    );
    await kv.handle(req("write", "data/k", { data: { a: 2 }, options: { cas: 1 } }));
    await kv.handle(req("write", "config", { cas_required: true }));
    expect(await status(kv.handle(req("write", "data/k", { data: { a: 3 } })))).toBe(400);
    expect((await kv.handle(req("read", "config"))).data).toMatchObject({ cas_required: true });
  });

  it("prunes to max_versions", async () => {
    const { kv, storage } = v2();
    await kv.handle(req("write", "metadata/p", { max_versions: 2 }));
    for (let i = 1; i <= 4; i++) await kv.handle(req("write", "data/p", { data: { i } }));
    const meta = (await kv.handle(req("read", "metadata/p"))).data as {
      versions: object;
      oldest_version: number;
    };
    expect(Object.keys(meta.versions)).toEqual(["3", "4"]);
    expect(meta.oldest_version).toBe(3);
    expect(await status(kv.handle(req("read", "data/p", undefined, { version: "1" })))).toBe(404);
    const stored = await storage.list("logical/x/versions/");
    expect((await storage.list(`logical/x/versions/${stored[0]}`)).sort()).toEqual(["3", "4"]);
  });

  it("soft delete, undelete and destroy", async () => {
    const { kv } = v2();
    await kv.handle(req("write", "data/s", { data: { a: 1 } }));
    await kv.handle(req("write", "data/s", { data: { a: 2 } }));
    await kv.handle(req("delete", "data/s"));
    const deleted = await kv.handle(req("read", "data/s"));
    expect(deleted.status).toBe(404);
    expect(deleted.data).toMatchObject({ data: null, metadata: { version: 2 } });
    await kv.handle(req("write", "undelete/s", { versions: [2] }));
    expect((await read(kv, "data/s")).value).toMatchObject({ data: { a: 2 } });
    await kv.handle(req("write", "delete/s", { versions: [1] }));
    expect((await kv.handle(req("read", "data/s", undefined, { version: "1" }))).status).toBe(404);
    await kv.handle(req("write", "destroy/s", { versions: [1] }));
    await kv.handle(req("write", "undelete/s", { versions: [1] }));
    const destroyed = await kv.handle(req("read", "data/s", undefined, { version: "1" }));
    expect(destroyed.data).toMatchObject({ metadata: { destroyed: true } });
    expect(await status(kv.handle(req("write", "delete/s", {})))).toBe(400);
  });

  it("lists metadata folders and deletes all versions with the metadata", async () => {
    const { kv, storage } = v2();
    await kv.handle(req("write", "data/app/a", { data: { x: 1 } }));
    await kv.handle(req("write", "data/app/b/c", { data: { x: 1 } }));
    expect((await kv.handle(req("list", "metadata/"))).data).toEqual({ keys: ["app/"] });
    expect((await kv.handle(req("list", "metadata/app"))).data).toEqual({ keys: ["a", "b/"] });
    await kv.handle(req("delete", "metadata/app/a"));
    expect(await status(kv.handle(req("read", "metadata/app/a")))).toBe(404);
    expect((await kv.handle(req("list", "metadata/app/"))).data).toEqual({ keys: ["b/"] });
    expect((await storage.list("logical/x/versions/")).length).toBe(1);
    expect(await status(kv.handle(req("list", "metadata/nothing/")))).toBe(404);
  });

  it("delete_version_after marks new versions for deletion", async () => {
    const { kv } = v2();
    await kv.handle(req("write", "metadata/t", { delete_version_after: "1h" }));
    const w = await kv.handle(req("write", "data/t", { data: { a: 1 } }));
    expect((w.data as { deletion_time: string }).deletion_time).not.toBe("");
    expect((await kv.handle(req("read", "metadata/t"))).data).toMatchObject({
      delete_version_after: "1h0m0s",
    });
  });

  it("a delete_version_after beyond Go's duration range is a 400 and leaves the key writable", async () => {
    const { kv } = v2();
    await kv.handle(req("write", "data/app", { data: { v: "1" } }));
    expect(
      await status(kv.handle(req("write", "metadata/app", { delete_version_after: "100000000000h" }))),
    ).toBe(400);
    expect(await status(kv.handle(req("write", "metadata/app", { delete_version_after: 1e300 })))).toBe(400);
    expect(
      await status(kv.handle(req("write", "config", { delete_version_after: "9999999999999999h" }))),
    ).toBe(400);
    expect(await status(kv.handle(req("write", "data/app", { data: { v: "2" } })))).toBe(200);
    const meta = (await kv.handle(req("read", "metadata/app"))).data as { delete_version_after: string };
    expect(meta.delete_version_after).toBe("0s");
  });

  it("a metadata delete that fails part-way can be retried until every version's data is gone", async () => {
    const memory = new MemoryBackend();
    let failVersionDeletes = false;
    const flaky = new FaultInjectingBackend(memory, {
      fault: ({ op, key }) =>
        failVersionDeletes && op === "delete" && key.includes("/versions/") && key.endsWith("/2")
          ? new Error("injected delete failure")
          : undefined,
    });
    const kv = new KvV2(new PrefixView(flaky, "logical/x/", false), { activeTerm: () => 1 });
    for (const v of ["1", "2", "3"]) await kv.handle(req("write", "data/app", { data: { v } }));
    failVersionDeletes = true;
    await expect(kv.handle(req("delete", "metadata/app"))).rejects.toThrow(/injected/);
    failVersionDeletes = false;
    await kv.handle(req("delete", "metadata/app"));
    expect(await memory.list("logical/x/versions/")).toEqual([]);
    expect(await memory.list("logical/x/metadata/")).toEqual([]);
  });

  it("a write whose pruning of old versions fails still succeeds (with a warning), as in Vault", async () => {
    const memory = new MemoryBackend();
    let failPrune = false;
    const flaky = new FaultInjectingBackend(memory, {
      fault: ({ op, key }) =>
        failPrune && op === "delete" && key.includes("/versions/")
          ? new Error("injected delete failure")
          : undefined,
    });
    const kv = new KvV2(new PrefixView(flaky, "logical/x/", false), { activeTerm: () => 1 });
    await kv.handle(req("write", "metadata/app", { max_versions: 1 }));
    await kv.handle(req("write", "data/app", { data: { v: "1" } }));
    failPrune = true;
    const w = await kv.handle(req("write", "data/app", { data: { v: "2" } }));
    expect((w.data as { version: number }).version).toBe(2);
    expect(w.warnings?.join(" ")).toMatch(/old versions/);
    failPrune = false;
    expect((await read(kv, "data/app")).value).toMatchObject({ data: { v: "2" }, metadata: { version: 2 } });
  });

  it("a write whose metadata the storage refuses leaves no version behind", async () => {
    const memory = new MemoryBackend();
    const flaky = new FaultInjectingBackend(memory, {
      // What the file backend answers for metadata/_coll/b once metadata/coll exists.
      fault: ({ op, key }) =>
        op === "put" && key.endsWith("metadata/refused")
          ? new InvalidKeyError(key, "a folder clashes with a file")
          : undefined,
    });
    const kv = new KvV2(new PrefixView(flaky, "logical/x/", false), { activeTerm: () => 1 });
    await expect(kv.handle(req("write", "data/refused", { data: { v: "1" } }))).rejects.toBeInstanceOf(
      InvalidKeyError,
    );
    expect(await memory.list("logical/x/")).toEqual([]);
  });

  it("a write whose metadata put fails for an unknown reason keeps its version (the put may have landed)", async () => {
    const memory = new MemoryBackend();
    const flaky = new FaultInjectingBackend(memory, {
      fault: ({ op, key }) =>
        op === "put" && key.endsWith("metadata/lost")
          ? new StorageUnavailableError("connection reset")
          : undefined,
    });
    const kv = new KvV2(new PrefixView(flaky, "logical/x/", false), { activeTerm: () => 1 });
    await expect(kv.handle(req("write", "data/lost", { data: { v: "1" } }))).rejects.toBeInstanceOf(
      StorageUnavailableError,
    );
    expect(await memory.list("logical/x/")).toEqual(["versions/"]);
  });

  it("custom_metadata is stored and returned", async () => {
    const { kv } = v2();
    await kv.handle(req("write", "metadata/c", { custom_metadata: { owner: "ops" } }));
    await kv.handle(req("write", "data/c", { data: { a: 1 } }));
    expect((await read(kv, "data/c")).value).toMatchObject({
      metadata: { custom_metadata: { owner: "ops" } },
    });
    expect(await status(kv.handle(req("write", "metadata/c", { custom_metadata: { owner: 5 } })))).toBe(400);
  });

  it("refuses unknown fields, missing data, unknown sub-paths and wrong operations", async () => {
    const { kv } = v2();
    expect(await status(kv.handle(req("write", "data/a", { data: { a: 1 }, extra: true })))).toBe(400);
    expect(await status(kv.handle(req("write", "data/a", { options: {} })))).toBe(400);
    expect(await status(kv.handle(req("write", "data/a", { data: "text" })))).toBe(400);
    expect(await status(kv.handle(req("write", "data/a", { data: {}, options: { cas: "x" } })))).toBe(400);
    expect(await status(kv.handle(req("read", "nothing/a")))).toBe(404);
    expect(await status(kv.handle(req("list", "data/")))).toBe(405);
  });

  it("serialises concurrent writes to one key: every version is distinct", async () => {
    const { kv } = v2();
    const res = await Promise.all(
      Array.from({ length: 20 }, (_, i) => kv.handle(req("write", "data/c", { data: { i } }))),
    );
    const versions = res.map((r) => (r.data as { version: number }).version).sort((a, b) => a - b);
    expect(versions).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
  });
});

describe("KV v2 mount config under concurrency", () => {
  /** Storage whose gets of `config` look at storage, then wait until `release` is called. */
  function stalling() {
    const memory = new MemoryBackend();
    const waiting: (() => void)[] = [];
    let stall = false;
    const slow = new Proxy(memory, {
      get(target, prop, recv) {
        if (prop === "get")
          return async (key: string) => {
            const v = await target.get(key);
            if (stall && key.endsWith("/config")) await new Promise<void>((r) => waiting.push(r));
            return v;
          };
        if (prop === "put")
          return async (e: Parameters<MemoryBackend["put"]>[0]) => {
            await new Promise((r) => setTimeout(r, 1));
            return target.put(e);
          };
        const v = Reflect.get(target, prop, recv);
        return typeof v === "function" ? v.bind(target) : v;
      },
    });
    const kv = new KvV2(new PrefixView(slow, "logical/x/", false), { activeTerm: () => 1 });
    return {
      kv,
      stall: (on: boolean) => {
        stall = on;
      },
      waiting: () => waiting.length,
      release: () => {
        for (const r of waiting.splice(0)) r();
      },
    };
  }
  const tick = () => new Promise((r) => setTimeout(r, 5));

  it("a config read that began before a config write does not cache the old config over it", async () => {
    const s = stalling();
    s.stall(true);
    const early = s.kv.handle(req("write", "data/a", { data: { v: "1" } }));
    await tick();
    expect(s.waiting()).toBe(1);
    s.stall(false);
    await s.kv.handle(req("write", "config", { cas_required: true }));
    s.release();
    await early;
    expect(await status(s.kv.handle(req("write", "data/b", { data: { v: "1" } })))).toBe(400);
    const cfg = (await s.kv.handle(req("read", "config"))).data as { cas_required: boolean };
    expect(cfg.cas_required).toBe(true);
  });

  it("the mount config cached before a step-down is not used after this node becomes active again", async () => {
    const memory = new MemoryBackend();
    const term = { value: 1 as number | undefined };
    const a = new KvV2(new PrefixView(memory, "logical/x/", false), { activeTerm: () => term.value });
    await a.handle(req("write", "data/k", { data: { v: "1" } })); // caches the (default) config
    term.value = undefined; // a steps down; b becomes active and requires check-and-set
    const b = new KvV2(new PrefixView(memory, "logical/x/", false), { activeTerm: () => 7 });
    await b.handle(req("write", "config", { cas_required: true }));
    term.value = 2; // a is active again
    expect(await status(a.handle(req("write", "data/k", { data: { v: "2" } })))).toBe(400);
    expect((await a.handle(req("read", "config"))).data).toMatchObject({ cas_required: true });
  });

  it("two config writes of different fields at once: both changes are kept", async () => {
    const s = stalling();
    await Promise.all([
      s.kv.handle(req("write", "config", { max_versions: 3 })),
      s.kv.handle(req("write", "config", { cas_required: true })),
      s.kv.handle(req("write", "config", { delete_version_after: "1h" })),
    ]);
    const cfg = (await s.kv.handle(req("read", "config"))).data;
    expect(cfg).toEqual({ max_versions: 3, cas_required: true, delete_version_after: "1h0m0s" });
  });
});

describe("KV v2 metadata cache (active node)", () => {
  /** A KV v2 engine over `storage` with a controllable active term, counting metadata reads. */
  function cached(storage: MemoryBackend | FaultInjectingBackend, term: { value: number | undefined }) {
    let metadataGets = 0;
    const counting = new FaultInjectingBackend(storage, {
      fault: ({ op, key }) => {
        if (op === "get" && key.startsWith("logical/x/metadata/")) metadataGets++;
        return undefined;
      },
    });
    const kv = new KvV2(new PrefixView(counting, "logical/x/", false), { activeTerm: () => term.value });
    return { kv, gets: () => metadataGets };
  }
  const current = async (kv: KvEngine, key: string) =>
    ((await read(kv, `data/${key}`)).value as { metadata: { version: number } }).metadata.version;

  it("a read after the first decodes no metadata from storage; writes keep the cached record current", async () => {
    const term = { value: 1 as number | undefined };
    const { kv, gets } = cached(new MemoryBackend(), term);
    await kv.handle(req("write", "data/app", { data: { v: "1" } }));
    const afterWrite = gets();
    expect(await current(kv, "app")).toBe(1);
    expect(await current(kv, "app")).toBe(1);
    expect(gets()).toBe(afterWrite);
    await kv.handle(req("write", "data/app", { data: { v: "2" } }));
    await kv.handle(req("write", "metadata/app", { custom_metadata: { owner: "ops" } }));
    expect(gets()).toBe(afterWrite);
    expect(await current(kv, "app")).toBe(2);
    const meta = (await kv.handle(req("read", "metadata/app"))).data as { custom_metadata: unknown };
    expect(meta.custom_metadata).toEqual({ owner: "ops" });
    await kv.handle(req("delete", "metadata/app"));
    expect(await status(kv.handle(req("read", "data/app")))).toBe(404);
  });

  it("after a step-down the node reads storage again and sees what the next active node wrote", async () => {
    const storage = new MemoryBackend();
    const termA = { value: 1 as number | undefined };
    const a = cached(storage, termA);
    await a.kv.handle(req("write", "data/app", { data: { v: "a" } }));
    expect(await current(a.kv, "app")).toBe(1);
    // a steps down; b (another node) is active and writes; a becomes active again (a new term).
    termA.value = undefined;
    const b = cached(storage, { value: 7 });
    await b.kv.handle(req("write", "data/app", { data: { v: "b" } }));
    expect(await current(a.kv, "app")).toBe(2); // a standby reads storage
    termA.value = 2;
    await b.kv.handle(req("write", "data/app", { data: { v: "b2" } }));
    expect(await current(a.kv, "app")).toBe(3);
    expect((await read(a.kv, "data/app")).value).toMatchObject({ data: { v: "b2" } });
  });

  it("a metadata write that fails leaves the cache holding nothing newer than storage", async () => {
    const memory = new MemoryBackend();
    let failMetadataPut = false;
    const flaky = new FaultInjectingBackend(memory, {
      fault: ({ op, key }) =>
        failMetadataPut && op === "put" && key.startsWith("logical/x/metadata/")
          ? new Error("injected metadata write failure")
          : undefined,
    });
    const kv = new KvV2(new PrefixView(flaky, "logical/x/", false), { activeTerm: () => 1 });
    await kv.handle(req("write", "data/app", { data: { v: "1" } }));
    expect(await current(kv, "app")).toBe(1);
    failMetadataPut = true;
    await expect(kv.handle(req("write", "data/app", { data: { v: "2" } }))).rejects.toThrow(/injected/);
    await expect(kv.handle(req("write", "metadata/app", { max_versions: 3 }))).rejects.toThrow(/injected/);
    failMetadataPut = false;
    expect(await current(kv, "app")).toBe(1);
    const meta = (await kv.handle(req("read", "metadata/app"))).data as { max_versions: number };
    expect(meta.max_versions).toBe(0);
  });

  it("concurrent reads and writes of one key: a read sees every write that finished before it began", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.boolean(), { minLength: 4, maxLength: 40 }), async (ops) => {
        const memory = new MemoryBackend();
        // A read returns what storage held when it looked, some time later; writes take a while:
        // reads and writes interleave at every await, and a read can outlive a write it predates.
        let tick = 0;
        const pause = () => new Promise((r) => setTimeout(r, tick++ % 3));
        const slow = new Proxy(memory, {
          get(target, prop, recv) {
            if (prop === "get")
              return async (key: string) => {
                const v = await target.get(key);
                await pause();
                return v;
              };
            if (prop === "put")
              return async (e: Parameters<MemoryBackend["put"]>[0]) => {
                await pause();
                return target.put(e);
              };
            const v = Reflect.get(target, prop, recv);
            return typeof v === "function" ? v.bind(target) : v;
          },
        });
        const kv = new KvV2(new PrefixView(slow, "logical/x/", false), { activeTerm: () => 1 });
        await kv.handle(req("write", "data/k", { data: { n: 1 } }));
        let finished = 1;
        await Promise.all(
          ops.map(async (isWrite, i) => {
            // Staggered starts, so some operations begin after others have finished.
            await new Promise((r) => setTimeout(r, i % 5));
            if (isWrite) {
              const r = await kv.handle(req("write", "data/k", { data: { n: i } }));
              finished = Math.max(finished, (r.data as { version: number }).version);
            } else {
              const floor = finished;
              expect(await current(kv, "k")).toBeGreaterThanOrEqual(floor);
            }
          }),
        );
        const total = 1 + ops.filter((w) => w).length;
        const fresh = new KvV2(new PrefixView(memory, "logical/x/", false));
        expect(await current(fresh, "k")).toBe(total);
        expect(await current(kv, "k")).toBe(total);
      }),
      { numRuns: 25 },
    );
  });
});

import { createHash } from "node:crypto";
import { FaultInjectingBackend, InvalidKeyError, StorageUnavailableError } from "@bulwark/storage";
import { MemoryBackend } from "@bulwark/storage-memory";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { parseJson } from "../json/lossless.js";
import { type KvEngine, type KvRequest, type KvResponse, PrefixView } from "./common.js";
import { KvV1 } from "./kv-v1.js";
import { goJson, KvV2 } from "./kv-v2.js";
import { openbaoKvMount, req, status } from "./test-helpers.js";
import {
  decodeConfiguration,
  decodeKeyMetadata,
  decodeUpgradeInfo,
  decodeVersion,
  encodeUpgradeInfo,
} from "./v2-records.js";

/** A request body as the HTTP layer parses it (numbers keep their exact text). */
const parseBody = (text: string) => parseJson(text) as Record<string, unknown>;

/** A read's `data` field, whether the engine sent it as an object or as JSON text. */
async function read(
  kv: KvEngine,
  path: string,
  query: Record<string, string> = {},
): Promise<KvResponse & { value: unknown }> {
  const r = await kv.handle(req("read", path, undefined, query));
  return { ...r, value: r.rawData !== undefined ? JSON.parse(r.rawData) : r.data };
}

/** The backend_aware_uuid of the mounts below (every KV v2 record lives under it). */
const BU = "0b5e3c2a-1f4d-4e6a-9c8b-7d6e5f4a3b2c";
/** Where this mount's KV v2 records are. */
const P = `logical/x/${BU}/`;

function v2(): { kv: KvEngine; storage: MemoryBackend } {
  const storage = new MemoryBackend();
  return { kv: new KvV2(new PrefixView(storage, "logical/x/", false), { backendUuid: BU }), storage };
}

/** Every storage key below `prefix`, recursively. */
async function keysBelow(storage: { list(p: string): Promise<string[]> }, prefix: string): Promise<string[]> {
  const out: string[] = [];
  for (const name of await storage.list(prefix)) {
    if (name.endsWith("/")) out.push(...(await keysBelow(storage, prefix + name)));
    else out.push(prefix + name);
  }
  return out.sort();
}

/** OpenBao's version path, computed here independently: sha256(salt + key + "|" + n). */
async function versionKeyOf(storage: MemoryBackend, key: string, n: number): Promise<string> {
  const salt = Buffer.from((await storage.get(`${P}salt`))?.value ?? []).toString("utf8");
  const h = createHash("sha256").update(`${salt}${key}|${n}`).digest("hex");
  return `${P}versions/${h.slice(0, 3)}/${h.slice(3)}`;
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
    // OpenBao's oldest_version stays 0 until max_versions first drops a version.
    expect(meta.data).toMatchObject({
      current_version: 2,
      oldest_version: 0,
      max_versions: 0,
      current_metadata_version: 0,
      metadata_cas_required: false,
    });
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
    expect(await keysBelow(storage, `${P}versions/`)).toEqual(
      [await versionKeyOf(storage, "p", 3), await versionKeyOf(storage, "p", 4)].sort(),
    );
  });

  it("max_versions is the larger of the key's and the mount's; oldest_version moves as in OpenBao", async () => {
    const { kv } = v2();
    await kv.handle(req("write", "config", { max_versions: 3 }));
    await kv.handle(req("write", "metadata/w", { max_versions: 2 }));
    const oldest: number[] = [];
    for (let i = 1; i <= 5; i++) {
      await kv.handle(req("write", "data/w", { data: { i } }));
      oldest.push(
        ((await kv.handle(req("read", "metadata/w"))).data as { oldest_version: number }).oldest_version,
      );
    }
    // max 3: v3 moves the window to 1, v4 to 2, v5 to 3 (what OpenBao 2.6.2 answers).
    expect(oldest).toEqual([0, 0, 1, 2, 3]);
    const meta = (await kv.handle(req("read", "metadata/w"))).data as { versions: object };
    expect(Object.keys(meta.versions)).toEqual(["3", "4", "5"]);
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
    expect(await keysBelow(storage, `${P}versions/`)).toEqual([await versionKeyOf(storage, "app/b/c", 1)]);
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
    let versionDeletes = 0;
    const flaky = new FaultInjectingBackend(memory, {
      // The second version delete fails: one version is gone, two are left.
      fault: ({ op, key }) =>
        failVersionDeletes && op === "delete" && key.includes("/versions/") && ++versionDeletes === 2
          ? new Error("injected delete failure")
          : undefined,
    });
    const kv = new KvV2(new PrefixView(flaky, "logical/x/", false), { backendUuid: BU, activeTerm: () => 1 });
    for (const v of ["1", "2", "3"]) await kv.handle(req("write", "data/app", { data: { v } }));
    failVersionDeletes = true;
    await expect(kv.handle(req("delete", "metadata/app"))).rejects.toThrow(/injected/);
    expect((await keysBelow(memory, `${P}versions/`)).length).toBe(2);
    expect((await keysBelow(memory, `${P}metadata/`)).length).toBe(1);
    failVersionDeletes = false;
    await kv.handle(req("delete", "metadata/app"));
    expect(await keysBelow(memory, `${P}versions/`)).toEqual([]);
    expect(await keysBelow(memory, `${P}metadata/`)).toEqual([]);
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
    const kv = new KvV2(new PrefixView(flaky, "logical/x/", false), { backendUuid: BU, activeTerm: () => 1 });
    await kv.handle(req("write", "metadata/app", { max_versions: 1 }));
    await kv.handle(req("write", "data/app", { data: { v: "1" } }));
    failPrune = true;
    const w = await kv.handle(req("write", "data/app", { data: { v: "2" } }));
    expect((w.data as { version: number }).version).toBe(2);
    expect(w.warnings?.join(" ")).toMatch(/cleaning up old versions/);
    failPrune = false;
    expect((await read(kv, "data/app")).value).toMatchObject({ data: { v: "2" }, metadata: { version: 2 } });
  });

  it("a write whose metadata the storage refuses leaves no version behind", async () => {
    const memory = new MemoryBackend();
    const flaky = new FaultInjectingBackend(memory, {
      // A refusal the storage is sure of, e.g. the file backend's for a folder clashing with a file.
      fault: ({ op, key }) =>
        op === "put" && key.startsWith(`${P}metadata/`)
          ? new InvalidKeyError(key, "a folder clashes with a file")
          : undefined,
    });
    const kv = new KvV2(new PrefixView(flaky, "logical/x/", false), { backendUuid: BU, activeTerm: () => 1 });
    await expect(kv.handle(req("write", "data/refused", { data: { v: "1" } }))).rejects.toBeInstanceOf(
      InvalidKeyError,
    );
    expect(await keysBelow(memory, `${P}versions/`)).toEqual([]);
    expect(await keysBelow(memory, `${P}metadata/`)).toEqual([]);
  });

  it("a write whose metadata put fails for an unknown reason keeps its version (the put may have landed)", async () => {
    const memory = new MemoryBackend();
    const flaky = new FaultInjectingBackend(memory, {
      fault: ({ op, key }) =>
        op === "put" && key.startsWith(`${P}metadata/`)
          ? new StorageUnavailableError("connection reset")
          : undefined,
    });
    const kv = new KvV2(new PrefixView(flaky, "logical/x/", false), { backendUuid: BU, activeTerm: () => 1 });
    await expect(kv.handle(req("write", "data/lost", { data: { v: "1" } }))).rejects.toBeInstanceOf(
      StorageUnavailableError,
    );
    expect(await keysBelow(memory, `${P}versions/`)).toEqual([await versionKeyOf(memory, "lost", 1)]);
  });

  it("custom_metadata is stored and returned; values are read as OpenBao reads them", async () => {
    const { kv } = v2();
    await kv.handle(req("write", "metadata/c", { custom_metadata: { owner: "ops" } }));
    await kv.handle(req("write", "data/c", { data: { a: 1 } }));
    expect((await read(kv, "data/c")).value).toMatchObject({
      metadata: { custom_metadata: { owner: "ops" } },
    });
    // OpenBao decodes values weakly: numbers and booleans become strings ("5", "1").
    await kv.handle(req("write", "metadata/c", { custom_metadata: { owner: 5, ok: true } }));
    expect((await kv.handle(req("read", "metadata/c"))).data).toMatchObject({
      custom_metadata: { ok: "1", owner: "5" },
    });
    // An empty value is refused, with OpenBao's text.
    await expect(kv.handle(req("write", "metadata/c", { custom_metadata: { owner: "" } }))).rejects.toThrow(
      '1 error occurred:\n\t* custom_metadata validation failed: length of value for key "owner" is 0 but must be 0 < len(value) <= 512\n\n',
    );
    expect(await status(kv.handle(req("write", "metadata/c", { custom_metadata: { o: [1] } })))).toBe(400);
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
    const kv = new KvV2(new PrefixView(slow, "logical/x/", false), { backendUuid: BU, activeTerm: () => 1 });
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
    // The mount's first use (upgrade marker, path key) happens before, without reading the config.
    expect(await status(s.kv.handle(req("read", "metadata/a")))).toBe(404);
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
    const a = new KvV2(new PrefixView(memory, "logical/x/", false), {
      backendUuid: BU,
      activeTerm: () => term.value,
    });
    await a.handle(req("write", "data/k", { data: { v: "1" } })); // caches the (default) config
    term.value = undefined; // a steps down; b becomes active and requires check-and-set
    const b = new KvV2(new PrefixView(memory, "logical/x/", false), { backendUuid: BU, activeTerm: () => 7 });
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
    expect(cfg).toEqual({
      max_versions: 3,
      cas_required: true,
      delete_version_after: "1h0m0s",
      metadata_cas_required: false,
    });
  });
});

describe("KV v2 metadata cache (active node)", () => {
  /** A KV v2 engine over `storage` with a controllable active term, counting metadata reads. */
  function cached(storage: MemoryBackend | FaultInjectingBackend, term: { value: number | undefined }) {
    let metadataGets = 0;
    const counting = new FaultInjectingBackend(storage, {
      fault: ({ op, key }) => {
        if (op === "get" && key.startsWith(`${P}metadata/`)) metadataGets++;
        return undefined;
      },
    });
    const kv = new KvV2(new PrefixView(counting, "logical/x/", false), {
      backendUuid: BU,
      activeTerm: () => term.value,
    });
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
        failMetadataPut && op === "put" && key.startsWith(`${P}metadata/`)
          ? new Error("injected metadata write failure")
          : undefined,
    });
    const kv = new KvV2(new PrefixView(flaky, "logical/x/", false), { backendUuid: BU, activeTerm: () => 1 });
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
        const kv = new KvV2(new PrefixView(slow, "logical/x/", false), {
          backendUuid: BU,
          activeTerm: () => 1,
        });
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
        const fresh = new KvV2(new PrefixView(memory, "logical/x/", false), { backendUuid: BU });
        expect(await current(fresh, "k")).toBe(total);
        expect(await current(kv, "k")).toBe(total);
      }),
      { numRuns: 25 },
    );
  });
});

describe("KV v2 answers as OpenBao 2.6.2", () => {
  it("metadata check-and-set: metadata_cas must match current_metadata_version, which each write bumps", async () => {
    const { kv } = v2();
    await kv.handle(req("write", "data/m", { data: { a: 1 } }));
    const version = async () =>
      ((await kv.handle(req("read", "metadata/m"))).data as { current_metadata_version: number })
        .current_metadata_version;
    // A key created by a data write has metadata version 0; each metadata write adds one.
    expect(await version()).toBe(0);
    await kv.handle(req("write", "metadata/m", { metadata_cas: 0, metadata_cas_required: true }));
    expect(await version()).toBe(1);
    await expect(kv.handle(req("write", "metadata/m", { max_versions: 3 }))).rejects.toThrow(
      "metadata check-and-set parameter required for this call",
    );
    await expect(kv.handle(req("write", "metadata/m", { metadata_cas: 0, max_versions: 3 }))).rejects.toThrow(
      "metadata check-and-set parameter does not match the current version",
    );
    await kv.handle(req("write", "metadata/m", { metadata_cas: 1, max_versions: 3 }));
    expect(await version()).toBe(2);
    // A new key starts at metadata version 1, and only metadata_cas 0 may create it.
    await expect(kv.handle(req("write", "metadata/n", { metadata_cas: 1, max_versions: 1 }))).rejects.toThrow(
      "metadata_cas must be 0 when creating new metadata",
    );
    await kv.handle(req("write", "metadata/n", { metadata_cas: 0, max_versions: 1 }));
    expect((await kv.handle(req("read", "metadata/n"))).data).toMatchObject({
      current_metadata_version: 1,
      current_version: 0,
      oldest_version: 0,
    });
    // The mount can require it for every key; a key's own false is then ignored with a warning.
    await kv.handle(req("write", "config", { metadata_cas_required: true }));
    const w = await kv.handle(req("write", "metadata/n", { metadata_cas: 1, metadata_cas_required: false }));
    expect(w).toEqual({
      data: null,
      warnings: [
        '"metadata_cas_required" set to false, but is mandated by backend config. This value will be ignored.',
      ],
    });
    await expect(kv.handle(req("write", "metadata/n", { max_versions: 2 }))).rejects.toThrow(
      "metadata check-and-set parameter required for this call",
    );
  });

  it("subkeys/ answers a version's keys without values, down to depth", async () => {
    const { kv } = v2();
    await kv.handle(
      req("write", "data/n", { data: { a: { b: { c: 1 }, e: {} }, l: [1, { x: 1 }], s: "v" } }),
    );
    const sub = async (query: Record<string, string> = {}) =>
      ((await kv.handle(req("read", "subkeys/n", undefined, query))).data as { subkeys: unknown }).subkeys;
    expect(await sub()).toEqual({ a: { b: { c: null }, e: null }, l: null, s: null });
    expect(await sub({ depth: "1" })).toEqual({ a: null, l: null, s: null });
    expect(await sub({ depth: "2" })).toEqual({ a: { b: null, e: null }, l: null, s: null });
    await kv.handle(req("delete", "data/n"));
    const deleted = await kv.handle(req("read", "subkeys/n"));
    expect(deleted.status).toBe(404);
    expect(deleted.data).toMatchObject({ subkeys: null, metadata: { version: 1 } });
    expect(await status(kv.handle(req("read", "subkeys/none")))).toBe(404);
  });

  it("PATCH merges into the current version (RFC 7396) as OpenBao 2.6.2 does, bytes included", async () => {
    const { kv, storage } = v2();
    await kv.handle(
      req("write", "data/pt", {
        data: parseBody('{"a":{"b":1,"c":[1,2]},"n":9007199254740993,"keep":"x","gone":"y","f":1.0}'),
      }),
    );
    const patch = (path: string, body: unknown) =>
      kv.handle(req("patch" as KvRequest["operation"], path, body));
    const w = await patch("data/pt", {
      data: parseBody('{"a":{"c":null,"d":{"x":null,"y":2}},"gone":null,"new":1.50}'),
    });
    expect(w.data).toMatchObject({ version: 2, destroyed: false });
    // What OpenBao 2.6.2 stored for the same write and patch: the old data went through float64.
    const v = decodeVersion((await storage.get(await versionKeyOf(storage, "pt", 2)))?.value as Uint8Array);
    expect(Buffer.from(v.data).toString()).toBe(
      '{"a":{"b":1,"d":{"y":2}},"f":1,"keep":"x","n":9007199254740992,"new":1.50}',
    );
    expect(await status(patch("data/nokey", { data: { a: 1 } }))).toBe(404);
    await expect(patch("data/pt", { options: {} })).rejects.toThrow("no data provided");
    // A deleted current version: 404 with its metadata (flat, as OpenBao answers a patch).
    await kv.handle(req("delete", "data/pt"));
    const deleted = await patch("data/pt", { data: { a: 1 } });
    expect(deleted.status).toBe(404);
    expect(deleted.data).toMatchObject({ version: 2, destroyed: false, custom_metadata: null });
    // Metadata PATCH: only on an existing key; custom_metadata merges, null removes.
    await patch("metadata/pt", { custom_metadata: { a: "1", b: null }, max_versions: 3 });
    await patch("metadata/pt", { custom_metadata: { b: "2", a: null } });
    expect((await kv.handle(req("read", "metadata/pt"))).data).toMatchObject({
      custom_metadata: { b: "2" },
      max_versions: 3,
      current_metadata_version: 2,
    });
    expect(await status(patch("metadata/nokey", { max_versions: 3 }))).toBe(404);
    expect(await patch("metadata/pt", {})).toEqual({});
  });

  it("a metadata write setting nothing creates nothing", async () => {
    const { kv } = v2();
    expect(await kv.handle(req("write", "metadata/none", {}))).toEqual({});
    expect(await status(kv.handle(req("read", "metadata/none")))).toBe(404);
  });

  it("delete and destroy leave updated_time alone; undelete restarts delete_version_after", async () => {
    const { kv } = v2();
    await kv.handle(req("write", "data/d", { data: { a: 1 } }));
    await kv.handle(req("write", "data/d", { data: { a: 2 } }));
    const meta = async () =>
      (await kv.handle(req("read", "metadata/d"))).data as {
        updated_time: string;
        versions: Record<string, { deletion_time: string; destroyed: boolean }>;
      };
    const before = (await meta()).updated_time;
    await kv.handle(req("delete", "data/d"));
    await kv.handle(req("write", "destroy/d", { versions: [1] }));
    expect((await meta()).updated_time).toBe(before);
    // Versions 0 and below, and versions the key does not have, are skipped (OpenBao answers 204).
    expect(await kv.handle(req("write", "delete/d", { versions: "0,-1,7" }))).toEqual({});
    await kv.handle(req("write", "metadata/d", { delete_version_after: "1h" }));
    const t0 = Date.now();
    await kv.handle(req("write", "undelete/d", { versions: [2] }));
    const dt = Date.parse((await meta()).versions["2"]?.deletion_time ?? "");
    expect(dt).toBeGreaterThanOrEqual(t0 + 3_600_000 - 5);
    expect(dt).toBeLessThan(Date.now() + 3_600_000 + 5);
    expect((await read(kv, "data/d")).value).toMatchObject({ data: { a: 2 } });
    // A version of 0 or below reads the current one.
    expect((await read(kv, "data/d", { version: "-1" })).value).toMatchObject({ metadata: { version: 2 } });
    await expect(kv.handle(req("write", "destroy/d", {}))).rejects.toThrow("no version number provided");
    await expect(kv.handle(req("write", "undelete/d", {}))).rejects.toThrow("No version number provided");
  });

  it("the mount's delete_version_after: the shorter one wins; a negative one disables it", async () => {
    const { kv } = v2();
    await kv.handle(req("write", "config", { delete_version_after: "2h" }));
    await kv.handle(req("write", "metadata/k", { delete_version_after: "3h" }));
    const t0 = Date.now();
    const w = (await kv.handle(req("write", "data/k", { data: { a: 1 } }))).data as { deletion_time: string };
    const d = Date.parse(w.deletion_time) - t0;
    expect(d).toBeGreaterThanOrEqual(7_200_000 - 5);
    expect(d).toBeLessThan(7_200_000 + 1_000);
    await kv.handle(req("write", "config", { delete_version_after: "-5s" }));
    expect((await kv.handle(req("read", "config"))).data).toMatchObject({ delete_version_after: "-1s" });
    const w2 = (await kv.handle(req("write", "data/k", { data: { a: 2 } }))).data as {
      deletion_time: string;
    };
    expect(w2.deletion_time).toBe("");
    await kv.handle(req("write", "config", { delete_version_after: 0 }));
    expect((await kv.handle(req("read", "config"))).data).toMatchObject({ delete_version_after: "0s" });
  });

  it("LIST takes after and limit; detailed-metadata lists each key's metadata", async () => {
    const { kv } = v2();
    for (const k of ["d/a", "d/b", "d/c/x", "d/e"])
      await kv.handle(req("write", `data/${k}`, { data: { k } }));
    const list = async (path: string, query: Record<string, string> = {}) =>
      (await kv.handle(req("list", path, undefined, query))).data;
    expect(await list("metadata/d/")).toEqual({ keys: ["a", "b", "c/", "e"] });
    expect(await list("metadata/d/", { after: "b", limit: "2" })).toEqual({ keys: ["c/", "e"] });
    expect(await list("metadata/d/", { after: "bb" })).toEqual({ keys: ["c/", "e"] });
    const detailed = (await list("detailed-metadata/d/", { limit: "3" })) as {
      keys: string[];
      key_info: Record<string, { current_version?: number }>;
    };
    expect(detailed.keys).toEqual(["a", "b", "c/"]);
    expect(detailed.key_info.a?.current_version).toBe(1);
    expect(detailed.key_info["c/"]).toEqual({});
  });

  it("stores a version's data as Go's json.Marshal (bytes OpenBao 2.6.2 stored for the same requests)", () => {
    // Request bodies sent to OpenBao 2.6.2, and the `data` field of the Version record it stored
    // (sys/raw, base64): keys sorted by UTF-8 bytes, <>& and U+2028/9 escaped, a lone surrogate
    // replaced, numbers as sent.
    const body1 = '{"b":1,"a":"<x>&","n":9007199254740993,"z":[1.0,1e2]}';
    expect(goJson(parseBody(body1))).toBe(
      '{"a":"\\u003cx\\u003e\\u0026","b":1,"n":9007199254740993,"z":[1.0,1e2]}',
    );
    const body2 =
      '{"\\uff01":1,"\\ud83d\\ude00":2,"10":3,"9":4,"c":"\\b\\f\\n\\r\\t\\u0001\\u001f\\u007f\\u2028\\u2029\\ud800x","e":{"z":1,"a":{}},"f":[],"g":null,"h":true}';
    expect(Buffer.from(goJson(parseBody(body2))).toString("hex")).toBe(
      "7b223130223a332c2239223a342c2263223a225c625c665c6e5c725c745c75303030315c75303031667f5c753230" +
        "32385c7532303239efbfbd78222c2265223a7b2261223a7b7d2c227a223a317d2c2266223a5b5d2c2267223a6e" +
        "756c6c2c2268223a747275652c22efbc81223a312c22f09f9880223a327d",
    );
  });

  it("Go's json.Marshal text does not depend on key insertion order, and reads back as the value", () => {
    /** The same value with every object's keys inserted in reverse order. */
    const reversed = (v: unknown): unknown => {
      if (Array.isArray(v)) return v.map(reversed);
      if (typeof v !== "object" || v === null) return v;
      const out: Record<string, unknown> = {};
      // defineProperty: a "__proto__" key (fast-check makes them) must stay an own key, not the prototype.
      for (const k of Object.keys(v).reverse())
        Object.defineProperty(out, k, {
          value: reversed((v as Record<string, unknown>)[k]),
          enumerable: true,
          writable: true,
          configurable: true,
        });
      return out;
    };
    fc.assert(
      fc.property(
        fc.jsonValue({ maxDepth: 4 }),
        fc.dictionary(fc.string({ unit: "binary" }), fc.string({ unit: "binary" })),
        (v, d) => {
          expect(goJson(reversed(v))).toBe(goJson(v));
          expect(JSON.parse(goJson(v))).toEqual(JSON.parse(JSON.stringify(v)));
          // Keys and strings with lone surrogates: the same text whichever path writes it.
          expect(goJson(reversed(d))).toBe(goJson(d));
          expect(goJson(d)).not.toMatch(/\\u[dD][89a-fA-F]|[<>&\u2028\u2029]/);
        },
      ),
      { numRuns: 300 },
    );
  });

  it("reads answer the data as OpenBao does (float64 numbers, Go's escaping)", async () => {
    const { kv } = v2();
    await kv.handle(
      req("write", "data/a", { data: parseBody('{"b":1,"a":"<x>&","n":9007199254740993,"z":[1.0,1e2]}') }),
    );
    const r = await kv.handle(req("read", "data/a"));
    // OpenBao 2.6.2's answer to GET kv/data/a after the same write.
    expect(
      r.rawData?.startsWith('{"data":{"a":"\\u003cx\\u003e\\u0026","b":1,"n":9007199254740992,"z":[1,100]},'),
    ).toBe(true);
  });
});

/** A KV v2 engine over the records OpenBao stored for `mount`, counting writes to storage. */
async function openbaoMount(name: string) {
  const { m, memory } = await openbaoKvMount(name);
  let writes = 0;
  const counting = new FaultInjectingBackend(memory, {
    fault: ({ op }) => {
      if (op === "put" || op === "delete") writes++;
      return undefined;
    },
  });
  const kv = new KvV2(new PrefixView(counting, `logical/${m.uuid}/`, false), {
    backendUuid: m.backend_uuid,
    activeTerm: () => 1,
  });
  return { kv, memory, mount: m, writes: () => writes };
}

describe("KV v2 on a data set OpenBao 2.6.2 wrote", () => {
  for (const name of ["kv2", "kv3"]) {
    it(`${name}: every answer equals OpenBao's, and reading writes nothing`, async () => {
      const { kv, mount, writes } = await openbaoMount(name);
      let checked = 0;
      for (const [what, answer] of Object.entries(mount.api)) {
        const [kind, rest = ""] = what.split(/:(.*)/s);
        if (kind === "list") {
          expect((await kv.handle(req("list", `metadata/${rest}`))).data, what).toEqual({ keys: answer });
        } else if (kind === "metadata") {
          expect((await kv.handle(req("read", `metadata/${rest}`))).data, what).toEqual(answer);
        } else if (kind === "data") {
          const [key, q] = rest.split("?version=");
          const r = await read(kv, `data/${key}`, { version: q as string });
          if (answer === null) expect(r.status, what).toBe(404);
          else expect(r.value, what).toEqual(answer);
        } else if (kind === "config") {
          expect((await kv.handle(req("read", "config"))).data, what).toEqual(answer);
        } else {
          throw new Error(`unknown fixture entry ${what}`);
        }
        checked++;
      }
      expect(checked).toBeGreaterThan(5);
      expect(writes()).toBe(0);
    });
  }

  it("writes a new version where OpenBao looks for it: same encrypted metadata path, same salt", async () => {
    const { kv, memory, mount } = await openbaoMount("kv2");
    const base = `logical/${mount.uuid}/${mount.backend_uuid}/`;
    const metaPath = Object.keys(mount.records).find((p) => {
      if (!p.includes("/metadata/")) return false;
      return decodeKeyMetadata(Buffer.from(mount.records[p] as string, "base64")).key === "other";
    }) as string;
    // `other` requires check-and-set (cas_required, set through OpenBao).
    await expect(kv.handle(req("write", "data/other", { data: { x: "2" } }))).rejects.toThrow(
      "check-and-set parameter required for this call",
    );
    await kv.handle(req("write", "data/other", { data: { x: "2" }, options: { cas: 1 } }));
    // The record OpenBao made for `other` was rewritten in place: Bulwark derived the same path.
    const m = decodeKeyMetadata((await memory.get(`logical/${mount.uuid}/${metaPath}`))?.value as Uint8Array);
    expect(m.current_version).toBe(2);
    expect(m.cas_required).toBe(true);
    expect(m.delete_version_after).toEqual({ seconds: 5415, nanos: 0 });
    // The version sits at OpenBao's salted path (its salt), as the protobuf Version OpenBao reads.
    const salt = Buffer.from(mount.records[`${mount.backend_uuid}/salt`] as string, "base64").toString();
    const h = createHash("sha256").update(`${salt}other|2`).digest("hex");
    const v = decodeVersion(
      (await memory.get(`${base}versions/${h.slice(0, 3)}/${h.slice(3)}`))?.value as Uint8Array,
    );
    expect(Buffer.from(v.data).toString()).toBe('{"x":"2"}');
    expect(v.created_time).toEqual(m.versions.get(2)?.created_time);
    // delete_version_after (the mount's 10m, shorter than the key's 1h30m15s) gave it a deletion time.
    expect(v.deletion_time).toEqual(m.versions.get(2)?.deletion_time);
    const created = m.versions.get(2)?.created_time as { seconds: number; nanos: number };
    expect(m.versions.get(2)?.deletion_time).toEqual({
      seconds: created.seconds + 600,
      nanos: created.nanos,
    });
    expect((await kv.handle(req("list", "metadata/"))).data).toEqual({
      keys: ["a/", "app/", "other", "sp ace/"],
    });
  });
});

describe("KV v2 storage layout (what OpenBao reads)", () => {
  it("a fresh mount holds OpenBao's records: upgrade marker done, path key, salt, config, metadata, versions", async () => {
    const { kv, storage } = v2();
    await kv.handle(req("write", "config", { max_versions: 7, cas_required: false }));
    await kv.handle(req("write", "data/app/db", { data: { user: "alice", pass: "p1" } }));
    await kv.handle(
      req("write", "metadata/app/db", { custom_metadata: { owner: "ops" }, delete_version_after: "72h" }),
    );
    const records = await keysBelow(storage, "logical/x/");
    expect(records.every((k) => k.startsWith(P))).toBe(true);
    const marker = decodeUpgradeInfo((await storage.get(`${P}upgrading`))?.value as Uint8Array);
    expect(marker.done).toBe(true);
    expect(marker.started_time?.seconds).toBeGreaterThan(1_700_000_000);
    expect(records).toContain(`${P}policy/metadata`);
    expect(records).toContain(`${P}archive/metadata`);
    const salt = Buffer.from((await storage.get(`${P}salt`))?.value ?? []).toString();
    expect(salt).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    expect(decodeConfiguration((await storage.get(`${P}config`))?.value as Uint8Array)).toEqual({
      max_versions: 7,
      cas_required: false,
      metadata_cas_required: false,
    });
    // One metadata record, two encrypted segments deep (app/db), none of them in clear text.
    const metas = records.filter((k) => k.startsWith(`${P}metadata/`));
    expect(metas.length).toBe(1);
    const segs = (metas[0] as string).slice(`${P}metadata/`.length).split("/");
    expect(segs.length).toBe(2);
    for (const s of segs) expect(s).toMatch(/^[0-9a-zA-Z]{40,}$/);
    const m = decodeKeyMetadata((await storage.get(metas[0] as string))?.value as Uint8Array);
    expect(m).toMatchObject({
      key: "app/db",
      current_version: 1,
      oldest_version: 0,
      current_metadata_version: 1,
    });
    expect(m.delete_version_after).toEqual({ seconds: 259_200, nanos: 0 });
    expect([...m.custom_metadata]).toEqual([["owner", "ops"]]);
    const v = decodeVersion(
      (await storage.get(await versionKeyOf(storage, "app/db", 1)))?.value as Uint8Array,
    );
    expect(Buffer.from(v.data).toString()).toBe('{"pass":"p1","user":"alice"}');
    expect(v.created_time).toEqual(m.versions.get(1)?.created_time);
    expect(v.created_time).toEqual(m.created_time);
  });

  it("an upgrade that fails part-way is started again by the next request and completes", async () => {
    const memory = new MemoryBackend();
    const v1 = new KvV1(new PrefixView(memory, "logical/x/", false));
    for (const k of ["a", "b", "c"]) await v1.handle(req("write", k, { k }));
    let failOnce = true;
    const flaky = new FaultInjectingBackend(memory, {
      // Deleting the second old key fails, once: the first attempt stops there.
      fault: ({ op, key }) => {
        if (op === "delete" && key === "logical/x/b" && failOnce) {
          failOnce = false;
          return new StorageUnavailableError("injected");
        }
        return undefined;
      },
    });
    const kv = new KvV2(new PrefixView(flaky, "logical/x/", false), { backendUuid: BU });
    const answers: string[] = [];
    for (let i = 0; i < 100; i++) {
      try {
        await kv.handle(req("read", "data/c"));
        break;
      } catch (e) {
        answers.push((e as Error).message);
        await new Promise((r) => setTimeout(r, 5));
      }
    }
    expect(failOnce).toBe(false);
    expect(answers.length).toBeGreaterThan(0);
    for (const m of answers) expect(m).toMatch(/^Upgrading from non-versioned to versioned data/);
    for (const k of ["a", "b", "c"])
      expect((await read(kv, `data/${k}`)).value).toMatchObject({ data: { k } });
    expect(await memory.list("logical/x/")).toEqual([`${BU}/`]);
    expect(decodeUpgradeInfo((await memory.get(`${P}upgrading`))?.value as Uint8Array).done).toBe(true);
  });

  it("concurrent first writes on a fresh mount create one salt, one path key and one marker", async () => {
    const memory = new MemoryBackend();
    const puts = new Map<string, number>();
    const counting = new FaultInjectingBackend(memory, {
      fault: ({ op, key }) => {
        if (op === "put") puts.set(key, (puts.get(key) ?? 0) + 1);
        return undefined;
      },
    });
    const kv = new KvV2(new PrefixView(counting, "logical/x/", false), {
      backendUuid: BU,
      activeTerm: () => 1,
    });
    await Promise.all(
      Array.from({ length: 20 }, (_, i) => kv.handle(req("write", `data/k${i}`, { data: { i } }))),
    );
    for (const k of ["salt", "upgrading", "policy/metadata", "archive/metadata"])
      expect(puts.get(`${P}${k}`), k).toBe(1);
    for (let i = 0; i < 20; i++) {
      expect(await keysBelow(memory, `${P}versions/`)).toContain(await versionKeyOf(memory, `k${i}`, 1));
      expect((await read(kv, `data/k${i}`)).value).toMatchObject({ data: { i } });
    }
  });

  it("on a standby (writes refused) a fresh mount's first request fails with the storage's error, then works", async () => {
    const memory = new MemoryBackend();
    let standby = true;
    const guarded = new FaultInjectingBackend(memory, {
      fault: ({ op }) =>
        standby && op === "put" ? new Error("standby: writes go to the active node") : undefined,
    });
    const kv = new KvV2(new PrefixView(guarded, "logical/x/", false), { backendUuid: BU });
    // The refusal reaches the caller (the server forwards such a request to the active node).
    await expect(kv.handle(req("read", "data/a"))).rejects.toThrow(/^standby/);
    expect(await memory.list("logical/x/")).toEqual([]);
    standby = false;
    expect(await status(kv.handle(req("read", "data/a")))).toBe(404);
    expect(decodeUpgradeInfo((await memory.get(`${P}upgrading`))?.value as Uint8Array).done).toBe(true);
  });

  it("a mount whose upgrade marker is done is not upgraded again (its root is left alone)", async () => {
    const storage = new MemoryBackend();
    await storage.put({ key: "logical/x/stray", value: Buffer.from('{"a":"1"}') });
    await storage.put({
      key: `${P}upgrading`,
      value: encodeUpgradeInfo({ started_time: { seconds: 1_800_000_000, nanos: 0 }, done: true }),
    });
    const kv = new KvV2(new PrefixView(storage, "logical/x/", false), { backendUuid: BU });
    expect(await status(kv.handle(req("read", "data/stray")))).toBe(404);
    expect(await storage.list("logical/x/")).toEqual([`${BU}/`, "stray"]);
  });

  it("a KV v1 mount tuned to v2 is upgraded as OpenBao does; requests meanwhile get OpenBao's 'upgrading' error", async () => {
    const memory = new MemoryBackend();
    const v1 = new KvV1(new PrefixView(memory, "logical/x/", false));
    await v1.handle(req("write", "a/b", { k: "v" }));
    await v1.handle(req("write", "top", { n: 1 }));
    // Reads of the v1 keys wait until released, so the upgrade is seen running.
    let release: () => void = () => undefined;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    const slow = new Proxy(memory, {
      get(target, prop, recv) {
        if (prop === "get")
          return async (key: string) => {
            if (key === "logical/x/a/b") await gate;
            return target.get(key);
          };
        const v = Reflect.get(target, prop, recv);
        return typeof v === "function" ? v.bind(target) : v;
      },
    });
    const kv = new KvV2(new PrefixView(slow, "logical/x/", false), { backendUuid: BU, activeTerm: () => 1 });
    await expect(kv.handle(req("read", "data/top"))).rejects.toThrow(
      "Upgrading from non-versioned to versioned data. This backend will be unavailable for a brief period and will resume service shortly.",
    );
    expect(await status(kv.handle(req("write", "data/new", { data: { x: 1 } })))).toBe(400);
    expect(decodeUpgradeInfo((await memory.get(`${P}upgrading`))?.value as Uint8Array).done).toBe(false);
    release();
    let answer: KvResponse & { value: unknown } = { value: undefined };
    for (let i = 0; i < 100; i++) {
      try {
        answer = await read(kv, "data/a/b");
        break;
      } catch {
        await new Promise((r) => setTimeout(r, 10));
      }
    }
    expect(answer.value).toMatchObject({ data: { k: "v" }, metadata: { version: 1 } });
    expect((await read(kv, "data/top")).value).toMatchObject({ data: { n: 1 } });
    // Each key became version 1 (oldest_version 1, as OpenBao's upgrade leaves it), the old key went.
    expect((await kv.handle(req("read", "metadata/top"))).data).toMatchObject({
      current_version: 1,
      oldest_version: 1,
    });
    expect(await memory.list("logical/x/")).toEqual([`${BU}/`]);
    expect(decodeUpgradeInfo((await memory.get(`${P}upgrading`))?.value as Uint8Array).done).toBe(true);
    expect((await kv.handle(req("list", "metadata/"))).data).toEqual({ keys: ["a/", "top"] });
  });
});

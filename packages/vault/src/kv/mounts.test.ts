import { FaultInjectingBackend } from "@bulwark/storage";
import { MemoryBackend } from "@bulwark/storage-memory";
import { describe, expect, it } from "vitest";
import { type KvEngine, KvError, type KvRequest, type KvResponse, PrefixView } from "./common.js";
import { KvV2 } from "./kv-v2.js";
import { MountTable } from "./mounts.js";

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
async function _read(
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

function _v2(): { kv: KvEngine; storage: MemoryBackend } {
  const storage = new MemoryBackend();
  return { kv: new KvV2(new PrefixView(storage, "logical/x/", false)), storage };
}

describe("MountTable", () => {
  it("mounts, resolves the longest prefix, refuses overlaps and reserved paths, unmounts with data", async () => {
    const storage = new MemoryBackend();
    const t = new MountTable(storage);
    const m = await t.mount("secret", { type: "kv", options: { version: "2" } });
    expect(m.path).toBe("secret/");
    await t.mount("team/kv", { type: "kv-v1" });
    await expect(t.mount("secret/sub", { type: "kv" })).rejects.toThrow(/already in use/);
    await expect(t.mount("sys/x", { type: "kv" })).rejects.toThrow(/reserved/);
    await expect(t.mount("x", { type: "database" })).rejects.toThrow(/kv only/);
    await expect(t.mount("y", { type: "kv", options: { version: "3" } })).rejects.toThrow(/version/);
    const r = await t.resolve("team/kv/a/b");
    expect(r?.mount.path).toBe("team/kv/");
    expect(r?.rest).toBe("a/b");
    expect((await t.resolve("team/kv"))?.rest).toBe("");
    expect(await t.resolve("team/other")).toBeUndefined();
    await r?.engine.handle(req("write", "a/b", { x: 1 }));
    expect((await storage.list(`logical/${r?.mount.uuid}/`)).length).toBe(1);
    expect(await t.unmount("team/kv")).toBe(true);
    expect(await storage.list(`logical/${r?.mount.uuid}/`)).toEqual([]);
    expect(await t.unmount("team/kv")).toBe(false);
    // A fresh table over the same storage sees the same mounts.
    expect((await new MountTable(storage).all()).map((e) => e.path)).toEqual(["secret/"]);
  });

  it("unmount while a write runs: the write finishes first, then every entry of the mount is gone", async () => {
    const memory = new MemoryBackend();
    let release: () => void = () => undefined;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    let entered: () => void = () => undefined;
    const writing = new Promise<void>((r) => {
      entered = r;
    });
    // The first version write of the mount stalls until released.
    let stalled = false;
    const slow = new Proxy(memory, {
      get(target, prop, recv) {
        if (prop === "put")
          return async (e: Parameters<MemoryBackend["put"]>[0]) => {
            if (!stalled && e.key.includes("/versions/")) {
              stalled = true;
              entered();
              await gate;
            }
            return target.put(e);
          };
        const v = Reflect.get(target, prop, recv);
        return typeof v === "function" ? v.bind(target) : v;
      },
    });
    const t = new MountTable(slow);
    const m = await t.mount("secret", { type: "kv", options: { version: "2" } });
    const r = await t.resolve("secret/data/app");
    const write = r?.engine.handle(req("write", "data/app", { data: { v: "1" } }));
    await writing;
    const unmounted = t.unmount("secret");
    await new Promise((res) => setTimeout(res, 20));
    release();
    await Promise.allSettled([write]);
    expect(await unmounted).toBe(true);
    expect(await memory.list(`logical/${m.uuid}/`)).toEqual([]);
    // An engine handed out before the unmount refuses work afterwards instead of writing orphans.
    expect(
      await status(r?.engine.handle(req("write", "data/other", { data: { v: "2" } })) as Promise<unknown>),
    ).toBe(404);
    expect(await memory.list(`logical/${m.uuid}/`)).toEqual([]);
  });

  it("an unmount whose data deletion fails keeps the mount, so the unmount can be retried", async () => {
    const memory = new MemoryBackend();
    let failDeletes = false;
    const flaky = new FaultInjectingBackend(memory, {
      fault: ({ op, key }) =>
        failDeletes && op === "delete" && key.includes("/versions/")
          ? new Error("injected delete failure")
          : undefined,
    });
    const t = new MountTable(flaky);
    const m = await t.mount("secret", { type: "kv", options: { version: "2" } });
    const r = await t.resolve("secret/data/a");
    await r?.engine.handle(req("write", "data/a", { data: { v: "1" } }));
    await r?.engine.handle(req("write", "data/b", { data: { v: "1" } }));
    failDeletes = true;
    await expect(t.unmount("secret")).rejects.toThrow(/injected/);
    failDeletes = false;
    // Still mounted (not silently orphaning what is left of its data), and the retry clears it all.
    expect((await t.all()).map((e) => e.path)).toEqual(["secret/"]);
    expect(await t.unmount("secret")).toBe(true);
    expect(await memory.list(`logical/${m.uuid}/`)).toEqual([]);
    expect(await t.all()).toEqual([]);
  });

  it("a table read that began before a mount does not cache the table without it", async () => {
    const memory = new MemoryBackend();
    const waiting: (() => void)[] = [];
    let stall = false;
    const slow = new Proxy(memory, {
      get(target, prop, recv) {
        if (prop === "get")
          return async (key: string) => {
            const v = await target.get(key);
            if (stall && key === "core/bulwark-mounts") await new Promise<void>((r) => waiting.push(r));
            return v;
          };
        const v = Reflect.get(target, prop, recv);
        return typeof v === "function" ? v.bind(target) : v;
      },
    });
    const t = new MountTable(slow);
    stall = true;
    const early = t.resolve("secret/data/x");
    await new Promise((r) => setTimeout(r, 5));
    expect(waiting.length).toBe(1);
    stall = false;
    await t.mount("secret", { type: "kv", options: { version: "2" } });
    for (const r of waiting.splice(0)) r();
    expect(await early).toBeUndefined();
    expect((await t.resolve("secret/data/x"))?.mount.path).toBe("secret/");
  });

  it("a default_lease_ttl above the max_lease_ttl (or the system max) is refused at mount and tune, as in Vault", async () => {
    const t = new MountTable(new MemoryBackend());
    await expect(
      t.mount("a", { type: "kv", config: { defaultLeaseTtl: 7200, maxLeaseTtl: 3600 } }),
    ).rejects.toThrow(/default lease TTL greater than given max lease TTL/);
    await expect(t.mount("b", { type: "kv", config: { defaultLeaseTtl: 768 * 3600 + 1 } })).rejects.toThrow(
      /greater than system max lease TTL/,
    );
    expect(await t.all()).toEqual([]);
    await t.mount("c", { type: "kv", config: { defaultLeaseTtl: 60, maxLeaseTtl: 3600 } });
    await expect(t.tune("c", { defaultLeaseTtl: 7200 })).rejects.toThrow(/greater than/);
    await expect(t.tune("c", { defaultLeaseTtl: 7200, maxLeaseTtl: 3600 })).rejects.toThrow(/greater than/);
    await expect(t.tune("c", { maxLeaseTtl: 30 })).rejects.toThrow(/greater than/);
    expect((await t.all())[0]?.config).toMatchObject({ default_lease_ttl: 60, max_lease_ttl: 3600 });
    await t.tune("c", { defaultLeaseTtl: 7200, maxLeaseTtl: 7200 });
    expect((await t.all())[0]?.config).toMatchObject({ default_lease_ttl: 7200, max_lease_ttl: 7200 });
  });

  it("the mount table cached before a step-down is not used after this node becomes active again", async () => {
    const storage = new MemoryBackend();
    const term = { value: 1 as number | undefined };
    const a = new MountTable(storage, { activeTerm: () => term.value });
    const first = await a.mount("secret", { type: "kv", options: { version: "2" } });
    expect((await a.resolve("secret/data/x"))?.mount.uuid).toBe(first.uuid);
    term.value = undefined; // a steps down; b, now active, remounts secret/ (a new, empty mount)
    const b = new MountTable(storage, { activeTerm: () => 9 });
    await b.unmount("secret");
    const second = await b.mount("secret", { type: "kv", options: { version: "2" } });
    term.value = 2; // a is active again: its writes must go to the mount that exists now
    expect((await a.resolve("secret/data/x"))?.mount.uuid).toBe(second.uuid);
  });

  it("tuning default_lease_ttl of a kv v1 mount changes the lease_duration of its reads", async () => {
    const t = new MountTable(new MemoryBackend());
    await t.mount("kv1", { type: "kv-v1", config: { defaultLeaseTtl: 3600 } });
    const before = await t.resolve("kv1/a");
    await before?.engine.handle(req("write", "a", { x: "1" }));
    expect((await before?.engine.handle(req("read", "a")))?.leaseDuration).toBe(3600);
    await t.tune("kv1", { defaultLeaseTtl: 60 });
    const after = await t.resolve("kv1/a");
    expect((await after?.engine.handle(req("read", "a")))?.leaseDuration).toBe(60);
  });

  it("a seal_wrap mount writes its entries with sealWrap", async () => {
    const storage = new MemoryBackend();
    const flagged: string[] = [];
    const spy = new Proxy(storage, {
      get(target, prop, recv) {
        if (prop === "put") {
          return async (e: { key: string; sealWrap?: boolean }) => {
            if (e.sealWrap === true) flagged.push(e.key);
            return target.put(e as never);
          };
        }
        const v = Reflect.get(target, prop, recv);
        return typeof v === "function" ? v.bind(target) : v;
      },
    });
    const t = new MountTable(spy);
    await t.mount("wrapped", { type: "kv", options: { version: "2" }, sealWrap: true });
    await t.mount("plain", { type: "kv", options: { version: "2" } });
    await (await t.resolve("wrapped/data/x"))?.engine.handle(req("write", "data/x", { data: { a: 1 } }));
    await (await t.resolve("plain/data/x"))?.engine.handle(req("write", "data/x", { data: { a: 1 } }));
    expect(flagged.length).toBe(2);
    const wrapped = (await t.all()).find((m) => m.path === "wrapped/");
    expect(flagged.every((k) => k.startsWith(`logical/${wrapped?.uuid}/`))).toBe(true);
  });
});

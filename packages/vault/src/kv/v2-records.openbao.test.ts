/**
 * The other direction of the fixture tests: records written by this package's encoders (the
 * metadata path key included) are read by a real OpenBao 2.6.2. A KV v2 mount is enabled in
 * OpenBao, its key records are replaced through `sys/raw` with ones MetadataPaths created, our
 * config, upgrade marker, salt, metadata and version records are written beside them, OpenBao is
 * sealed and unsealed (so it drops what it cached) and the `bao` CLI reads everything back. Then
 * OpenBao writes with our key, and we decode what it stored.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { MemoryBackend } from "@bulwark/storage-memory";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import {
  BAO,
  type ScratchOpenBao,
  startScratchOpenBao,
} from "../../../../apps/server/test/helpers/openbao-scratch.js";
import { serviceGate } from "../../../../apps/server/test/helpers/server-process.js";
import { ProtoWriter, WireType } from "../encoding/protobuf.js";
import { PrefixView } from "./common.js";
import { MetadataPaths, versionPath } from "./encrypted-paths.js";
import {
  decodeKeyMetadata,
  durationFromSeconds,
  encodeConfiguration,
  encodeKeyMetadata,
  encodeUpgradeInfo,
  encodeVersion,
  formatTime,
  type KeyMetadata,
  nowTime,
  type PbTime,
  timeFromMs,
} from "./v2-records.js";

// Starts OpenBao and runs its CLI a dozen times: generous limits for a loaded 2-core machine (the
// server is stopped after the file however it ends: packages/core/test/support/vitest-setup.ts).
vi.setConfig({ testTimeout: 120_000, hookTimeout: 120_000 });

const missing = serviceGate("KV v2 records read by OpenBao", BAO, "OpenBao 2.6.2 (bao)");

const dir = mkdtempSync(join(tmpdir(), "kv2-openbao-"));
/** Started in beforeAll. */
let ob: ScratchOpenBao;

async function rawPut(path: string, value: Uint8Array): Promise<void> {
  await ob.ok("PUT", `sys/raw/${path}`, { value: Buffer.from(value).toString("base64"), encoding: "base64" });
}

async function rawGet(path: string): Promise<Uint8Array> {
  const j = await ob.ok("GET", `sys/raw/${path}?compressed=false&encoding=base64`);
  return new Uint8Array(Buffer.from(j.data.value as string, "base64"));
}

async function rawList(path: string): Promise<string[]> {
  const r = await ob.http("LIST", `sys/raw/${path}`);
  return r.status === 404 ? [] : (r.json.data.keys as string[]);
}

const t = (iso: string): PbTime => timeFromMs(Date.parse(iso));

describe.skipIf(missing !== undefined)("KV v2 records written here, read by OpenBao 2.6.2", () => {
  let uuid = "";
  let bu = "";
  let paths: MetadataPaths;
  let ourPolicy = "";
  const salt = "0b6c1a3e-2f04-4d0e-9b7a-3c5d2e1f4a6b";
  const created = nowTime();
  // An unknown field (number 999) OpenBao must carry through its own read-modify-write.
  const unknown = new ProtoWriter().tag(999, WireType.LEN).string("kept").finish();
  const appDb: KeyMetadata = {
    key: "app/db",
    versions: new Map([
      [1, { created_time: t("2026-01-01T00:00:01.5Z"), destroyed: true }],
      [
        2,
        {
          created_time: t("2026-01-02T00:00:00Z"),
          deletion_time: t("2026-01-03T00:00:00.25Z"),
          destroyed: false,
        },
      ],
      [3, { created_time: { seconds: created.seconds, nanos: 123_456_789 }, destroyed: false }],
    ]),
    current_version: 3,
    oldest_version: 0,
    created_time: t("2026-01-01T00:00:01.5Z"),
    updated_time: { seconds: created.seconds, nanos: 123_456_789 },
    max_versions: 5,
    cas_required: true,
    delete_version_after: durationFromSeconds(7200),
    custom_metadata: new Map([
      ["owner", "ops"],
      ["ü", "x y"],
    ]),
    metadata_cas_required: false,
    current_metadata_version: 2,
    unknown,
  };
  const one = (key: string): KeyMetadata => ({
    key,
    versions: new Map([[1, { created_time: created, destroyed: false }]]),
    current_version: 1,
    oldest_version: 0,
    created_time: created,
    updated_time: created,
    max_versions: 0,
    cas_required: false,
    custom_metadata: new Map(),
    metadata_cas_required: false,
    current_metadata_version: 0,
  });

  beforeAll(async () => {
    ob = await startScratchOpenBao({ dir });
    await ob.ok("POST", "sys/mounts/kv", { type: "kv", options: { version: "2" } });
    await ob.until("the kv mount answering", async () => (await ob.http("GET", "kv/config")).status === 200);
    const table = JSON.parse((await ob.ok("GET", "sys/raw/core/mounts")).data.value as string);
    const entry = table.entries.find((e: { path: string }) => e.path === "kv/");
    uuid = entry.uuid;
    bu = entry.backend_aware_uuid;

    // Everything this package writes, into a memory view first, then copied through sys/raw.
    const mem = new MemoryBackend();
    const view = new PrefixView(mem, `logical/${uuid}/`, false);
    paths = (await MetadataPaths.open(view, bu, true)) as MetadataPaths;
    const put = (k: string, v: Uint8Array) => view.put(k, v);
    await put(`${bu}/salt`, new TextEncoder().encode(salt));
    await put(
      `${bu}/config`,
      encodeConfiguration({
        max_versions: 7,
        cas_required: false,
        delete_version_after: durationFromSeconds(3600),
        metadata_cas_required: false,
      }),
    );
    await put(`${bu}/upgrading`, encodeUpgradeInfo({ started_time: nowTime(), done: true }));
    const data = (o: unknown) => new TextEncoder().encode(JSON.stringify(o));
    for (const [key, m, versions] of [
      ["app/db", appDb, { 2: { pass: "two" }, 3: { pass: "three", n: 3 } }],
      ["a/b/c", one("a/b/c"), { 1: { deep: "yes" } }],
      ["top", one("top"), { 1: { top: "1" } }],
    ] as const) {
      await put(paths.keyPath(key), encodeKeyMetadata(m));
      for (const [n, d] of Object.entries(versions)) {
        const meta = m.versions.get(Number(n));
        await put(
          versionPath(bu, salt, key, Number(n)),
          encodeVersion({
            data: data(d),
            ...(meta?.created_time ? { created_time: meta.created_time } : {}),
          }),
        );
      }
    }
    ourPolicy = Buffer.from((await view.get(`${bu}/policy/metadata`)) ?? []).toString();
    // Copy everything, replacing OpenBao's own key records (made when the mount was enabled).
    const all: string[] = [];
    const walk = async (p: string) => {
      for (const k of await mem.list(p)) {
        if (k.endsWith("/")) await walk(p + k);
        else all.push(p + k);
      }
    };
    await walk(`logical/${uuid}/`);
    for (const k of all) await rawPut(k, (await mem.get(k))?.value as Uint8Array);
    // Seal and unseal: the mount is set up again and reads the key, salt and config from storage.
    await ob.sealUnseal("kv/config");
  });

  afterAll(async () => {
    await ob?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it("OpenBao uses our metadata key and config", async () => {
    // Still our key after OpenBao set the mount up again (it did not make its own).
    expect(Buffer.from(await rawGet(`logical/${uuid}/${bu}/policy/metadata`)).toString()).toBe(ourPolicy);
    expect(JSON.parse(ourPolicy).storage_prefix).toBe(bu);
    const config = await ob.bao(["read", "kv/config"]);
    expect(config.data).toEqual({
      cas_required: false,
      delete_version_after: "1h0m0s",
      max_versions: 7,
      metadata_cas_required: false,
    });
  });

  it("bao kv list walks our encrypted folders", async () => {
    expect((await ob.bao(["kv", "list", "kv/"])).sort()).toEqual(["a/", "app/", "top"]);
    expect(await ob.bao(["kv", "list", "kv/a/"])).toEqual(["b/"]);
    expect(await ob.bao(["kv", "list", "kv/a/b/"])).toEqual(["c"]);
  });

  it("bao kv metadata get answers what our KeyMetadata holds", async () => {
    const md = (await ob.bao(["kv", "metadata", "get", "kv/app/db"])).data;
    expect(md).toEqual({
      cas_required: true,
      created_time: "2026-01-01T00:00:01.5Z",
      current_metadata_version: 2,
      current_version: 3,
      custom_metadata: { owner: "ops", ü: "x y" },
      delete_version_after: "2h0m0s",
      max_versions: 5,
      metadata_cas_required: false,
      oldest_version: 0,
      updated_time: formatTime(appDb.updated_time),
      versions: {
        "1": { created_time: "2026-01-01T00:00:01.5Z", deletion_time: "", destroyed: true },
        "2": {
          created_time: "2026-01-02T00:00:00Z",
          deletion_time: "2026-01-03T00:00:00.25Z",
          destroyed: false,
        },
        // delete_version_after applies when OpenBao writes a version, not when it reads one.
        "3": {
          created_time: formatTime(appDb.versions.get(3)?.created_time),
          deletion_time: "",
          destroyed: false,
        },
      },
    });
  });

  it("bao kv get reads our Version records at our version paths", async () => {
    const v3 = await ob.bao(["kv", "get", "kv/app/db"]);
    expect(v3.data.data).toEqual({ pass: "three", n: 3 });
    expect(v3.data.metadata.version).toBe(3);
    expect((await ob.bao(["kv", "get", "kv/a/b/c"])).data.data).toEqual({ deep: "yes" });
    expect((await ob.bao(["kv", "get", "kv/top"])).data.data).toEqual({ top: "1" });
    // Version 2 is deleted (its deletion_time has passed) and 1 destroyed: OpenBao answers 404.
    const v2 = await ob.http("GET", "kv/data/app/db?version=2");
    expect(v2.status).toBe(404);
    expect(v2.json.data.metadata.deletion_time).toBe("2026-01-03T00:00:00.25Z");
    expect((await ob.http("GET", "kv/data/app/db?version=1")).json.data.metadata.destroyed).toBe(true);
  });

  it("what OpenBao then writes is at our paths and decodes here, our unknown field kept", async () => {
    await ob.bao(["kv", "put", "-cas=3", "kv/app/db", "pass=four"]);
    const md = decodeKeyMetadata(await rawGet(`logical/${uuid}/${paths.keyPath("app/db")}`));
    expect(md.current_version).toBe(4);
    expect(md.versions.get(4)?.created_time?.seconds).toBeGreaterThanOrEqual(created.seconds);
    expect(Buffer.from(md.unknown ?? []).toString("hex")).toBe(Buffer.from(unknown).toString("hex"));
    expect(md.custom_metadata.get("ü")).toBe("x y");
    const v4 = await rawGet(`logical/${uuid}/${versionPath(bu, salt, "app/db", 4)}`);
    expect(v4.length).toBeGreaterThan(0);
    // A key OpenBao creates lands at the path our keyPath gives (so OpenBao used our key).
    await ob.bao(["kv", "put", "kv/new/thing", "k=v"]);
    const stored = await rawList(`logical/${uuid}/${paths.folderPath("new/")}`);
    expect(stored.map((n) => paths.listedName("new/", n))).toEqual(["thing"]);
    expect(decodeKeyMetadata(await rawGet(`logical/${uuid}/${paths.keyPath("new/thing")}`)).key).toBe(
      "new/thing",
    );
  });
});

/**
 * The mount and auth tables in both directions against a real OpenBao 2.6.2 on one file data set:
 * Bulwark initialises it and writes its tables (setup, kv v1/v2 mounts, a local seal-wrapped one
 * with a TTL, secrets), OpenBao unseals it with the same share and lists and reads everything
 * (`bao secrets list -detailed`, `bao auth list`, `bao kv get`) without rewriting a table; then
 * OpenBao mounts, enables and tunes, and Bulwark reads its tables back with nothing lost and
 * serves the kv mounts OpenBao made.
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SealedStore } from "@bulwark/core";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import {
  BAO,
  type Json,
  type ScratchOpenBao,
  startScratchOpenBao,
} from "../../../../apps/server/test/helpers/openbao-scratch.js";
import { serviceGate } from "../../../../apps/server/test/helpers/server-process.js";
import { FileBackend } from "../../../storage-file/src/index.js";
import { decompressRecord } from "../encoding/compression.js";
import { mountKv, rootTokenAfterInit, servicesFor } from "../services.js";
import { mountInfo } from "../system.js";
import { serves } from "./mounts.js";

// Starts OpenBao and runs its CLI several times: generous limits for a loaded 2-core machine (the
// server is stopped after the file however it ends: packages/core/test/support/vitest-setup.ts).
vi.setConfig({ testTimeout: 120_000, hookTimeout: 120_000 });

const missing = serviceGate("mount tables read by OpenBao", BAO, "OpenBao 2.6.2 (bao)");

const dir = mkdtempSync(join(tmpdir(), "mounts-openbao-"));
const data = join(dir, "data");
/** Started in beforeAll (a second stop() is a no-op). */
let ob: ScratchOpenBao;
let token = "";
let unsealKey = "";

/** OpenBao on the data set Bulwark initialised, unsealed with its share, once active. */
async function startOpenBao(): Promise<ScratchOpenBao> {
  const s = await startScratchOpenBao({ dir, init: false, unsealKey, token });
  await s.until("openbao active", async () => (await s.http("GET", "sys/mounts")).status === 200);
  return s;
}

async function openStore(): Promise<SealedStore> {
  const store = await SealedStore.open({ storage: new FileBackend({ path: data }), autoRotateCheckMs: 0 });
  return store;
}

/** The raw bytes of each table file, to tell whether a server rewrote one. */
function tableFiles(): Map<string, string> {
  const out = new Map<string, string>();
  for (const n of ["mounts", "local-mounts", "auth", "local-auth", "audit", "local-audit"])
    out.set(n, readFileSync(join(data, "core", `_${n}`)).toString("base64"));
  return out;
}

/**
 * Without `running_plugin_version` (each server reports its own build for built-in plugins), and
 * without the CLI's empty `deprecation_status` (its MountOutput struct writes "" where the API
 * answer has no such field).
 */
const comparable = (info: Record<string, Json>): Record<string, Json> => {
  const out: Record<string, Json> = {};
  for (const [k, v] of Object.entries(info)) {
    const { running_plugin_version: _r, ...rest } = v;
    if (rest.deprecation_status === "") delete rest.deprecation_status;
    out[k] = rest;
  }
  return out;
};

describe.skipIf(missing !== undefined)("mount and auth tables shared with OpenBao 2.6.2", () => {
  const ours: Record<string, Json> = {};
  let files = new Map<string, string>();

  beforeAll(async () => {
    const store = await openStore();
    const init = await store.initialize({ secretShares: 1, secretThreshold: 1 });
    unsealKey = init.keys[0] as string;
    token = await rootTokenAfterInit(store, init.keys, 1); // runs setup(): OpenBao's init records
    await store.unseal(unsealKey);
    const s = servicesFor(store);
    await mountKv(store, "kv2", { version: 2 });
    await mountKv(store, "kv1", { version: 1 });
    await s.mounts.mount("wrapped", {
      type: "kv",
      options: { version: "2" },
      local: true,
      sealWrap: true,
      description: "local & <wrapped>",
      config: { defaultLeaseTtl: 3600, maxLeaseTtl: 7200 },
    });
    await s.handle({ operation: "update", path: "kv1/plain", data: { foo: "bar" }, token });
    await s.handle({
      operation: "update",
      path: "kv2/data/app/db",
      data: { data: { user: "alice" } },
      token,
    });
    for (const m of await s.mounts.all()) ours[m.path] = mountInfo(m);
    await store.close();
    files = tableFiles();
    ob = await startOpenBao();
  });

  afterAll(async () => {
    await ob?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it("OpenBao lists Bulwark's mounts and auth methods as Bulwark describes them, and reads its secrets", async () => {
    const listed = await ob.bao(["secrets", "list", "-detailed"]);
    expect(Object.keys(listed).sort()).toEqual([
      "cubbyhole/",
      "identity/",
      "kv1/",
      "kv2/",
      "sys/",
      "wrapped/",
    ]);
    expect(comparable(listed)).toEqual(comparable(ours));
    expect(listed["wrapped/"]).toMatchObject({
      local: true,
      seal_wrap: true,
      description: "local & <wrapped>",
      config: { default_lease_ttl: 3600, max_lease_ttl: 7200 },
    });
    const auth = await ob.bao(["auth", "list", "-detailed"]);
    expect(Object.keys(auth)).toEqual(["token/"]);
    expect(auth["token/"]).toMatchObject({ type: "token", description: "token based credentials" });
    expect((await ob.bao(["kv", "get", "kv1/plain"])).data).toEqual({ foo: "bar" });
    expect((await ob.bao(["kv", "get", "kv2/app/db"])).data.data).toEqual({ user: "alice" });
    // OpenBao found nothing to fill in or add: no table was rewritten at its unseal.
    expect(tableFiles()).toEqual(files);
  });

  it("what OpenBao then mounts, enables and tunes, Bulwark reads back with nothing lost and serves", async () => {
    await ob.baoRun(["secrets", "enable", "-path=fromBao", "-version=2", "kv"]);
    await ob.baoRun(["secrets", "enable", "pki"]);
    await ob.baoRun(["auth", "enable", "userpass"]);
    await ob.baoRun(["secrets", "tune", "-description=tuned by openbao", "kv1/"]);
    await ob.until(
      "the new kv v2 mount answering",
      async () => (await ob.http("GET", "fromBao/config")).status === 200,
    );
    await ob.baoRun(["kv", "put", "fromBao/x", "k=v"]);
    const table = JSON.parse((await ob.ok("GET", "sys/raw/core/mounts")).data.value as string);
    const auth = JSON.parse((await ob.ok("GET", "sys/raw/core/auth")).data.value as string);
    await ob.stop();

    const store = await openStore();
    await store.unseal(unsealKey);
    const s = servicesFor(store);
    await s.setup();
    const mounts = await s.mounts.all();
    expect(mounts.filter((m) => !m.local)).toEqual(table.entries);
    expect(await s.mounts.auths()).toEqual(auth.entries);
    expect(mounts.map((m) => `${m.path}:${serves(m)}`).sort()).toEqual([
      "cubbyhole/:false",
      "fromBao/:true",
      "identity/:false",
      "kv1/:true",
      "kv2/:true",
      "pki/:false",
      "sys/:false",
      "wrapped/:true",
    ]);
    const read = await s.handle({ operation: "read", path: "fromBao/data/x", token });
    expect(JSON.parse(read.rawData ?? JSON.stringify(read.data)).data).toEqual({ k: "v" });
    await expect(s.handle({ operation: "read", path: "pki/ca/pem", token })).rejects.toThrow(
      "pki/ is an OpenBao/Vault `pki` mount Bulwark keeps but does not serve",
    );
    // Bulwark's next write keeps every entry OpenBao wrote, as OpenBao wrote it.
    await s.mounts.mount("again", { type: "kv" });
    const raw = await store.storage.get("core/mounts");
    const after = JSON.parse(decompressRecord(raw?.value ?? new Uint8Array(), "core/mounts").text);
    expect(after.entries.slice(0, -1)).toEqual(table.entries);
    await store.close();
  });
});

/**
 * The KV v2 engine against a real OpenBao 2.6.2, both ways, on one data set: the engine runs over
 * OpenBao's own storage (every get/put/delete/list goes through `sys/raw`), so what it writes is
 * what OpenBao then serves, and what OpenBao writes is what the engine reads. Each answer of the
 * engine is compared with OpenBao's answer to the same request (status, data, warnings, errors).
 * Also: a KV v1 mount upgraded by the engine is what OpenBao reads once the mount is tuned to v2.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Backend } from "@bulwark/storage";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import {
  BAO,
  type ScratchOpenBao,
  startScratchOpenBao,
} from "../../../../apps/server/test/helpers/openbao-scratch.js";
import { serviceGate } from "../../../../apps/server/test/helpers/server-process.js";
import { JsonNumber } from "../json/lossless.js";
import { type KvRequest, PrefixView } from "./common.js";
import { KvV2 } from "./kv-v2.js";

// Starts OpenBao and seals/unseals it: generous limits for a loaded 2-core machine (the server is
// stopped after the file however it ends: packages/core/test/support/vitest-setup.ts).
vi.setConfig({ testTimeout: 120_000, hookTimeout: 120_000 });

const missing = serviceGate("KV v2 engine against OpenBao", BAO, "OpenBao 2.6.2 (bao)");

const dir = mkdtempSync(join(tmpdir(), "kv2-engine-openbao-"));
/** Started in beforeAll. */
let ob: ScratchOpenBao;

/** OpenBao's storage as a Backend: every operation goes through its sys/raw endpoint. */
const raw = {
  async get(key: string) {
    const r = await ob.http("GET", `sys/raw/${key}?compressed=false&encoding=base64`);
    if (r.status === 404) return undefined;
    if (r.status !== 200) throw new Error(`raw get ${key}: ${r.status}`);
    return { key, value: new Uint8Array(Buffer.from(r.json.data.value as string, "base64")) };
  },
  async put(e: { key: string; value: Uint8Array }) {
    await ob.ok("PUT", `sys/raw/${e.key}`, {
      value: Buffer.from(e.value).toString("base64"),
      encoding: "base64",
    });
  },
  async delete(key: string) {
    await ob.ok("DELETE", `sys/raw/${key}`);
  },
  async list(prefix: string) {
    const r = await ob.http("LIST", `sys/raw/${prefix}`);
    return r.status === 404 ? [] : (r.json.data.keys as string[]);
  },
} as unknown as Backend;

interface Answer {
  status: number;
  data?: unknown;
  warnings?: unknown;
  errors?: string;
}

/** The engine's answer, in the shape of OpenBao's HTTP answer. */
async function engine(kv: KvV2, method: string, path: string, body?: unknown): Promise<Answer> {
  const [p, q] = path.split("?");
  const query = q === undefined ? {} : Object.fromEntries(new URLSearchParams(q));
  const operation: KvRequest["operation"] =
    method === "LIST"
      ? "list"
      : method === "GET"
        ? "read"
        : method === "DELETE"
          ? "delete"
          : method === "PATCH"
            ? ("patch" as KvRequest["operation"])
            : "write";
  try {
    const r = await kv.handle({ operation, path: p as string, body, query });
    const data = r.rawData !== undefined ? JSON.parse(r.rawData) : r.data;
    if (data === undefined && r.status === undefined) return { status: 204 };
    return { status: r.status ?? 200, data: data ?? null, warnings: r.warnings ?? null };
  } catch (e) {
    return { status: (e as { status: number }).status, errors: (e as Error).message };
  }
}

async function openbao(method: string, path: string, body?: unknown): Promise<Answer> {
  const r = await ob.http(method, path, body);
  if (r.status === 204) return { status: 204 };
  if (r.json.errors !== undefined)
    return { status: r.status, errors: (r.json.errors as string[]).join("; ") };
  return { status: r.status, data: r.json.data ?? null, warnings: r.json.warnings ?? null };
}

/** Requests whose answers must be the same from the engine and from OpenBao. */
async function differences(kv: KvV2, mount: string, requests: string[]): Promise<unknown[]> {
  const out: unknown[] = [];
  for (const r of requests) {
    const [method, path] = r.split(" ") as [string, string];
    const ours = await engine(kv, method, path);
    const theirs = await openbao(method, `${mount}/${encodeURI(path)}`);
    if (JSON.stringify(ours) !== JSON.stringify(theirs))
      out.push({ request: r, bulwark: ours, openbao: theirs });
  }
  return out;
}

async function mountOf(path: string): Promise<{ uuid: string; bu: string }> {
  const table = JSON.parse((await ob.ok("GET", "sys/raw/core/mounts")).data.value as string);
  const e = table.entries.find((x: { path: string }) => x.path === path);
  return { uuid: e.uuid, bu: e.backend_aware_uuid };
}

describe.skipIf(missing !== undefined)("the KV v2 engine on OpenBao 2.6.2's storage", () => {
  beforeAll(async () => {
    ob = await startScratchOpenBao({ dir });
  });

  afterAll(async () => {
    await ob?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it("what the engine writes on a fresh mount, OpenBao serves with the same answers; and back", async () => {
    await ob.ok("POST", "sys/mounts/bw", { type: "kv", options: { version: "2" } });
    await ob.until("the bw mount answering", async () => (await ob.http("GET", "bw/config")).status === 200);
    const { uuid, bu } = await mountOf("bw/");
    // What OpenBao made when enabling goes: the engine creates the mount's records itself.
    for (const k of ["upgrading", "policy/metadata", "archive/metadata"])
      await raw.delete(`logical/${uuid}/${bu}/${k}`);
    const view = new PrefixView(raw, `logical/${uuid}/`, false);
    const kv = new KvV2(view, { backendUuid: bu });
    const write = async (path: string, body: unknown) => {
      const a = await engine(kv, "POST", path, body);
      expect(a.status, `${path}: ${JSON.stringify(a)}`).toBeLessThan(300);
    };
    await write("config", { max_versions: 4, delete_version_after: "3h" });
    for (let i = 1; i <= 6; i++)
      await write("data/app/db", {
        data: { user: "alice", pass: `p${i}`, n: new JsonNumber("9007199254740993"), h: "<&>" },
      });
    await write("metadata/app/db", {
      custom_metadata: { owner: "ops", env: 5 },
      max_versions: 2,
      cas_required: true,
      delete_version_after: "2h",
    });
    await write("data/app/db", { data: { v: 7 }, options: { cas: 6 } });
    await write("data/app/db", { data: { v: 8 }, options: { cas: 7 } });
    await write("delete/app/db", { versions: [7] });
    await write("data/other", { data: { x: "1" } });
    await write("data/sp ace/ünï", { data: { x: "u" } });
    await write("data/d/e/f", { data: { x: "deep" } });
    await write("data/nest", { data: { a: { b: { c: 1 }, e: {} }, l: [1, { x: 1 }], s: "v" } });
    await write("destroy/other", { versions: [1] });
    await write("metadata/mo", { metadata_cas: 0, metadata_cas_required: true });
    // OpenBao sets the mount up again from storage (no cached key, salt or config of its own).
    await ob.sealUnseal("bw/config");
    const requests = [
      "GET config",
      "LIST metadata/",
      "LIST metadata/app/",
      "LIST metadata/d/e/",
      "LIST metadata/sp ace/",
      "LIST metadata/nothing/",
      "LIST detailed-metadata/app/",
      "GET metadata/app/db",
      "GET data/app/db",
      "GET data/app/db?version=7",
      "GET data/app/db?version=6",
      "GET data/app/db?version=1",
      "GET metadata/other",
      "GET data/other",
      "GET data/sp ace/ünï",
      "GET data/d/e/f",
      "GET metadata/mo",
      "GET data/none",
      "GET subkeys/nest",
      "GET subkeys/nest?depth=1",
      "GET subkeys/nest?depth=2",
      "GET subkeys/app/db?version=7",
      "GET subkeys/none",
    ];
    expect(await differences(kv, "bw", requests)).toEqual([]);

    // OpenBao writes; a new engine (nothing cached) reads the same.
    expect((await ob.http("POST", "bw/data/app/db", { data: { v: 9 }, options: { cas: 8 } })).status).toBe(
      200,
    );
    expect(
      (await ob.http("POST", "bw/metadata/mo", { metadata_cas: 1, custom_metadata: { a: "b" } })).status,
    ).toBe(204);
    expect((await ob.http("POST", "bw/data/new/key", { data: { z: [1, 2] } })).status).toBe(200);
    const fresh = new KvV2(view, { backendUuid: bu });
    expect(
      await differences(fresh, "bw", [
        "GET metadata/app/db",
        "GET data/app/db",
        "GET metadata/mo",
        "GET data/new/key",
        "LIST metadata/",
      ]),
    ).toEqual([]);
  });

  it("a PATCH by the engine stores and answers what OpenBao's PATCH does", async () => {
    const { uuid, bu } = await mountOf("bw/");
    const kv = new KvV2(new PrefixView(raw, `logical/${uuid}/`, false), { backendUuid: bu });
    const initial = { a: { b: 1, c: [1, 2] }, n: new JsonNumber("9007199254740993"), keep: "x", gone: "y" };
    for (const k of ["p-ours", "p-theirs"])
      expect((await engine(kv, "POST", `data/${k}`, { data: initial })).status).toBe(200);
    const patch = {
      data: {
        a: { c: null, d: { x: null, y: 2 } },
        gone: null,
        f: new JsonNumber("1.50"),
        z: { k: null, j: 1 },
      },
    };
    const meta = { custom_metadata: { a: "1", b: null }, max_versions: 3 };
    const ours = await engine(kv, "PATCH", "data/p-ours", patch);
    const res = await fetch(`${ob.addr}/v1/bw/data/p-theirs`, {
      method: "PATCH",
      headers: { "X-Vault-Token": ob.token, "Content-Type": "application/merge-patch+json" },
      // As sent by a client: the exact number text (JSON.stringify would give 1.5).
      body: '{"data":{"a":{"c":null,"d":{"x":null,"y":2}},"gone":null,"f":1.50,"z":{"k":null,"j":1}}}',
    });
    expect(res.status).toBe(200);
    expect(ours.status).toBe(200);
    await engine(kv, "PATCH", "metadata/p-ours", meta);
    const m = await fetch(`${ob.addr}/v1/bw/metadata/p-theirs`, {
      method: "PATCH",
      headers: { "X-Vault-Token": ob.token, "Content-Type": "application/merge-patch+json" },
      body: JSON.stringify(meta),
    });
    expect(m.status).toBe(204);
    // The same version data, byte for byte (the old data through float64, the patch as sent).
    const salt = Buffer.from((await raw.get(`logical/${uuid}/${bu}/salt`))?.value ?? []).toString();
    const versionData = async (key: string) => {
      const { createHash } = await import("node:crypto");
      const h = createHash("sha256").update(`${salt}${key}|2`).digest("hex");
      const v = (await raw.get(`logical/${uuid}/${bu}/versions/${h.slice(0, 3)}/${h.slice(3)}`))?.value;
      return Buffer.from(v ?? []).toString("latin1");
    };
    // Existing keys in place, the old data through float64, new keys appended (two of them here:
    // OpenBao appends them in Go's map order, random, so only one order is compared).
    const oursData = await versionData("p-ours");
    const expected = '{"a":{"b":1,"d":{"y":2}},"keep":"x","n":9007199254740992,"f":1.50,"z":{"j":1}}';
    expect(oursData).toContain(expected);
    const theirs = await versionData("p-theirs");
    const swapped = '{"a":{"b":1,"d":{"y":2}},"keep":"x","n":9007199254740992,"z":{"j":1},"f":1.50}';
    expect(theirs.includes(expected) || theirs.includes(swapped), theirs).toBe(true);
    // The same answers, but for the times.
    const untimed = (a: Answer) => JSON.parse(JSON.stringify(a).replace(/"\d{4}-\d\d-\d\dT[^"]*Z"/g, '"t"'));
    for (const path of ["data/p-", "metadata/p-"]) {
      const a = untimed(await openbao("GET", `bw/${path}ours`));
      const b = untimed(await openbao("GET", `bw/${path}theirs`));
      expect(a, path).toEqual(b);
      expect(untimed(await engine(kv, "GET", `${path}ours`)), path).toEqual(a);
    }
  });

  it("a KV v1 mount the engine upgraded is what OpenBao reads once the mount is tuned to v2", async () => {
    await ob.ok("POST", "sys/mounts/up", { type: "kv", options: { version: "1" } });
    await ob.ok("POST", "up/a/b", { k: "v", n: 1 });
    await ob.ok("POST", "up/top", { t: "x" });
    const { uuid, bu } = await mountOf("up/");
    const kv = new KvV2(new PrefixView(raw, `logical/${uuid}/`, false), { backendUuid: bu });
    // Over HTTP the upgrade takes a while: requests answer OpenBao's "upgrading" error until done.
    await ob.until("the engine's upgrade", async () => (await engine(kv, "GET", "data/a/b")).status === 200);
    expect(await raw.list(`logical/${uuid}/`)).toEqual([`${bu}/`]);
    await ob.ok("POST", "sys/mounts/up/tune", { options: { version: "2" } });
    await ob.until(
      "the up mount answering as v2",
      async () => (await ob.http("GET", "up/config")).status === 200,
    );
    expect(
      await differences(kv, "up", [
        "GET data/a/b",
        "GET metadata/a/b",
        "GET data/top",
        "GET metadata/top",
        "LIST metadata/",
        "LIST metadata/a/",
      ]),
    ).toEqual([]);
  });
});

import { createHmac } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SealedStore } from "@bulwark/core";
import { StaticKeySeal } from "@bulwark/seal";
import type { Backend } from "@bulwark/storage";
import { MemoryBackend } from "@bulwark/storage-memory";
import { afterEach, describe, expect, it } from "vitest";
import { decompressRecord } from "../encoding/compression.js";
import { waitActive } from "../services.js";
import {
  AUDIT_FORMATTER,
  type AuditBrokerLogger,
  type AuditRecordFormatter,
  StoreAuditBroker,
} from "./broker.js";
import { AUDIT_DEVICE_FACTORIES } from "./devices/index.js";
import type { AuditDevice, AuditDeviceFactory, AuditSettings, LogInput } from "./types.js";

const dec = new TextDecoder();
const stores: SealedStore[] = [];
const brokers: StoreAuditBroker[] = [];
const dirs: string[] = [];
afterEach(async () => {
  for (const b of brokers.splice(0)) await b.close();
  for (const s of stores.splice(0)) await s.close();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), "bulwark-audit-broker-"));
  dirs.push(d);
  return d;
}

/** Physical storage that counts reads, so a test can see that the request path reads nothing. */
class CountingBackend extends MemoryBackend {
  reads = 0;
  override async get(key: string) {
    this.reads++;
    return super.get(key);
  }
  override async list(prefix: string) {
    this.reads++;
    return super.list(prefix);
  }
}

async function activeStore(raw: CountingBackend = new CountingBackend()) {
  const store = await SealedStore.open({ storage: raw, autoRotateCheckMs: 0 });
  stores.push(store);
  const init = await store.initialize({ secretShares: 1, secretThreshold: 1 });
  for (const k of init.keys) await store.unseal(k);
  await waitActive(store);
  return { store, raw, keys: init.keys };
}

/** One device instance an in-test factory made: what it was given and what happened to it. */
interface Recorded {
  path: string;
  options: Readonly<Record<string, string>>;
  lines: string[];
  closed: boolean;
  reopened: number;
}

/**
 * A device type that records its lines in memory; `failing` makes every device of a path refuse
 * writes (as a full disk or a gone peer does), `refuseOpen` makes the factory throw for a path.
 */
function recorder() {
  const made: Recorded[] = [];
  const failing = new Map<string, Error>();
  const refuseOpen = new Map<string, Error>();
  const factory: AuditDeviceFactory = (options, ctx) => {
    const refused = refuseOpen.get(ctx.path);
    if (refused !== undefined) throw refused;
    const r: Recorded = { path: ctx.path, options, lines: [], closed: false, reopened: 0 };
    made.push(r);
    const device: AuditDevice = {
      type: "mem",
      write: async (record) => {
        const err = failing.get(ctx.path);
        if (err !== undefined) throw err;
        if (r.closed) throw new Error("closed");
        r.lines.push(dec.decode(record));
      },
      reopen: async () => {
        r.reopened++;
      },
      close: async () => {
        r.closed = true;
      },
    };
    return device;
  };
  const open = (path: string) => made.filter((r) => r.path === path && !r.closed);
  return { made, failing, refuseOpen, factory, open };
}

function logs() {
  const lines: { level: string; obj: Record<string, unknown>; msg: string }[] = [];
  const logger: AuditBrokerLogger = {
    info: (obj, msg) => lines.push({ level: "info", obj, msg }),
    warn: (obj, msg) => lines.push({ level: "warn", obj, msg }),
    error: (obj, msg) => lines.push({ level: "error", obj, msg }),
  };
  return { lines, logger };
}

const API: AuditSettings = { devices: [], unsafeAllowApiAuditCreation: true, allowAuditLogPrefixing: false };

function broker(
  store: { storage: Backend; activeTerm: number | undefined; sealed: boolean },
  opts: {
    factories?: Record<string, AuditDeviceFactory>;
    logger?: AuditBrokerLogger;
    formatter?: AuditRecordFormatter;
    termWatchMs?: number;
  } = {},
) {
  const b = new StoreAuditBroker(store, {
    factories: opts.factories ?? AUDIT_DEVICE_FACTORIES,
    formatter: opts.formatter ?? AUDIT_FORMATTER,
    logger: () => opts.logger,
    ...(opts.termWatchMs === undefined ? {} : { termWatchMs: opts.termWatchMs }),
  });
  brokers.push(b);
  return b;
}

async function tableOf(
  storage: Backend,
  key: string,
): Promise<{ type: string; entries: Record<string, unknown>[] | null }> {
  const e = await storage.get(key);
  if (e === undefined) throw new Error(`${key} is missing`);
  return JSON.parse(decompressRecord(e.value, key).text);
}

const request = (path: string, token = "hvs.secret-token-value"): LogInput => ({
  type: "request",
  auth: { clientToken: token, accessor: "accessor-value", tokenType: "service", policies: ["root"] },
  request: { id: "11111111-2222-3333-4444-555555555555", operation: "read", path, clientToken: token },
});

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

describe("the audit table and salts, as OpenBao 2.6.2 stores them", () => {
  it("creates OpenBao's empty tables on first load, stores an enabled device as OpenBao does, and its salt at audit/<uuid>/salt", async () => {
    const { store } = await activeStore();
    const b = broker(store);
    await b.configure(API);
    expect(await b.enabled()).toBe(false);
    // OpenBao right after init: {"type":"audit","entries":null}, gzip-compressed with its canary.
    for (const key of ["core/audit", "core/local-audit"]) {
      const e = await store.storage.get(key);
      expect(e?.value[0]).toBe(0x47);
      expect(decompressRecord(e?.value ?? new Uint8Array(), key).text).toBe(
        '{"type":"audit","entries":null}\n',
      );
    }

    const dir = tempDir();
    const file = join(dir, "audit.log");
    await b.enable("file", { type: "file", options: { file_path: file } });
    const table = await tableOf(store.storage, "core/audit");
    // OpenBao 2.6.2's record (sys/raw/core/audit of a real server), field by field.
    const observed = {
      table: "audit",
      path: "file/",
      type: "file",
      description: "",
      uuid: "558ec799-0000-0000-0000-000000000000",
      backend_aware_uuid: "",
      accessor: "audit_file_ebf692a2",
      config: {},
      options: { file_path: "/tmp/baoaudit/audit.log" },
      local: false,
      seal_wrap: false,
      namespace_id: "root",
    };
    expect(table.type).toBe("audit");
    expect(table.entries).toHaveLength(1);
    const entry = table.entries?.[0] ?? {};
    expect(Object.keys(entry)).toEqual(Object.keys(observed));
    expect(entry).toMatchObject({
      ...observed,
      uuid: entry.uuid,
      accessor: entry.accessor,
      options: { file_path: file },
    });
    expect(entry.uuid).toMatch(UUID);
    expect(entry.accessor).toMatch(/^audit_file_[0-9a-f]{8}$/);
    // The local table was written too (OpenBao's persistAudit writes both), still empty.
    expect(await tableOf(store.storage, "core/local-audit")).toEqual({ type: "audit", entries: null });

    // The salt: the bytes of a UUID string, uncompressed, in the device's view.
    const saltRecord = await store.storage.get(`audit/${entry.uuid}/salt`);
    const salt = dec.decode(saltRecord?.value);
    expect(salt).toMatch(UUID);
    expect(await store.storage.list(`audit/${entry.uuid}/`)).toEqual(["salt"]);
    // sys/audit-hash: the salt's HMAC-SHA256, as Vault's salt.GetIdentifiedHMAC.
    const expected = `hmac-sha256:${createHmac("sha256", salt).update("my-secret").digest("hex")}`;
    expect(await b.hash("file", "my-secret")).toBe(expected);
    expect(await b.hash("/file/", "my-secret")).toBe(expected);

    // Vault's test record went to the file first: the record OpenBao 2.6.2 wrote for its own
    // test probe (the first line of the fixture log), but for its time and request id.
    const lines = readFileSync(file, "utf8").trim().split("\n");
    expect(lines).toHaveLength(1);
    const probe = JSON.parse(lines[0] ?? "");
    const baos = JSON.parse(
      readFileSync(new URL("./fixtures/openbao-2.6.2/default.log", import.meta.url), "utf8").split("\n")[0] ??
        "",
    );
    expect(baos.request.path).toBe("sys/audit/test");
    const timeless = (r: { request: Record<string, unknown> }) => ({
      ...r,
      time: "T",
      request: { ...r.request, id: "ID" },
    });
    expect(JSON.stringify(timeless(probe))).toBe(JSON.stringify(timeless(baos)));
    expect(probe.request.id).toMatch(UUID);
    expect(probe.time).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/);

    expect(await b.list()).toEqual([
      { path: "file/", type: "file", description: "", options: { file_path: file }, local: false },
    ]);
  });

  it("a local device goes to core/local-audit and leaves core/audit as it was; unknown fields of OpenBao's entries are kept", async () => {
    const { store } = await activeStore();
    const rec = recorder();
    // An entry as another OpenBao might write it, with a field Bulwark does not know.
    const foreign =
      '{"table":"audit","path":"old/","type":"mem","description":"a \\u003cb\\u003e","uuid":"0d8a6a5e-1c2b-4c3d-8e9f-0a1b2c3d4e5f","backend_aware_uuid":"","accessor":"audit_mem_0badcafe","config":{},"options":{"x":"1"},"local":false,"seal_wrap":false,"namespace_id":"root","future_field":{"a":[1,2]}}';
    const { compressJson } = await import("../encoding/compression.js");
    await store.storage.put({
      key: "core/audit",
      value: compressJson(`{"type":"audit","entries":[${foreign}]}\n`),
    });
    await store.storage.put({
      key: "core/local-audit",
      value: compressJson('{"type":"audit","entries":null}\n'),
    });
    const b = broker(store, { factories: { mem: rec.factory } });
    await b.configure(API);
    expect(await b.enabled()).toBe(true);
    expect(rec.open("old/")).toHaveLength(1); // an OpenBao data set's device is served
    const before = (await store.storage.get("core/audit"))?.value;
    await b.enable("loc", { type: "mem", local: true, options: { y: "2" } });
    expect((await store.storage.get("core/audit"))?.value).toEqual(before);
    const local = await tableOf(store.storage, "core/local-audit");
    expect(local.entries?.map((e) => [e.path, e.local, e.table])).toEqual([["loc/", true, "audit"]]);
    // A non-local change rewrites core/audit with the foreign entry's text unchanged.
    await b.enable("more", { type: "mem", options: {} });
    const text = decompressRecord(
      (await store.storage.get("core/audit"))?.value ?? new Uint8Array(),
      "t",
    ).text;
    expect(text).toContain(foreign);
    expect((await b.list()).map((d) => d.path)).toEqual(["old/", "more/", "loc/"]);
  });
});

describe("enable and disable (sys/audit/<path>): OpenBao's rules and texts", () => {
  it("refuses the API without unsafe_allow_api_audit_creation, a prefix without allow_audit_log_prefixing, overlapping paths, unknown types, bad options", async () => {
    const { store } = await activeStore();
    const rec = recorder();
    const b = broker(store, {
      factories: { file: AUDIT_DEVICE_FACTORIES.file as AuditDeviceFactory, mem: rec.factory },
    });
    await expect(b.enable("a", { type: "mem" })).rejects.toMatchObject({
      code: "invalid_request",
      message:
        "cannot enable audit device via API; use declarative, config-based audit device management instead",
    });
    await b.configure({ ...API, unsafeAllowApiAuditCreation: false });
    await expect(b.enable("a", { type: "mem" })).rejects.toThrow(/cannot enable audit device via API/);
    await b.configure(API);
    await expect(b.enable("a", { type: "mem", options: { prefix: "P " } })).rejects.toMatchObject({
      code: "invalid_request",
      message: "audit log prefixing is not allowed",
    });
    await b.configure({ ...API, allowAuditLogPrefixing: true });
    await b.enable("a/b", { type: "mem", options: { prefix: "P " } });
    for (const p of ["a", "a/b/c", "/a/b/"])
      await expect(b.enable(p, { type: "mem" })).rejects.toMatchObject({
        code: "invalid_request",
        message: "path already in use",
      });
    await expect(b.enable("", { type: "mem" })).rejects.toThrow("backend path must be specified");
    await expect(b.enable("x", { type: "nope" })).rejects.toMatchObject({
      code: "invalid_request",
      message: 'unknown backend type: "nope" (the audit device types are file, mem)',
    });
    await expect(b.enable("x", { type: "file", options: {} })).rejects.toMatchObject({
      code: "invalid_request",
      option: "file_path",
    });
    await expect(b.enable("x", { type: "mem", options: { format: "yaml" } })).rejects.toMatchObject({
      code: "invalid_request",
      option: "format",
    });
    expect((await b.list()).map((d) => d.path)).toEqual(["a/b/"]);
    // A JSON body's number or boolean option is kept as its text; an object is refused naming it.
    const opts = { hmac_accessor: false, n: 3 } as unknown as Record<string, string>;
    await b.enable("typed", { type: "mem", options: opts });
    expect((await b.list()).find((d) => d.path === "typed/")?.options).toEqual({
      hmac_accessor: "false",
      n: "3",
    });
    const nested = { file_path: { x: 1 } } as unknown as Record<string, string>;
    await expect(b.enable("nested", { type: "mem", options: nested })).rejects.toMatchObject({
      code: "invalid_request",
      option: "file_path",
    });
  });

  it("a device that cannot take Vault's test record is not enabled and nothing is stored; skip_test=true skips it", async () => {
    const { store } = await activeStore();
    const rec = recorder();
    const b = broker(store, { factories: { mem: rec.factory } });
    await b.configure(API);
    await b.enabled();
    const before = (await store.storage.get("core/audit"))?.value;
    rec.failing.set("bad/", new Error("connection refused"));
    await expect(b.enable("bad", { type: "mem" })).rejects.toMatchObject({
      code: "invalid_request",
      message: "audit backend failed test message: connection refused",
    });
    expect((await store.storage.get("core/audit"))?.value).toEqual(before);
    expect(await store.storage.list("audit/")).toEqual([]);
    expect(rec.made.every((r) => r.closed)).toBe(true);
    expect(await b.enabled()).toBe(false);
    // With skip_test the device is enabled without a record (and then fails its first real one).
    await b.enable("bad", { type: "mem", options: { skip_test: "true" } });
    expect((await b.list()).map((d) => d.path)).toEqual(["bad/"]);
    expect(await store.storage.list("audit/")).toHaveLength(1);
  });

  it("disable: removes the entry, closes the device and removes its salt; a missing path is no error; a config device is refused", async () => {
    const { store } = await activeStore();
    const rec = recorder();
    const b = broker(store, { factories: { mem: rec.factory } });
    await b.configure({ ...API, devices: [{ path: "cfg/", type: "mem", options: {} }] });
    await b.enable("api", { type: "mem", options: {} });
    const uuid = (await tableOf(store.storage, "core/audit")).entries?.find((e) => e.path === "api/")?.uuid;
    expect(await store.storage.list(`audit/${uuid}/`)).toEqual(["salt"]);
    await b.disable("nothing-here");
    await expect(b.disable("cfg")).rejects.toMatchObject({
      code: "invalid_request",
      message: "cannot disable configuration-managed audit device",
    });
    await expect(b.disable("/")).rejects.toThrow("audit device path must be specified");
    await b.disable("api/");
    expect(rec.made.find((r) => r.path === "api/")?.closed).toBe(true);
    expect(await store.storage.list(`audit/${uuid}/`)).toEqual([]);
    expect((await tableOf(store.storage, "core/audit")).entries?.map((e) => e.path)).toEqual(["cfg/"]);
    await expect(b.hash("api", "x")).rejects.toMatchObject({
      code: "invalid_request",
      message: 'unknown audit backend "api/"',
    });
    await expect(b.hash("cfg", "")).rejects.toThrow('the "input" parameter is empty');
  });
});

describe("logRequest / logResponse: every device, at least one must take it (fail-closed)", () => {
  it("writes to every device, succeeds while one takes it, fails naming devices (never the record) when none does, and recovers", async () => {
    const { store, raw } = await activeStore();
    const rec = recorder();
    const { lines, logger } = logs();
    const b = broker(store, { factories: { mem: rec.factory }, logger });
    await b.configure(API);
    // No device: nothing to do.
    await b.logRequest(request("secret/data/a"));
    await b.enable("one", { type: "mem" });
    await b.enable("two", { type: "mem" });
    raw.reads = 0;
    for (let i = 0; i < 20; i++) {
      expect(await b.enabled()).toBe(true);
      await b.logRequest(request("secret/data/a"));
      await b.logResponse({
        ...request("secret/data/a"),
        type: "response",
        response: { data: { v: "s3cr3t" } },
      });
    }
    expect(raw.reads).toBe(0); // the request path reads nothing once the term is loaded
    for (const p of ["one/", "two/"]) expect(rec.open(p)[0]?.lines).toHaveLength(41); // test record + 40

    rec.failing.set("one/", new Error("EACCES: permission denied"));
    await b.logRequest(request("secret/data/b"));
    expect(rec.open("two/")[0]?.lines).toHaveLength(42);
    expect(lines.filter((l) => l.level === "warn").map((l) => l.obj.path)).toEqual(["one/"]);

    rec.failing.set("two/", new Error("ENOSPC: no space left on device"));
    const err = await b.logResponse(request("secret/data/c", "hvs.do-not-leak")).catch((e: unknown) => e);
    expect(err).toMatchObject({
      code: "audit_failed",
      message:
        "no audit device could record the response: one/: EACCES: permission denied; two/: ENOSPC: no space left on device",
    });
    expect(String((err as Error).message)).not.toContain("do-not-leak");
    expect(JSON.stringify(lines)).not.toContain("do-not-leak");

    // Fixed: the next record is taken again, without a restart.
    rec.failing.delete("one/");
    await b.logRequest(request("secret/data/d"));
    expect(rec.open("one/")[0]?.lines.at(-1)).toContain("secret/data/d");
  });

  it("a real file device: records reach the file, hashed with the device's salt; an unwritable file fails closed, fixed it works again", async () => {
    const { store } = await activeStore();
    const b = broker(store);
    await b.configure(API);
    const dir = tempDir();
    const file = join(dir, "audit.log");
    await b.enable("file", { type: "file", options: { file_path: file } });
    await b.logRequest(request("secret/data/a", "hvs.the-root-token"));
    const text = readFileSync(file, "utf8");
    expect(text).not.toContain("hvs.the-root-token");
    expect(text).toContain(await b.hash("file", "hvs.the-root-token"));
    // The file's directory becomes a file: the device cannot reopen it → the request fails.
    rmSync(dir, { recursive: true, force: true });
    const { writeFileSync, mkdirSync } = await import("node:fs");
    writeFileSync(dir, "not a directory");
    await b.reopen();
    await expect(b.logRequest(request("secret/data/b"))).rejects.toMatchObject({ code: "audit_failed" });
    rmSync(dir, { force: true });
    mkdirSync(dir);
    await b.logRequest(request("secret/data/c"));
    expect(readFileSync(file, "utf8")).toContain("secret/data/c");
  });

  it("devices that cannot be opened at the start of a term are logged; when none can, requests are refused until reopen() opens one", async () => {
    const { store, keys } = await activeStore();
    const rec = recorder();
    const { lines, logger } = logs();
    const b = broker(store, { factories: { mem: rec.factory }, logger });
    await b.configure(API);
    await b.enable("a", { type: "mem" });
    await store.seal();
    rec.refuseOpen.set("a/", new Error("sanity check failed; unable to open"));
    for (const k of keys) await store.unseal(k);
    await waitActive(store);
    expect(await b.enabled()).toBe(true);
    await expect(b.logRequest(request("x"))).rejects.toMatchObject({
      code: "audit_failed",
      message: expect.stringContaining("a/: sanity check failed; unable to open"),
    });
    expect(lines.some((l) => l.level === "error" && l.obj.path === "a/")).toBe(true);
    rec.refuseOpen.delete("a/");
    await b.reopen();
    await b.logRequest(request("x"));
    expect(rec.open("a/")[0]?.lines).toHaveLength(1);
  });
});

describe("configure: the server config's audit blocks (OpenBao's handleAuditLogSetup)", () => {
  it("adds missing blocks as audit-config entries, refuses changes and API duplicates, disables removed ones, and applies at each active term", async () => {
    const { store, keys } = await activeStore();
    const rec = recorder();
    const b = broker(store, { factories: { mem: rec.factory } });
    const settings = (devices: AuditSettings["devices"]): AuditSettings => ({ ...API, devices });
    await b.configure(
      settings([{ path: "cfg/", type: "mem", description: "from config", options: { k: "v" } }]),
    );
    const entry = (await tableOf(store.storage, "core/audit")).entries?.[0];
    expect(entry).toMatchObject({
      table: "audit-config",
      path: "cfg/",
      description: "from config",
      options: { k: "v" },
    });
    expect(rec.open("cfg/")[0]?.lines).toHaveLength(1); // the test record
    // The same again changes nothing.
    await b.configure(
      settings([{ path: "cfg", type: "mem", description: "from config", options: { k: "v" } }]),
    );
    expect(rec.open("cfg/")).toHaveLength(1);
    await expect(
      b.configure(settings([{ path: "cfg/", type: "mem", description: "from config", options: { k: "w" } }])),
    ).rejects.toThrow(
      /^failed to validate audit device config cfg\/: modifications to audit devices are not allowed: audit device cfg\/ option k differs: v \(table\) vs w \(config\)/,
    );
    await b.enable("api", { type: "mem" });
    await expect(b.configure(settings([{ path: "api/", type: "mem" }]))).rejects.toThrow(
      "audit device in configuration (path: api/) was already created by API; remove the API audit device before attempting to create a duplicate configuration-based version",
    );
    await expect(
      b.configure(settings([{ path: "p/", type: "mem", options: { prefix: "x" } }])),
    ).rejects.toThrow(/^audit log prefixing is not allowed/);
    await expect(
      b.configure(
        settings([
          { path: "d/", type: "mem" },
          { path: "d", type: "mem" },
        ]),
      ),
    ).rejects.toThrow("two audit devices with same path (d/) exist in config");
    // The block removed: its device is disabled; the API one stays.
    await b.configure(settings([]));
    expect((await b.list()).map((d) => d.path)).toEqual(["api/"]);
    expect(rec.made.filter((r) => r.path === "cfg/").every((r) => r.closed)).toBe(true);

    // Given while sealed: applied when the node is active again.
    await store.seal();
    await b.configure(settings([{ path: "later/", type: "mem" }]));
    for (const k of keys) await store.unseal(k);
    await waitActive(store);
    expect(await b.enabled()).toBe(true);
    expect((await b.list()).map((d) => [d.path, d.type])).toEqual([
      ["api/", "mem"],
      ["later/", "mem"],
    ]);
    // A block that cannot be applied at the start of a term: requests are refused, not served unaudited.
    await store.seal();
    await b.configure(
      settings([
        { path: "later/", type: "mem" },
        { path: "broken/", type: "nope" },
      ]),
    );
    for (const k of keys) await store.unseal(k);
    await waitActive(store);
    expect(await b.enabled()).toBe(true);
    await expect(b.logRequest(request("x"))).rejects.toMatchObject({
      code: "audit_failed",
      message: expect.stringContaining(
        'failed to create new audit device broken/: unknown backend type: "nope"',
      ),
    });
    await b.configure(settings([{ path: "later/", type: "mem" }]));
    await b.logRequest(request("x"));
  });
});

describe("active terms", () => {
  it("closes the term's devices when the node seals (without a call), and opens them again in the next term", async () => {
    const { store, keys } = await activeStore();
    const rec = recorder();
    const b = broker(store, { factories: { mem: rec.factory }, termWatchMs: 20 });
    await b.configure(API);
    await b.enable("a", { type: "mem" });
    expect(rec.open("a/")).toHaveLength(1);
    await store.seal();
    const deadline = Date.now() + 5000;
    while (rec.open("a/").length > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    expect(rec.open("a/")).toHaveLength(0);
    expect(await b.enabled()).toBe(false); // sealed
    await expect(b.logRequest(request("x"))).rejects.toMatchObject({ code: "sealed" });
    for (const k of keys) await store.unseal(k);
    await waitActive(store);
    await b.logRequest(request("x"));
    expect(rec.made.filter((r) => r.path === "a/")).toHaveLength(2);
    expect(rec.open("a/")[0]?.lines).toHaveLength(1);
    await b.close();
    expect(rec.open("a/")).toHaveLength(0);
  });

  it("a standby answers enabled() and list() from the stored table, opens no device, and refuses to log", async () => {
    const raw = new MemoryBackend();
    const seal = () => new StaticKeySeal({ key: new Uint8Array(32).fill(7), keyId: "k" });
    const a = await SealedStore.open({
      storage: raw,
      seal: seal(),
      ha: raw,
      nodeId: "a",
      autoRotateCheckMs: 0,
    });
    stores.push(a);
    await a.initialize({ recoveryShares: 1, recoveryThreshold: 1 });
    await waitActive(a);
    const standby = await SealedStore.open({
      storage: raw,
      seal: seal(),
      ha: raw,
      nodeId: "b",
      autoRotateCheckMs: 0,
    });
    stores.push(standby);
    const deadline = Date.now() + 5000;
    while (standby.sealed && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    expect(standby.sealed).toBe(false);
    expect(standby.activeTerm).toBeUndefined();
    const recA = recorder();
    const recB = recorder();
    const onA = broker(a, { factories: { mem: recA.factory } });
    const onB = broker(standby, { factories: { mem: recB.factory } });
    await onA.configure(API);
    await onB.configure(API);
    expect(await onB.enabled()).toBe(false);
    await onB.logRequest(request("x")); // nothing enabled anywhere: nothing to do
    await onA.enable("a", { type: "mem" });
    await new Promise((r) => setTimeout(r, 1100)); // the standby's cache (1 s) runs out
    expect(await onB.enabled()).toBe(true);
    expect((await onB.list()).map((d) => d.path)).toEqual(["a/"]);
    expect(recB.made).toHaveLength(0);
    await expect(onB.logRequest(request("x"))).rejects.toMatchObject({
      code: "audit_failed",
      message: expect.stringContaining("this node is a standby"),
    });
    await expect(onB.enable("b", { type: "mem" })).rejects.toMatchObject({ code: "not_active" });
    await expect(onB.hash("a", "x")).rejects.toMatchObject({ code: "not_active" });
  });
});

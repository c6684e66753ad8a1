import { MemoryBackend } from "@bulwark/storage-memory";
import { describe, expect, it } from "vitest";
import { compressJson, decompressRecord } from "../encoding/compression.js";
import {
  auditSaltKey,
  loadSalt,
  newAuditEntry,
  normalizeAuditPath,
  readAuditTables,
  writeAuditTables,
} from "./table.js";

const enc = new TextEncoder();
const dec = new TextDecoder();

async function text(storage: MemoryBackend, key: string): Promise<string | undefined> {
  const e = await storage.get(key);
  return e === undefined ? undefined : decompressRecord(e.value, key).text;
}

// An entry of OpenBao 2.6.2's core/audit after `PUT sys/audit/file {"type":"file","options":
// {"file_path":"/tmp/h3bao/logs/a.log"}}` (read with sys/raw from a real server).
const OPENBAO_ENTRY =
  '{"table":"audit","path":"file/","type":"file","description":"","uuid":"3933580a-a0e4-4fa3-7ae1-bb958f7b0f0a","backend_aware_uuid":"","accessor":"audit_file_8c48aac5","config":{},"options":{"file_path":"/tmp/h3bao/logs/a.log"},"local":false,"seal_wrap":false,"namespace_id":"root"}';

describe("audit table records", () => {
  it("a new entry has OpenBao's fields, in OpenBao's order, with its kinds of values", () => {
    const e = newAuditEntry({
      table: "audit",
      path: "file/",
      type: "file",
      description: "",
      options: { file_path: "/tmp/h3bao/logs/a.log" },
      local: false,
    });
    const observed = JSON.parse(OPENBAO_ENTRY) as Record<string, unknown>;
    expect(Object.keys(e)).toEqual(Object.keys(observed));
    expect({ ...e, uuid: observed.uuid, accessor: observed.accessor }).toEqual(observed);
    expect(e.uuid).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    expect(e.accessor).toMatch(/^audit_file_[0-9a-f]{8}$/);
  });

  it("reads OpenBao's tables (global, then local) and writes them back in its format, unknown fields kept", async () => {
    const storage = new MemoryBackend();
    const local = OPENBAO_ENTRY.replace('"path":"file/"', '"path":"loc/"')
      .replace('"local":false', '"local":true')
      .replace("3933580a", "4933580a")
      .replace('"namespace_id":"root"}', '"namespace_id":"root","future":[1,{"x":null}]}');
    await storage.put({
      key: "core/audit",
      value: compressJson(`{"type":"audit","entries":[${OPENBAO_ENTRY}]}\n`),
    });
    await storage.put({
      key: "core/local-audit",
      value: compressJson(`{"type":"audit","entries":[${local}]}\n`),
    });
    const t = await readAuditTables(storage);
    expect(t.filled).toBe(false);
    expect(t.absent).toBe(false);
    expect(t.entries.map((e) => [e.path, e.local])).toEqual([
      ["file/", false],
      ["loc/", true],
    ]);
    await writeAuditTables(storage, t.entries, false);
    expect(await text(storage, "core/audit")).toBe(`{"type":"audit","entries":[${OPENBAO_ENTRY}]}\n`);
    expect(await text(storage, "core/local-audit")).toBe(`{"type":"audit","entries":[${local}]}\n`);
    // localOnly: core/audit is not rewritten (OpenBao's persistAudit(…, localOnly=true)).
    await storage.delete("core/audit");
    await writeAuditTables(storage, t.entries, true);
    expect(await storage.get("core/audit")).toBeUndefined();
    // An empty table is written as OpenBao's default table: entries null.
    await writeAuditTables(storage, [], false);
    expect(await text(storage, "core/audit")).toBe('{"type":"audit","entries":null}\n');
  });

  it("fills what OpenBao's loadAudits fills (table, accessor, namespace_id) and says so; absent tables are empty", async () => {
    const storage = new MemoryBackend();
    expect(await readAuditTables(storage)).toEqual({ entries: [], filled: false, absent: true });
    await storage.put({
      key: "core/audit",
      value: compressJson(
        '{"type":"audit","entries":[{"path":"old/","type":"syslog","uuid":"u1","options":{}}]}\n',
      ),
    });
    const t = await readAuditTables(storage);
    expect(t.filled).toBe(true);
    expect(t.entries[0]).toMatchObject({ table: "audit", namespace_id: "root" });
    expect(t.entries[0]?.accessor).toMatch(/^audit_syslog_[0-9a-f]{8}$/);
    // A damaged table is refused naming it.
    await storage.put({
      key: "core/local-audit",
      value: compressJson('{"type":"audit","entries":[{"x":1}]}\n'),
    });
    await expect(readAuditTables(storage)).rejects.toThrow(/core\/local-audit entry 0 has no path or type/);
  });

  it("refuses to persist an entry of another table, as OpenBao", async () => {
    const storage = new MemoryBackend();
    const e = newAuditEntry({
      table: "audit",
      path: "a/",
      type: "file",
      description: "",
      options: {},
      local: false,
    });
    await expect(writeAuditTables(storage, [{ ...e, table: "mounts" }], false)).rejects.toThrow(
      /invalid audit entry "a\/"/,
    );
    expect(await storage.get("core/audit")).toBeUndefined();
  });

  it("paths: a trailing '/' added, a leading one dropped, the root refused", () => {
    expect(normalizeAuditPath("file")).toBe("file/");
    expect(normalizeAuditPath("/a/b/")).toBe("a/b/");
    expect(() => normalizeAuditPath("/")).toThrow("backend path must be specified");
    expect(() => normalizeAuditPath("", "audit device path must be specified")).toThrow(
      "audit device path must be specified",
    );
  });
});

describe("salts (the SDK's salt.NewSalt)", () => {
  it("reads the stored salt as text, creates a UUID one when missing or empty (active node only)", async () => {
    const storage = new MemoryBackend();
    const key = auditSaltKey("0d8a6a5e-1c2b-4c3d-8e9f-0a1b2c3d4e5f");
    expect(key).toBe("audit/0d8a6a5e-1c2b-4c3d-8e9f-0a1b2c3d4e5f/salt");
    await expect(loadSalt(storage, key, false)).rejects.toMatchObject({ code: "not_active" });
    expect(await storage.get(key)).toBeUndefined();
    const made = await loadSalt(storage, key, true);
    expect(made).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    expect(dec.decode((await storage.get(key))?.value)).toBe(made);
    expect(await loadSalt(storage, key, false)).toBe(made);
    // OpenBao's own salt (any text) is used as it is; an empty one counts as missing.
    await storage.put({ key, value: enc.encode("ebccec4a-7804-9304-bf4f-1c10624d7077") });
    expect(await loadSalt(storage, key, true)).toBe("ebccec4a-7804-9304-bf4f-1c10624d7077");
    await storage.put({ key, value: new Uint8Array() });
    expect(await loadSalt(storage, key, true)).not.toBe("");
  });
});

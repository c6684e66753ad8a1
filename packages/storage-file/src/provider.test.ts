import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { ProviderIssue, ProviderSettings, StorageProviderContext } from "@bulwark/storage";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FileBackend } from "./file-backend.js";
import { fileStorageProvider } from "./provider.js";

/** A host's reader reduced to plain values (the server's, with Vault's weak typing, is tested with its registry). */
function context(config: Record<string, unknown>, collect: boolean) {
  const issues: ProviderIssue[] = [];
  const ignored: string[] = [];
  const used = new Set<string>();
  const error = (field: string, message: string) =>
    Object.assign(new Error(`\`${field}\` ${message}`), { field });
  const problem = (field: string, message: string) => {
    if (!collect) throw error(field, message);
    issues.push({ field, message: `\`${field}\` ${message}` });
  };
  const read = (key: string, type: string) => {
    used.add(key);
    const v = config[key];
    if (v !== undefined && typeof v !== type) problem(key, `must be a ${type}`);
    return typeof v === type ? v : undefined;
  };
  const settings = {
    string: (key: string, required?: boolean) => {
      const v = read(key, "string");
      if (required && v === undefined && config[key] === undefined) problem(key, "must be set");
      return v;
    },
    boolean: (key: string) => read(key, "boolean"),
    integer: (key: string) => read(key, "number"),
    ignore: (keys: readonly string[]) => {
      for (const k of keys) if (read(k, "string") !== undefined) ignored.push(k);
    },
    problem,
    error,
    finish() {
      for (const k of Object.keys(config)) if (!used.has(k)) problem(k, "is not a setting");
    },
    issues,
  } as ProviderSettings;
  const ctx: StorageProviderContext = {
    logger: { debug() {}, info() {}, warn() {}, error() {} },
    warn() {},
    settings,
  };
  return { ctx, issues, ignored };
}

let tmp: string;
beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), "file-provider-"));
});
afterAll(() => rm(tmp, { recursive: true, force: true }));

describe("fileStorageProvider", () => {
  it("has the module shape: no HA lock by default, every setting listed", () => {
    expect(fileStorageProvider).toMatchObject({ type: "file", haByDefault: false });
    expect(fileStorageProvider.settings).toEqual(expect.arrayContaining(["path", "fsync", "ha_enabled"]));
  });

  it("builds a FileBackend at `path`, usable at once", async () => {
    const config = { path: join(tmp, "data"), fsync: false };
    const backend = await fileStorageProvider.create(config, {}, context(config, false).ctx);
    expect(backend).toBeInstanceOf(FileBackend);
    await backend.put({ key: "a", value: new Uint8Array([7]) });
    expect((await backend.get("a"))?.value).toEqual(new Uint8Array([7]));
  });

  it("check finds every problem without creating anything; create stops at the first", async () => {
    const config = { path: `${join(tmp, "never")}\0`, fsync: "x", redirect_addr: "http://a", pth: 1 };
    const { ctx, issues, ignored } = context(config, true);
    expect(await fileStorageProvider.check?.(config, {}, ctx)).toEqual([]);
    expect(issues.map((i) => i.field)).toEqual(["path", "fsync", "pth"]);
    expect(ignored).toEqual(["redirect_addr"]);
    expect(() => fileStorageProvider.create(config, {}, context(config, false).ctx)).toThrow(
      /`path` must not contain NUL bytes/,
    );
  });
});

import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable, Writable } from "node:stream";
import { FileBackend } from "@bulwark/storage-file";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { MIGRATION_LOCK, type MigrateOptions, runMigrate } from "./migrate.js";
import type { Io } from "./output.js";

/** Captures what a run writes, as text. */
class Capture extends Writable {
  text = "";
  override _write(chunk: Buffer | string, _enc: BufferEncoding, cb: () => void): void {
    this.text += chunk.toString();
    cb();
  }
}

const encode = (s: string) => new TextEncoder().encode(s);
const decode = (b: Uint8Array | undefined) => (b === undefined ? undefined : new TextDecoder().decode(b));

describe("operator migrate (runMigrate)", () => {
  let dir: string;
  let source: FileBackend;
  let destination: FileBackend;
  let configPath: string;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), "bulwark-migrate-"));
    source = new FileBackend({ path: join(dir, "src") });
    destination = new FileBackend({ path: join(dir, "dst") });
    for (const key of ["a/1", "a/2", "b/1", "c"]) await source.put({ key, value: encode(`v-${key}`) });
    configPath = join(dir, "migrate.hcl");
    await writeFile(
      configPath,
      `storage_source "file" {\n  path = "${join(dir, "src")}"\n}\nstorage_destination "file" {\n  path = "${join(dir, "dst")}"\n}\n`,
    );
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  async function run(opts: Partial<MigrateOptions> = {}) {
    const stdout = new Capture();
    const stderr = new Capture();
    const io: Io = { stdout, stderr, stdin: Readable.from([]), env: {} };
    const code = await runMigrate({ configPath, reset: false, maxParallel: 2, format: "table", io, ...opts });
    return { code, stdout: stdout.text, stderr: stderr.text };
  }

  it("copies every entry, removes its lock, and reports the count", async () => {
    const r = await run({ format: "json" });
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ source: "file", destination: "file", entries: 4 });
    expect(r.stderr).toMatch(/^copied 4 entries, /m);
    for (const key of ["a/1", "a/2", "b/1", "c"]) {
      expect(decode((await destination.get(key))?.value)).toBe(`v-${key}`);
    }
    expect(await destination.get(MIGRATION_LOCK)).toBeUndefined();
  });

  it("refuses while the destination holds a migration lock (exit 1), and -reset removes it", async () => {
    await destination.put({ key: MIGRATION_LOCK, value: encode('{"start_time":"then"}') });
    const held = await run();
    expect(held.code).toBe(1);
    expect(held.stderr).toContain('the destination holds a migration lock ({"start_time":"then"})');
    expect(held.stderr).toContain("rerun with -reset");
    expect(await destination.get("c")).toBeUndefined();

    const reset = await run({ reset: true });
    expect(reset.code, reset.stderr).toBe(0);
    expect(reset.stderr).toContain("Success! Migration lock removed.");
    expect(decode((await destination.get("c"))?.value)).toBe("v-c");
  });

  it("-start copies only keys sorted at or after it", async () => {
    const r = await run({ start: "b/1" });
    expect(r.code, r.stderr).toBe(0);
    expect(await destination.get("a/1")).toBeUndefined();
    expect(await destination.get("a/2")).toBeUndefined();
    expect(decode((await destination.get("b/1"))?.value)).toBe("v-b/1");
    expect(decode((await destination.get("c"))?.value)).toBe("v-c");
  });

  it("a failed copy exits 2, keeps the lock and names the key to resume from", async () => {
    // A file where the destination needs the folder b/: writing b/1 fails.
    await destination.put({ key: "x", value: encode("probe") });
    await writeFile(join(dir, "dst", "b"), "in the way");
    const r = await run({ maxParallel: 1 });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("Error: copying b/1 failed: ");
    expect(r.stderr).toContain('resume with: -reset -start="b/1"');
    expect(r.stderr).toMatch(/^copied 2 entries, /m);
    expect(await destination.get(MIGRATION_LOCK)).toBeDefined();
    expect(decode((await destination.get("a/2"))?.value)).toBe("v-a/2");
  });
});

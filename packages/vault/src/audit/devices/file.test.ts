import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { VaultError } from "../../errors.js";
import { AuditOptionError } from "../types.js";
import { fileDevice } from "./file.js";
import { AUDIT_DEVICE_FACTORIES } from "./index.js";

const ctx = { path: "file/" };
const enc = new TextEncoder();
const rec = (s: string) => enc.encode(`${s}\n`);

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "bulwark-audit-file-"));
});
afterEach(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

function lines(file: string): string[] {
  return fs
    .readFileSync(file, "utf8")
    .split("\n")
    .filter((l) => l !== "");
}

describe("file audit device", () => {
  it("is registered as 'file'", () => {
    expect(AUDIT_DEVICE_FACTORIES.file).toBe(fileDevice);
  });

  it("appends records to an existing file, keeping what was there", async () => {
    const file = path.join(dir, "audit.log");
    fs.writeFileSync(file, "old\n");
    const dev = fileDevice({ file_path: file }, ctx);
    try {
      await dev.write(rec("one"));
      await dev.write(rec("two"));
      expect(lines(file)).toEqual(["old", "one", "two"]);
    } finally {
      await dev.close();
    }
  });

  it("keeps concurrent writes whole and in call order, each resolving only once its bytes are in the file", async () => {
    const file = path.join(dir, "audit.log");
    const dev = fileDevice({ file_path: file }, ctx);
    try {
      const big = "x".repeat(100_000); // larger than one pipe/page write: would tear if writes overlapped
      const writes = Array.from({ length: 60 }, (_, i) =>
        dev.write(rec(`${i} ${i % 3 === 0 ? big : ""}`)).then(() => fs.statSync(file).size),
      );
      const sizes = await Promise.all(writes);
      // Each write resolved after its own bytes landed: the file was at least that long then.
      for (let i = 1; i < sizes.length; i++) expect(sizes[i]).toBeGreaterThanOrEqual(sizes[i - 1] as number);
      expect(lines(file).map((l) => Number(l.split(" ")[0]))).toEqual(
        Array.from({ length: 60 }, (_, i) => i),
      );
      expect(lines(file).every((l, i) => l === `${i} ${i % 3 === 0 ? big : ""}`)).toBe(true);
    } finally {
      await dev.close();
    }
  });

  it("group commit: records handed over while a write is in flight go to the file together, whole and in order", async () => {
    const file = path.join(dir, "audit.log");
    const dev = fileDevice({ file_path: file }, ctx);
    try {
      // 64 writers, each writing its next record as soon as its last one resolved (as requests do).
      const seen = new Set<number>();
      const writers = 64;
      const per = 20;
      await Promise.all(
        Array.from({ length: writers }, async (_, w) => {
          for (let i = 0; i < per; i++) {
            await dev.write(rec(`${w}.${i} ${"z".repeat(1300)}`));
            seen.add(fs.statSync(file).size);
          }
        }),
      );
      // One write per record would leave a different file size at each of the 1280 resolutions;
      // gathered, the records resolve batch by batch (about one batch per round of the writers).
      expect(seen.size).toBeLessThanOrEqual(per * 2);
      const got = lines(file);
      expect(got).toHaveLength(writers * per);
      expect(got.every((l) => l.endsWith(` ${"z".repeat(1300)}`))).toBe(true);
      // Each writer's records in its own order.
      for (let w = 0; w < writers; w++) {
        const mine = got.filter((l) => l.startsWith(`${w}.`)).map((l) => Number(l.split(/[. ]/)[1]));
        expect(mine).toEqual(Array.from({ length: per }, (_, i) => i));
      }
      // More records in one batch than one writev(2) takes (IOV_MAX, 1024): all of them, in order.
      await Promise.all(Array.from({ length: 3000 }, (_, i) => dev.write(rec(`n${i}`))));
      expect(lines(file).slice(writers * per)).toEqual(Array.from({ length: 3000 }, (_, i) => `n${i}`));
    } finally {
      await dev.close();
    }
  });

  it("a reopen or close called between writes is not overtaken by a later write's batch", async () => {
    const file = path.join(dir, "audit.log");
    const dev = fileDevice({ file_path: file }, ctx);
    try {
      await dev.write(rec("x"));
      fs.renameSync(file, `${file}.1`);
      // Called in one go: "a" goes to the old file, then the reopen, then "b" to the new one.
      await Promise.all([dev.write(rec("a")), dev.reopen(), dev.write(rec("b"))]);
      expect(lines(`${file}.1`)).toEqual(["x", "a"]);
      expect(lines(file)).toEqual(["b"]);
      const a = dev.write(rec("c"));
      const closing = dev.close();
      const late = dev.write(rec("d"));
      await a;
      await closing;
      await expect(late).rejects.toThrow(/is closed/);
      expect(lines(file)).toEqual(["b", "c"]);
    } finally {
      await dev.close();
    }
  });

  it("creates the file with mode 0600 by default, the mode given (execute bits cleared), and leaves it with 0000", async () => {
    const a = path.join(dir, "a.log");
    const b = path.join(dir, "b.log");
    const c = path.join(dir, "c.log");
    const d = path.join(dir, "d.log");
    fs.writeFileSync(d, "");
    fs.chmodSync(d, 0o604);
    const devs = [
      fileDevice({ file_path: a }, ctx),
      fileDevice({ file_path: b, mode: "0640" }, ctx),
      fileDevice({ file_path: c, mode: "0755" }, ctx),
      fileDevice({ file_path: d, mode: "0000" }, ctx),
    ];
    try {
      for (const dev of devs) await dev.write(rec("r"));
      const mode = (f: string) => fs.statSync(f).mode & 0o777;
      expect([mode(a), mode(b), mode(c), mode(d)]).toEqual([0o600, 0o640, 0o644, 0o604]);
      // OpenBao sets the mode on every open, so a file loosened by hand is tightened again by a reopen.
      fs.chmodSync(b, 0o666);
      await devs[1]?.reopen();
      expect(mode(b)).toBe(0o640);
    } finally {
      for (const dev of devs) await dev.close();
    }
  });

  it("refuses bad options with an AuditOptionError naming the option", () => {
    const err = (options: Record<string, string>) => {
      try {
        fileDevice(options, ctx);
      } catch (e) {
        return e as AuditOptionError;
      }
      throw new Error("no error");
    };
    expect(err({})).toBeInstanceOf(AuditOptionError);
    expect(err({}).option).toBe("file_path");
    expect(err({}).message).toMatch(/file_path is required/);
    expect(err({ file_path: path.join(dir, "x"), mode: "rw" }).option).toBe("mode");
    expect(err({ file_path: path.join(dir, "x"), mode: "01777" }).option).toBe("mode");
    // "0000" keeps an existing file's mode; a missing file has none (OpenBao stats it too).
    expect(err({ file_path: path.join(dir, "missing"), mode: "0000" }).option).toBe("mode");
    // A path that cannot be opened: OpenBao's "sanity check failed" error, naming the path.
    const blocker = path.join(dir, "plain-file");
    fs.writeFileSync(blocker, "");
    const bad = err({ file_path: path.join(blocker, "audit.log") });
    expect(bad.option).toBe("file_path");
    expect(bad.message).toContain(
      `sanity check failed; unable to open "${path.join(blocker, "audit.log")}" for writing`,
    );
    expect(bad.status).toBe(400);
  });

  it("creates missing parent directories as OpenBao does (MkdirAll)", async () => {
    const file = path.join(dir, "a", "b", "audit.log");
    const dev = fileDevice({ file_path: file }, ctx);
    try {
      await dev.write(rec("x"));
      expect(lines(file)).toEqual(["x"]);
    } finally {
      await dev.close();
    }
  });

  it("takes 'path' as the old name of file_path, and 'discard' drops records without creating anything", async () => {
    const file = path.join(dir, "old-name.log");
    const dev = fileDevice({ path: file }, ctx);
    const discard = fileDevice({ file_path: "DISCARD" }, ctx);
    try {
      await dev.write(rec("x"));
      expect(lines(file)).toEqual(["x"]);
      const before = fs.readdirSync(process.cwd());
      await discard.write(rec("dropped"));
      expect(fs.readdirSync(process.cwd())).toEqual(before);
    } finally {
      await dev.close();
      await discard.close();
    }
  });

  it("writes to the process's stdout for 'stdout' (any case), creating no file", async () => {
    const dev = fileDevice({ file_path: "Stdout" }, ctx);
    try {
      const before = fs.readdirSync(process.cwd());
      await dev.write(rec('{"type":"bulwark-audit-stdout-device-test"}'));
      expect(fs.readdirSync(process.cwd())).toEqual(before);
    } finally {
      await dev.close();
    }
  });

  it("rejects writes after close", async () => {
    const dev = fileDevice({ file_path: path.join(dir, "c.log") }, ctx);
    await dev.close();
    await expect(dev.write(rec("late"))).rejects.toThrow(/is closed/);
  });

  it("reopen() after logrotate renamed the file writes to a new file at the path", async () => {
    const file = path.join(dir, "audit.log");
    const dev = fileDevice({ file_path: file }, ctx);
    try {
      await dev.write(rec("a"));
      fs.renameSync(file, `${file}.1`);
      await dev.write(rec("b")); // still the open file, now audit.log.1 (logrotate's create + postrotate HUP window)
      await dev.reopen();
      await dev.write(rec("c"));
      expect(lines(`${file}.1`)).toEqual(["a", "b"]);
      expect(lines(file)).toEqual(["c"]);
      expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    } finally {
      await dev.close();
    }
  });

  it("a write on a full disk rejects leaving no torn record, and once space is freed the device writes again without a restart", async () => {
    const mnt = fs.mkdtempSync(path.join(os.tmpdir(), "bulwark-audit-tmpfs-"));
    let mounted = false;
    const warnings: string[] = [];
    const dev = { current: undefined as ReturnType<typeof fileDevice> | undefined };
    try {
      execFileSync("mount", ["-t", "tmpfs", "-o", "size=256k", "tmpfs", mnt]);
      mounted = true;
      const file = path.join(mnt, "audit.log");
      dev.current = fileDevice(
        { file_path: file },
        { path: "file/", logger: { warn: (_o, m) => warnings.push(m) } },
      );
      await dev.current.write(rec("before"));
      // Fill the file system to the last byte.
      const filler = path.join(mnt, "filler");
      const fd = fs.openSync(filler, "w");
      try {
        const chunk = Buffer.alloc(4096, 1);
        for (;;) fs.writeSync(fd, chunk);
      } catch (e) {
        expect((e as NodeJS.ErrnoException).code).toBe("ENOSPC");
      } finally {
        fs.closeSync(fd);
      }
      // Leave two pages free, so the record below is written in part before ENOSPC (a torn record).
      fs.truncateSync(filler, fs.statSync(filler).size - 8192);
      const big = `{"r":"${"y".repeat(20_000)}"}`;
      const failed = await dev.current.write(rec(big)).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(failed).toBeInstanceOf(VaultError);
      expect((failed as VaultError).code).toBe("audit_failed");
      expect((failed as Error).message).toMatch(/ENOSPC/);
      expect(warnings.length).toBeGreaterThan(0);
      expect(fs.readFileSync(file, "utf8")).toBe("before\n"); // nothing torn left behind
      // A batch of ten 2 KB records, about half of which would fit: the batch is all or nothing,
      // so every one of them rejects and none is left in the file (a record is in the log exactly
      // when its write resolved).
      const batch = await Promise.allSettled(
        Array.from({ length: 10 }, (_, i) => dev.current?.write(rec(`{"b":${i},"p":"${"q".repeat(2000)}"}`))),
      );
      expect(batch.map((r) => r.status)).toEqual(Array(10).fill("rejected"));
      expect(fs.readFileSync(file, "utf8")).toBe("before\n");
      fs.rmSync(filler);
      await dev.current.write(rec("after"));
      expect(lines(file)).toEqual(["before", "after"]);
    } finally {
      await dev.current?.close();
      if (mounted) execFileSync("umount", [mnt]);
      fs.rmSync(mnt, { recursive: true, force: true });
    }
  }, 30_000);
});

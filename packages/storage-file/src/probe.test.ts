import { mkdtemp, readdir, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { StorageProbeError } from "@bulwark/storage";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { FileBackend } from "./file-backend.js";

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "bulwark-file-probe-"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function probeError(path: string): Promise<StorageProbeError> {
  const err = await new FileBackend({ path })
    .probe()
    .then(() => undefined)
    .catch((e: unknown) => e);
  expect(err).toBeInstanceOf(StorageProbeError);
  return err as StorageProbeError;
}

describe("FileBackend.probe()", () => {
  it("creates a missing data directory (mode 0700) and leaves nothing in it", async () => {
    const path = join(dir, "a", "b", "data");
    await new FileBackend({ path }).probe();
    const st = await stat(path);
    expect(st.isDirectory()).toBe(true);
    expect(st.mode & 0o777).toBe(0o700);
    expect(await readdir(path)).toEqual([]);
  });

  it("leaves existing entries alone and lists no probe file", async () => {
    const b = new FileBackend({ path: join(dir, "data") });
    await b.put({ key: "core/seal-config", value: new TextEncoder().encode("x") });
    await b.probe();
    expect(await b.list("")).toEqual(["core/"]);
    expect(await readdir(join(dir, "data"))).toEqual(["core"]);
  });

  it("a file where the directory should be: names `path` and says what to do", async () => {
    const file = join(dir, "data");
    await writeFile(file, "not a directory");
    const err = await probeError(file);
    expect(err.setting).toBe("path");
    expect(err.code).toBe("io");
    expect(err.message).toContain(file);
    expect(err.message).toMatch(/cannot create the data directory .*is a file, not a directory/);
    expect(err.fix).toMatch(/set path to a directory/);
  });

  it("a path below a file: names `path`", async () => {
    await writeFile(join(dir, "file"), "x");
    const err = await probeError(join(dir, "file", "data"));
    expect(err.setting).toBe("path");
    expect(err.fix).toMatch(/a file is in the way/);
  });

  it("a directory the process may not create: permission_denied with the user and the fix", async () => {
    // sysfs refuses new directories even to root (EPERM), which chmod cannot simulate for root.
    const err = await probeError("/sys/bulwark-probe-test/data");
    expect(err.code).toBe("permission_denied");
    expect(err.setting).toBe("path");
    expect(err.message).toMatch(/cannot create the data directory \/sys\/bulwark-probe-test\/data/);
    expect(err.fix).toMatch(/writable by the user this process runs as|read-only/);
  });
});

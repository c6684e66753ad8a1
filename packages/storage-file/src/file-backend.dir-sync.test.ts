/**
 * Which directories a durable write flushes. A directory's name lives in its parent, so a new
 * folder needs its parent flushed — and the parent's own name must be durable too, which this
 * instance remembers once it has flushed it. Counted by wrapping node:fs/promises' `open` (the
 * backend flushes a directory by opening it read-only and calling sync).
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";

const dirOpens: string[] = [];
vi.mock("node:fs/promises", async (importOriginal) => {
  const real = await importOriginal<typeof import("node:fs/promises")>();
  return {
    ...real,
    open: async (path: string, flags?: string, mode?: number) => {
      if (flags === "r") dirOpens.push(path);
      return real.open(path, flags, mode);
    },
  };
});

const { FileBackend } = await import("./file-backend.js");

let base: string;
let root: string;
beforeEach(async () => {
  base = await mkdtemp(join(tmpdir(), "bulwark-dirsync-"));
  root = join(base, "data");
  dirOpens.length = 0;
});
afterEach(async () => {
  await rm(base, { recursive: true, force: true });
});

const synced = () => dirOpens.splice(0).map((d) => relative(root, d) || ".");

describe("directory flushes of a durable write", () => {
  it("flush the whole new chain once; a folder re-created below a known one flushes only its parent", async () => {
    const b = new FileBackend({ path: root });
    const v = new Uint8Array([1]);
    await b.put({ key: "logical/m/bu/versions/abc/1", value: v });
    // The chain from the data directory's parent (it is created now too), then the folder of the file.
    expect(synced()).toEqual([
      "..",
      ".",
      "logical",
      "logical/m",
      "logical/m/bu",
      "logical/m/bu/versions",
      "logical/m/bu/versions/abc",
    ]);
    // A sibling folder: its parent is known durable, so one flush for its name and one after the rename.
    await b.put({ key: "logical/m/bu/versions/def/1", value: v });
    expect(synced()).toEqual(["logical/m/bu/versions", "logical/m/bu/versions/def"]);
    // Pruning empties and removes a folder (one flush of what survives) …
    await b.delete("logical/m/bu/versions/abc/1");
    expect(synced()).toEqual(["logical/m/bu/versions"]);
    // … and writing there again creates it anew: still only its parent, not the chain to the root.
    await b.put({ key: "logical/m/bu/versions/abc/2", value: v });
    expect(synced()).toEqual(["logical/m/bu/versions", "logical/m/bu/versions/abc"]);
  });

  it("a new instance flushes the chain of folders that already exist (an earlier process may not have)", async () => {
    const v = new Uint8Array([1]);
    await new FileBackend({ path: root }).put({ key: "a/b/c/k", value: v });
    synced();
    await new FileBackend({ path: root }).put({ key: "a/b/c/k2", value: v });
    expect(synced()).toEqual([".", "a", "a/b", "a/b/c"]);
  });

  it("when the deepest folders are removed and made again, every level made again is flushed", async () => {
    const b = new FileBackend({ path: root });
    const v = new Uint8Array([1]);
    await b.put({ key: "x/y/z/k", value: v });
    await b.put({ key: "x/keep", value: v });
    await b.delete("x/y/z/k"); // removes z and y; x stays (it holds keep)
    synced();
    await b.put({ key: "x/y/z/k", value: v });
    expect(synced()).toEqual(["x", "x/y", "x/y/z"]);
  });

  it("concurrent writes in one folder share its flushes (group commit), and each still waits for one", async () => {
    const b = new FileBackend({ path: root });
    const v = new Uint8Array([1]);
    await b.put({ key: "f/first", value: v });
    synced();
    await Promise.all(Array.from({ length: 20 }, (_, i) => b.put({ key: `f/k${i}`, value: v })));
    const flushes = synced();
    expect(flushes.every((d) => d === "f")).toBe(true);
    // Not one per write: joiners share the flush queued behind the running one.
    expect(flushes.length).toBeGreaterThanOrEqual(1);
    expect(flushes.length).toBeLessThan(20);
    // Alone, a write still flushes its folder itself.
    await b.put({ key: "f/last", value: v });
    expect(synced()).toEqual(["f"]);
  });
});

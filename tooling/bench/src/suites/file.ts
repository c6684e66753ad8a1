import { mkdtemp, open, rename, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes } from "@bulwark/crypto";
import { FileBackend } from "@bulwark/storage-file";
import type { Comparison } from "../harness.js";

/**
 * A durable replace by hand: write a temp file, fsync it, rename it over the target, and (with
 * `syncDir`) fsync the directory so the rename itself survives a power cut.
 */
async function rawDurablePut(dir: string, name: string, bytes: Uint8Array, syncDir: boolean): Promise<void> {
  const tmp = join(dir, `${name}.temp`);
  const fh = await open(tmp, "w", 0o600);
  try {
    await fh.write(bytes);
    await fh.sync();
  } finally {
    await fh.close();
  }
  await rename(tmp, join(dir, name));
  if (syncDir) {
    const d = await open(dir, "r");
    try {
      await d.sync();
    } finally {
      await d.close();
    }
  }
}

export async function suite(): Promise<Comparison[]> {
  const root = await mkdtemp(join(tmpdir(), "bulwark-bench-file-"));
  const oursDir = join(root, "ours");
  const rawDir = join(root, "raw");
  const { mkdir } = await import("node:fs/promises");
  await mkdir(rawDir, { recursive: true, mode: 0o700 });
  const backend = new FileBackend({ path: oursDir });
  const value = randomBytes(1024);
  // The file backend stores {"Value":"<base64>"}\n: the baseline writes those same bytes.
  const fileBytes = Buffer.from(`${JSON.stringify({ Value: Buffer.from(value).toString("base64") })}\n`);
  let i = 0;
  let j = 0;
  let k = 0;
  const ours = {
    name: "FileBackend.put",
    op: async () => {
      await backend.put({ key: `secret/k${i++ % 32}`, value });
    },
  };
  return [
    {
      // Informational: this baseline skips the directory fsync, so a crash can lose its rename.
      name: "file backend durable put 1 KiB vs write+fsync+rename",
      ops: 400,
      rounds: 5,
      ours,
      baseline: {
        name: "write+fsync+rename",
        op: async () => {
          await rawDurablePut(rawDir, `_k${j++ % 32}`, fileBytes, false);
        },
      },
    },
    {
      // Same durability as ours: the directory fsync is what makes the rename survive a crash.
      name: "file backend durable put 1 KiB vs write+fsync+rename+fsync(dir)",
      target: 0.8,
      ops: 400,
      rounds: 5,
      ours,
      baseline: {
        name: "write+fsync+rename+fsync(dir)",
        op: async () => {
          await rawDurablePut(rawDir, `_k${k++ % 32}`, fileBytes, true);
        },
        teardown: async () => {
          await rm(root, { recursive: true, force: true });
        },
      },
    },
  ];
}

/**
 * Crash consistency: a child process writes to 20 keys as fast as it can and reports every
 * acknowledged put; we SIGKILL it at random moments and, after each kill, open the folder with a
 * fresh FileBackend and check that every entry is whole (its self-describing header and sha256
 * match), that each key holds a value at least as new as its last acknowledged write, and that
 * no temp file shows through list().
 *
 * SIGKILL tests process crashes (the page cache survives). Power loss cannot be simulated here;
 * that is what the fsync calls are for.
 */
import { createHash } from "node:crypto";
import { mkdtemp, readdir, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { spawnGroup } from "../../core/test/support/processes.js";
import { FileBackend } from "../src/index.js";

const here = dirname(fileURLToPath(import.meta.url));
const pkg = dirname(here);
const WRITER = join(here, "fixtures/crash-writer.mjs");

const KEYS = [
  ...Array.from({ length: 8 }, (_, i) => `k${i}`),
  ...Array.from({ length: 6 }, (_, i) => `crash/k${i}`),
  ...Array.from({ length: 6 }, (_, i) => `crash/deep/er/k${i}`),
];
const ROUNDS = 15;
const MIN_DELAY_MS = 5;
const MAX_DELAY_MS = 200;

/** The child imports dist/: make sure it exists and is not older than the sources. */
async function assertDistIsFresh(): Promise<void> {
  const dist = join(pkg, "dist/index.js");
  const built = await stat(dist).then(
    (s) => s.mtimeMs,
    () => undefined,
  );
  const how = "run `npx turbo run build --filter=@bulwark/storage-file` first";
  if (built === undefined)
    throw new Error(`the crash test runs the built package, but ${dist} is missing: ${how}`);
  for (const name of await readdir(join(pkg, "src"))) {
    if (!name.endsWith(".ts") || name.endsWith(".test.ts")) continue;
    const src = (await stat(join(pkg, "src", name))).mtimeMs;
    if (src > built) throw new Error(`dist/ is older than src/${name}: ${how}`);
  }
}

interface Stored {
  key: string;
  seq: number;
}

/** Parses and verifies one value written by the fixture; throws with a precise reason if torn or mixed. */
function parseValue(key: string, value: Uint8Array): Stored {
  const buf = Buffer.from(value.buffer, value.byteOffset, value.byteLength);
  if (buf.length < 8 || buf.toString("latin1", 0, 4) !== "BWCT") throw new Error(`${key}: bad magic`);
  const headerLen = buf.readUInt32BE(4);
  if (8 + headerLen > buf.length) throw new Error(`${key}: header runs past the end`);
  const header = JSON.parse(buf.toString("utf8", 8, 8 + headerLen)) as {
    k: string;
    s: number;
    n: number;
    h: string;
  };
  const body = buf.subarray(8 + headerLen);
  if (header.k !== key) throw new Error(`${key}: holds the value written for ${header.k}`);
  if (body.length !== header.n)
    throw new Error(`${key}: body is ${body.length} bytes, header says ${header.n}`);
  const h = createHash("sha256").update(body).digest("hex");
  if (h !== header.h) throw new Error(`${key}: body hash mismatch (seq ${header.s})`);
  return { key, seq: header.s };
}

/** Every key reachable through list(), walking folders; fails on anything that looks like a temp file. */
async function listAll(backend: FileBackend, prefix = ""): Promise<string[]> {
  const out: string[] = [];
  for (const name of await backend.list(prefix)) {
    expect(name, `list(${JSON.stringify(prefix)}) shows a temp file`).not.toMatch(/temp/);
    if (name.endsWith("/")) out.push(...(await listAll(backend, prefix + name)));
    else out.push(prefix + name);
  }
  return out;
}

interface RoundResult {
  acks: Map<string, number>;
  ackCount: number;
  exit: { code: number | null; signal: NodeJS.Signals | null };
  stderr: string;
}

function runAndKill(dir: string, firstSeq: number, delayMs: number): Promise<RoundResult> {
  return new Promise((resolvePromise, reject) => {
    // Its own process group, stopped with the test however that ends (a timeout included).
    const group = spawnGroup(process.execPath, [WRITER, dir, String(firstSeq), JSON.stringify(KEYS)], {
      stdio: ["ignore", "pipe", "pipe"],
      description: "crash writer",
    });
    const { child } = group;
    const acks = new Map<string, number>();
    let ackCount = 0;
    let pending = "";
    let stderr = "";
    let timer: ReturnType<typeof setTimeout> | undefined;
    child.stderr?.setEncoding("utf8").on("data", (d: string) => {
      stderr += d;
    });
    child.stdout?.setEncoding("utf8").on("data", (d: string) => {
      pending += d;
      const lines = pending.split("\n");
      pending = lines.pop() ?? ""; // a line cut by the kill is not an acknowledgement
      for (const line of lines) {
        if (line === "ready") {
          timer = setTimeout(() => group.killNow(), delayMs);
          continue;
        }
        const m = /^ack (\d+) (\S+)$/.exec(line);
        if (!m) continue;
        const seq = Number(m[1]);
        const key = m[2] as string;
        ackCount += 1;
        if (seq > (acks.get(key) ?? -1)) acks.set(key, seq);
      }
    });
    child.on("error", reject);
    child.on("exit", (code, signal) => {
      clearTimeout(timer);
      resolvePromise({ acks, ackCount, exit: { code, signal }, stderr });
    });
  });
}

describe("crash consistency under SIGKILL", () => {
  let dir: string;

  beforeAll(async () => {
    await assertDistIsFresh();
    dir = await mkdtemp(join(tmpdir(), "bulwark-crash-"));
  });

  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it(`every acknowledged write survives ${ROUNDS} random kills, and no entry is ever torn`, async () => {
    const lastAcked = new Map<string, number>();
    let totalAcks = 0;
    let strayTemps = 0;
    let tempsNow = 0;

    for (let round = 0; round < ROUNDS; round++) {
      const delay = MIN_DELAY_MS + Math.floor(Math.random() * (MAX_DELAY_MS - MIN_DELAY_MS + 1));
      // Sequence numbers keep growing across rounds, so "newer" compares across restarts too.
      const result = await runAndKill(dir, (round + 1) * 1_000_000, delay);
      expect(result.exit, `round ${round}: the writer ended on its own:\n${result.stderr}`).toEqual({
        code: null,
        signal: "SIGKILL",
      });
      totalAcks += result.ackCount;
      for (const [key, seq] of result.acks) lastAcked.set(key, Math.max(seq, lastAcked.get(key) ?? -1));

      // A fresh backend, as after a restart.
      const backend = new FileBackend({ path: dir });
      const listed = await listAll(backend);
      for (const key of listed) expect(KEYS, `round ${round}: unexpected key ${key}`).toContain(key);

      const stored = new Map<string, number>();
      for (const key of listed) {
        const entry = await backend.get(key);
        expect(entry, `round ${round}: ${key} is listed but reads as missing`).toBeDefined();
        stored.set(key, parseValue(key, entry?.value ?? new Uint8Array(0)).seq);
      }
      for (const [key, acked] of lastAcked) {
        const have = stored.get(key);
        expect(have, `round ${round}: acknowledged write ${acked} to ${key} is gone`).toBeDefined();
        expect(have, `round ${round}: ${key} went back from acknowledged ${acked}`).toBeGreaterThanOrEqual(
          acked,
        );
      }

      // On disk, besides entries, only temp files of writes the kill interrupted may remain.
      const raw = await readdir(dir, { recursive: true, withFileTypes: true });
      tempsNow = 0;
      for (const e of raw.filter((x) => x.isFile())) {
        if (e.name.startsWith("_")) continue;
        expect(e.name, `round ${round}: unexpected file ${e.name}`).toMatch(
          /^\._k\d+\.[0-9a-f]{12}-[0-9a-z]+\.temp$/,
        );
        strayTemps += 1;
        tempsNow += 1;
      }
    }

    // Housekeeping after the last crash: the sweep removes exactly the leftover temp files.
    const backend = new FileBackend({ path: dir });
    expect(await backend.removeStaleTempFiles({ olderThanMs: 0 })).toBe(tempsNow);
    const left = await readdir(dir, { recursive: true, withFileTypes: true });
    expect(left.filter((e) => e.isFile() && !e.name.startsWith("_"))).toEqual([]);
    for (const key of await listAll(backend)) {
      const entry = await backend.get(key);
      expect(parseValue(key, entry?.value ?? new Uint8Array(0)).seq).toBeGreaterThanOrEqual(
        lastAcked.get(key) ?? 0,
      );
    }

    // The test means nothing unless writes were acknowledged before the kills.
    expect(totalAcks).toBeGreaterThan(ROUNDS);
    expect(lastAcked.size).toBeGreaterThan(KEYS.length / 2);
    console.info(
      `crash test: ${ROUNDS} kills, ${totalAcks} acknowledged writes, ${lastAcked.size} keys, ${strayTemps} leftover temp-file sightings`,
    );
  }, 120_000);
});

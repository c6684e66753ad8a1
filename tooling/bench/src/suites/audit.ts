/**
 * Audit suite (issue 15): KV v2 read and write of a 1 KiB secret over HTTP, 64 connections
 * (autocannon), on a server with ONE file audit device against the same server with none, in one
 * run. Target: with ≥ 0.8× without.
 *
 * Both sides are this tree's built CLI, `bulwark server -config …` (http-load.ts: one Shamir share,
 * kv v2 at secret/, 256 keys written), each in its own process group, started fresh for every row,
 * with memory (`inmem`) or file storage. The audited one's config has a declarative block
 *
 *     audit "file" "bench" { options { file_path = "<its temp dir>/audit.log" } }
 *
 * with the device's default options (JSON, HMAC'd values, no log_raw): what an operator gets.
 *
 * So the figure is honest, every round of the audited side (warm-up included) checks that the log
 * grew by exactly two lines per request answered (request and response record, OpenBao's pair),
 * that they are JSON records of the KV path, and then empties the file (the server appends with
 * O_APPEND, so it keeps writing from the new end): a device that dropped records, or wrote them
 * after the answer, would fail the run instead of flattering it.
 *
 * A last, diagnostic row (no target) runs the read against a `discard` device: the records are
 * made (pipeline, formatting, HMACs) and dropped, which splits the audit's cost between making
 * the records and writing them.
 *
 * BULWARK_BENCH_AUDIT_PROFILE=<dir> starts every server with `node --cpu-prof --cpu-prof-dir=<dir>`
 * (a .cpuprofile each, written when it stops) to see where an audited request's time goes.
 */
import { closeSync, mkdtempSync, openSync, readSync, rmSync, statSync, truncateSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import type { Comparison, Measurement, Subject } from "../harness.js";
import { type BulwarkServer, loadSide, SERVER_DIR, startBulwark } from "../http-load.js";

const TARGET = 0.8;
/**
 * Requests per round and side: about 1–1.5 s a round of the audited side on 2 shared cores, long
 * enough for autocannon's millisecond percentiles; 7 short alternating rounds a side (so a burst
 * of someone else's load lands on both sides alike) keep the whole suite, 10 server starts
 * included, under about 3 minutes.
 */
const OPS = { inmem: { GET: 6_000, POST: 3_000 }, file: { GET: 3_000, POST: 400 } } as const;
const ROUNDS = 7;
/** Records per audited request: the request record and the response record. */
const RECORDS_PER_REQUEST = 2;

const profileDir = process.env.BULWARK_BENCH_AUDIT_PROFILE;
const nodeArgs =
  profileDir === undefined || profileDir === ""
    ? []
    : ["--cpu-prof", `--cpu-prof-dir=${resolve(profileDir)}`, "--cpu-prof-interval=500"];

const auditBlock = (file: string) =>
  `audit "file" "bench" {\n  options {\n    file_path = ${JSON.stringify(file)}\n  }\n}`;

/** Counts the newlines of `file` from byte `from` on, and returns its last complete line. */
function linesFrom(file: string, from: number): { lines: number; last: string; size: number } {
  const fd = openSync(file, "r");
  try {
    const buf = Buffer.allocUnsafe(1 << 20);
    let pos = from;
    let lines = 0;
    let tail = Buffer.alloc(0);
    for (;;) {
      const n = readSync(fd, buf, 0, buf.length, pos);
      if (n === 0) break;
      const chunk = buf.subarray(0, n);
      for (let i = chunk.indexOf(10); i !== -1; i = chunk.indexOf(10, i + 1)) lines++;
      // Keep enough of the end for the last record (a few KiB).
      tail = Buffer.concat([tail, chunk]).subarray(-65536);
      pos += n;
    }
    const text = tail.toString("utf8").replace(/\n$/, "");
    return { lines, last: text.slice(text.lastIndexOf("\n") + 1), size: pos };
  } finally {
    closeSync(fd);
  }
}

/**
 * The audited side: `inner`'s rounds, each followed by the check that the log got exactly
 * RECORDS_PER_REQUEST lines per request, the last one a JSON response record of a KV data path.
 */
function audited(inner: Subject, logFile: () => string | undefined, method: "GET" | "POST"): Subject {
  const measure = inner.measure as (ops: number) => Promise<Measurement>;
  return {
    ...inner,
    async measure(ops: number): Promise<Measurement> {
      const file = logFile();
      if (file === undefined) throw new Error(`${inner.name}: server not started`);
      const before = statSync(file).size;
      const m = await measure(ops);
      const requests = m.requests ?? ops;
      const want = requests * RECORDS_PER_REQUEST;
      // Every response was answered, so its records must be in the file already (fail-closed:
      // the response record is written before the answer). A short wait only tolerates a
      // laggard, and is reported.
      let got = linesFrom(file, before);
      for (let t = 0; got.lines < want && t < 20; t++) {
        await new Promise((r) => setTimeout(r, 100));
        got = linesFrom(file, before);
      }
      if (got.lines !== want)
        throw new Error(
          `${inner.name}: the audit log grew by ${got.lines} lines for ${requests} requests (want ${want})`,
        );
      let rec: { type?: string; request?: { path?: string; operation?: string } };
      try {
        rec = JSON.parse(got.last) as typeof rec;
      } catch {
        throw new Error(`${inner.name}: the audit log's last line is not JSON: ${got.last.slice(0, 200)}`);
      }
      // A write to a key that exists is an update (the keys are all written at start).
      const op = method === "GET" ? "read" : "update";
      if (
        rec.type !== "response" ||
        !/^secret\/data\/k\d+$/.test(rec.request?.path ?? "") ||
        rec.request?.operation !== op
      )
        throw new Error(
          `${inner.name}: the audit log's last record is not a ${op} response of secret/data/k…: ${got.last.slice(0, 300)}`,
        );
      bytesPerRequest = (got.size - before) / requests;
      // Keep the disk use flat (a round writes up to ~100 MB); the server appends with O_APPEND.
      truncateSync(file, 0);
      return m;
    },
  };
}

let bytesPerRequest = 0;

/** `sys/audit` of `s` lists the bench device (so a discard device, which leaves no log, is on). */
async function expectDevice(s: BulwarkServer): Promise<void> {
  const res = await fetch(`${s.address}/v1/sys/audit`, { headers: { "x-vault-token": s.token } });
  const text = await res.text();
  if (res.status !== 200 || !text.includes('"bench/"'))
    throw new Error(
      `the audited server's sys/audit does not list bench/ (${res.status}): ${text.slice(0, 300)}`,
    );
}

export async function suite(): Promise<Comparison[]> {
  /**
   * The audited server (`device`: a file in its temp dir, or "discard", which formats every record
   * and drops it) against one without audit, started by the audited side's setup.
   */
  const pair = (
    storage: "inmem" | "file",
    method: "GET" | "POST",
    device: "file" | "discard" = "file",
  ): Pick<Comparison, "ours" | "baseline"> => {
    let withAudit: BulwarkServer | undefined;
    let without: BulwarkServer | undefined;
    let log: string | undefined;
    const dirs: string[] = [];
    const dataDir = () => {
      const d = mkdtempSync(join(tmpdir(), "bulwark-bench-audit-"));
      dirs.push(d);
      return d;
    };
    const lifecycle = {
      async setup() {
        const d = dataDir();
        const file = join(d, "audit", "audit.log");
        withAudit = await startBulwark({
          serverDir: SERVER_DIR,
          label: `${device} audit device`,
          storage,
          dataDir: d,
          extraConfig: auditBlock(device === "file" ? file : "discard"),
          nodeArgs,
        });
        await expectDevice(withAudit);
        if (device === "file") {
          log = file;
          // The start (sys/mounts, 256 writes) was audited too: the device is live.
          const startLines = linesFrom(log, 0).lines;
          if (startLines < 2 * 256)
            throw new Error(
              `the audited server's log ${log} has ${startLines} lines after its start: is the audit block applied?`,
            );
          truncateSync(log, 0);
        }
        without = await startBulwark({
          serverDir: SERVER_DIR,
          label: "no audit device",
          storage,
          dataDir: dataDir(),
          nodeArgs,
        });
      },
      async teardown() {
        await Promise.all([withAudit?.stop(), without?.stop()]);
        withAudit = undefined;
        without = undefined;
        log = undefined;
        if (bytesPerRequest > 0)
          console.log(`    audit log: ${bytesPerRequest.toFixed(0)} bytes per request (last round)`);
        bytesPerRequest = 0;
        for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
      },
    };
    const ours = loadSide(
      `${storage} ${method} with a ${device} audit device`,
      () => withAudit,
      method,
      lifecycle,
    );
    return {
      ours: device === "file" ? audited(ours, () => log, method) : ours,
      baseline: loadSide(`${storage} ${method} without audit`, () => without, method),
    };
  };

  const rows: Comparison[] = [];
  for (const storage of ["inmem", "file"] as const) {
    for (const method of ["GET", "POST"] as const) {
      const what = method === "GET" ? "read" : "write (new version)";
      rows.push({
        name: `audit: KV v2 ${what} 1 KiB, ${storage} storage, 64 connections (HTTP), one file audit device vs none`,
        target: TARGET,
        ops: OPS[storage][method],
        rounds: ROUNDS,
        ...pair(storage, method),
      });
    }
  }
  // Where the time goes, no target: the same records made and dropped (file_path = "discard").
  // Its distance from 1.00× is the cost of the pipeline, formatting and hashing alone; the
  // distance between it and the first row is the cost of the file writes.
  rows.push({
    name: "audit (diagnostic): KV v2 read 1 KiB, inmem storage, 64 connections (HTTP), a discard audit device (records formatted, not written) vs none",
    ops: OPS.inmem.GET,
    rounds: ROUNDS,
    ...pair("inmem", "GET", "discard"),
  });
  return rows;
}

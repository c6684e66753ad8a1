/**
 * Vault-formats suite (issue 13): KV v2 read and write of a 1 KiB secret over HTTP, 64
 * connections (autocannon), on this tree's storage layout (Vault's formats above the barrier)
 * against the layout it replaces — Bulwark's own formats of 0.1.0, which are deleted from the
 * source, so the baseline is the last commit before that work (393ce5a; BULWARK_BENCH_BASELINE_REF
 * names another), built once into a cached worktree (baseline-worktree.ts). Target: new ≥ 0.9× old.
 *
 * Both sides are the built CLI, `bulwark server -config …`, each in its own process group, with
 * the same config (inmem or file storage, one Shamir share, kv v2 at secret/) and the same
 * requests, started fresh for every row. Everything else that changed between the two commits is
 * in the ratio too: it measures the trees, not the formats alone.
 *
 * On a shared machine req/s swings: each row also gives the servers' CPU time per request
 * (steadier) and the spread of its per-round ratios, and a last row runs the old server against
 * itself (how far it lands from 1.00× is this run's noise floor). `BULWARK_BENCH_BASELINE_REF=HEAD`
 * measures this working tree against its last commit instead.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { execGroup } from "../../../../packages/core/test/support/processes.js";
import { baselineTree } from "../baseline-worktree.js";
import type { Comparison } from "../harness.js";
import { type BulwarkServer, loadSide, REPO_ROOT, SERVER_DIR, startBulwark } from "../http-load.js";

const BASELINE_REF = process.env.BULWARK_BENCH_BASELINE_REF || "393ce5a";
const TARGET = 0.9;
/**
 * Requests per round and side: about 2 s a round on 2 shared cores (durable file writes are the
 * slowest row), long enough for autocannon's millisecond percentiles; 9 short alternating rounds
 * a side rather than a few long ones, so a burst of someone else's load lands on both sides alike.
 */
const OPS = { inmem: { GET: 30_000, POST: 8_000 }, file: { GET: 12_000, POST: 2_000 } } as const;
const ROUNDS = 9;

export async function suite(): Promise<Comparison[]> {
  const base = await baselineTree(BASELINE_REF);
  // "-dirty" when the working tree differs from HEAD: the new side runs what is built, not HEAD.
  const head = (
    await execGroup("git", ["describe", "--always", "--abbrev=7", "--dirty=-dirty"], {
      cwd: REPO_ROOT,
      description: "git describe",
    })
  ).stdout.trim();
  const old = base.commit.slice(0, 7);
  console.log(
    `  vault-formats baseline ${old}: ${base.dir} (${
      base.builtNow ? "built now" : "reused from the cache; built"
    } in ${base.buildSeconds.toFixed(1)} s)`,
  );

  /**
   * Two fresh servers (`a` measured as ours, `b` as the baseline) with `storage`, started by the
   * first side's setup and stopped by its teardown (compare() runs each side's hooks once).
   */
  const pair = (
    a: { dir: string; label: string },
    b: { dir: string; label: string },
    storage: "inmem" | "file",
    method: "GET" | "POST",
  ): Pick<Comparison, "ours" | "baseline"> => {
    let sa: BulwarkServer | undefined;
    let sb: BulwarkServer | undefined;
    const dirs: string[] = [];
    const dataDir = () => {
      const d = mkdtempSync(join(tmpdir(), "bulwark-bench-formats-"));
      dirs.push(d);
      return d;
    };
    const lifecycle = {
      async setup() {
        sa = await startBulwark({ serverDir: a.dir, label: a.label, storage, dataDir: dataDir() });
        sb = await startBulwark({ serverDir: b.dir, label: b.label, storage, dataDir: dataDir() });
      },
      async teardown() {
        await Promise.all([sa?.stop(), sb?.stop()]);
        sa = undefined;
        sb = undefined;
        for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
      },
    };
    return {
      ours: loadSide(`${a.label} ${storage} ${method}`, () => sa, method, lifecycle),
      baseline: loadSide(`${b.label} ${storage} ${method}`, () => sb, method),
    };
  };
  const newSide = { dir: SERVER_DIR, label: `new ${head}` };
  const oldSide = { dir: join(base.dir, "apps/server"), label: `old ${old}` };

  const rows: Comparison[] = [];
  for (const storage of ["inmem", "file"] as const) {
    for (const method of ["GET", "POST"] as const) {
      const what = method === "GET" ? "read" : "write (new version)";
      rows.push({
        name: `vault formats: KV v2 ${what} 1 KiB, ${storage} storage, 64 connections (HTTP), new layout ${head} vs old ${old}`,
        target: TARGET,
        ops: OPS[storage][method],
        rounds: ROUNDS,
        ...pair(newSide, oldSide, storage, method),
      });
    }
  }
  // The noise floor of this run: the same server on both sides (no target). How far it lands from
  // 1.00× is how far the machine's other load can move the rows above.
  rows.push({
    name: `calibration: KV v2 write 1 KiB, inmem storage, old ${old} vs old ${old} (the same server twice)`,
    ops: OPS.inmem.POST,
    rounds: ROUNDS,
    ...pair(
      { ...oldSide, label: `old ${old} (a)` },
      { ...oldSide, label: `old ${old} (b)` },
      "inmem",
      "POST",
    ),
  });
  return rows;
}

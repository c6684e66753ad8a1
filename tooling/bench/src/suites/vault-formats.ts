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
 * in the ratio too: it measures the trees, not the formats alone. `BULWARK_BENCH_BASELINE_REF=HEAD`
 * measures this working tree against its last commit (near 1.00× when nothing changed: the noise
 * floor; the per-round ratios printed with each row show the spread).
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
/** Requests per round and side. */
const OPS = { inmem: { GET: 30_000, POST: 8_000 }, file: { GET: 12_000, POST: 2_000 } } as const;

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
  const oldServerDir = join(base.dir, "apps/server");

  const rows: Comparison[] = [];
  for (const storage of ["inmem", "file"] as const) {
    for (const method of ["GET", "POST"] as const) {
      let ours: BulwarkServer | undefined;
      let theirs: BulwarkServer | undefined;
      const dirs: string[] = [];
      const dataDir = (label: string) => {
        const d = mkdtempSync(join(tmpdir(), `bulwark-bench-formats-${label}-`));
        dirs.push(d);
        return d;
      };
      // Attached to the new side only (compare() runs each side's setup/teardown once).
      const lifecycle = {
        async setup() {
          ours = await startBulwark({
            serverDir: SERVER_DIR,
            label: `new ${head}`,
            storage,
            dataDir: dataDir("new"),
          });
          theirs = await startBulwark({
            serverDir: oldServerDir,
            label: `old ${old}`,
            storage,
            dataDir: dataDir("old"),
          });
        },
        async teardown() {
          await Promise.all([ours?.stop(), theirs?.stop()]);
          ours = undefined;
          theirs = undefined;
          for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
        },
      };
      const what = method === "GET" ? "read" : "write (new version)";
      // About 2 s a round on 2 shared cores (durable file writes are the slowest row): long enough
      // for autocannon's millisecond percentiles; 9 short alternating rounds a side rather than a
      // few long ones, so a burst of someone else's load lands on both sides alike.
      const ops = OPS[storage][method];
      rows.push({
        name: `vault formats: KV v2 ${what} 1 KiB, ${storage} storage, 64 connections (HTTP), new layout ${head} vs old ${old}`,
        target: TARGET,
        ops,
        rounds: 9,
        ours: loadSide(`new ${head} ${storage} ${method}`, () => ours, method, lifecycle),
        baseline: loadSide(`old ${old} ${storage} ${method}`, () => theirs, method),
      });
    }
  }
  return rows;
}

/**
 * A baseline that no longer exists in the source: an older commit of this repository, checked out
 * once as a detached git worktree in a cache directory outside the repository, its server's
 * runtime dependencies installed offline from the pnpm store and its JavaScript built
 * (`tooling/build-js.mjs @bulwark/server`: no type declarations). Later runs reuse it.
 *
 * Outside the repository because inside it the workspace globs, biome, vitest and turbo would
 * all pick up a second copy of every package.
 */
import { existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { isAbsolute, join, relative, resolve, sep } from "node:path";
import { execGroup, runGroup } from "../../../packages/core/test/support/processes.js";
import { REPO_ROOT } from "./http-load.js";

export interface BaselineTree {
  /** The worktree's directory (its server: `<dir>/apps/server`). */
  dir: string;
  commit: string;
  /** Seconds the checkout, install and build took: this run's, or the run that built it. */
  buildSeconds: number;
  /** Built by this run (false: reused from the cache). */
  builtNow: boolean;
}

/** The cache directory: BULWARK_BENCH_CACHE, else $XDG_CACHE_HOME/bulwark-bench, else ~/.cache/bulwark-bench. */
export function cacheRoot(env: NodeJS.ProcessEnv = process.env): string {
  if (env.BULWARK_BENCH_CACHE) return resolve(env.BULWARK_BENCH_CACHE);
  return join(env.XDG_CACHE_HOME || join(homedir(), ".cache"), "bulwark-bench");
}

/** Why `dir` cannot hold a baseline worktree (it is inside the repository), or undefined. */
export function insideRepo(dir: string, repo = REPO_ROOT): string | undefined {
  const rel = relative(repo, resolve(dir));
  if (isAbsolute(rel) || rel === ".." || rel.startsWith(`..${sep}`)) return undefined;
  return `the bench cache ${dir} is inside the repository ${repo} (its workspace globs, biome and vitest would pick up the baseline's packages): set BULWARK_BENCH_CACHE to a directory outside it`;
}

async function git(args: string[], cwd = REPO_ROOT): Promise<string> {
  return (
    await execGroup("git", args, { cwd, timeoutMs: 120_000, description: `git ${args[0]}` })
  ).stdout.trim();
}

/** The full commit id of `ref`, or an error that says how to get it. */
export async function resolveCommit(ref: string): Promise<string> {
  const r = await runGroup("git", ["rev-parse", "--verify", "--quiet", `${ref}^{commit}`], {
    cwd: REPO_ROOT,
    timeoutMs: 30_000,
    description: "git rev-parse",
  });
  const commit = r.stdout.trim();
  if (r.code !== 0 || !/^[0-9a-f]{40}$/.test(commit))
    throw new Error(
      `baseline commit ${ref} is not in this clone (a shallow clone?): run \`git fetch --unshallow\` (or fetch that commit), or set BULWARK_BENCH_BASELINE_REF to a commit you have`,
    );
  return commit;
}

interface Stamp {
  commit: string;
  node: string;
  buildSeconds: number;
  date: string;
}

function readStamp(file: string): Stamp | undefined {
  try {
    return JSON.parse(readFileSync(file, "utf8")) as Stamp;
  } catch {
    return undefined;
  }
}

/**
 * One build at a time per cache entry (two bench runs at once): a lock directory holding the
 * owner's pid; a lock whose owner is gone is taken over.
 */
export async function withLock<T>(lock: string, fn: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + 10 * 60_000;
  for (;;) {
    try {
      mkdirSync(lock);
      writeFileSync(join(lock, "pid"), String(process.pid));
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
      let owner = 0;
      try {
        owner = Number(readFileSync(join(lock, "pid"), "utf8")) || 0;
      } catch {
        // Not written yet (its owner is between mkdir and write) or just released.
      }
      let alive: boolean;
      try {
        if (owner > 0) process.kill(owner, 0);
        // No pid yet: a lock made a moment ago is being taken, one older than that was abandoned.
        alive = owner > 0 || Date.now() - statSync(lock).mtimeMs < 10_000;
      } catch {
        alive = false;
      }
      if (!alive) {
        rmSync(lock, { recursive: true, force: true });
        continue;
      }
      if (Date.now() > deadline) throw new Error(`${lock} is held by pid ${owner} for over 10 minutes`);
      await new Promise((r) => setTimeout(r, 1_000));
    }
  }
  try {
    return await fn();
  } finally {
    rmSync(lock, { recursive: true, force: true });
  }
}

/**
 * The worktree of `ref` with its server built, from the cache or made now: `git worktree add
 * --detach`, `pnpm install --offline --frozen-lockfile` of the server's closure and the root's
 * build tools (nothing downloaded: from the pnpm store this checkout's install filled), then
 * `tooling/build-js.mjs @bulwark/server` of the worktree itself.
 */
export async function baselineTree(ref: string): Promise<BaselineTree> {
  const commit = await resolveCommit(ref);
  const root = cacheRoot();
  const why = insideRepo(root);
  if (why !== undefined) throw new Error(why);
  const dir = join(root, `baseline-${commit.slice(0, 12)}`);
  const stampFile = `${dir}.json`;
  mkdirSync(root, { recursive: true });
  return withLock(`${dir}.lock`, async () => {
    const stamp = readStamp(stampFile);
    if (
      stamp?.commit === commit &&
      stamp.node === process.version &&
      existsSync(join(dir, "apps/server/dist/index.js")) &&
      existsSync(join(dir, ".git"))
    )
      return { dir, commit, buildSeconds: stamp.buildSeconds, builtNow: false };
    const t0 = performance.now();
    rmSync(stampFile, { force: true });
    // A half-made or stale entry: drop the checkout and git's record of it, then start over.
    if (existsSync(dir)) {
      await runGroup("git", ["worktree", "remove", "--force", dir], { cwd: REPO_ROOT, timeoutMs: 120_000 });
      rmSync(dir, { recursive: true, force: true });
    }
    await git(["worktree", "prune"]);
    await git(["worktree", "add", "--detach", dir, commit]);
    await execGroup(
      "pnpm",
      ["install", "--offline", "--frozen-lockfile", "--filter", "@bulwark/server...", "--filter", "bulwark"],
      {
        cwd: dir,
        timeoutMs: 10 * 60_000,
        description: "pnpm install (baseline)",
        env: { ...process.env, CI: "true" },
      },
    ).catch((e: Error) => {
      throw new Error(
        `${e.message}\nthe baseline's dependencies are installed offline from the pnpm store: run \`pnpm install\` in ${REPO_ROOT} first (a lockfile that changed since ${commit.slice(0, 7)} may need its packages fetched once: \`pnpm install --frozen-lockfile --filter @bulwark/server... --filter bulwark\` in ${dir})`,
      );
    });
    await execGroup(process.execPath, [join(dir, "tooling/build-js.mjs"), "@bulwark/server"], {
      cwd: dir,
      timeoutMs: 10 * 60_000,
      description: "build-js (baseline)",
    });
    const buildSeconds = (performance.now() - t0) / 1000;
    const fresh: Stamp = { commit, node: process.version, buildSeconds, date: new Date().toISOString() };
    writeFileSync(stampFile, `${JSON.stringify(fresh, null, 2)}\n`);
    return { dir, commit, buildSeconds, builtNow: true };
  });
}

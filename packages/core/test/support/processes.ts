/**
 * Child processes for tests (and the benchmarks that reuse test helpers), started so that none
 * outlives the test that started it — a failed, thrown or timed-out test included.
 *
 * - Every child gets its own process group (`detached: true`), so a stop reaches what *it* starts
 *   too (a shell's children, a server's helpers): `process.kill(-pid, …)`.
 * - `stop()` sends SIGTERM (or the signal asked for) to the group, waits up to a grace period for
 *   the whole group to go, then SIGKILLs the group.
 * - Every child belongs to a scope: the running test's (the vitest setup file `vitest-setup.ts`
 *   opens one before each test and stops what is left in it after each test, whatever the
 *   outcome — vitest runs afterEach hooks after a timeout, but not the rest of the test body) or the
 *   test file's (children started in `beforeAll`, or asked for with `scope: fileScope`; stopped
 *   after the file's last hook). A spawn into a closed scope — the body of a timed-out test going
 *   on after its file ended — is killed at once and throws.
 * - Last resorts: on process exit and on SIGTERM/SIGINT/SIGHUP (vitest stops a fork worker with
 *   SIGTERM, then SIGKILL 500 ms later, and Node runs no `exit` handlers on a signal) every group
 *   still recorded is SIGKILLed synchronously; and when vitest's global setup (`global-setup.ts`)
 *   set `BULWARK_TEST_PROCESS_REGISTRY`, each group is also recorded as a file there so the global
 *   teardown in vitest's main process kills what a SIGKILLed worker left behind.
 *
 * No vitest import here: the benchmark suite reuses helpers built on this module.
 */
import { type ChildProcess, type SpawnOptions, spawn } from "node:child_process";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
// The module's own timers, not the globals: a test may have installed vitest's fake timers, and
// the cleanup after it must still wait and time out for real.
import { clearTimeout, setTimeout } from "node:timers";
import { setTimeout as sleep } from "node:timers/promises";

const now = Date.now; // captured before any test can fake Date

/** Set by global-setup.ts in vitest's main process; inherited by every worker it forks. */
export const REGISTRY_ENV = "BULWARK_TEST_PROCESS_REGISTRY";
/**
 * How long a stopped group may take to go after the polite signal before it is SIGKILLed
 * (BULWARK_TEST_KILL_GRACE_MS overrides it: the orphan fixtures run with a short one).
 */
export const DEFAULT_GRACE_MS = Number(process.env.BULWARK_TEST_KILL_GRACE_MS) || 5_000;

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** What the children of one test (or one test file) belong to. */
export class Scope {
  readonly name: string;
  readonly groups = new Set<ProcessGroup>();
  #closed = false;
  constructor(name: string) {
    this.name = name;
  }
  get closed(): boolean {
    return this.#closed;
  }
  /** Stops every group still running in this scope; later spawns into it are refused. */
  async close(graceMs = DEFAULT_GRACE_MS): Promise<string[]> {
    this.#closed = true;
    const left = [...this.groups].filter((g) => g.groupAlive());
    await Promise.all([...this.groups].map((g) => g.stop(graceMs)));
    return left.map((g) => g.description);
  }
}

/** Children started outside any test (beforeAll, module top level) live until the file ends. */
export const fileScope = new Scope("test file");
let current: Scope = fileScope;

/** The scope a spawn lands in when it names none: the running test's, else the file's. */
export function currentScope(): Scope {
  return current;
}

/** Opens the scope of a test that is about to run (vitest-setup.ts, beforeEach). */
export function enterTestScope(name: string): Scope {
  current = new Scope(name);
  return current;
}

/**
 * Closes a test's scope, stopping what it left (vitest-setup.ts, afterEach). Concurrent tests each
 * close their own scope; a spawn lands in the latest one opened (no test that spawns runs concurrently).
 */
export async function leaveTestScope(scope: Scope, graceMs = DEFAULT_GRACE_MS): Promise<string[]> {
  if (current === scope) current = fileScope;
  return scope.close(graceMs);
}

/**
 * Every group this process started and has not seen go. Kept on globalThis: a worker that runs
 * several test files loads this module once per file, and the exit and signal handlers (installed
 * once per process) must reach the groups of all of them.
 */
const shared = globalThis as typeof globalThis & {
  __bulwarkTestProcesses?: { all: Set<ProcessGroup>; hooksInstalled: boolean };
};
shared.__bulwarkTestProcesses ??= { all: new Set(), hooksInstalled: false };
const registry = shared.__bulwarkTestProcesses;
const all = registry.all;

function signalGroup(pid: number, signal: NodeJS.Signals | 0): boolean {
  try {
    process.kill(-pid, signal);
    return true;
  } catch (err) {
    // ESRCH: the group is gone. EPERM: a pid reused by someone else's process; not ours to signal.
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ESRCH" || code === "EPERM") return false;
    throw err;
  }
}

/** Field 22 of /proc/<pid>/stat (start time in clock ticks): tells a reused pid from ours. */
export function procStartTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // The command name (field 2) is in parentheses and may contain spaces: count after the last ')'.
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19];
  } catch {
    return undefined;
  }
}

export interface RegistryEntry {
  pid: number;
  startTime: string | undefined;
  description: string;
  worker: number;
}

function registryFile(pid: number): string | undefined {
  const dir = process.env[REGISTRY_ENV];
  return dir === undefined || dir === "" ? undefined : join(dir, `${pid}.json`);
}

/** One child process and its process group (the group id is the child's pid). */
export class ProcessGroup {
  readonly child: ChildProcess;
  /** The group id; 0 when the spawn itself failed (no process, nothing to kill). */
  readonly pid: number;
  readonly description: string;
  readonly scope: Scope;
  /** Resolves when the group leader has exited (however); never rejects. */
  readonly exited: Promise<Exit>;
  #leaderDone = false;
  #stopping: Promise<Exit> | undefined;

  constructor(child: ChildProcess, description: string, scope: Scope) {
    this.child = child;
    this.pid = child.pid ?? 0;
    this.description = `${description} (pid ${this.pid}, ${scope.name})`;
    this.scope = scope;
    this.exited = new Promise<Exit>((resolve) => {
      child.once("exit", (code, signal) => resolve({ code, signal }));
      // A spawn that failed (ENOENT, EACCES) emits only "error".
      child.once("error", () => {
        if (this.pid === 0) resolve({ code: null, signal: null });
      });
    });
    void this.exited.then(() => {
      this.#leaderDone = true;
    });
  }

  /** The leader is running (not yet exited). */
  get running(): boolean {
    return !this.#leaderDone && this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Some process of the group is still there (the leader, or anything it started). */
  groupAlive(): boolean {
    return this.pid !== 0 && signalGroup(this.pid, 0);
  }

  /** SIGKILLs the whole group now (synchronous: safe in `exit` and signal handlers). */
  killNow(): void {
    if (this.pid !== 0) signalGroup(this.pid, "SIGKILL");
  }

  /**
   * Sends `signal` to the group, waits up to `graceMs` for every process of it to go, then
   * SIGKILLs the group. Resolves with the leader's exit once nothing of the group is left.
   */
  stop(graceMs = DEFAULT_GRACE_MS, signal: NodeJS.Signals = "SIGTERM"): Promise<Exit> {
    this.#stopping ??= this.#stop(graceMs, signal);
    return this.#stopping;
  }

  async #stop(graceMs: number, signal: NodeJS.Signals): Promise<Exit> {
    if (this.pid !== 0 && signalGroup(this.pid, signal)) {
      const deadline = now() + graceMs;
      while (this.groupAlive() && now() < deadline) await sleep(20);
      this.killNow();
      // SIGKILL cannot be ignored; this only waits for the kernel (and Node) to reap, bounded anyway.
      const reaped = now() + 5_000;
      while (this.groupAlive() && now() < reaped) await sleep(20);
    }
    const exit = await this.exited;
    forget(this);
    return exit;
  }
}

function forget(group: ProcessGroup): void {
  all.delete(group);
  group.scope.groups.delete(group);
  const file = registryFile(group.pid);
  if (file !== undefined) rmSync(file, { force: true });
}

function installLastResortHooks(): void {
  if (registry.hooksInstalled) return;
  registry.hooksInstalled = true;
  process.once("exit", killAllNow);
  for (const sig of ["SIGTERM", "SIGINT", "SIGHUP"] as const) {
    // Only where nobody else handles the signal: then ours must also do the default (terminate).
    if (process.listenerCount(sig) > 0) continue;
    process.once(sig, () => {
      killAllNow();
      process.kill(process.pid, sig);
    });
  }
}

/** SIGKILLs every group this process started and has not seen go. Returns how many it signalled. */
export function killAllNow(): number {
  let n = 0;
  for (const g of all) {
    if (g.groupAlive()) n += 1;
    g.killNow();
  }
  return n;
}

export interface GroupSpawnOptions extends Omit<SpawnOptions, "detached"> {
  /** Where the child belongs; default: the running test's scope, else the file's. */
  scope?: Scope;
  /** For messages: what this process is ("bulwark server", "consul agent"). */
  description?: string;
}

/** Spawns `command` as the leader of a new process group, recorded in its scope. */
export function spawnGroup(
  command: string,
  args: readonly string[],
  opts: GroupSpawnOptions = {},
): ProcessGroup {
  const { scope = currentScope(), description = command, ...spawnOpts } = opts;
  installLastResortHooks();
  const child = spawn(command, args, { ...spawnOpts, detached: true });
  const group = new ProcessGroup(child, description, scope);
  if (group.pid === 0) return group; // the "error" event tells the caller why
  all.add(group);
  scope.groups.add(group);
  const file = registryFile(group.pid);
  if (file !== undefined) {
    const entry: RegistryEntry = {
      pid: group.pid,
      startTime: procStartTime(group.pid),
      description: group.description,
      worker: process.pid,
    };
    writeFileSync(file, JSON.stringify(entry));
  }
  void group.exited.then(() => {
    // A leader that exited alone leaves no group behind: forget it now (stop() does otherwise).
    if (!group.groupAlive()) forget(group);
  });
  if (scope.closed) {
    group.killNow();
    throw new Error(
      `${group.description} was started after its scope ended (a timed-out test still running?): killed`,
    );
  }
  return group;
}

export interface RunResult extends Exit {
  stdout: string;
  stderr: string;
  /** The run hit `timeoutMs` and its group was killed. */
  timedOut: boolean;
}

/**
 * Runs `command` to completion in its own process group (the replacement for execFile/spawnSync in
 * tests: the event loop stays free, so vitest's timeout can fire and the hooks can kill the group).
 * After `timeoutMs` the group is stopped (SIGTERM, SIGKILL after `graceMs`) and the result says so.
 */
export async function runGroup(
  command: string,
  args: readonly string[],
  opts: GroupSpawnOptions & { input?: string; timeoutMs?: number; graceMs?: number } = {},
): Promise<RunResult> {
  const { input, timeoutMs = 60_000, graceMs = 2_000, ...spawnOpts } = opts;
  const group = spawnGroup(command, args, { ...spawnOpts, stdio: ["pipe", "pipe", "pipe"] });
  const { child } = group;
  if (group.pid === 0) throw await new Promise<Error>((r) => child.once("error", r));
  let stdout = "";
  let stderr = "";
  child.stdout?.setEncoding("utf8").on("data", (d: string) => {
    stdout += d;
  });
  child.stderr?.setEncoding("utf8").on("data", (d: string) => {
    stderr += d;
  });
  child.stdin?.on("error", () => {}); // a child that exits without reading its stdin
  child.stdin?.end(input ?? "");
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    void group.stop(graceMs);
  }, timeoutMs);
  try {
    const exit = await group.exited;
    // The leader is gone; anything it left in its group goes with it.
    if (group.groupAlive()) await group.stop(graceMs);
    // Let the pipes deliver what the child wrote just before it exited.
    await Promise.all(
      [child.stdout, child.stderr].map((s) =>
        s === null || s.readableEnded || s.destroyed ? undefined : new Promise((r) => s.once("close", r)),
      ),
    );
    return { ...exit, stdout, stderr, timedOut };
  } finally {
    clearTimeout(timer);
  }
}

/**
 * `runGroup` that rejects unless the command exits 0 — a drop-in for promisified `execFile` — with
 * the exit, stderr and whether it timed out in the message.
 */
export async function execGroup(
  command: string,
  args: readonly string[],
  opts: GroupSpawnOptions & { input?: string; timeoutMs?: number; graceMs?: number } = {},
): Promise<RunResult> {
  const r = await runGroup(command, args, opts);
  if (r.code === 0) return r;
  const how = r.timedOut
    ? `was killed after ${opts.timeoutMs ?? 60_000} ms`
    : `exited with ${r.code ?? r.signal}`;
  throw new Error(`${[command, ...args].join(" ")} ${how}:\n${r.stderr}`);
}

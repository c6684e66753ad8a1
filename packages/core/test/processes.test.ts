/**
 * The test-process mechanism every process-starting test relies on (test/support/processes.ts):
 * a stop reaches a whole process tree that ignores SIGTERM, and neither a timed-out test nor a
 * worker killed outright leaves a process behind.
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { afterAll, describe, expect, it, vi } from "vitest";
import { startSigtermIgnoring } from "./fixtures/orphans/start-sigterm-ignoring.js";
import { REGISTRY_ENV, runGroup } from "./support/processes.js";

// Starts processes (and a whole vitest run): generous limits for a loaded 2-core machine.
vi.setConfig({ testTimeout: 120_000, hookTimeout: 120_000 });

const FIXTURES = join(import.meta.dirname, "fixtures", "orphans");
const VITEST = join(dirname(createRequire(import.meta.url).resolve("vitest/package.json")), "vitest.mjs");
const tmp = mkdtempSync(join(tmpdir(), "bulwark-orphans-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function pidsIn(file: string): number[] {
  try {
    return readFileSync(file, "utf8").split("\n").filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/** Polls until none of `pids` exists (orphans are reaped by init a moment after they die). */
async function gone(pids: number[], withinMs: number): Promise<number[]> {
  const deadline = Date.now() + withinMs;
  for (;;) {
    const left = pids.filter(alive);
    if (left.length === 0 || Date.now() > deadline) return left;
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe("test processes: own process group, SIGTERM then SIGKILL after a grace", () => {
  it("stop() kills a process that ignores SIGTERM and its child (which ignores it too) within the grace", async () => {
    const pidsFile = join(tmp, "stop.pids");
    process.env.PIDS_FILE = pidsFile;
    const group = await startSigtermIgnoring();
    const pids = pidsIn(pidsFile);
    expect(pids).toHaveLength(2);
    expect(pids.every(alive)).toBe(true);
    const t0 = Date.now();
    const exit = await group.stop(300);
    const ms = Date.now() - t0;
    expect(exit.signal).toBe("SIGKILL");
    expect(await gone(pids, 2_000)).toEqual([]);
    // The grace, then SIGKILL: not the 5 s default and not forever.
    expect(ms).toBeGreaterThanOrEqual(300);
    expect(ms).toBeLessThan(5_000);
  });

  it("stop() waits and escalates for real while the test has fake timers installed", async () => {
    const pidsFile = join(tmp, "fake-timers.pids");
    process.env.PIDS_FILE = pidsFile;
    const group = await startSigtermIgnoring();
    vi.useFakeTimers();
    try {
      const exit = await group.stop(300);
      expect(exit.signal).toBe("SIGKILL");
    } finally {
      vi.useRealTimers();
    }
    expect(await gone(pidsIn(pidsFile), 2_000)).toEqual([]);
  });

  it("runGroup() stops a run at its timeout, the whole tree, and says so", async () => {
    const pidsFile = join(tmp, "run.pids");
    const r = await runGroup(process.execPath, [join(FIXTURES, "sigterm-ignoring.mjs")], {
      env: { ...process.env, PIDS_FILE: pidsFile },
      // Long enough for the tree to start on a loaded machine.
      timeoutMs: 4_000,
      graceMs: 200,
    });
    expect(r).toMatchObject({ timedOut: true, signal: "SIGKILL" });
    expect(r.stdout).toContain("ready");
    const pids = pidsIn(pidsFile);
    expect(pids).toHaveLength(2);
    expect(await gone(pids, 2_000)).toEqual([]);
  });

  it("a timed-out test (its body still starting processes after the timeout) and a SIGKILLed worker leave no process", async () => {
    const pidsFile = join(tmp, "vitest.pids");
    const env: Record<string, string | undefined> = {
      ...process.env,
      PIDS_FILE: pidsFile,
      BULWARK_TEST_KILL_GRACE_MS: "500",
    };
    // The nested run keeps its own registry, as a top-level run does.
    delete env[REGISTRY_ENV];
    const r = await runGroup(
      process.execPath,
      [VITEST, "run", "--config", join(FIXTURES, "vitest.config.ts")],
      {
        cwd: FIXTURES,
        env,
        timeoutMs: 90_000,
      },
    );
    const out = r.stdout + r.stderr;
    expect(r.timedOut, out).toBe(false);
    expect(r.code, out).toBe(1);
    expect(out).toContain("Test timed out in 4000ms");
    // The first tree, stopped by the afterEach; the late one, stopped with the file (or refused).
    expect(out).toMatch(/stopped 1 process group\(s\) left running by test "hangs past its timeout/);
    // The tree of the worker that died: only the global teardown could reach it.
    expect(out).toMatch(/killed 1 process group\(s\) left by test workers: SIGTERM-ignoring fixture/);
    const pids = pidsIn(pidsFile);
    // Two trees in timeout.fixture.ts (unless the late one was refused before it started), one in
    // worker-killed.fixture.ts; two processes each.
    expect(pids.length).toBeGreaterThanOrEqual(4);
    expect(await gone(pids, 5_000)).toEqual([]);
  });
});

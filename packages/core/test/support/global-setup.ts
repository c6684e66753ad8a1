/**
 * vitest `globalSetup` (root vitest.config.ts): the last resort of processes.ts, in vitest's main
 * process. Workers record every process group they start as a file in a directory named by
 * BULWARK_TEST_PROCESS_REGISTRY (set here, so only this run's workers inherit it) and remove it
 * when the group is gone. A worker that died hard (SIGKILL: vitest gives a worker 500 ms after
 * SIGTERM) leaves its files; the teardown kills those groups after every test has finished.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { procStartTime, REGISTRY_ENV, type RegistryEntry } from "./processes.js";

/** Kills the group of every entry in `dir` that is still ours; returns what it killed. */
export function killRecorded(dir: string): string[] {
  const killed: string[] = [];
  let files: string[];
  try {
    files = readdirSync(dir);
  } catch {
    return killed;
  }
  for (const f of files) {
    let entry: RegistryEntry;
    try {
      entry = JSON.parse(readFileSync(join(dir, f), "utf8")) as RegistryEntry;
    } catch {
      continue;
    }
    // A live leader with another start time is a reused pid: someone else's process, leave it.
    const now = procStartTime(entry.pid);
    if (now !== undefined && entry.startTime !== undefined && now !== entry.startTime) continue;
    try {
      process.kill(-entry.pid, "SIGKILL");
      killed.push(entry.description);
    } catch {
      // ESRCH: the group went on its own.
    }
  }
  return killed;
}

export default function setup(): () => void {
  const inherited = process.env[REGISTRY_ENV];
  if (inherited !== undefined && inherited !== "") return () => {};
  const dir = mkdtempSync(join(tmpdir(), "bulwark-test-processes-"));
  process.env[REGISTRY_ENV] = dir;
  return () => {
    const killed = killRecorded(dir);
    if (killed.length > 0) {
      console.warn(`killed ${killed.length} process group(s) left by test workers: ${killed.join("; ")}`);
    }
    rmSync(dir, { recursive: true, force: true });
    delete process.env[REGISTRY_ENV];
  };
}

/**
 * A slow HSM for abort tests. pkcs11js runs its async calls (C_EncryptAsync, …) on libuv's
 * worker pool; occupying every worker with an open() of a FIFO that has no writer queues those
 * calls behind it — from the seal's side, a PKCS#11 call that is running in the library and does
 * not return. Releasing opens each FIFO for writing, which lets the blocked opens (and the queued
 * HSM calls) finish.
 *
 * vitest runs each test file in its own process, so only that file's worker pool is stalled. While
 * stalled, nothing else in the process may wait on the worker pool (fs, dns.lookup, async crypto).
 */
import { execFileSync } from "node:child_process";
import { closeSync, constants, mkdtempSync, openSync, rmSync } from "node:fs";
import { open } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { SealProviderHooks } from "@bulwark/seal/testing";
import type { Pkcs11TraceEvent } from "../src/index.js";

/** libuv's worker count (UV_THREADPOOL_SIZE, default 4), read as libuv reads it. */
function workerCount(): number {
  const n = Number.parseInt(process.env.UV_THREADPOOL_SIZE ?? "", 10);
  return Number.isFinite(n) && n > 0 ? Math.min(n, 1024) : 4;
}

/** Stalls the worker pool; the returned function ends the stall (and may be called once). */
export async function stallWorkerPool(): Promise<() => Promise<void>> {
  const dir = mkdtempSync(join(tmpdir(), "bulwark-stall-"));
  const fifos = Array.from({ length: workerCount() }, (_, i) => join(dir, `fifo-${i}`));
  execFileSync("mkfifo", fifos);
  // Each open blocks a worker until a writer appears.
  const readers = fifos.map((f) => open(f, constants.O_RDONLY));
  // Let the workers pick the opens up before anything else is queued behind them.
  await new Promise((resolve) => setTimeout(resolve, 50));
  let released = false;
  return async () => {
    if (released) return;
    released = true;
    // O_RDWR on a FIFO never blocks (Linux): it is the writer the blocked opens wait for.
    const writers = fifos.map((f) => openSync(f, constants.O_RDWR | constants.O_NONBLOCK));
    try {
      for (const handle of await Promise.all(readers)) await handle.close();
    } finally {
      for (const fd of writers) closeSync(fd);
      rmSync(dir, { recursive: true, force: true });
    }
  };
}

/**
 * Conformance-kit hooks for a PKCS#11 seal: pass `trace` in the seal's options (it counts every
 * PKCS#11 call), and `provider` with the seal to `runSealConformance`.
 */
export function pkcs11ProviderHooks(): {
  trace: (event: Pkcs11TraceEvent) => void;
  provider: SealProviderHooks;
} {
  let calls = 0;
  return {
    trace: () => {
      calls++;
    },
    provider: { calls: () => calls, stall: stallWorkerPool },
  };
}

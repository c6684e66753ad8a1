/**
 * End-to-end fixture: `node bin/bulwark.mjs server -config <file>` as a child process (the built
 * CLI, as operators run it) on a free loopback port, its stdout/stderr captured for the log scans.
 * Every process runs in its own process group (packages/core/test/support/processes.ts): `stop()`
 * and, whatever way the test ends (a timeout included), the vitest setup file stop the whole group,
 * SIGKILL after a grace.
 */
import { existsSync, mkdtempSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import {
  fileScope,
  type ProcessGroup,
  runGroup,
  spawnGroup,
} from "../../../../packages/core/test/support/processes.js";
import { request } from "./http.js";

const here = dirname(fileURLToPath(import.meta.url));
export const SERVER_DIR = resolve(here, "../..");
export const BIN = join(SERVER_DIR, "bin/bulwark.mjs");
const DIST = join(SERVER_DIR, "dist/index.js");

/** Why the CLI cannot be spawned (not built), or undefined. Tests run after `pnpm build`. */
export function cliMissing(): string | undefined {
  return existsSync(DIST) ? undefined : `apps/server is not built (${DIST} missing): run pnpm build first`;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const a = s.address();
      const port = typeof a === "object" && a !== null ? a.port : 0;
      s.close(() => resolve(port));
    });
  });
}

/** A CLI command (one request) that has not finished in this long is hung: killed, reported. */
const CLI_TIMEOUT_MS = 60_000;
/** How long a server may take to answer `sys/health` after it was started. */
const START_TIMEOUT_MS = 60_000;

export function tempDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), `bulwark-${prefix}-`));
}

export interface ServerProcess {
  address: string;
  /** Everything the process wrote to stdout and stderr so far. */
  output(): string;
  /**
   * SIGTERM to the server's process group (graceful: drain, seal), SIGKILL to the group after
   * `timeoutMs`. Resolves with the exit code (null when it had to be killed).
   */
  stop(timeoutMs?: number): Promise<number | null>;
  /** Resolves when the process has exited (however). */
  exited: Promise<number | null>;
}

/** Runs the `bulwark` CLI to completion (for `operator …` commands), in its own process group. */
export async function runCli(
  args: string[],
  env: Record<string, string> = {},
  input?: string,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const r = await runGroup(process.execPath, [BIN, ...args], {
    cwd: SERVER_DIR,
    env: { ...process.env, ...env },
    ...(input === undefined ? {} : { input }),
    timeoutMs: CLI_TIMEOUT_MS,
    description: `bulwark ${args[0] ?? ""}`,
  });
  const stderr = r.timedOut
    ? `${r.stderr}\n[test] bulwark ${args.join(" ")} killed after ${CLI_TIMEOUT_MS} ms`
    : r.stderr;
  return { code: r.code, stdout: r.stdout, stderr };
}

/**
 * Whether the server answers `sys/health` with its status (initialized, sealed, …, whatever the
 * seal state: Vault answers 501/503 for uninitialised/sealed). The listener is bound before the
 * storage is opened and answers 503 "starting" meanwhile: that is not serving yet.
 */
async function serving(address: string): Promise<boolean> {
  const res = await request(`${address}/v1/sys/health`);
  try {
    return typeof res.json().initialized === "boolean";
  } catch {
    return false;
  }
}

/** Everything the group's leader writes to stdout and stderr so far, as text (for failure messages). */
export function collectOutput(group: ProcessGroup): () => string {
  let out = "";
  group.child.stdout?.setEncoding("utf8").on("data", (d: string) => {
    out += d;
  });
  group.child.stderr?.setEncoding("utf8").on("data", (d: string) => {
    out += d;
  });
  return () => out;
}

/**
 * Resolves once the server at `address` (bulwark or OpenBao) answers `sys/health` with its status.
 * Throws with its output when the process exits first, or when `timeoutMs` passes (the group is
 * stopped then).
 */
export async function waitServing(
  group: ProcessGroup,
  address: string,
  output: () => string,
  what: string,
  timeoutMs = START_TIMEOUT_MS,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (!group.running) throw new Error(`${what} exited during start:\n${output()}`);
    try {
      if (await serving(address)) return;
    } catch {
      // Not listening yet.
    }
    if (Date.now() > deadline) {
      await group.stop(0);
      throw new Error(`${what} did not serve sys/health within ${timeoutMs / 1000} s:\n${output()}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * Writes `config` (HCL; `{{PORT}}` is replaced by a free port) to a temp file and starts the
 * server with it. Resolves once `sys/health` reports the server's status (whatever the seal state).
 */
export async function startServerProcess(opts: {
  config: string;
  dir?: string;
  env?: Record<string, string>;
  port?: number;
  /**
   * `test` (default inside a test): stopped when the test ends, however it ends. `file`: the server
   * outlives the test that started it (a later test uses it), stopped when the file ends.
   */
  scope?: "test" | "file";
}): Promise<ServerProcess & { port: number; configFile: string }> {
  const port = opts.port ?? (await freePort());
  const dir = opts.dir ?? tempDir("e2e");
  const configFile = join(dir, `server-${port}.hcl`);
  writeFileSync(configFile, opts.config.replaceAll("{{PORT}}", String(port)));
  const group = spawnGroup(process.execPath, [BIN, "server", "-config", configFile], {
    cwd: SERVER_DIR,
    env: { ...process.env, ...opts.env },
    stdio: ["ignore", "pipe", "pipe"],
    description: `bulwark server on port ${port}`,
    ...(opts.scope === "file" ? { scope: fileScope } : {}),
  });
  const output = collectOutput(group);
  const exited = group.exited.then((e) => e.code);
  const address = `http://127.0.0.1:${port}`;
  await waitServing(group, address, output, "bulwark server");
  return {
    address,
    port,
    configFile,
    exited,
    output,
    async stop(timeoutMs = 15_000) {
      return (await group.stop(timeoutMs)).code;
    },
  };
}

/** A server started with {@link startServerGroup}: its process group, for tests that signal it. */
export interface ServerGroup {
  group: ProcessGroup;
  address: string;
  /** Everything the process wrote to stdout and stderr so far. */
  output(): string;
}

/**
 * Starts `bulwark server -config <configFile>` in its own process group (stopped with its test)
 * and resolves once `sys/health` answers anything — also a sealed, waiting or starting server —
 * for tests that send it signals or watch it come up.
 */
export async function startServerGroup(
  configFile: string,
  port: number,
  env: Record<string, string | undefined> = process.env,
): Promise<ServerGroup> {
  const group = spawnGroup(process.execPath, [BIN, "server", "-config", configFile], {
    cwd: SERVER_DIR,
    env,
    stdio: ["ignore", "pipe", "pipe"],
    description: "bulwark server",
  });
  let out = "";
  group.child.stdout?.setEncoding("utf8").on("data", (d: string) => {
    out += d;
  });
  group.child.stderr?.setEncoding("utf8").on("data", (d: string) => {
    out += d;
  });
  const address = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (!group.running) throw new Error(`bulwark server exited during start:\n${out}`);
    const answered = await fetch(`${address}/v1/sys/health`).then(
      () => true,
      () => false,
    );
    if (answered) break;
    if (Date.now() > deadline) throw new Error(`bulwark server did not answer within 30 s:\n${out}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return { group, address, output: () => out };
}

/**
 * Why a suite that needs the built CLI and a tool from the services installer cannot run, or
 * undefined. Under CI=true a missing one throws (CI must run every suite); elsewhere the suite
 * skips with the reason, printed once.
 */
export function serviceGate(suite: string, tool: string, what: string): string | undefined {
  const missing =
    cliMissing() ??
    (existsSync(tool) ? undefined : `${what} is not installed at ${tool}: run tooling/services/install.sh`);
  if (missing !== undefined && process.env.CI === "true") throw new Error(missing);
  if (missing !== undefined) console.warn(`skipping ${suite}: ${missing}`);
  return missing;
}

/**
 * End-to-end fixture: `node bin/bulwark.mjs server -config <file>` as a child process (the built
 * CLI, as operators run it) on a free loopback port, its stdout/stderr captured for the log scans.
 * Every process started here is killed in `stop()` and, as a last resort, when the test process
 * exits.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdtempSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
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

export function tempDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), `bulwark-${prefix}-`));
}

const children = new Set<ChildProcess>();
process.once("exit", () => {
  for (const c of children) c.kill("SIGKILL");
});

export interface ServerProcess {
  address: string;
  /** Everything the process wrote to stdout and stderr so far. */
  output(): string;
  /** SIGTERM (graceful: drain, seal), SIGKILL after `timeoutMs`. Resolves with the exit code. */
  stop(timeoutMs?: number): Promise<number | null>;
  /** Resolves when the process has exited (however). */
  exited: Promise<number | null>;
}

/** Runs the `bulwark` CLI to completion (for `operator …` commands). */
export function runCli(
  args: string[],
  env: Record<string, string> = {},
  input?: string,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], {
      cwd: SERVER_DIR,
      env: { ...process.env, ...env },
      stdio: ["pipe", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => {
      stdout += d.toString("utf8");
    });
    child.stderr.on("data", (d: Buffer) => {
      stderr += d.toString("utf8");
    });
    child.on("error", reject);
    child.on("exit", (code) => resolvePromise({ code, stdout, stderr }));
    child.stdin.end(input ?? "");
  });
}

/**
 * Writes `config` (HCL; `{{PORT}}` is replaced by a free port) to a temp file and starts the
 * server with it. Resolves once `sys/health` answers (whatever the seal state).
 */
export async function startServerProcess(opts: {
  config: string;
  dir?: string;
  env?: Record<string, string>;
  port?: number;
}): Promise<ServerProcess & { port: number; configFile: string }> {
  const port = opts.port ?? (await freePort());
  const dir = opts.dir ?? tempDir("e2e");
  const configFile = join(dir, `server-${port}.hcl`);
  writeFileSync(configFile, opts.config.replaceAll("{{PORT}}", String(port)));
  const child = spawn(process.execPath, [BIN, "server", "-config", configFile], {
    cwd: SERVER_DIR,
    env: { ...process.env, ...opts.env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  children.add(child);
  let out = "";
  child.stdout?.on("data", (d: Buffer) => {
    out += d.toString("utf8");
  });
  child.stderr?.on("data", (d: Buffer) => {
    out += d.toString("utf8");
  });
  const exited = new Promise<number | null>((r) =>
    child.on("exit", (code) => {
      children.delete(child);
      r(code);
    }),
  );
  let done = false;
  void exited.then(() => {
    done = true;
  });
  const address = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (done) throw new Error(`bulwark server exited during start:\n${out}`);
    try {
      await request(`${address}/v1/sys/health`);
      break;
    } catch {
      if (Date.now() > deadline) {
        child.kill("SIGKILL");
        throw new Error(`bulwark server did not answer within 30 s:\n${out}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  return {
    address,
    port,
    configFile,
    exited,
    output: () => out,
    async stop(timeoutMs = 15_000) {
      if (done) return exited;
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
      try {
        return await exited;
      } finally {
        clearTimeout(timer);
      }
    },
  };
}

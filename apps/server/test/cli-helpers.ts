import type { ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { Readable, Writable } from "node:stream";
import { fileURLToPath } from "node:url";
import { runGroup, spawnGroup } from "../../../packages/core/test/support/processes.js";
import { main } from "../src/cli/program.js";

export const SERVER_DIR = resolve(dirname(fileURLToPath(import.meta.url)), "..");
export const BIN = join(SERVER_DIR, "bin", "bulwark.mjs");

/** The spawned CLI runs the built dist; say how to get it instead of failing obscurely. */
export function requireBuild(): void {
  if (!existsSync(join(SERVER_DIR, "dist", "index.js"))) {
    throw new Error(
      "apps/server/dist is missing: run `npx turbo run build --filter=@bulwark/server...` first",
    );
  }
}

export class Capture extends Writable {
  #chunks: string[] = [];
  override _write(chunk: Buffer | string, _enc: BufferEncoding, cb: () => void): void {
    this.#chunks.push(chunk.toString());
    cb();
  }
  get text(): string {
    return this.#chunks.join("");
  }
}

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the CLI in this process with captured output (fast; the server side is real HTTP). */
export async function cli(
  args: string[],
  opts: { env?: Record<string, string | undefined>; stdin?: string } = {},
): Promise<CliResult> {
  const stdout = new Capture();
  const stderr = new Capture();
  const stdin = Readable.from(
    opts.stdin === undefined ? [] : [opts.stdin],
  ) as unknown as NodeJS.ReadableStream;
  const code = await main(["node", "bulwark", ...args], { stdout, stderr, stdin, env: opts.env ?? {} });
  return { code, stdout: stdout.text, stderr: stderr.text };
}

/** A CLI command (one request) that has not finished in this long is hung: killed, reported. */
const CLI_TIMEOUT_MS = 60_000;
/** How long a server may take to print its banner after it was started. */
const START_TIMEOUT_MS = 60_000;
/** How long a stopped server may take to drain and seal before its process group is SIGKILLed. */
const STOP_GRACE_MS = 15_000;

/**
 * Runs the built `bulwark` binary as a child process (in its own process group, killed with the
 * test if the test ends first) and waits for it to exit.
 */
export async function runBin(
  args: string[],
  env: Record<string, string | undefined> = {},
): Promise<CliResult> {
  const r = await runGroup(process.execPath, [BIN, ...args], {
    env: { PATH: process.env.PATH, ...env },
    timeoutMs: CLI_TIMEOUT_MS,
    description: `bulwark ${args[0] ?? ""}`,
  });
  const stderr = r.timedOut
    ? `${r.stderr}\n[test] bulwark ${args.join(" ")} killed after ${CLI_TIMEOUT_MS} ms`
    : r.stderr;
  return { code: r.code ?? -1, stdout: r.stdout, stderr };
}

export interface ServerProcess {
  child: ChildProcess;
  address: string;
  output(): string;
  /**
   * Sends `signal` (default SIGTERM) to the server's process group, SIGKILL to the group if it is
   * still there after a grace; resolves with the exit code (null when killed by a signal).
   */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/**
 * Starts `bulwark server …` in its own process group and resolves once its banner names the
 * listening address. The vitest setup file stops the group when the test (or, when started in a
 * `beforeAll`, the file) ends, however it ends.
 */
export function startServerProcess(
  args: string[],
  env: Record<string, string | undefined> = {},
): Promise<ServerProcess> {
  return new Promise((resolvePromise, reject) => {
    const group = spawnGroup(process.execPath, [BIN, "server", ...args], {
      env: { PATH: process.env.PATH, ...env },
      stdio: ["ignore", "pipe", "pipe"],
      description: "bulwark server",
    });
    const { child } = group;
    let out = "";
    let settled = false;
    const timer = setTimeout(() => {
      if (settled) return;
      settled = true;
      void group.stop(0);
      reject(new Error(`the server did not start within ${START_TIMEOUT_MS / 1000} s:\n${out}`));
    }, START_TIMEOUT_MS);
    const onData = (d: Buffer) => {
      out += d.toString();
      const m = /Api Address: (\S+)/.exec(out);
      if (m && !settled && out.includes("Bulwark server started")) {
        settled = true;
        clearTimeout(timer);
        resolvePromise({
          child,
          address: m[1] as string,
          output: () => out,
          async stop(signal = "SIGTERM") {
            return (await group.stop(STOP_GRACE_MS, signal)).code;
          },
        });
      }
    };
    child.stdout?.on("data", onData);
    child.stderr?.on("data", onData);
    child.on("error", (err) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      reject(err);
    });
    child.on("exit", (code) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      reject(new Error(`the server exited with ${code} before listening:\n${out}`));
    });
  });
}

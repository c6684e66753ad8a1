import { type ChildProcess, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { Readable, Writable } from "node:stream";
import { fileURLToPath } from "node:url";
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

/** Runs the built `bulwark` binary as a child process and waits for it to exit. */
export function runBin(args: string[], env: Record<string, string | undefined> = {}): Promise<CliResult> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], {
      env: { PATH: process.env.PATH, ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => {
      stdout += d.toString();
    });
    child.stderr.on("data", (d: Buffer) => {
      stderr += d.toString();
    });
    child.on("error", reject);
    child.on("exit", (code) => resolvePromise({ code: code ?? -1, stdout, stderr }));
  });
}

export interface ServerProcess {
  child: ChildProcess;
  address: string;
  output(): string;
  /** Sends SIGTERM and resolves with the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/** Starts `bulwark server …` and resolves once its banner names the listening address. */
export function startServerProcess(
  args: string[],
  env: Record<string, string | undefined> = {},
): Promise<ServerProcess> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, [BIN, "server", ...args], {
      env: { PATH: process.env.PATH, ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    let settled = false;
    const exited = new Promise<number | null>((r) => child.on("exit", (code) => r(code)));
    const timer = setTimeout(() => {
      if (settled) return;
      settled = true;
      child.kill("SIGKILL");
      reject(new Error(`the server did not start within 20 s:\n${out}`));
    }, 20_000);
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
            if (child.exitCode !== null) return child.exitCode;
            child.kill(signal);
            return exited;
          },
        });
      }
    };
    child.stdout?.on("data", onData);
    child.stderr?.on("data", onData);
    child.on("exit", (code) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      reject(new Error(`the server exited with ${code} before listening:\n${out}`));
    });
  });
}

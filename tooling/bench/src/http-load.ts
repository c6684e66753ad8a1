/**
 * What the HTTP suites share: server children in their own process groups (killed with the bench
 * process however it ends), a `bulwark server -config …` started from any checkout and brought to
 * a KV v2 mount, and one side of a comparison measured with autocannon (64 connections).
 *
 * Not in suites/: every file there is loaded as a suite (main.ts).
 */
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { createServer } from "node:net";
import { join, resolve } from "node:path";
import { createInterface } from "node:readline";
import {
  type GroupSpawnOptions,
  type ProcessGroup,
  spawnGroup,
} from "../../../packages/core/test/support/processes.js";
import type { Measurement, Subject } from "./harness.js";

export const REPO_ROOT = resolve(import.meta.dirname, "../../..");
/** The server of this checkout (the tree being benchmarked). */
export const SERVER_DIR = resolve(REPO_ROOT, "apps/server");
/** fastify and autocannon are loaded from apps/server's dependencies (the bench does not pin them). */
export const serverRequire = createRequire(resolve(SERVER_DIR, "package.json"));
export const CONNECTIONS = 64;
/** Keys written before a round and cycled through by the requests of every round. */
export const KEYS = 256;
export const VALUE = "v".repeat(1024);
export const WRITE_BODY = JSON.stringify({ data: { value: VALUE } });
/** The KV v2 data path of key `i` on the `secret/` mount. */
export const kvDataPath = (i: number): string => `/v1/secret/data/k${i % KEYS}`;

/** Where a side sends its load: the server's address, a token, and its pid for the RSS column. */
export interface LoadTarget {
  address: string;
  token: string;
  pid?: number;
}

export function rssMiB(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m === null ? undefined : Number(m[1]) / 1024;
  } catch {
    return undefined;
  }
}

let clockTicks: number | undefined;

/**
 * CPU seconds (user + system, every thread) process `pid` has used so far, from /proc/<pid>/stat
 * (fields 14 and 15, in clock ticks), or undefined where there is no /proc.
 */
export function cpuSeconds(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // The command name (field 2) is in parentheses and may hold spaces: count after the last ')'.
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    clockTicks ??= Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;
    return (Number(f[11]) + Number(f[12])) / clockTicks;
  } catch {
    return undefined;
  }
}

/**
 * Starts a child in its own process group (packages/core/test/support/processes.ts: the group is
 * SIGKILLed when the bench process exits or is stopped by SIGTERM/SIGINT/SIGHUP, also when a suite
 * throws), its stderr passed through.
 */
export function startGroup(
  command: string,
  args: string[],
  description: string,
  opts: Omit<GroupSpawnOptions, "description"> = {},
): ProcessGroup {
  return spawnGroup(command, args, { stdio: ["ignore", "pipe", "inherit"], ...opts, description });
}

/** The first stdout line of `group` as JSON (the address a bench child reports when ready). */
export async function firstJsonLine<T>(group: ProcessGroup, timeoutMs = 60_000): Promise<T> {
  const lines = createInterface({ input: group.child.stdout as NodeJS.ReadableStream });
  try {
    return await new Promise<T>((resolvePromise, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`${group.description} was not ready within ${timeoutMs / 1000} s`)),
        timeoutMs,
      );
      void group.exited.then((e) => {
        clearTimeout(timer);
        reject(new Error(`${group.description} exited (${e.code ?? e.signal}) before it was ready`));
      });
      lines.once("line", (l) => {
        clearTimeout(timer);
        try {
          resolvePromise(JSON.parse(l) as T);
        } catch {
          reject(new Error(`${group.description}'s first line is not its JSON address: ${l}`));
        }
      });
    });
  } catch (e) {
    await group.stop(2_000);
    throw e;
  } finally {
    lines.close();
  }
}

export async function freePort(): Promise<number> {
  return new Promise((resolvePromise, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const a = s.address();
      const port = typeof a === "object" && a !== null ? a.port : 0;
      s.close(() => resolvePromise(port));
    });
  });
}

async function call(
  address: string,
  method: string,
  path: string,
  body?: unknown,
  token?: string,
): Promise<{ status: number; json: Record<string, unknown>; text: string }> {
  const res = await fetch(`${address}${path}`, {
    method,
    headers: {
      ...(token === undefined ? {} : { "x-vault-token": token }),
      ...(body === undefined ? {} : { "content-type": "application/json" }),
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  let json: Record<string, unknown> = {};
  try {
    json = text === "" ? {} : (JSON.parse(text) as Record<string, unknown>);
  } catch {
    // Not JSON: the caller reports `text`.
  }
  return { status: res.status, json, text };
}

async function ok(
  what: string,
  r: Promise<{ status: number; json: Record<string, unknown>; text: string }>,
): Promise<Record<string, unknown>> {
  const res = await r;
  if (res.status >= 300) throw new Error(`${what} answered ${res.status}: ${res.text}`);
  return res.json;
}

export interface BulwarkServer extends LoadTarget {
  group: ProcessGroup;
  /** SIGTERM to the group, SIGKILL after a grace. */
  stop(): Promise<void>;
}

/**
 * `node <serverDir>/bin/bulwark.mjs server -config <file>` (the built CLI of any checkout) on a
 * free loopback port with `storage` ("inmem", or "file" in `dataDir`), initialised with one
 * Shamir share (1 of 1), unsealed, kv v2 mounted at `secret/`, and `KEYS` keys written with a
 * 1 KiB value — the same requests whatever the checkout's storage formats.
 */
export async function startBulwark(opts: {
  serverDir: string;
  label: string;
  storage: "inmem" | "file";
  dataDir: string;
  /** More HCL appended to the config (e.g. an `audit` block). */
  extraConfig?: string;
  /** Node options before the CLI script (e.g. `--cpu-prof`). */
  nodeArgs?: string[];
}): Promise<BulwarkServer> {
  const bin = join(opts.serverDir, "bin/bulwark.mjs");
  if (!existsSync(join(opts.serverDir, "dist/index.js")))
    throw new Error(
      `no built server in ${opts.serverDir} (dist/index.js missing): build it first (pnpm build)`,
    );
  const port = await freePort();
  const storage =
    opts.storage === "file"
      ? `storage "file" {\n  path = ${JSON.stringify(join(opts.dataDir, "data"))}\n}`
      : `storage "inmem" {}`;
  const configFile = join(opts.dataDir, "server.hcl");
  writeFileSync(
    configFile,
    `${storage}\n\nlistener "tcp" {\n  address     = "127.0.0.1:${port}"\n  tls_disable = true\n}\n\ndisable_mlock = true\n${
      opts.extraConfig === undefined ? "" : `\n${opts.extraConfig}\n`
    }`,
  );
  const description = `bulwark server (${opts.label}, ${opts.storage}) on port ${port}`;
  const group = startGroup(
    process.execPath,
    [...(opts.nodeArgs ?? []), bin, "server", "-config", configFile],
    description,
    // Its log (a few lines at start, none per request) is kept for the error when it fails.
    { cwd: opts.serverDir, stdio: ["ignore", "pipe", "pipe"] },
  );
  let output = "";
  for (const s of [group.child.stdout, group.child.stderr])
    s?.setEncoding("utf8").on("data", (d: string) => {
      output = (output + d).slice(-4000);
    });
  const address = `http://127.0.0.1:${port}`;
  const stop = async () => {
    await group.stop(5_000);
  };
  try {
    await waitFor(`${description} to answer sys/health`, 60_000, async () => {
      if (!group.running) throw new Error(`${description} exited during start`);
      const res = await call(address, "GET", "/v1/sys/health").catch(() => undefined);
      return typeof res?.json.initialized === "boolean";
    });
    const init = await ok(
      `${description}: sys/init`,
      call(address, "PUT", "/v1/sys/init", { secret_shares: 1, secret_threshold: 1 }),
    );
    const key = (init.keys_base64 as string[] | undefined)?.[0] ?? (init.keys as string[])[0];
    const token = init.root_token as string;
    await ok(`${description}: sys/unseal`, call(address, "PUT", "/v1/sys/unseal", { key }));
    let health = "";
    await waitFor(
      () => `${description} to become active (sys/health: ${health})`,
      60_000,
      async () => {
        const res = await call(address, "GET", "/v1/sys/health");
        health = `${res.status} ${res.text}`;
        return res.status === 200;
      },
    );
    await ok(
      `${description}: mount kv v2 at secret/`,
      call(address, "POST", "/v1/sys/mounts/secret", { type: "kv", options: { version: "2" } }, token),
    );
    // A fresh kv v2 mount may refuse writes while it sets itself up (Vault's upgrade): wait for one.
    let last = "";
    await waitFor(
      () => `${description}: the first write to secret/ (last answer: ${last})`,
      30_000,
      async () => {
        const res = await call(address, "POST", kvDataPath(0), { data: { value: VALUE } }, token);
        last = `${res.status} ${res.text}`;
        return res.status < 300;
      },
    );
    for (let i = 1; i < KEYS; i++)
      await ok(
        `${description}: write ${kvDataPath(i)}`,
        call(address, "POST", kvDataPath(i), JSON.parse(WRITE_BODY), token),
      );
    const server: BulwarkServer = { address, token, group, stop };
    if (group.pid !== 0) server.pid = group.pid;
    return server;
  } catch (e) {
    await stop();
    // What it wrote just before it exited is still in the pipes.
    await Promise.all(
      [group.child.stdout, group.child.stderr].map((p) =>
        p === null || p.readableEnded || p.destroyed ? undefined : new Promise((r) => p.once("close", r)),
      ),
    );
    throw new Error(`${(e as Error).message}\n${description}'s output (tail):\n${output}`, { cause: e });
  }
}

/** Polls `done` until it is true; `what` (a string, or a function for one with the latest state) names it on timeout. */
async function waitFor(
  what: string | (() => string),
  timeoutMs: number,
  done: () => Promise<boolean>,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await done()) return;
    if (Date.now() > deadline)
      throw new Error(
        `timed out after ${timeoutMs / 1000} s waiting for ${typeof what === "string" ? what : what()}`,
      );
    await new Promise((r) => setTimeout(r, 100));
  }
}

interface AutocannonResult {
  requests: { average: number; total: number };
  latency: { p50: number; p99: number };
  duration: number;
  non2xx: number;
  errors: number;
}
type Autocannon = (
  opts: Record<string, unknown>,
  done: (err: Error | null, result?: AutocannonResult) => void,
) => { on(event: "response", fn: () => void): void };

/**
 * One side of an HTTP comparison: each round sends `ops` requests over `CONNECTIONS` connections
 * (autocannon) to `target()`, a GET of a key or a POST of `WRITE_BODY` (a new version), cycling
 * through the keys `path(i)`. Any non-2xx answer or socket error fails the round.
 */
export function loadSide(
  name: string,
  target: () => LoadTarget | undefined,
  method: "POST" | "GET",
  lifecycle: Pick<Subject, "setup" | "teardown"> = {},
  path: (i: number) => string = kvDataPath,
): Subject {
  const autocannon = serverRequire("autocannon") as Autocannon;
  return {
    name,
    op: () => {},
    ...lifecycle,
    async measure(ops: number): Promise<Measurement> {
      const s = target();
      if (s === undefined) throw new Error(`${name}: server not started`);
      let i = 0;
      const cpu0 = cpuSeconds(s.pid);
      const t0 = performance.now();
      let last = t0;
      // autocannon's own duration is rounded up to its 1 s sampling tick in amount mode; the
      // time of the last response is exact.
      const r = await new Promise<AutocannonResult>((resolvePromise, reject) => {
        const instance = autocannon(
          {
            url: s.address,
            connections: CONNECTIONS,
            amount: ops,
            headers: { "x-vault-token": s.token, "content-type": "application/json" },
            requests: [
              {
                method,
                ...(method === "POST" ? { body: WRITE_BODY } : {}),
                setupRequest: (req: Record<string, unknown>) => ({ ...req, path: path(i++) }),
              },
            ],
          },
          (err, res) => (err ? reject(err) : resolvePromise(res as AutocannonResult)),
        );
        instance.on("response", () => {
          last = performance.now();
        });
      });
      if (r.non2xx > 0 || r.errors > 0)
        throw new Error(`${name}: ${r.non2xx} non-2xx responses, ${r.errors} errors`);
      const m: Measurement = {
        opsPerSec: r.requests.total / ((last - t0) / 1000),
        p50Us: r.latency.p50 * 1000,
        p99Us: r.latency.p99 * 1000,
        requests: r.requests.total,
      };
      const rss = rssMiB(s.pid);
      if (rss !== undefined) m.rssMiB = rss;
      const cpu1 = cpuSeconds(s.pid);
      if (cpu0 !== undefined && cpu1 !== undefined) m.cpuUsPerOp = ((cpu1 - cpu0) * 1e6) / r.requests.total;
      return m;
    },
  };
}

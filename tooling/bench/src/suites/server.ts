/**
 * Server suite: KV v2 write and read of a 1 KiB secret over HTTP, 64 connections (autocannon),
 * against a bare fastify route answering the same JSON — target ≥ 0.5×.
 *
 * Each server runs in its own child process (this file, started with BULWARK_BENCH_CHILD set), so
 * the load generator does not share an event loop with the server under test; RSS is the child's.
 * Ours: the built server in dev mode (`startServer({ dev: true })`: memory storage, unsealed,
 * a root token, kv v2 at `secret/`, info-level logging). The baseline: fastify with one POST and
 * one GET route that parse the same body and return the same JSON (as objects fastify serializes).
 *
 * The bench package does not depend on @bulwark/server, fastify or autocannon; they are loaded
 * from apps/server (its dist/ and its node_modules).
 */
import { type ChildProcess, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, resolve } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import type { Comparison, Measurement, Subject } from "../harness.js";

const here = dirname(fileURLToPath(import.meta.url));
const SERVER_DIR = resolve(here, "../../../../apps/server");
const serverRequire = createRequire(resolve(SERVER_DIR, "package.json"));
const CONNECTIONS = 64;
const KEYS = 256;
const VALUE = "v".repeat(1024);

interface ChildInfo {
  address: string;
  token: string;
  /** The exact bodies ours answers with, so the baseline can send the same bytes. */
  writeResponse: string;
  readResponse: string;
}

// ------------------------------------------------------------------------------- child side

async function runChild(kind: string): Promise<void> {
  if (kind === "ours") {
    // The built server, as `bulwark server -dev` runs it: memory storage, unsealed, a root token,
    // kv v2 at secret/, info-level logging.
    const { Writable } = await import("node:stream");
    const server = (await import(resolve(SERVER_DIR, "dist/index.js"))) as {
      startServer(opts: Record<string, unknown>): Promise<{ address: string; dev?: { rootToken: string } }>;
    };
    const quiet = new Writable({ write: (_c, _e, cb) => cb() });
    const s = await server.startServer({
      dev: true,
      devListenAddress: "127.0.0.1:0",
      logLevel: "info",
      out: quiet,
      logDestination: process.stderr,
    });
    const token = s.dev?.rootToken as string;
    const headers = { "x-vault-token": token, "content-type": "application/json" };
    const body = JSON.stringify({ data: { value: VALUE } });
    let writeResponse = "";
    for (let i = 0; i < KEYS; i++) {
      const r = await fetch(`${s.address}/v1/secret/data/k${i}`, { method: "POST", headers, body });
      writeResponse = await r.text();
    }
    const readResponse = await (await fetch(`${s.address}/v1/secret/data/k0`, { headers })).text();
    const info: ChildInfo = { address: s.address, token, writeResponse, readResponse };
    process.stdout.write(`${JSON.stringify(info)}\n`);
  } else {
    const fastify = serverRequire("fastify") as (opts?: object) => {
      post(url: string, h: (req: { body: unknown }) => Promise<unknown>): void;
      get(url: string, h: () => Promise<unknown>): void;
      listen(o: { host: string; port: number }): Promise<string>;
    };
    const info = JSON.parse(process.env.BULWARK_BENCH_RESPONSES as string) as ChildInfo;
    // The same JSON as ours, as objects fastify serializes per request (as ours does).
    const written = JSON.parse(info.writeResponse) as object;
    const read = JSON.parse(info.readResponse) as object;
    // Calibration only: a fixed amount of synchronous work per request (what the server's own
    // work costs the bare route), to show what ratio that much work allows on this machine.
    const busyMs = Number(process.env.BULWARK_BENCH_BUSY_US ?? "0") / 1000;
    const busy = () => {
      if (busyMs === 0) return;
      const until = performance.now() + busyMs;
      while (performance.now() < until) {}
    };
    const app = fastify();
    app.post("/v1/secret/data/*", async (req) => {
      if (typeof req.body !== "object" || req.body === null) throw new Error("bad body");
      busy();
      return written;
    });
    app.get("/v1/secret/data/*", async () => {
      busy();
      return read;
    });
    const address = await app.listen({ host: "127.0.0.1", port: 0 });
    process.stdout.write(`${JSON.stringify({ ...info, address })}\n`);
  }
}

const childKind = process.env.BULWARK_BENCH_CHILD;
if (childKind !== undefined) await runChild(childKind);

// ------------------------------------------------------------------------------- bench side

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

function rssMiB(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m === null ? undefined : Number(m[1]) / 1024;
  } catch {
    return undefined;
  }
}

async function startChild(
  kind: "ours" | "baseline",
  env: Record<string, string> = {},
): Promise<{ child: ChildProcess; info: ChildInfo }> {
  const child = spawn(process.execPath, ["--import", "tsx", fileURLToPath(import.meta.url)], {
    cwd: resolve(here, "../.."),
    env: { ...process.env, ...env, BULWARK_BENCH_CHILD: kind },
    stdio: ["ignore", "pipe", "inherit"],
  });
  // A bench process that dies (an uncaught error, process.exit) takes its server children along:
  // they were left running, orphaned, listening on their ports.
  const kill = () => child.kill("SIGKILL");
  process.once("exit", kill);
  child.once("exit", () => process.removeListener("exit", kill));
  const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
  const info = await new Promise<ChildInfo>((resolvePromise, reject) => {
    const timer = setTimeout(() => {
      kill();
      reject(new Error(`bench ${kind} server was not ready within 60 s`));
    }, 60_000);
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`bench ${kind} server exited (${code}) before it was ready`));
    });
    lines.once("line", (l) => {
      clearTimeout(timer);
      try {
        resolvePromise(JSON.parse(l) as ChildInfo);
      } catch {
        kill();
        reject(new Error(`bench ${kind} server's first line is not its JSON address: ${l}`));
      }
    });
  });
  return { child, info };
}

function side(
  name: string,
  get: () => { child: ChildProcess; info: ChildInfo } | undefined,
  method: "POST" | "GET",
  lifecycle: Pick<Subject, "setup" | "teardown">,
): Subject {
  const autocannon = serverRequire("autocannon") as Autocannon;
  const body = JSON.stringify({ data: { value: VALUE } });
  return {
    name,
    op: () => {},
    ...lifecycle,
    async measure(ops: number): Promise<Measurement> {
      const s = get();
      if (s === undefined) throw new Error(`${name}: server not started`);
      let i = 0;
      const t0 = performance.now();
      let last = t0;
      // autocannon's own duration is rounded up to its 1 s sampling tick in amount mode; the
      // time of the last response is exact.
      const r = await new Promise<AutocannonResult>((resolvePromise, reject) => {
        const instance = autocannon(
          {
            url: s.info.address,
            connections: CONNECTIONS,
            amount: ops,
            headers: { "x-vault-token": s.info.token, "content-type": "application/json" },
            requests: [
              {
                method,
                ...(method === "POST" ? { body } : {}),
                setupRequest: (req: Record<string, unknown>) => ({
                  ...req,
                  path: `/v1/secret/data/k${i++ % KEYS}`,
                }),
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
      };
      const rss = rssMiB(s.child.pid);
      if (rss !== undefined) m.rssMiB = rss;
      return m;
    },
  };
}

export async function suite(): Promise<Comparison[]> {
  let ours: { child: ChildProcess; info: ChildInfo } | undefined;
  let base: { child: ChildProcess; info: ChildInfo } | undefined;
  // Fresh server processes per comparison, stopped when it is done (compare() calls teardown).
  const lifecycle = {
    async setup() {
      ours = await startChild("ours");
      base = await startChild("baseline", { BULWARK_BENCH_RESPONSES: JSON.stringify(ours.info) });
    },
    async teardown() {
      for (const s of [ours, base]) s?.child.kill("SIGTERM");
      ours = undefined;
      base = undefined;
    },
  };
  const noop = { async setup() {}, async teardown() {} };
  // Calibration: the bare route with BUSY_US of synchronous work per request against the bare
  // route. No target: it shows what ratio that much per-request work allows on this machine
  // (the load generator shares its cores), the yardstick for the two rows above.
  let busy: { child: ChildProcess; info: ChildInfo } | undefined;
  const BUSY_US = 20;
  const calibration = {
    async setup() {
      const probe = await startChild("ours");
      probe.child.kill("SIGTERM");
      const responses = JSON.stringify(probe.info);
      busy = await startChild("baseline", {
        BULWARK_BENCH_RESPONSES: responses,
        BULWARK_BENCH_BUSY_US: String(BUSY_US),
      });
      base = await startChild("baseline", { BULWARK_BENCH_RESPONSES: responses });
    },
    async teardown() {
      for (const s of [busy, base]) s?.child.kill("SIGTERM");
      busy = undefined;
      base = undefined;
    },
  };
  const pair = (method: "POST" | "GET") => ({
    // setup/teardown run once per side: the lifecycle is attached to the "ours" side only.
    ours: side(`bulwark ${method === "POST" ? "write" : "read"}`, () => ours, method, lifecycle),
    baseline: side(`bare fastify ${method}`, () => base, method, noop),
  });
  return [
    {
      name: "server KV v2 write 1 KiB, 64 connections (HTTP) vs bare fastify route",
      target: 0.5,
      ops: 20_000,
      rounds: 5,
      ...pair("POST"),
    },
    {
      name: "server KV v2 read 1 KiB, 64 connections (HTTP) vs bare fastify route",
      target: 0.5,
      ops: 30_000,
      rounds: 5,
      ...pair("GET"),
    },
    {
      name: `calibration: bare fastify GET + ${BUSY_US} µs of work per request vs bare fastify GET`,
      ops: 30_000,
      rounds: 3,
      ours: side(`bare fastify GET + ${BUSY_US} µs`, () => busy, "GET", calibration),
      baseline: side("bare fastify GET", () => base, "GET", noop),
    },
  ];
}

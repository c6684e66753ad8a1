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
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import type { ProcessGroup } from "../../../../packages/core/test/support/processes.js";
import type { Comparison, Subject } from "../harness.js";
import {
  firstJsonLine,
  KEYS,
  kvDataPath,
  type LoadTarget,
  loadSide,
  SERVER_DIR,
  serverRequire,
  startGroup,
  WRITE_BODY,
} from "../http-load.js";

const here = dirname(fileURLToPath(import.meta.url));

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
    const body = WRITE_BODY;
    let writeResponse = "";
    for (let i = 0; i < KEYS; i++) {
      const r = await fetch(`${s.address}${kvDataPath(i)}`, { method: "POST", headers, body });
      writeResponse = await r.text();
    }
    const readResponse = await (await fetch(`${s.address}${kvDataPath(0)}`, { headers })).text();
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

interface Child {
  group: ProcessGroup;
  info: ChildInfo;
}

async function startChild(kind: "ours" | "baseline", env: Record<string, string> = {}): Promise<Child> {
  const group = startGroup(
    process.execPath,
    ["--import", "tsx", fileURLToPath(import.meta.url)],
    `bench ${kind} server`,
    {
      cwd: resolve(here, "../.."),
      env: { ...process.env, ...env, BULWARK_BENCH_CHILD: kind },
    },
  );
  return { group, info: await firstJsonLine<ChildInfo>(group) };
}

/** The load target of a started child (its address, token, and pid for the RSS column). */
const targetOf = (c: Child | undefined): LoadTarget | undefined =>
  c === undefined ? undefined : { address: c.info.address, token: c.info.token, pid: c.group.pid };

function side(
  name: string,
  get: () => Child | undefined,
  method: "POST" | "GET",
  lifecycle: Pick<Subject, "setup" | "teardown">,
): Subject {
  return loadSide(name, () => targetOf(get()), method, lifecycle);
}

export async function suite(): Promise<Comparison[]> {
  let ours: Child | undefined;
  let base: Child | undefined;
  // Fresh server processes per comparison, stopped when it is done (compare() calls teardown).
  const lifecycle = {
    async setup() {
      ours = await startChild("ours");
      base = await startChild("baseline", { BULWARK_BENCH_RESPONSES: JSON.stringify(ours.info) });
    },
    async teardown() {
      await Promise.all([ours, base].map((s) => s?.group.stop(5_000)));
      ours = undefined;
      base = undefined;
    },
  };
  const noop = { async setup() {}, async teardown() {} };
  // Calibration: the bare route with BUSY_US of synchronous work per request against the bare
  // route. No target: it shows what ratio that much per-request work allows on this machine
  // (the load generator shares its cores), the yardstick for the two rows above.
  let busy: Child | undefined;
  const BUSY_US = 20;
  const calibration = {
    async setup() {
      const probe = await startChild("ours");
      await probe.group.stop(5_000);
      const responses = JSON.stringify(probe.info);
      busy = await startChild("baseline", {
        BULWARK_BENCH_RESPONSES: responses,
        BULWARK_BENCH_BUSY_US: String(BUSY_US),
      });
      base = await startChild("baseline", { BULWARK_BENCH_RESPONSES: responses });
    },
    async teardown() {
      await Promise.all([busy, base].map((s) => s?.group.stop(5_000)));
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

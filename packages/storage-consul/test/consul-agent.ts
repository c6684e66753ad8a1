/**
 * Starts and stops real Consul agents for tests and benchmarks: a `-dev` agent, a persistent
 * single server (survives restarts), and a 3-server cluster on 127.0.0.2–127.0.0.4. Every agent
 * gets free loopback ports (DNS and gRPC disabled) and its own temp data dir; `stop()` kills the
 * process and removes the dir. Each agent runs in its own process group (packages/core/test/support/
 * processes.ts), in the scope of the test — or the `beforeAll` — that started it, restarts included:
 * whatever way that test or file ends, the agent is stopped (SIGKILL after a grace).
 *
 * No vitest imports here: the benchmark suite reuses this file.
 */
import { execFileSync } from "node:child_process";
import { createSocket } from "node:dgram";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import {
  currentScope,
  type ProcessGroup,
  type Scope,
  spawnGroup,
} from "../../core/test/support/processes.js";

const here = dirname(fileURLToPath(import.meta.url));
/** `tooling/services/install.sh` puts the binary here; `CONSUL_BIN` overrides it. */
export const CONSUL_BIN = process.env.CONSUL_BIN ?? resolve(here, "../../../tooling/services/.bin/consul");

/** Whether the Consul binary is installed, and if not, the one-line reason. */
export function consulAvailability(): { available: true } | { available: false; reason: string } {
  if (existsSync(CONSUL_BIN)) return { available: true };
  return {
    available: false,
    reason: `Consul binary not found at ${CONSUL_BIN}: run tooling/services/install.sh (or set CONSUL_BIN)`,
  };
}

const dataDirs = new Set<string>();
let exitHookInstalled = false;
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // A crashed or interrupted run must not leave data dirs behind (processes.ts kills the agents).
  process.once("exit", () => {
    for (const d of dataDirs) rmSync(d, { recursive: true, force: true });
  });
}

async function freeTcpPort(host: string): Promise<{ port: number; close: () => Promise<void> }> {
  const server = createServer();
  await new Promise<void>((res, rej) => {
    server.once("error", rej);
    server.listen(0, host, () => res());
  });
  const addr = server.address();
  if (addr === null || typeof addr === "string") throw new Error("no port from listen(0)");
  return { port: addr.port, close: () => new Promise((res) => server.close(() => res())) };
}

async function udpFree(host: string, port: number): Promise<boolean> {
  const sock = createSocket("udp4");
  try {
    await new Promise<void>((res, rej) => {
      sock.once("error", rej);
      sock.bind(port, host, () => res());
    });
    return true;
  } catch {
    return false;
  } finally {
    await new Promise<void>((res) => {
      try {
        sock.close(() => res());
      } catch {
        res();
      }
    });
  }
}

/**
 * `count` distinct ports free on `host` for TCP and (serf gossips over both) UDP. The listeners
 * stay open until all are picked so one call never returns a port twice.
 */
export async function freePorts(host: string, count: number): Promise<number[]> {
  const held: { port: number; close: () => Promise<void> }[] = [];
  try {
    while (held.length < count) {
      const p = await freeTcpPort(host);
      if (await udpFree(host, p.port)) held.push(p);
      else await p.close();
    }
    return held.map((p) => p.port);
  } finally {
    await Promise.all(held.map((p) => p.close()));
  }
}

export interface AgentPorts {
  http: number;
  /** Only when started with `tls`. */
  https?: number;
  serfLan: number;
  serfWan: number;
  server: number;
}

export interface StartOptions {
  /** `dev` (in-memory, instant leader) or `server` (raft on disk, survives restarts). Default `dev`. */
  mode?: "dev" | "server";
  /** Loopback address to bind. Default 127.0.0.1. */
  bindIp?: string;
  /** Extra HCL appended to the agent's config file. */
  hcl?: string;
  /** Node name; default a unique one. */
  nodeName?: string;
  /** Servers expected in the cluster (`server` mode). Default 1. */
  bootstrapExpect?: number;
  /** `ip:serfLanPort` of agents to join (`server` mode). */
  retryJoin?: string[];
  /** Preset ports (a cluster allocates them up front to wire up -retry-join). */
  ports?: AgentPorts;
  /** How long to wait for the HTTP API and a leader. Default 30 s. */
  readyTimeoutMs?: number;
  /** Skip waiting for a leader (cluster members wait together instead). */
  waitForLeader?: boolean;
  /** ACL token for the readiness probe when ACLs default to deny. */
  token?: string;
  /** Also serve HTTPS with this server certificate (PEM files). */
  tls?: { certFile: string; keyFile: string; caFile: string };
  /** Also serve the HTTP API on a unix socket in the data dir. */
  unixSocket?: boolean;
}

let agentCounter = 0;

/** One Consul agent process. */
export class ConsulAgent {
  readonly bindIp: string;
  readonly ports: AgentPorts;
  readonly nodeName: string;
  readonly dataDir: string;
  readonly mode: "dev" | "server";
  readonly #args: string[];
  readonly #opts: StartOptions;
  /** Where every (re)start of this agent belongs: the test or file that started it. */
  readonly #scope: Scope = currentScope();
  #group: ProcessGroup | undefined;

  private constructor(opts: StartOptions, ports: AgentPorts) {
    this.#opts = opts;
    this.mode = opts.mode ?? "dev";
    this.bindIp = opts.bindIp ?? "127.0.0.1";
    this.ports = ports;
    this.nodeName = opts.nodeName ?? `bulwark-test-${process.pid}-${++agentCounter}`;
    this.dataDir = mkdtempSync(join(tmpdir(), "bulwark-consul-"));
    dataDirs.add(this.dataDir);
    installExitHook();
    const hcl = [
      // Short session TTLs make the lock-loss tests fast; Consul's own minimum is 10 s.
      'session_ttl_min = "1s"',
      `ports { https = ${ports.https ?? -1} }`,
      opts.tls === undefined
        ? ""
        : [
            `cert_file = ${JSON.stringify(opts.tls.certFile)}`,
            `key_file = ${JSON.stringify(opts.tls.keyFile)}`,
            `ca_file = ${JSON.stringify(opts.tls.caFile)}`,
            "verify_incoming = false",
          ].join("\n"),
      opts.unixSocket
        ? `addresses { http = ${JSON.stringify(`${this.bindIp} unix://${this.socketPath}`)} }`
        : "",
      opts.hcl ?? "",
    ].join("\n");
    writeFileSync(join(this.dataDir, "config.hcl"), hcl);
    const common = [
      `-bind=${this.bindIp}`,
      `-client=${this.bindIp}`,
      `-node=${this.nodeName}`,
      `-http-port=${ports.http}`,
      "-dns-port=-1",
      "-grpc-port=-1",
      `-serf-lan-port=${ports.serfLan}`,
      `-serf-wan-port=${ports.serfWan}`,
      `-server-port=${ports.server}`,
      `-config-file=${join(this.dataDir, "config.hcl")}`,
      "-log-level=info",
    ];
    if (this.mode === "dev") {
      this.#args = ["agent", "-dev", ...common];
    } else {
      const raft = join(this.dataDir, "raft-data");
      writeFileSync(join(this.dataDir, "perf.hcl"), "performance { raft_multiplier = 1 }\n");
      this.#args = [
        "agent",
        ...common,
        "-server",
        `-bootstrap-expect=${opts.bootstrapExpect ?? 1}`,
        `-data-dir=${raft}`,
        `-config-file=${join(this.dataDir, "perf.hcl")}`,
        "-disable-host-node-id",
        ...(opts.retryJoin ?? []).map((j) => `-retry-join=${j}`),
        "-retry-interval=1s",
      ];
    }
  }

  /** Starts an agent and waits until its HTTP API answers (and, by default, it knows a leader). */
  static async start(opts: StartOptions = {}): Promise<ConsulAgent> {
    const bindIp = opts.bindIp ?? "127.0.0.1";
    const ports = opts.ports ?? (await allocatePorts(bindIp));
    if (opts.tls !== undefined && ports.https === undefined) {
      [ports.https] = (await freePorts(bindIp, 1)) as [number];
    }
    const agent = new ConsulAgent(opts, ports);
    try {
      await agent.#spawn();
      if (opts.waitForLeader !== false) await agent.waitForLeader(opts.readyTimeoutMs ?? 30_000);
    } catch (err) {
      await agent.stop();
      throw err;
    }
    return agent;
  }

  /** `host:port` of the HTTP API (the form Vault's `address` takes). */
  get address(): string {
    return `${this.bindIp}:${this.ports.http}`;
  }

  get url(): string {
    return `http://${this.address}`;
  }

  /** `https://ip:port` when started with `tls`. */
  get httpsUrl(): string {
    if (this.ports.https === undefined) throw new Error("this agent was started without tls");
    return `https://${this.bindIp}:${this.ports.https}`;
  }

  /** The HTTP API's unix socket (served when started with `unixSocket`). */
  get socketPath(): string {
    return join(this.dataDir, "http.sock");
  }

  /** `ip:serfLanPort`, what another agent's -retry-join needs. */
  get serfAddress(): string {
    return `${this.bindIp}:${this.ports.serfLan}`;
  }

  /** `ip:serverPort`, how raft (and /v1/status/leader) names this server. */
  get raftAddress(): string {
    return `${this.bindIp}:${this.ports.server}`;
  }

  get running(): boolean {
    return this.#group?.running ?? false;
  }

  /** The agent's log so far (for failure messages). */
  log(): string {
    try {
      return readFileSync(join(this.dataDir, "agent.log"), "utf8");
    } catch {
      return "";
    }
  }

  async #spawn(): Promise<void> {
    const { openSync, closeSync } = await import("node:fs");
    const fd = openSync(join(this.dataDir, "agent.log"), "a");
    let group: ProcessGroup;
    try {
      group = spawnGroup(CONSUL_BIN, this.#args, {
        stdio: ["ignore", fd, fd],
        scope: this.#scope,
        description: `consul agent ${this.nodeName}`,
      });
    } finally {
      closeSync(fd);
    }
    this.#group = group;
    await new Promise<void>((res, rej) => {
      group.child.once("spawn", () => res());
      group.child.once("error", rej);
    });
  }

  /** Polls until the HTTP API answers with a known leader. */
  async waitForLeader(timeoutMs = 30_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    let last = "";
    while (Date.now() < deadline) {
      if (!this.running) {
        throw new Error(`consul agent ${this.nodeName} exited during start-up:\n${this.log().slice(-3000)}`);
      }
      try {
        const res = await fetch(`${this.url}/v1/status/leader`, { signal: AbortSignal.timeout(2000) });
        const body = (await res.json()) as string;
        if (res.ok && body !== "") {
          // A leader is elected; make sure it also serves KV (the first write can lag the election).
          const headers: Record<string, string> = {};
          if (this.#opts.token !== undefined) headers["x-consul-token"] = this.#opts.token;
          const kv = await fetch(`${this.url}/v1/kv/bulwark-readiness-probe`, {
            headers,
            signal: AbortSignal.timeout(2000),
          });
          await kv.arrayBuffer();
          if (kv.status === 404 || kv.status === 200) return body;
          last = `kv probe answered ${kv.status}`;
        } else {
          last = `leader ${JSON.stringify(body)}`;
        }
      } catch (err) {
        last = String(err);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(
      `consul agent ${this.nodeName} not ready after ${timeoutMs} ms (${last}):\n${this.log().slice(-3000)}`,
    );
  }

  /**
   * Stops the process (`signal`, default SIGTERM, to its group; SIGKILL after 5 s) but keeps the
   * data dir: `restart()` reuses it.
   */
  async halt(signal: NodeJS.Signals = "SIGTERM"): Promise<void> {
    await this.#group?.stop(5000, signal);
  }

  /** Starts the process again with the same ports and data dir. */
  async restart(opts: { waitForLeader?: boolean; timeoutMs?: number } = {}): Promise<void> {
    await this.halt();
    await this.#spawn();
    if (opts.waitForLeader !== false) await this.waitForLeader(opts.timeoutMs ?? 30_000);
  }

  /** Stops the process and removes the data dir. */
  async stop(): Promise<void> {
    await this.halt();
    rmSync(this.dataDir, { recursive: true, force: true });
    dataDirs.delete(this.dataDir);
  }
}

async function allocatePorts(ip: string): Promise<AgentPorts> {
  const [http, serfLan, serfWan, server] = (await freePorts(ip, 4)) as [number, number, number, number];
  return { http, serfLan, serfWan, server };
}

/** Three (by default) Consul servers on 127.0.0.2, 127.0.0.3, 127.0.0.4 forming one cluster. */
export class ConsulCluster {
  readonly agents: ConsulAgent[];

  private constructor(agents: ConsulAgent[]) {
    this.agents = agents;
  }

  static async start(
    ips: readonly string[] = ["127.0.0.2", "127.0.0.3", "127.0.0.4"],
  ): Promise<ConsulCluster> {
    const ports = await Promise.all(ips.map((ip) => allocatePorts(ip)));
    const serf = ips.map((ip, i) => `${ip}:${(ports[i] as AgentPorts).serfLan}`);
    const started: ConsulAgent[] = [];
    try {
      for (const [i, ip] of ips.entries()) {
        started.push(
          await ConsulAgent.start({
            mode: "server",
            bindIp: ip,
            ports: ports[i] as AgentPorts,
            bootstrapExpect: ips.length,
            retryJoin: serf.filter((_, j) => j !== i),
            waitForLeader: false,
            nodeName: `bulwark-cluster-${process.pid}-${i + 1}`,
          }),
        );
      }
      await Promise.all(started.map((a) => a.waitForLeader(60_000)));
    } catch (err) {
      await Promise.all(started.map((a) => a.stop()));
      throw err;
    }
    return new ConsulCluster(started);
  }

  /** The current raft leader, asked of any running member. */
  async leader(timeoutMs = 30_000): Promise<ConsulAgent> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      for (const a of this.agents.filter((x) => x.running)) {
        try {
          const res = await fetch(`${a.url}/v1/status/leader`, { signal: AbortSignal.timeout(2000) });
          const addr = (await res.json()) as string;
          const leader = this.agents.find((x) => x.raftAddress === addr && x.running);
          if (leader !== undefined) return leader;
        } catch {
          // Try the next member.
        }
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`no Consul leader among ${this.agents.map((a) => a.nodeName).join(", ")}`);
  }

  async stop(): Promise<void> {
    await Promise.all(this.agents.map((a) => a.stop()));
  }
}

/**
 * A CA and a server certificate (SANs: localhost, 127.0.0.1) made with `consul tls`, in a new
 * temp dir; remove `dir` when done.
 */
export function makeConsulCerts(): { dir: string; caFile: string; certFile: string; keyFile: string } {
  const dir = mkdtempSync(join(tmpdir(), "bulwark-consul-tls-"));
  const run = (args: string[]) =>
    execFileSync(CONSUL_BIN, args, { cwd: dir, stdio: "pipe", timeout: 30_000 });
  run(["tls", "ca", "create"]);
  run(["tls", "cert", "create", "-server", "-dc", "dc1"]);
  return {
    dir,
    caFile: join(dir, "consul-agent-ca.pem"),
    certFile: join(dir, "dc1-server-consul-0.pem"),
    keyFile: join(dir, "dc1-server-consul-0-key.pem"),
  };
}

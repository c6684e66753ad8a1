/**
 * `bulwark server` processes for the audit device end-to-end suites (audit-devices.test.ts,
 * audit-ha.test.ts): one node per call, with the config text the test gives (`{{PORT}}` is
 * replaced by the node's port), in the working directory the test gives (an HA pair whose nodes
 * share one config block `file_path = "audit.log"` keeps node-local logs that way, as nodes on two
 * hosts would), its pid known (the syslog record names it; SIGHUP goes to it) and its config file
 * rewritable (a declarative `audit` block added, SIGHUP).
 *
 * Every process runs in its own process group (packages/core/test/support/processes.ts): `stop()`
 * sends SIGTERM and SIGKILLs the group after a grace, and whatever way the test ends the vitest
 * setup file stops what is left.
 */
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { request as httpRequest } from "node:http";
import { join } from "node:path";
import { type ProcessGroup, spawnGroup } from "../../../../packages/core/test/support/processes.js";
import { BIN, collectOutput, freePort, SERVER_DIR, waitServing } from "./server-process.js";

// biome-ignore lint/suspicious/noExplicitAny: JSON answers and audit records, checked key by key
export type Json = any;

export interface Answer {
  status: number;
  json: Json;
  /** The body as received. */
  text: string;
  /** How long the request took, in milliseconds. */
  ms: number;
}

export interface AuditNode {
  address: string;
  port: number;
  /** The server's pid (the process that writes `tag[pid]` in syslog records). */
  pid: number;
  group: ProcessGroup;
  configFile: string;
  /** stdout and stderr of the server so far. */
  output(): string;
  /** Rewrites the config file (`{{PORT}}` replaced), for a SIGHUP that re-reads it. */
  writeConfig(config: string): void;
  /** SIGHUP to the server, then waits until it has logged `done` once more than before. */
  reload(done: RegExp, timeoutMs?: number): Promise<void>;
  /** One API request; `token: ""` sends none; `headers` are sent besides the token's. */
  http(
    method: string,
    path: string,
    body?: unknown,
    token?: string,
    headers?: Record<string, string>,
  ): Promise<Answer>;
  /** SIGTERM (graceful: the HA lock is released), SIGKILL to the group after a grace. */
  stop(): Promise<void>;
  /** The root token, once {@link initNode} has run. */
  rootToken: string;
}

function count(text: string, re: RegExp): number {
  return text.match(new RegExp(re.source, "g"))?.length ?? 0;
}

/**
 * Starts `bulwark server -config <dir>/node-<port>.hcl` with `cwd` as its working directory (the
 * server's own dir by default). Resolves once sys/health answers with the node's status.
 */
export async function startAuditNode(opts: {
  config: string;
  dir: string;
  cwd?: string;
}): Promise<AuditNode> {
  const port = await freePort();
  const configFile = join(opts.dir, `node-${port}.hcl`);
  const render = (config: string) => config.replaceAll("{{PORT}}", String(port));
  writeFileSync(configFile, render(opts.config));
  const group = spawnGroup(process.execPath, [BIN, "server", "-config", configFile], {
    cwd: opts.cwd ?? SERVER_DIR,
    env: { ...process.env },
    stdio: ["ignore", "pipe", "pipe"],
    description: `bulwark server on port ${port} (audit e2e)`,
  });
  const output = collectOutput(group);
  const address = `http://127.0.0.1:${port}`;
  const node: AuditNode = {
    address,
    port,
    pid: group.pid,
    group,
    configFile,
    rootToken: "",
    output,
    writeConfig: (config) => writeFileSync(configFile, render(config)),
    async reload(done, timeoutMs = 30_000) {
      const before = count(output(), done);
      process.kill(group.pid, "SIGHUP");
      const deadline = Date.now() + timeoutMs;
      while (count(output(), done) <= before) {
        if (!group.running) throw new Error(`bulwark server exited after SIGHUP:\n${output()}`);
        if (Date.now() > deadline)
          throw new Error(`no ${done} in the server's output within ${timeoutMs} ms of SIGHUP:\n${output()}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    async http(method, path, body, token = node.rootToken, headers = {}) {
      const started = performance.now();
      const res = await fetch(`${address}/v1/${path}`, {
        method,
        headers: {
          ...(token === "" ? {} : { "X-Vault-Token": token }),
          "Content-Type": "application/json",
          ...headers,
        },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        signal: AbortSignal.timeout(60_000),
      });
      const text = await res.text();
      const ms = performance.now() - started;
      let json: Json;
      try {
        json = text === "" ? undefined : JSON.parse(text);
      } catch {
        json = `not JSON: ${text}`;
      }
      return { status: res.status, json, text, ms };
    },
    async stop() {
      await group.stop(15_000);
    },
  };
  await waitServing(group, address, output, "bulwark server");
  return node;
}

export interface InitKeys {
  rootToken: string;
  /** The one unseal share, base64 and hex: both must stay out of the logs. */
  unsealKey: string;
  unsealKeyHex: string;
  /** The root token's accessor (hashed in the records, as hmac_accessor defaults to true). */
  rootAccessor: string;
}

/** `sys/init` with one share, then unseals; sets `node.rootToken`. */
export async function initNode(node: AuditNode): Promise<InitKeys> {
  const init = await node.http("PUT", "sys/init", { secret_shares: 1, secret_threshold: 1 }, "");
  if (init.status !== 200)
    throw new Error(`sys/init answered ${init.status}: ${init.text}\n${node.output()}`);
  const keys: InitKeys = {
    rootToken: init.json.root_token,
    unsealKey: init.json.keys_base64[0],
    unsealKeyHex: init.json.keys[0],
    rootAccessor: "",
  };
  await unsealNode(node, keys);
  // An HA node answers 503 until it has taken the lock and become active.
  const deadline = Date.now() + 60_000;
  for (;;) {
    const self = await node.http("GET", "auth/token/lookup-self");
    if (self.status === 200) {
      keys.rootAccessor = self.json.data.accessor;
      break;
    }
    if (self.status !== 503 || Date.now() > deadline)
      throw new Error(`auth/token/lookup-self answered ${self.status}: ${self.text}\n${node.output()}`);
    await new Promise((r) => setTimeout(r, 200));
  }
  return keys;
}

export async function unsealNode(node: AuditNode, keys: InitKeys): Promise<void> {
  const u = await node.http("PUT", "sys/unseal", { key: keys.unsealKey }, "");
  if (u.json?.sealed !== false)
    throw new Error(`sys/unseal answered ${u.status}: ${u.text}\n${node.output()}`);
  node.rootToken = keys.rootToken;
}

/** Polls sys/health until `ok(status, body)` holds (an HA node becoming active or standby). */
export async function waitForHealth(
  node: AuditNode,
  ok: (status: number, body: Json) => boolean,
  what: string,
  timeoutMs = 60_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = "";
  for (;;) {
    try {
      const r = await node.http("GET", "sys/health", undefined, "");
      last = `${r.status} ${r.text}`;
      if (ok(r.status, r.json)) return;
    } catch (err) {
      last = (err as Error).message;
    }
    if (Date.now() > deadline)
      throw new Error(
        `${node.address} did not become ${what} within ${timeoutMs} ms (last: ${last}):\n${node.output()}`,
      );
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Mounts KV v2 at `secret/` (a config-file server mounts nothing there). */
export async function mountKv2(node: AuditNode): Promise<void> {
  const r = await node.http("POST", "sys/mounts/secret", { type: "kv", options: { version: "2" } });
  if (r.status !== 204 && r.status !== 200)
    throw new Error(
      `mounting kv v2 at secret/ answered ${r.status}: ${r.text}\n${node.output().slice(-4000)}`,
    );
}

/** The storage, listener and Vault settings of a single test node, before its audit blocks. */
export function baseConfig(dataDir: string): string {
  return `storage "file" {
  path = "${dataDir}"
}
listener "tcp" {
  address     = "127.0.0.1:{{PORT}}"
  tls_disable = true
}
disable_mlock = true
api_addr = "http://127.0.0.1:{{PORT}}"
`;
}

/** One `audit "<type>" "<path>"` block with string options. */
export function auditBlock(type: string, path: string, options: Record<string, string>): string {
  const lines = Object.entries(options).map(([k, v]) => `    ${k} = ${JSON.stringify(v)}`);
  return `audit "${type}" "${path}" {\n  options {\n${lines.join("\n")}\n  }\n}\n`;
}

/**
 * The records of an audit log, one JSON object per line. A line that is not JSON (a torn record)
 * throws, naming the file and the line number.
 */
export function readRecords(file: string): Json[] {
  if (!existsSync(file)) return [];
  return parseLines(readFileSync(file, "utf8"), file);
}

export function parseLines(text: string, where: string): Json[] {
  const lines = text.split("\n");
  if (lines.at(-1) === "") lines.pop();
  return lines.map((line, i) => {
    try {
      return JSON.parse(line);
    } catch {
      throw new Error(`${where}: line ${i + 1} is not a JSON record (torn?): ${line.slice(0, 200)}`);
    }
  });
}

/** The records of requests to `path` (the request's path as logged). */
export function recordsFor(records: Json[], path: string): Json[] {
  return records.filter((r) => r?.request?.path === path);
}

/**
 * Which of `secrets` appear in plaintext in which of `texts` — by index and name, never the value
 * (a failure message must not print a secret either). Empty when none does.
 */
export function plaintextSecrets(texts: Record<string, string>, secrets: readonly string[]): string[] {
  const found: string[] = [];
  for (const [name, text] of Object.entries(texts)) {
    secrets.forEach((s, i) => {
      if (s.length < 8) throw new Error(`secret #${i} is too short to scan for`);
      if (text.includes(s)) found.push(`secret #${i} in ${name}`);
    });
  }
  return found;
}

/**
 * One API request from a chosen source address and port (node:http's localAddress/localPort), so
 * a test knows the `remote_address`/`remote_port` the audit record should name.
 */
export async function requestFrom(
  node: AuditNode,
  from: { address: string; port: number },
  method: string,
  path: string,
  body?: unknown,
): Promise<Answer> {
  const started = performance.now();
  const payload = body === undefined ? undefined : JSON.stringify(body);
  const url = new URL(`${node.address}/v1/${path}`);
  return new Promise<Answer>((resolve, reject) => {
    const req = httpRequest(
      {
        host: url.hostname,
        port: url.port,
        path: url.pathname,
        method,
        localAddress: from.address,
        localPort: from.port,
        agent: false,
        headers: {
          "X-Vault-Token": node.rootToken,
          "Content-Type": "application/json",
          ...(payload === undefined ? {} : { "Content-Length": Buffer.byteLength(payload) }),
        },
        timeout: 60_000,
      },
      (res) => {
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (d: string) => {
          text += d;
        });
        res.on("end", () => {
          let json: Json;
          try {
            json = text === "" ? undefined : JSON.parse(text);
          } catch {
            json = `not JSON: ${text}`;
          }
          resolve({ status: res.statusCode ?? 0, json, text, ms: performance.now() - started });
        });
        res.on("error", reject);
      },
    );
    req.on("timeout", () => req.destroy(new Error(`${method} ${path} timed out`)));
    req.on("error", reject);
    req.end(payload);
  });
}

/**
 * GETs `path` until the node refuses it with 500 (its only audit device's disk is full): a tmpfs
 * allocates whole pages, so the log's last page may still take a few records. Returns how many
 * reads were still served; fails past 100 (the disk was not full after all).
 */
export async function readUntilRefused(node: AuditNode, path: string): Promise<number> {
  let absorbed = 0;
  for (;;) {
    const r = await node.http("GET", path);
    if (r.status !== 200) {
      if (r.status !== 500) throw new Error(`GET ${path} answered ${r.status}, not 500: ${r.text}`);
      return absorbed;
    }
    absorbed++;
    if (absorbed >= 100) throw new Error("reads kept succeeding on a full disk");
  }
}

/**
 * One data set, two servers: starts a real OpenBao 2.6.2 (`tooling/services/.bin/bao server`) or
 * `bulwark server` on the same storage (a file directory, or Consul for Bulwark: OpenBao has no
 * Consul backend) with the same seal (Shamir, or the static seal with the same key), one at a
 * time, and talks to either over HTTP or through the stock `bao` CLI.
 *
 * Every process runs in its own process group (packages/core/test/support/processes.ts): `stop()`
 * sends SIGTERM and SIGKILLs the group after a grace, and whatever way the test ends the vitest
 * setup file stops what is left.
 */
import { writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { runGroup, spawnGroup } from "../../../../packages/core/test/support/processes.js";
import { collectOutput, freePort, SERVER_DIR, startServerProcess, waitServing } from "./server-process.js";

export const BAO = resolve(SERVER_DIR, "../../tooling/services/.bin/bao");
export const CONSUL = resolve(SERVER_DIR, "../../tooling/services/.bin/consul");

export type StorageSpec = { type: "file"; path: string } | { type: "consul"; address: string; path: string };
/** `key` is 64 hex characters; both servers take it as written. */
export type SealSpec = { type: "shamir" } | { type: "static"; keyId: string; key: string };

export type Kind = "openbao" | "bulwark";

export interface VaultNode {
  kind: Kind;
  address: string;
  /** stdout and stderr of the server so far (for failure messages). */
  output(): string;
  stop(): Promise<void>;
}

/** A server that takes this long to answer sys/health after spawning is reported as hung. */
const START_TIMEOUT_MS = 90_000;

function sealBlock(kind: Kind, seal: SealSpec): string {
  if (seal.type === "shamir") return "";
  // The same block for both servers (Bulwark reads OpenBao's static-seal settings). Bulwark also
  // gets Vault Enterprise's disable_sealwrap: OpenBao has no seal wrap, so a data set it must read
  // may hold no seal-wrapped value (Bulwark would otherwise wrap its keyring with the seal).
  const block = `seal "static" {\n  current_key_id = "${seal.keyId}"\n  current_key = "${seal.key}"\n}\n`;
  return kind === "openbao" ? block : `${block}disable_sealwrap = true\n`;
}

function storageBlock(storage: StorageSpec): string {
  return storage.type === "file"
    ? `storage "file" {\n  path = "${storage.path}"\n}\n`
    : `storage "consul" {\n  address = "${storage.address}"\n  path = "${storage.path}"\n}\n`;
}

/** `extraConfig`: more top-level HCL for the config file (openbao-scratch.ts: raw_storage_endpoint). */
export async function startOpenBao(
  workDir: string,
  storage: StorageSpec,
  seal: SealSpec,
  extraConfig = "",
): Promise<VaultNode> {
  if (storage.type !== "file") throw new Error("OpenBao 2.6 has no consul storage backend");
  const port = await freePort();
  const config = join(workDir, `openbao-${port}.hcl`);
  writeFileSync(
    config,
    `${storageBlock(storage)}listener "tcp" {
  address     = "127.0.0.1:${port}"
  tls_disable = true
}
disable_mlock = true
api_addr = "http://127.0.0.1:${port}"
${sealBlock("openbao", seal)}${extraConfig}`,
  );
  const { address, output, stop } = await spawnOpenBao(workDir, port, config);
  return { kind: "openbao", address, output, stop };
}

/**
 * `bao server -config <configFile>` (listening on `port`) in its own process group, with `HOME` in
 * `workDir`; resolves once it serves sys/health.
 */
export async function spawnOpenBao(
  workDir: string,
  port: number,
  configFile: string,
): Promise<{ address: string; output(): string; stop(): Promise<void> }> {
  const group = spawnGroup(BAO, ["server", "-config", configFile], {
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: workDir },
    stdio: ["ignore", "pipe", "pipe"],
    description: `openbao server on port ${port}`,
  });
  const output = collectOutput(group);
  const address = `http://127.0.0.1:${port}`;
  await waitServing(group, address, output, "openbao server", START_TIMEOUT_MS);
  return {
    address,
    output,
    async stop() {
      await group.stop(10_000);
    },
  };
}

export async function startBulwark(
  workDir: string,
  storage: StorageSpec,
  seal: SealSpec,
): Promise<VaultNode> {
  const p = await startServerProcess({
    dir: workDir,
    config: `${storageBlock(storage)}listener "tcp" {
  address     = "127.0.0.1:{{PORT}}"
  tls_disable = true
}
disable_mlock = true
api_addr = "http://127.0.0.1:{{PORT}}"
${sealBlock("bulwark", seal)}`,
  });
  return {
    kind: "bulwark",
    address: p.address,
    output: p.output,
    async stop() {
      await p.stop(15_000);
    },
  };
}

export function startNode(
  kind: Kind,
  workDir: string,
  storage: StorageSpec,
  seal: SealSpec,
): Promise<VaultNode> {
  return kind === "openbao" ? startOpenBao(workDir, storage, seal) : startBulwark(workDir, storage, seal);
}

export interface ApiAnswer {
  status: number;
  body: unknown;
}

/** One Vault API request; the body is parsed as JSON when there is one. */
export async function api(
  node: VaultNode,
  method: string,
  path: string,
  opts: { token?: string; body?: unknown } = {},
): Promise<ApiAnswer> {
  const res = await fetch(`${node.address}/v1/${path}`, {
    method,
    headers: {
      ...(opts.token === undefined ? {} : { "X-Vault-Token": opts.token }),
      ...(opts.body === undefined ? {} : { "content-type": "application/json" }),
    },
    ...(opts.body === undefined ? {} : { body: JSON.stringify(opts.body) }),
    signal: AbortSignal.timeout(30_000),
  });
  const text = await res.text();
  let body: unknown = text;
  if (text !== "") {
    try {
      body = JSON.parse(text);
    } catch {
      body = `not JSON: ${text}`;
    }
  }
  return { status: res.status, body };
}

/** Like {@link api}, but a status outside 2xx throws with the answer (for the setup steps). */
export async function apiOk(
  node: VaultNode,
  method: string,
  path: string,
  opts: { token?: string; body?: unknown } = {},
): Promise<unknown> {
  const r = await api(node, method, path, opts);
  if (r.status < 200 || r.status > 299) {
    throw new Error(`${node.kind}: ${method} ${path} answered ${r.status}: ${JSON.stringify(r.body)}`);
  }
  return r.body;
}

export interface CliAnswer {
  code: number | null;
  stdout: unknown;
  stderr: string;
}

/** The stock `bao` CLI against `node` (JSON output parsed when it is JSON). */
export async function baoCli(
  node: VaultNode,
  token: string,
  args: string[],
  home: string,
): Promise<CliAnswer> {
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? "/usr/bin:/bin",
    HOME: home,
    VAULT_ADDR: node.address,
    BAO_ADDR: node.address,
    VAULT_TOKEN: token,
    BAO_TOKEN: token,
  };
  const r = await runGroup(BAO, args, { env, timeoutMs: 60_000, description: `bao ${args.join(" ")}` });
  let stdout: unknown = r.stdout;
  if (r.stdout.trim() !== "") {
    try {
      stdout = JSON.parse(r.stdout);
    } catch {
      stdout = r.stdout.trim();
    }
  }
  return {
    code: r.code,
    stdout,
    stderr: r.timedOut ? `${r.stderr}\n[test] timed out` : r.stderr.replaceAll(node.address, "<addr>").trim(),
  };
}

/** `bulwark operator migrate` from one storage to another (both servers stopped). */
export async function migrate(workDir: string, from: StorageSpec, to: StorageSpec): Promise<string> {
  const name = join(workDir, `migrate-${Date.now()}.hcl`);
  writeFileSync(
    name,
    `${storageBlock(from).replace(/^storage /, "storage_source ")}${storageBlock(to).replace(/^storage /, "storage_destination ")}`,
  );
  const r = await runGroup(
    process.execPath,
    [join(SERVER_DIR, "bin/bulwark.mjs"), "operator", "migrate", "-config", name],
    {
      cwd: SERVER_DIR,
      env: { ...process.env },
      timeoutMs: 90_000,
      description: "bulwark operator migrate",
    },
  );
  if (r.code !== 0) throw new Error(`bulwark operator migrate exited ${r.code}:\n${r.stdout}\n${r.stderr}`);
  return r.stderr;
}

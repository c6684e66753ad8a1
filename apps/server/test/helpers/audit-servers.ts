/**
 * Two servers with one file audit device each, for the audit differential (audit-openbao.test.ts):
 * a real OpenBao 2.6.2 (`tooling/services/.bin/bao server`) and `bulwark server`, each with file
 * storage in its own temp dir, `unsafe_allow_api_audit_creation = true`, the listener's
 * `disable_unauthed_generate_root_endpoints = false` and `disable_unauthed_rekey_endpoints = false`
 * (the unauthenticated generate-root and rekey flows are in the sequence) and, in the `config` mode, a declarative `audit "file" "file"` block; then
 * `sys/init` with one share and unsealed.
 *
 * OpenBao is spawned with this file's own config (openbao-nodes.ts's spawnOpenBao) rather than
 * through startOpenBao: that one writes a fixed listener block, and the listener option must go
 * inside it. Every process runs in its own
 * process group (packages/core/test/support/processes.ts): `stop()` sends SIGTERM and SIGKILLs the
 * group after a grace, and whatever way the test ends the vitest setup file stops what is left.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { BAO, spawnOpenBao } from "./openbao-nodes.js";
import { freePort, startServerProcess } from "./server-process.js";

export { BAO };

export type Kind = "openbao" | "bulwark";
/** `api`: the device is enabled with `PUT sys/audit/file`; `config`: declared in the server config. */
export type AuditMode = "api" | "config";

// biome-ignore lint/suspicious/noExplicitAny: JSON answers and audit records, checked key by key
export type Json = any;

export interface Answer {
  status: number;
  json: Json;
}

export interface AuditServer {
  kind: Kind;
  address: string;
  /** The file the device at `file/` writes. */
  auditFile: string;
  rootToken: string;
  /** The one unseal share, base64 (`keys_base64`)… */
  unsealKey: string;
  /** …and hex (`keys`): both forms must stay out of the logs. */
  unsealKeyHex: string;
  /** stdout and stderr of the server so far. */
  output(): string;
  /** One API request; `token: ""` sends none. PATCH goes as merge-patch+json. */
  http(method: string, path: string, body?: unknown, token?: string): Promise<Answer>;
  stop(): Promise<void>;
}

function auditBlock(auditFile: string): string {
  return `audit "file" "file" {
  options {
    file_path = "${auditFile}"
  }
}
`;
}

function configText(dir: string, port: string, mode: AuditMode, auditFile: string): string {
  return `storage "file" {
  path = "${join(dir, "data")}"
}
listener "tcp" {
  address     = "127.0.0.1:${port}"
  tls_disable = true
  disable_unauthed_generate_root_endpoints = false
  disable_unauthed_rekey_endpoints = false
}
disable_mlock = true
api_addr = "http://127.0.0.1:${port}"
unsafe_allow_api_audit_creation = true
${mode === "config" ? auditBlock(auditFile) : ""}`;
}

async function startAuditOpenBao(
  dir: string,
  mode: AuditMode,
  auditFile: string,
): Promise<{ address: string; output(): string; stop(): Promise<void> }> {
  const port = await freePort();
  const config = join(dir, `openbao-${port}.hcl`);
  writeFileSync(config, configText(dir, String(port), mode, auditFile));
  return spawnOpenBao(dir, port, config);
}

async function spawnBulwark(
  dir: string,
  mode: AuditMode,
  auditFile: string,
): Promise<{ address: string; output(): string; stop(): Promise<void> }> {
  const p = await startServerProcess({ dir, config: configText(dir, "{{PORT}}", mode, auditFile) });
  return {
    address: p.address,
    output: p.output,
    async stop() {
      await p.stop(15_000);
    },
  };
}

/** Starts `kind` in `dir` (storage in `<dir>/data`, audit log `<dir>/audit.log`), inits and unseals it. */
export async function startAuditServer(kind: Kind, dir: string, mode: AuditMode): Promise<AuditServer> {
  const auditFile = join(dir, "audit.log");
  const p =
    kind === "openbao"
      ? await startAuditOpenBao(dir, mode, auditFile)
      : await spawnBulwark(dir, mode, auditFile);
  const s: AuditServer = {
    kind,
    address: p.address,
    auditFile,
    rootToken: "",
    unsealKey: "",
    unsealKeyHex: "",
    output: p.output,
    async http(method, path, body, token = s.rootToken) {
      const res = await fetch(`${s.address}/v1/${path}`, {
        method,
        headers: {
          ...(token === "" ? {} : { "X-Vault-Token": token }),
          "Content-Type": method === "PATCH" ? "application/merge-patch+json" : "application/json",
        },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        signal: AbortSignal.timeout(30_000),
      });
      const text = await res.text();
      let json: Json;
      try {
        json = text === "" ? undefined : JSON.parse(text);
      } catch {
        json = `not JSON: ${text}`;
      }
      return { status: res.status, json };
    },
    stop: p.stop,
  };
  try {
    const init = await s.http("PUT", "sys/init", { secret_shares: 1, secret_threshold: 1 }, "");
    if (init.status !== 200)
      throw new Error(`sys/init answered ${init.status}: ${JSON.stringify(init.json)}`);
    s.rootToken = init.json.root_token;
    s.unsealKey = init.json.keys_base64[0];
    s.unsealKeyHex = init.json.keys[0];
    const u = await s.http("PUT", "sys/unseal", { key: s.unsealKey }, "");
    if (u.json?.sealed !== false)
      throw new Error(`sys/unseal answered ${u.status}: ${JSON.stringify(u.json)}`);
  } catch (err) {
    await p.stop();
    throw new Error(`${kind}: ${(err as Error).message}\n${p.output()}`);
  }
  return s;
}

/** In-process test fixtures: a SealedStore on memory storage and the fastify app over it. */
import { Writable } from "node:stream";
import { SealedStore } from "@bulwark/core";
import { StaticKeySeal } from "@bulwark/seal";
import { MemoryBackend } from "@bulwark/storage-memory";
import type { FastifyInstance, InjectOptions, LightMyRequestResponse } from "fastify";
import { buildApp } from "../../src/http/server.js";
import { createLogger, type LogLevel } from "../../src/logging.js";

/** Captures log lines in memory (for the "no secrets in logs" checks). */
export class LogSink extends Writable {
  readonly lines: string[] = [];
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: () => void): void {
    this.lines.push(chunk.toString("utf8"));
    cb();
  }
  text(): string {
    return this.lines.join("");
  }
}

export interface TestApp {
  app: FastifyInstance;
  store: SealedStore;
  storage: MemoryBackend;
  logs: LogSink;
  call(
    method: string,
    url: string,
    opts?: { token?: string; body?: unknown; raw?: string; headers?: Record<string, string> },
  ): Promise<LightMyRequestResponse>;
  close(): Promise<void>;
}

export async function testApp(
  opts: {
    seal?: "shamir" | "static";
    level?: LogLevel;
    maxRequestSize?: number;
    storage?: MemoryBackend;
    disableUnauthedRekeyEndpoints?: boolean;
    /** The listener's OpenBao 2.6 settings (buildApp alone keeps the endpoints on). */
    listenerDisablesUnauthedRekey?: boolean;
    listenerDisablesUnauthedGenerateRoot?: boolean;
  } = {},
): Promise<TestApp> {
  const storage = opts.storage ?? new MemoryBackend();
  const logs = new LogSink();
  const logger = createLogger({ level: opts.level ?? "debug", destination: logs });
  const seal =
    opts.seal === "static"
      ? new StaticKeySeal({ key: new Uint8Array(32).fill(7), keyId: "test" })
      : undefined;
  const store = await SealedStore.open({
    storage,
    ...(seal === undefined ? {} : { seal }),
    autoRotateCheckMs: 0,
  });
  const app = buildApp({
    store,
    logger,
    clusterName: "test-cluster",
    ...(opts.maxRequestSize === undefined ? {} : { maxRequestSize: opts.maxRequestSize }),
    ...(opts.disableUnauthedRekeyEndpoints === undefined
      ? {}
      : { disableUnauthedRekeyEndpoints: opts.disableUnauthedRekeyEndpoints }),
    ...(opts.listenerDisablesUnauthedRekey === undefined
      ? {}
      : { listenerDisablesUnauthedRekey: opts.listenerDisablesUnauthedRekey }),
    ...(opts.listenerDisablesUnauthedGenerateRoot === undefined
      ? {}
      : { listenerDisablesUnauthedGenerateRoot: opts.listenerDisablesUnauthedGenerateRoot }),
  });
  await app.ready();
  return {
    app,
    store,
    storage,
    logs,
    call(method, url, o = {}) {
      const headers: Record<string, string> = { ...(o.headers ?? {}) };
      if (o.token !== undefined) headers["x-vault-token"] = o.token;
      const req: InjectOptions = { method: method as NonNullable<InjectOptions["method"]>, url, headers };
      if (o.raw !== undefined) {
        req.payload = o.raw;
        headers["content-type"] ??= "application/json";
      } else if (o.body !== undefined) {
        req.payload = JSON.stringify(o.body);
        headers["content-type"] ??= "application/json";
      }
      return app.inject(req);
    },
    async close() {
      await app.close();
      await store.close();
    },
  };
}

/** Initialises (Shamir 5/3 or auto seal) and unseals; returns the shares and the root token. */
export async function initAndUnseal(
  t: TestApp,
  shares = 5,
  threshold = 3,
): Promise<{ keys: string[]; root: string }> {
  const auto = t.store.status().type !== "shamir";
  const body = auto
    ? { recovery_shares: shares, recovery_threshold: threshold }
    : { secret_shares: shares, secret_threshold: threshold };
  const r = await t.call("PUT", "/v1/sys/init", { body });
  if (r.statusCode !== 200) throw new Error(`init failed: ${r.body}`);
  const init = r.json() as { keys: string[]; recovery_keys: string[]; root_token: string };
  if (!auto) {
    for (const k of init.keys.slice(0, threshold)) {
      const u = await t.call("PUT", "/v1/sys/unseal", { body: { key: k } });
      if (u.statusCode !== 200) throw new Error(`unseal failed: ${u.body}`);
    }
  }
  return { keys: auto ? init.recovery_keys : init.keys, root: init.root_token };
}

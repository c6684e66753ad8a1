import { execFileSync } from "node:child_process";
import { createServer, request, type Server } from "node:http";

/** The raw KV pair at a full Consul key, straight from the HTTP API (undefined when missing). */
export async function rawPair(
  url: string,
  fullKey: string,
): Promise<{ Value: string | null; Session?: string; ModifyIndex: number } | undefined> {
  const res = await fetch(`${url}/v1/kv/${fullKey}`);
  if (res.status === 404) return undefined;
  if (!res.ok) throw new Error(`GET ${fullKey}: ${res.status} ${await res.text()}`);
  const [pair] = (await res.json()) as { Value: string | null; Session?: string; ModifyIndex: number }[];
  return pair;
}

/** The session holding the lock at `fullKey`. */
export async function holderSession(url: string, fullKey: string): Promise<string> {
  const pair = await rawPair(url, fullKey);
  if (pair?.Session === undefined) throw new Error(`${fullKey} is not held`);
  return pair.Session;
}

export async function destroySession(url: string, session: string): Promise<void> {
  const res = await fetch(`${url}/v1/session/destroy/${session}`, { method: "PUT" });
  if (!res.ok) throw new Error(`destroying session ${session}: ${res.status}`);
}

/**
 * The synchronous one-request children below block this process, so vitest's timeout cannot fire
 * while they run: they get their own (one request to a local agent takes milliseconds).
 */
const SYNC_CHILD = { timeout: 15_000, killSignal: "SIGKILL" } as const;

/**
 * Destroys a session while blocking this process's event loop, so nothing in this process (the
 * lock's watch in particular) can react before the caller's next synchronous statement runs.
 */
export function destroySessionSync(url: string, session: string): void {
  const target = JSON.stringify(`${url}/v1/session/destroy/${session}`);
  execFileSync(
    process.execPath,
    [
      "-e",
      `fetch(${target}, { method: "PUT" }).then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(2))`,
    ],
    SYNC_CHILD,
  );
}

/** PUT `value` at `url` while blocking this process's event loop (see `destroySessionSync`). */
export function putSync(url: string, value: string): void {
  execFileSync(
    process.execPath,
    [
      "-e",
      `fetch(${JSON.stringify(url)}, { method: "PUT", body: ${JSON.stringify(value)} }).then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(2))`,
    ],
    SYNC_CHILD,
  );
}

export async function deleteTree(url: string, prefix: string): Promise<void> {
  await fetch(`${url}/v1/kv/${prefix}?recurse`, { method: "DELETE" });
}

export interface SeenRequest {
  method: string;
  /** Path and query, e.g. `/v1/kv/bulwark/a?cas=0`. */
  url: string;
  body: string;
}

export type Intercept = (req: SeenRequest, n: number) => { status: number; body: string } | undefined;

/**
 * An HTTP proxy in front of a Consul agent that records every request and can answer some itself
 * (to inject 500s); everything else is forwarded unchanged.
 */
export class ConsulProxy {
  readonly seen: SeenRequest[] = [];
  intercept: Intercept | undefined;
  /** Delay before forwarding each request (to make concurrent requests overlap). */
  delayMs = 0;
  /** Most requests seen in flight at once. */
  maxInFlight = 0;
  #inFlight = 0;
  readonly #server: Server;
  readonly #target: URL;
  #port = 0;

  constructor(targetUrl: string) {
    this.#target = new URL(targetUrl);
    this.#server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        const body = Buffer.concat(chunks);
        const seen: SeenRequest = {
          method: req.method ?? "GET",
          url: req.url ?? "/",
          body: body.toString("utf8"),
        };
        this.seen.push(seen);
        this.#inFlight++;
        this.maxInFlight = Math.max(this.maxInFlight, this.#inFlight);
        res.once("close", () => this.#inFlight--);
        const answer = this.intercept?.(seen, this.seen.length);
        if (answer !== undefined) {
          res.writeHead(answer.status, { "content-type": "text/plain" });
          res.end(answer.body);
          return;
        }
        const forward = () => {
          const up = request(
            {
              host: this.#target.hostname,
              port: this.#target.port,
              method: req.method,
              path: req.url,
              headers: { ...req.headers, host: this.#target.host },
            },
            (upRes) => {
              res.writeHead(upRes.statusCode ?? 502, upRes.headers);
              upRes.pipe(res);
            },
          );
          up.on("error", (err) => {
            res.writeHead(502, { "content-type": "text/plain" });
            res.end(String(err));
          });
          up.end(body);
        };
        if (this.delayMs > 0) setTimeout(forward, this.delayMs);
        else forward();
      });
    });
  }

  async start(): Promise<this> {
    await new Promise<void>((res) => this.#server.listen(0, "127.0.0.1", () => res()));
    const addr = this.#server.address();
    if (addr === null || typeof addr === "string") throw new Error("proxy has no port");
    this.#port = addr.port;
    return this;
  }

  get address(): string {
    return `127.0.0.1:${this.#port}`;
  }

  /** Requests whose method and path match. */
  matching(method: string, pathPrefix: string): SeenRequest[] {
    return this.seen.filter((r) => r.method === method && r.url.startsWith(pathPrefix));
  }

  async stop(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise<void>((res) => this.#server.close(() => res()));
  }
}

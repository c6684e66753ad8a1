/**
 * A small HTTP proxy on loopback in front of local-kms that injects the failures a real KMS
 * produces under load or across a bad network: ThrottlingException answers, answers delayed past
 * the client's timeout, and connections closed without an answer.
 */
import { createServer, type IncomingMessage, request, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";

export type Fault =
  | { kind: "throttle" }
  | { kind: "error"; status: number; type: string; message?: string }
  | { kind: "delay"; ms: number }
  | { kind: "close" };

/** X-Amz-Target operation without the `TrentService.` prefix, or "*" for every call. */
export type FaultTarget = "Encrypt" | "Decrypt" | "DescribeKey" | "*";

interface Rule {
  target: FaultTarget;
  fault: Fault;
  remaining: number;
}

export interface FaultProxy {
  endpoint: string;
  /** Applies `fault` to the next `times` matching calls (Infinity: until `clear()`). */
  inject(target: FaultTarget, fault: Fault, times: number): void;
  clear(): void;
  /** Every call seen: operation and what the proxy did. */
  readonly calls: ReadonlyArray<{ operation: string; action: string }>;
  resetCalls(): void;
  /** Operations of delayed calls the client hung up on before the answer (its timeout, an abort). */
  readonly hangups: ReadonlyArray<string>;
  stop(): Promise<void>;
}

let requestCounter = 0;

export async function startFaultProxy(upstream: string): Promise<FaultProxy> {
  const target = new URL(upstream);
  let rules: Rule[] = [];
  let calls: Array<{ operation: string; action: string }> = [];
  const hangups: string[] = [];
  const sockets = new Set<Socket>();

  const forward = (req: IncomingMessage, res: ServerResponse, body: Buffer) => {
    const up = request(
      {
        host: target.hostname,
        port: target.port,
        method: req.method,
        path: req.url,
        headers: { ...req.headers, host: target.host, "content-length": String(body.length) },
      },
      (upRes) => {
        res.writeHead(upRes.statusCode ?? 502, upRes.headers);
        upRes.pipe(res);
      },
    );
    up.on("error", () => res.destroy());
    up.end(body);
  };

  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const body = Buffer.concat(chunks);
      const operation = String(req.headers["x-amz-target"] ?? "").replace(/^TrentService\./, "");
      const rule = rules.find((r) => r.remaining > 0 && (r.target === "*" || r.target === operation));
      if (rule === undefined) {
        calls.push({ operation, action: "pass" });
        forward(req, res, body);
        return;
      }
      rule.remaining--;
      const fault = rule.fault;
      calls.push({ operation, action: fault.kind });
      const requestId = `fault-proxy-${++requestCounter}`;
      switch (fault.kind) {
        case "throttle":
        case "error": {
          const status = fault.kind === "throttle" ? 400 : fault.status;
          const type = fault.kind === "throttle" ? "ThrottlingException" : fault.type;
          const message = fault.kind === "throttle" ? "Rate exceeded" : (fault.message ?? type);
          const payload = JSON.stringify({ __type: type, message });
          res.writeHead(status, {
            "content-type": "application/x-amz-json-1.1",
            "x-amzn-requestid": requestId,
            "content-length": String(Buffer.byteLength(payload)),
          });
          res.end(payload);
          return;
        }
        case "delay": {
          let forwarded = false;
          const timer = setTimeout(() => {
            // The client has usually given up by now; forward anyway, as a slow KMS would answer.
            forwarded = true;
            if (!res.destroyed && !req.socket.destroyed) forward(req, res, body);
          }, fault.ms);
          timer.unref();
          // The client hung up while the answer was held back (its timeout, or an abort).
          res.on("close", () => {
            if (!forwarded) hangups.push(operation);
          });
          return;
        }
        case "close":
          req.socket.destroy();
          return;
      }
    });
  });
  server.on("connection", (s) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address() as AddressInfo;

  return {
    endpoint: `http://127.0.0.1:${port}`,
    inject(t, fault, times) {
      rules.push({ target: t, fault, remaining: times });
    },
    clear() {
      rules = [];
    },
    get calls() {
      return calls;
    },
    hangups,
    resetCalls() {
      calls = [];
    },
    async stop() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

/**
 * A local double of the CloudHSMV2 management API: awsJson1_1 over node:http on a loopback port,
 * answering DescribeClusters from scripted cluster and HSM states. Enough of the protocol for
 * @aws-sdk/client-cloudhsm-v2: POST /, `X-Amz-Target: BaldrApiService.<Operation>`, JSON body,
 * errors as `{ "__type": …, "message": … }` with `x-amzn-errortype`.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

export interface ScriptedHsm {
  HsmId: string;
  State: string;
  StateMessage?: string;
  AvailabilityZone?: string;
  EniIp?: string;
  SubnetId?: string;
  ClusterId?: string;
}

export interface ScriptedCluster {
  State: string;
  StateMessage?: string;
  Hsms: ScriptedHsm[];
}

export interface RecordedRequest {
  target: string;
  body: unknown;
  authorization: string;
}

export interface ScriptedError {
  status: number;
  type: string;
  message: string;
}

/** Two HSMs in two AZs, both ACTIVE. */
export function activeHsms(clusterId: string, states: string[] = ["ACTIVE", "ACTIVE"]): ScriptedHsm[] {
  return states.map((State, i) => ({
    HsmId: `hsm-${clusterId.slice(-6)}${i}`,
    State,
    AvailabilityZone: `us-east-1${"abc"[i % 3]}`,
    EniIp: `10.0.${i}.10`,
    SubnetId: `subnet-${i}`,
    ClusterId: clusterId,
  }));
}

export class CloudHsmApiDouble {
  readonly clusters = new Map<string, ScriptedCluster>();
  readonly requests: RecordedRequest[] = [];
  /** Answers for the next requests, in order, instead of the scripted state. */
  readonly failures: ScriptedError[] = [];
  /** Milliseconds to wait before answering (to exercise timeouts). */
  delayMs = 0;
  #server: Server | undefined;
  #url = "";

  get url(): string {
    return this.#url;
  }

  setCluster(id: string, state: string, hsms: ScriptedHsm[], stateMessage?: string): void {
    this.clusters.set(id, {
      State: state,
      Hsms: hsms,
      ...(stateMessage ? { StateMessage: stateMessage } : {}),
    });
  }

  async start(): Promise<string> {
    const server = createServer((req, res) => {
      this.#handle(req, res).catch((err: unknown) => {
        res.statusCode = 500;
        res.end(String(err));
      });
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    this.#server = server;
    this.#url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    return this.#url;
  }

  async stop(): Promise<void> {
    const server = this.#server;
    this.#server = undefined;
    if (server === undefined) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const text = Buffer.concat(chunks).toString("utf8");
    const target = String(req.headers["x-amz-target"] ?? "");
    let body: unknown;
    try {
      body = text === "" ? {} : JSON.parse(text);
    } catch {
      return this.#error(res, { status: 400, type: "SerializationException", message: "body is not JSON" });
    }
    this.requests.push({ target, body, authorization: String(req.headers.authorization ?? "") });
    if (this.delayMs > 0) await new Promise((r) => setTimeout(r, this.delayMs));
    if (req.method !== "POST" || req.url !== "/") {
      return this.#error(res, { status: 404, type: "UnknownOperationException", message: "POST / only" });
    }
    const failure = this.failures.shift();
    if (failure !== undefined) return this.#error(res, failure);
    if (target !== "BaldrApiService.DescribeClusters") {
      return this.#error(res, {
        status: 400,
        type: "UnknownOperationException",
        message: `unsupported ${target}`,
      });
    }
    const filters = (body as { Filters?: { clusterIds?: string[]; states?: string[] } }).Filters ?? {};
    const out = [...this.clusters.entries()]
      .filter(([id]) => filters.clusterIds === undefined || filters.clusterIds.includes(id))
      .filter(([, c]) => filters.states === undefined || filters.states.includes(c.State))
      .map(([id, c]) => ({
        ClusterId: id,
        State: c.State,
        ...(c.StateMessage ? { StateMessage: c.StateMessage } : {}),
        Hsms: c.Hsms,
        HsmType: "hsm1.medium",
        VpcId: "vpc-0123456789",
        CreateTimestamp: 1_700_000_000,
        SecurityGroup: "sg-0123456789",
        SubnetMapping: { "us-east-1a": "subnet-0", "us-east-1b": "subnet-1" },
      }));
    res.statusCode = 200;
    res.setHeader("content-type", "application/x-amz-json-1.1");
    res.setHeader("x-amzn-requestid", `req-${this.requests.length}`);
    res.end(JSON.stringify({ Clusters: out }));
  }

  #error(res: ServerResponse, e: ScriptedError): void {
    res.statusCode = e.status;
    res.setHeader("content-type", "application/x-amz-json-1.1");
    res.setHeader("x-amzn-errortype", e.type);
    res.setHeader("x-amzn-requestid", `req-${this.requests.length}`);
    res.end(JSON.stringify({ __type: e.type, message: e.message }));
  }
}

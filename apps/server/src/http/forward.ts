/**
 * Request forwarding from a standby to the active node, Vault's default: a request that failed
 * on this node only because it is a standby is sent again, unchanged, to the address the active
 * node advertises (`api_addr`), and the answer is relayed to the client.
 *
 * Why re-sending is safe: on a standby every write is refused before it reaches storage (code
 * "standby"), so a request that failed that way changed nothing here. A forwarded request
 * carries {@link FORWARDED_HEADER}; a node receiving one never forwards it again (two nodes that
 * both think the other is active cannot bounce a request between them).
 *
 * The active node is reached over HTTP(S) like any client would (there is no cluster port): with
 * TLS its certificate must be trusted by this process (`NODE_EXTRA_CA_CERTS`).
 */
import type { SealedStore } from "@bulwark/core";
import { CoreError } from "@bulwark/core";
import type { FastifyRequest } from "fastify";
import { HttpError } from "./errors.js";

export const FORWARDED_HEADER = "x-bulwark-forwarded-by";
/** How long a forwarded request may take before the standby gives up (503). */
export const FORWARD_TIMEOUT_MS = 60_000;

/** Connection-level headers a proxy must not pass on (RFC 9110 §7.6.1), plus those fetch sets. */
const NOT_FORWARDED = new Set([
  "host",
  "connection",
  "keep-alive",
  "proxy-connection",
  "transfer-encoding",
  "te",
  "trailer",
  "upgrade",
  "content-length",
  "expect",
  FORWARDED_HEADER,
]);
/** Response headers relayed to the client. */
const RELAYED = ["content-type", "cache-control", "retry-after", "location"];

export interface ForwardedResponse {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
}

/** Whether `e` is the refusal a standby gives a write (and nothing else). */
export function isStandbyRefusal(e: unknown): boolean {
  return e instanceof CoreError && e.code === "standby";
}

/**
 * Sends `req` to the active node. Returns its response, or an HttpError (503) saying why it could
 * not be forwarded: the request was forwarded already, no active node, no advertised address,
 * or the active node did not answer.
 */
export async function forwardToActive(
  store: SealedStore,
  req: FastifyRequest,
  rawBody: Buffer | undefined,
  opts: { timeoutMs?: number } = {},
): Promise<ForwardedResponse | HttpError> {
  if (req.headers[FORWARDED_HEADER] !== undefined) {
    return new HttpError(
      503,
      "this node is a standby and the request was already forwarded to it by another node: the nodes disagree about which one is active; retry shortly",
    );
  }
  let target: string;
  try {
    const leader = await store.leader();
    if (leader.isSelf) return new HttpError(503, "this node became active while the request ran; retry it");
    if (leader.leaderNodeId === undefined)
      return new HttpError(503, "this node is a standby and no node is active at the moment; retry shortly");
    if (leader.leaderAddress === "") {
      return new HttpError(
        503,
        `this node is a standby and the active node (${leader.leaderNodeId}) advertises no address to forward to: set api_addr on every node`,
      );
    }
    target = leader.leaderAddress;
  } catch (e) {
    return new HttpError(
      503,
      `this node is a standby and could not find the active node: ${(e as Error).message}`,
    );
  }
  const headers = new Headers();
  for (const [k, v] of Object.entries(req.headers)) {
    if (v === undefined || NOT_FORWARDED.has(k)) continue;
    for (const item of Array.isArray(v) ? v : [v]) headers.append(k, item);
  }
  headers.set(FORWARDED_HEADER, store.nodeId);
  const url = `${target.replace(/\/+$/, "")}${req.url}`;
  try {
    const init: RequestInit = {
      method: req.method,
      headers,
      redirect: "manual",
      signal: AbortSignal.timeout(opts.timeoutMs ?? FORWARD_TIMEOUT_MS),
    };
    if (rawBody !== undefined && rawBody.length > 0 && req.method !== "GET" && req.method !== "HEAD")
      init.body = rawBody;
    const res = await fetch(url, init);
    const out: Record<string, string> = {};
    for (const h of RELAYED) {
      const v = res.headers.get(h);
      if (v !== null) out[h] = v;
    }
    return { status: res.status, headers: out, body: Buffer.from(await res.arrayBuffer()) };
  } catch (e) {
    const cause = (e as { cause?: { message?: string } }).cause?.message;
    return new HttpError(
      503,
      `this node is a standby and the active node at ${target} did not answer: ${cause ?? (e as Error).message}`,
    );
  }
}

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
import { createHmac, timingSafeEqual } from "node:crypto";
import type { SealedStore } from "@bulwark/core";
import { CoreError } from "@bulwark/core";
import type { FastifyRequest } from "fastify";
import { HttpError } from "./errors.js";

export const FORWARDED_HEADER = "x-bulwark-forwarded-by";
/** The client's address as the standby saw it (`ip:port`; the audit records it). */
export const FORWARDED_FOR_HEADER = "x-bulwark-forwarded-for";
/** When the standby forwarded it (Unix ms). */
export const FORWARDED_AT_HEADER = "x-bulwark-forwarded-at";
/**
 * HMAC-SHA256 over the three headers above, the method and the URL, keyed from the data set's
 * token salt (inside the barrier: only unsealed nodes of the data set know it). The active node
 * believes the forwarding headers — the standby's node id and the client's address in its audit
 * records — only when this checks out, so a client cannot forge its provenance.
 */
export const FORWARDED_SIGNATURE_HEADER = "x-bulwark-forwarded-signature";
/** How old a signed forwarding may be (clock skew between nodes and the forward's own time). */
const FORWARDING_MAX_AGE_MS = 5 * 60_000;
/** Where the token store keeps the data set's salt (Vault's `sys/token/salt`). */
const TOKEN_SALT_PATH = "sys/token/salt";
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
  FORWARDED_FOR_HEADER,
  FORWARDED_AT_HEADER,
  FORWARDED_SIGNATURE_HEADER,
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
  const key = await forwardingKey(store);
  if (key !== undefined) {
    const sock = req.socket as { remoteAddress?: string; remotePort?: number } | undefined;
    const fwdFor = `${sock?.remoteAddress ?? ""}:${sock?.remotePort ?? 0}`;
    const at = String(Date.now());
    headers.set(FORWARDED_FOR_HEADER, fwdFor);
    headers.set(FORWARDED_AT_HEADER, at);
    headers.set(
      FORWARDED_SIGNATURE_HEADER,
      forwardingMac(key, store.nodeId, fwdFor, at, req.method, req.url),
    );
  }
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

/** The forwarding key of the store's data set (derived from its token salt); undefined before there is one. */
async function forwardingKey(store: SealedStore): Promise<Buffer | undefined> {
  const cached = forwardingKeys.get(store);
  if (cached !== undefined) return cached;
  let salt: Uint8Array | undefined;
  try {
    salt = (await store.storage.get(TOKEN_SALT_PATH))?.value;
  } catch {
    return undefined;
  }
  if (salt === undefined || salt.length === 0) return undefined;
  const key = createHmac("sha256", Buffer.from(salt)).update("bulwark request forwarding v1").digest();
  forwardingKeys.set(store, key);
  return key;
}
const forwardingKeys = new WeakMap<SealedStore, Buffer>();

function forwardingMac(
  key: Buffer,
  by: string,
  fwdFor: string,
  at: string,
  method: string,
  url: string,
): string {
  return createHmac("sha256", key).update(`${by}\n${fwdFor}\n${at}\n${method}\n${url}`).digest("hex");
}

/** A forwarding a standby of this data set signed: who forwarded it, and the client's address. */
export interface VerifiedForwarding {
  by: string;
  remoteAddress: string;
  remotePort: number;
}

/**
 * The request's forwarding headers, when a node of this data set signed them (and recently);
 * undefined otherwise — a client's own `x-bulwark-forwarded-*` headers are not believed.
 */
export async function verifiedForwarding(
  store: SealedStore,
  req: FastifyRequest,
): Promise<VerifiedForwarding | undefined> {
  const one = (name: string): string | undefined => {
    const v = req.headers[name];
    return typeof v === "string" && v !== "" ? v : undefined;
  };
  const by = one(FORWARDED_HEADER);
  const fwdFor = one(FORWARDED_FOR_HEADER);
  const at = one(FORWARDED_AT_HEADER);
  const sig = one(FORWARDED_SIGNATURE_HEADER);
  if (by === undefined || fwdFor === undefined || at === undefined || sig === undefined) return undefined;
  const when = Number(at);
  if (!Number.isFinite(when) || Math.abs(Date.now() - when) > FORWARDING_MAX_AGE_MS) return undefined;
  const key = await forwardingKey(store);
  if (key === undefined) return undefined;
  const want = Buffer.from(forwardingMac(key, by, fwdFor, at, req.method, req.url), "hex");
  const got = Buffer.from(sig, "hex");
  if (got.length !== want.length || !timingSafeEqual(got, want)) return undefined;
  const colon = fwdFor.lastIndexOf(":");
  const addr = fwdFor.slice(0, colon);
  return {
    by,
    remoteAddress: addr.startsWith("::ffff:") ? addr.slice("::ffff:".length) : addr,
    remotePort: Number(fwdFor.slice(colon + 1)) || 0,
  };
}

/**
 * The audit trail of one HTTP request (Vault's `LogRequest` before the request runs, `LogResponse`
 * after), in the shapes OpenBao 2.6.2 writes — see packages/vault/src/audit/fixtures/openbao-2.6.2.
 *
 * Which requests are audited is OpenBao's: everything its router serves (sys/ with a token, auth/
 * token/, secrets engines, and the router's unauthenticated paths such as sys/internal/ui/mounts),
 * with a request and a response record; sys/seal and sys/step-down with a request record only; the
 * unauthenticated share-holder endpoints (generate-root, rekey) through its `handleAuditNonLogical`
 * (no token, no mount; the response record carries the HTTP answer). sys/init, sys/unseal,
 * sys/seal-status, sys/health and sys/leader are not audited (OpenBao's HTTP layer answers them
 * without its router).
 *
 * Fail-closed: the request record is written before anything runs; when devices are enabled and
 * none could take it, the request fails with 500 and changes nothing. A response record no device
 * took also answers 500 (the request has run: Vault does the same).
 *
 * A standby opens no devices (Vault's standbys have none): when the stored audit table names any,
 * it forwards every audited request to the active node, which logs it once.
 */
import { randomUUID } from "node:crypto";
import {
  type AuditAuthInput,
  type AuditBroker,
  type AuditRequestInput,
  type AuditResponseInput,
  type Auth,
  BUILTIN_RUNNING_VERSION,
  clientIdOf,
  type LogInput,
  type MountEntry,
  type Operation,
} from "@bulwark/vault";
import type { FastifyReply, FastifyRequest } from "fastify";
import { type AppContext, authenticate, type Result, tokenFrom } from "./context.js";
import { HttpError, toHttpError } from "./errors.js";
import { FORWARDED_HEADER, forwardToActive, type VerifiedForwarding, verifiedForwarding } from "./forward.js";

/** How a route is audited (see the module comment). */
export type AuditMode = "full" | "request-only" | "non-logical" | "none";

/** The mount a request is served by, as the audit records name it. */
export interface AuditMount {
  point: string;
  type: string;
  accessor: string;
  runningVersion: string;
  /** "secret" for the mount table (sys/ included), "auth" for the auth table. */
  class: "secret" | "auth";
  nonHmacRequestKeys?: string[];
  nonHmacResponseKeys?: string[];
}

/** Per mount entry (a table's entries are replaced, never changed, when the table changes). */
const auditMounts = new WeakMap<MountEntry, AuditMount>();

export function auditMountOf(entry: MountEntry, cls: "secret" | "auth"): AuditMount {
  const cached = auditMounts.get(entry);
  if (cached !== undefined) return cached;
  const m: AuditMount = {
    point: cls === "auth" ? `auth/${entry.path}` : entry.path,
    type: entry.type,
    accessor: entry.accessor,
    runningVersion:
      typeof entry.running_plugin_version === "string" && entry.running_plugin_version !== ""
        ? entry.running_plugin_version
        : BUILTIN_RUNNING_VERSION,
    class: cls,
  };
  const req = entry.config?.audit_non_hmac_request_keys;
  const resp = entry.config?.audit_non_hmac_response_keys;
  if (Array.isArray(req) && req.length > 0) m.nonHmacRequestKeys = req;
  if (Array.isArray(resp) && resp.length > 0) m.nonHmacResponseKeys = resp;
  auditMounts.set(entry, m);
  return m;
}

/** Client ids by entity id and policies (a SHA-256 per request otherwise); bounded. */
const clientIds = new Map<string, string>();
function cachedClientId(entityId: string, policies: readonly string[]): string {
  const key = `${entityId}\u0000${policies.join("\u0000")}`;
  let id = clientIds.get(key);
  if (id === undefined) {
    id = clientIdOf({ entityId, policies });
    if (clientIds.size >= 1024) clientIds.clear();
    clientIds.set(key, id);
  }
  return id;
}

/** The mount at the longest prefix of `path` (auth/… in the auth table), as Vault's router finds it. */
export async function auditMountFor(ctx: AppContext, path: string): Promise<AuditMount | undefined> {
  const isAuth = path.startsWith("auth/");
  const entries = isAuth ? await ctx.services.mounts.auths() : await ctx.services.mounts.all();
  const rel = isAuth ? path.slice("auth/".length) : path;
  let best: MountEntry | undefined;
  for (const e of entries) {
    const prefix = e.path;
    if (
      (rel === prefix.slice(0, -1) || rel.startsWith(prefix)) &&
      (best === undefined || prefix.length > best.path.length)
    )
      best = e;
  }
  return best === undefined ? undefined : auditMountOf(best, isAuth ? "auth" : "secret");
}

/** RFC 3339 in seconds, as Go's `time.Unix(s, 0).Format(time.RFC3339)` in UTC. */
function rfc3339Seconds(unixSeconds: number): string {
  return new Date(unixSeconds * 1000).toISOString().replace(/\.\d{3}Z$/, "Z");
}

/** Vault's `logical.Auth` of an authenticated caller, with the ACL's verdict when one was asked. */
export function auditAuthOf(
  auth: Auth,
  verdict?: { allowed: boolean; granting: readonly string[] },
  opts: { issueTime?: boolean } = {},
): AuditAuthInput {
  const e = auth.entry;
  const out: AuditAuthInput = {
    clientToken: auth.token,
    accessor: e.accessor,
    displayName: e.display_name,
    policies: e.policies,
    tokenPolicies: e.policies,
    tokenType: e.type,
  };
  if (e.meta !== null && Object.keys(e.meta).length > 0) out.metadata = e.meta;
  if (e.entity_id !== "") out.entityId = e.entity_id;
  // OpenBao records the uses left before this request took its own (the entry here has it taken:
  // one less, or -1 when this was the last use).
  if (e.num_uses !== 0) out.remainingUses = e.num_uses === -1 ? 1 : e.num_uses + 1;
  if (e.creation_ttl > 0) out.tokenTtl = e.creation_ttl;
  if (opts.issueTime !== false && e.creation_time > 0) out.tokenIssueTime = rfc3339Seconds(e.creation_time);
  if (verdict !== undefined) {
    out.policyResults = {
      allowed: verdict.allowed,
      grantingPolicies: verdict.granting.map((name) => ({ name, namespaceId: "root", type: "acl" })),
    };
  }
  return out;
}

/** The address the request came from, as Vault writes it (IPv4-mapped IPv6 shown as IPv4). */
function remoteOf(req: FastifyRequest): { remoteAddress?: string; remotePort?: number } {
  const sock = req.socket as { remoteAddress?: string; remotePort?: number } | undefined;
  const out: { remoteAddress?: string; remotePort?: number } = {};
  const addr = sock?.remoteAddress;
  if (addr !== undefined)
    out.remoteAddress = addr.startsWith("::ffff:") ? addr.slice("::ffff:".length) : addr;
  if (sock?.remotePort !== undefined) out.remotePort = sock.remotePort;
  return out;
}

/** A JSON object body as the audit's request data; anything else (no body, an array) is none. */
function dataOf(body: unknown): Record<string, unknown> | undefined {
  if (typeof body !== "object" || body === null || Array.isArray(body)) return undefined;
  return Object.keys(body).length === 0 ? undefined : (body as Record<string, unknown>);
}

/** go-multierror's text around the outer error, as OpenBao's response records show it. */
function multierror(text: string): string {
  return `1 error occurred:\n\t* ${text}\n\n`;
}

/** What an error is in an audit record: the outer error (the text of Vault's error value) and the message. */
export interface AuditedError {
  /** The request record's `error` ("permission denied" only: other failures happen after it is written). */
  outer: string;
  /** The client's message, the response data's `error`. */
  message: string;
  /** An engine's "nothing there": OpenBao's engines answer no response, so no error is logged. */
  notFound: boolean;
}

/**
 * Where OpenBao's handler answers a refusal other than with ErrInvalidRequest: `null` — a
 * logical.ErrorResponse with no error (the record has no `error`), or the text of the handler's
 * own error. Set with {@link auditAs} on the error a handler throws.
 */
const AUDIT_OUTER = Symbol("bulwark.auditOuter");

/** Marks `err` with the outer error OpenBao's handler gives for it (see AUDIT_OUTER). */
export function auditAs<E extends object>(err: E, outer: string | null): E {
  (err as { [AUDIT_OUTER]?: string | null })[AUDIT_OUTER] = outer;
  return err;
}

export function auditedError(err: unknown): AuditedError {
  const h = toHttpError(err);
  const message = h.errors[0] ?? "internal error";
  const code = (err as { code?: unknown }).code;
  const outer =
    typeof err === "object" && err !== null
      ? (err as { [AUDIT_OUTER]?: string | null })[AUDIT_OUTER]
      : undefined;
  if (outer !== undefined) return { outer: outer ?? "", message, notFound: false };
  switch (h.status) {
    case 400:
      return { outer: "invalid request", message, notFound: false };
    case 403:
      return { outer: "permission denied", message: "permission denied", notFound: false };
    case 404:
      if (code === "not_found" && !/nothing is mounted/.test(message))
        return { outer: "", message, notFound: true };
      return { outer: "unsupported path", message, notFound: false };
    case 405:
      return { outer: "unsupported operation", message, notFound: false };
    default:
      return { outer: "internal error", message, notFound: false };
  }
}

/**
 * One request's audit records. `begin` writes the request record (rejecting — fail-closed — when
 * no device took it), `end`/`fail` the response record.
 */
export class RequestAudit {
  readonly #broker: AuditBroker;
  readonly #input: LogInput;
  #mount: AuditMount | undefined;

  constructor(
    broker: AuditBroker,
    req: FastifyRequest,
    path: string,
    operation: Operation | string,
    body: unknown,
    forwarded?: VerifiedForwarding,
  ) {
    this.#broker = broker;
    // A request a standby forwarded (and signed): the client's address, and who forwarded it.
    const remote =
      forwarded === undefined
        ? remoteOf(req)
        : { remoteAddress: forwarded.remoteAddress, remotePort: forwarded.remotePort };
    const request: AuditRequestInput = { id: randomUUID(), operation, path, ...remote };
    const data = dataOf(body);
    if (data !== undefined) request.data = data;
    if (forwarded !== undefined) request.forwardedFrom = forwarded.by;
    this.#input = { request, auth: { tokenType: "default" } };
  }

  /** The caller (an authenticated token), with the ACL's verdict on the request. */
  caller(
    auth: Auth,
    verdict?: { allowed: boolean; granting: readonly string[] },
    opts: { issueTime?: boolean; clientId?: boolean } = {},
  ): void {
    this.#input.auth = auditAuthOf(auth, verdict, opts);
    const r = this.#input.request;
    r.clientToken = auth.token;
    r.clientTokenAccessor = auth.entry.accessor;
    if (opts.clientId !== false) r.clientId = cachedClientId(auth.entry.entity_id, auth.entry.policies);
  }

  /** Whether the request writes (create/update: OpenBao's existence check runs for those). */
  isWrite(): boolean {
    const op = this.#input.request.operation;
    return op === "update" || op === "create";
  }

  /** The operation as the router decided it (`create` or `update` for a write). */
  operation(op: Operation): void {
    this.#input.request.operation = op;
  }

  /** No token (an unauthenticated path): Vault's auth has only the ACL's verdict. */
  anonymous(verdict?: { allowed: boolean }): void {
    this.#input.auth = { tokenType: "default" };
    if (verdict !== undefined)
      this.#input.auth.policyResults = { allowed: verdict.allowed, grantingPolicies: [] };
  }

  /** The token presented, when it did not authenticate: the request record names it (hashed). */
  presentedToken(token: string | undefined): void {
    if (token !== undefined && token !== "") this.#input.request.clientToken = token;
  }

  /**
   * The mount serving the request. `accessorInRequest`: OpenBao's request record names the mount
   * accessor only for writes (its existence check sets it before the record is written).
   */
  mount(m: AuditMount | undefined, accessorInRequest: boolean): void {
    this.#mount = m;
    const r = this.#input.request;
    if (m === undefined) return;
    r.mountPoint = m.point;
    r.mountType = m.type;
    if (accessorInRequest) r.mountAccessor = m.accessor;
    r.mountRunningVersion = m.runningVersion;
    r.mountClass = m.class;
    if (m.nonHmacRequestKeys !== undefined) this.#input.nonHmacRequestKeys = m.nonHmacRequestKeys;
    if (m.nonHmacResponseKeys !== undefined) this.#input.nonHmacResponseKeys = m.nonHmacResponseKeys;
  }

  /** Writes the request record; `error` for a request refused before it ran (permission denied). */
  begin(error?: string): Promise<void> {
    const input: LogInput = { ...this.#input, type: "request" };
    if (error !== undefined) input.error = error;
    return this.#broker.logRequest(input);
  }

  /** Writes the response record of a request that ran. */
  end(response: AuditResponseInput | undefined): Promise<void> {
    this.#withAccessor();
    const input: LogInput = { ...this.#input, type: "response" };
    if (response !== undefined) input.response = response;
    return this.#broker.logResponse(input);
  }

  /**
   * Writes the response record of a request that failed with `err`. A refused request (403) keeps
   * the request record's fields: OpenBao's router never reached the mount's accessor.
   */
  async fail(err: unknown, opts: { refused?: boolean } = {}): Promise<void> {
    const e = auditedError(err);
    if (e.notFound) return this.end(undefined);
    if (opts.refused !== true && e.outer === "permission denied") {
      // Refused by the handler, past the router (sys/internal/ui/mounts for a mount out of
      // reach): OpenBao logs the bare error, with the mount's accessor and no data.
      this.#withAccessor();
      await this.#broker.logResponse({ ...this.#input, type: "response", error: "permission denied" });
      return;
    }
    // A refused read never reached its mount's accessor; a refused write had it from the existence check.
    if (e.outer !== "permission denied" || this.isWrite()) this.#withAccessor();
    const input: LogInput = { ...this.#input, type: "response" };
    if (e.outer !== "") input.error = multierror(e.outer);
    input.response = { data: { error: e.message } };
    await this.#broker.logResponse(input);
  }

  /** The request's own record, after the request ran (OpenBao's router has set the accessor by then). */
  #withAccessor(): void {
    if (this.#mount !== undefined) this.#input.request.mountAccessor = this.#mount.accessor;
  }
}

/**
 * Whether the request is audited here ("audit"), must go to the active node ("forward": a standby
 * with devices in the stored table), or runs unaudited ("off": no device, or sealed — OpenBao's
 * router is not reached then). One cached check on the request path.
 */
export function auditState(ctx: AppContext): AuditState | Promise<AuditState> {
  if (ctx.store.sealed) return "off";
  const now = ctx.services.audit.enabledNow?.();
  if (now !== undefined) return now ? "audit" : "off";
  return ctx.services.audit
    .enabled()
    .then((on) => (!on ? "off" : ctx.store.activeTerm !== undefined ? "audit" : "forward"));
}

export type AuditState = "off" | "audit" | "forward";

/** The audit of one request on this (active) node, believing a standby's signed forwarding headers. */
export function requestAudit(
  ctx: AppContext,
  req: FastifyRequest,
  path: string,
  operation: Operation | string,
  body: unknown,
): RequestAudit | Promise<RequestAudit> {
  if (req.headers[FORWARDED_HEADER] === undefined)
    return new RequestAudit(ctx.services.audit, req, path, operation, body);
  return verifiedForwarding(ctx.store, req).then(
    (forwarded) => new RequestAudit(ctx.services.audit, req, path, operation, body, forwarded),
  );
}

/** What a handler adds to its response record beyond the answer's data. */
export interface AuditResult {
  /** The token the response issued (token create): Vault's `resp.Auth`. */
  auth?: AuditAuthInput;
}

/**
 * A response record's part: `data` when it is a non-empty object (Vault's audit logs the
 * response's data, not the HTTP envelope), and the warnings.
 */
export function auditResponse(data: unknown, warnings: unknown): AuditResponseInput {
  const out: AuditResponseInput = {};
  if (typeof data === "object" && data !== null && !Array.isArray(data) && Object.keys(data).length > 0)
    out.data = data as Record<string, unknown>;
  if (Array.isArray(warnings) && warnings.length > 0) out.warnings = warnings as string[];
  return out;
}

/** The response record's part of a handler's answer: Vault logs the engine's data, not the envelope. */
export function auditResponseOf(result: Result): AuditResponseInput | undefined {
  if (result === undefined || result.contentType !== undefined) return undefined;
  let body: unknown = result.body;
  if (result.json !== undefined) {
    try {
      body = JSON.parse(result.json);
    } catch {
      body = undefined;
    }
  }
  let out: AuditResponseInput = {};
  if (typeof body === "object" && body !== null && !Array.isArray(body)) {
    const b = body as Record<string, unknown>;
    // Vault's envelope (sys/ answers also repeat the data at the top level): its `data` is the
    // response's; a bare object (sys/init, seal-status) is the data itself.
    out = auditResponse("request_id" in b ? b.data : b, b.warnings);
  }
  if (result.audit?.auth !== undefined) out.auth = result.audit.auth;
  return Object.keys(out).length === 0 ? undefined : out;
}

/**
 * The records of a request refused before it ran: sealed → none (OpenBao's router is not
 * reached); else the request record with the refusal and, for a full route, the response record.
 * A token that authenticated but lacks the capability is named with the ACL's "no"; one that did
 * not is named only as presented (hashed).
 */
export async function auditRefusal(
  ctx: AppContext,
  audit: RequestAudit,
  req: FastifyRequest,
  path: string,
  auth: Auth | undefined,
  err: unknown,
  opts: { responseRecord: boolean },
): Promise<void> {
  const status = toHttpError(err).status;
  if (status === 503) return;
  if (auth !== undefined) audit.caller(auth, { allowed: false, granting: [] });
  else audit.presentedToken(tokenFrom(req));
  // OpenBao's existence check of a write finds the mount (and its accessor) before the ACL refuses.
  audit.mount(await auditMountFor(ctx, path), audit.isWrite());
  // OpenBao: a token that did not authenticate is refused with ErrPermissionDenied itself; the
  // ACL's refusal of a valid token comes wrapped (go-multierror's text).
  const refusal = auth === undefined ? "permission denied" : multierror("permission denied");
  await audit.begin(status === 403 ? refusal : undefined);
  if (opts.responseRecord) await audit.fail(err, { refused: true });
}

/** The caller behind the request's token, when it has a valid one (for a refusal's records). */
export async function callerIfAny(ctx: AppContext, req: FastifyRequest): Promise<Auth | undefined> {
  try {
    return await authenticate(ctx, req);
  } catch {
    return undefined;
  }
}

/** Forwards the request to the active node and relays its answer (a standby with audit devices). */
export async function forwardAudited(
  ctx: AppContext,
  req: FastifyRequest,
  reply: FastifyReply,
): Promise<FastifyReply> {
  const fwd = await forwardToActive(ctx.store, req, ctx.rawBody(req));
  if (fwd instanceof HttpError) throw fwd;
  return reply.code(fwd.status).headers(fwd.headers).send(fwd.body);
}

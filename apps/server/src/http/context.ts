/**
 * What every route shares: the app context, token authentication + ACL authorisation, Vault's
 * response envelope, and `route()`, which registers a fastify route whose handler checks
 * (sealed → 503, token → 403, ACL → 403) before it does anything.
 */
import { randomUUID } from "node:crypto";
import type { SealedStore } from "@bulwark/core";
import {
  type AuditResponseInput,
  type Auth,
  aclPath,
  type Operation,
  type Services,
  authorize as vaultAuthorize,
} from "@bulwark/vault";
import type { FastifyInstance, FastifyReply, FastifyRequest, HTTPMethods } from "fastify";
import type { Logger } from "pino";
import {
  type AuditMode,
  type AuditResult,
  type AuditState,
  auditMountFor,
  auditRefusal,
  auditResponseOf,
  auditState,
  callerIfAny,
  forwardAudited,
  type RequestAudit,
  requestAudit,
} from "./audit.js";
import { HttpError, SEALED_MESSAGE, toHttpError } from "./errors.js";
import type { Metrics } from "./metrics.js";
import { queryBool } from "./validate.js";

export interface AppContext {
  store: SealedStore;
  services: Services;
  metrics: Metrics;
  logger: Logger;
  clusterName: string;
  apiAddr: string | undefined;
  /** The URL this server answers on, once listening (for sys/leader). */
  address(): string | undefined;
  /** sys/rekey* need a token with sudo besides the shares (`disable_unauthed_rekey_endpoints`). */
  rekeyNeedsToken: boolean;
  /** The listener's `disable_unauthed_rekey_endpoints` (OpenBao 2.6): sys/rekey* are off. */
  unauthedRekeyOff: boolean;
  /** The listener's `disable_unauthed_generate_root_endpoints`: sys/generate-root/* are off. */
  unauthedGenerateRootOff: boolean;
  /** The request's body as received (a standby forwards it unchanged; see forward.ts). */
  rawBody(req: FastifyRequest): Buffer | undefined;
}

export type { Auth };

export interface Call {
  req: FastifyRequest;
  reply: FastifyReply;
  /** The request path below `/v1/`, percent-decoded, without the query string. */
  path: string;
  query: Record<string, string | undefined>;
  body: unknown;
  /** Set for authenticated routes. */
  auth: Auth | undefined;
}

/**
 * What a handler returns: a JSON body (200 unless `status`), or nothing (204). `json` is a body
 * already serialized as JSON text.
 */
export type Result =
  | {
      status?: number;
      body: unknown;
      contentType?: string;
      json?: string;
      /** What the audit's response record says beyond the answer's data (a token the response issued). */
      audit?: AuditResult;
    }
  | undefined;

/** The path below `/v1/` of a raw URL, decoded; a 400 when it is not valid percent-encoding. */
export function logicalPath(url: string): string {
  const q = url.indexOf("?");
  const raw = (q < 0 ? url : url.slice(0, q)).replace(/^\/v1\//, "");
  if (!raw.includes("%")) return raw;
  try {
    return decodeURIComponent(raw);
  } catch {
    throw new HttpError(400, "the request path is not valid percent-encoding");
  }
}

export function queryOf(req: FastifyRequest): Record<string, string | undefined> {
  const q = req.query as Record<string, string | string[] | undefined> | undefined;
  const out: Record<string, string | undefined> = {};
  for (const [k, v] of Object.entries(q ?? {})) out[k] = Array.isArray(v) ? v[v.length - 1] : v;
  return out;
}

/** The token from `X-Vault-Token`, or `Authorization: Bearer …`. */
export function tokenFrom(req: FastifyRequest): string | undefined {
  const h = req.headers["x-vault-token"];
  const v = Array.isArray(h) ? h[0] : h;
  if (v !== undefined && v.length > 0) return v.trim();
  const a = req.headers.authorization;
  if (a !== undefined) {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(a);
    if (m !== null) return m[1];
  }
  return undefined;
}

/**
 * Headers Bulwark refuses rather than ignores: response wrapping and namespaces would change what
 * the client gets back.
 */
export function checkHeaders(req: FastifyRequest): void {
  const wrap = req.headers["x-vault-wrap-ttl"];
  if (wrap !== undefined && wrap !== "") {
    throw new HttpError(400, "response wrapping (X-Vault-Wrap-TTL) is not supported by Bulwark");
  }
  const ns = req.headers["x-vault-namespace"];
  if (ns !== undefined && ns !== "" && ns !== "root" && ns !== "root/") {
    throw new HttpError(400, "namespaces are not supported by Bulwark: remove X-Vault-Namespace");
  }
}

export function requireUnsealed(store: SealedStore): void {
  if (store.sealed) throw new HttpError(503, SEALED_MESSAGE);
}

/** Sealed → 503; no, unknown, expired or revoked token → 403 (the logical layer decides). */
export function authenticate(ctx: AppContext, req: FastifyRequest): Promise<Auth> {
  return ctx.services.authenticate(tokenFrom(req));
}

/** The ACL operation of a request (LIST and `?list=true` are list; PUT/POST update). */
export function operationOf(method: string, query: Record<string, string | undefined>): Operation {
  switch (method) {
    case "GET":
    case "HEAD":
      return queryBool(query, "list") === true ? "list" : "read";
    case "LIST":
      return "list";
    case "DELETE":
      return "delete";
    case "PATCH":
      return "patch";
    default:
      return "update";
  }
}

/** 403 unless the token's ACL allows `op` (and sudo, when asked) on `path`. */
export function authorize(auth: Auth, path: string, op: Operation, sudo = false): void {
  vaultAuthorize(auth, path, op, sudo);
}

/**
 * For handlers that normalise the name in their path (policy names are trimmed and lower-cased,
 * mount paths lose extra slashes): the ACL must also allow the canonical path, or a deny written
 * for `sys/policy/admin` or `sys/mounts/secret` would not stop `sys/policy/ADMIN` or
 * `sys/mounts/secret/`, which act on the same object.
 */
export function authorizeCanonical(call: Call, canonical: string): void {
  if (call.auth === undefined || canonical === call.path) return;
  authorize(call.auth, canonical, operationOf(call.req.method, call.query));
}

/** A path parameter of the route's URL pattern (`:name`, or `*`); a 400 when it is missing or empty. */
export function paramOf(params: unknown, name: string): string {
  const v: unknown = typeof params === "object" && params !== null ? Reflect.get(params, name) : undefined;
  if (typeof v !== "string" || v === "") throw new HttpError(400, `missing ${name} in the path`);
  return v;
}

/**
 * The caller of a `token` route (`route()` authenticated it before the handler ran); a 403 when
 * there is none, so a handler never acts without one.
 */
export function callerOf(call: Pick<Call, "auth">): Auth {
  if (call.auth === undefined) throw new HttpError(403, "permission denied");
  return call.auth;
}

/** Vault's response envelope around `data` (and/or `auth`). */
export function envelope(
  data: unknown,
  opts: { warnings?: string[]; auth?: unknown; leaseDuration?: number; mountType?: string } = {},
): Record<string, unknown> {
  return {
    request_id: randomUUID(),
    lease_id: "",
    renewable: false,
    lease_duration: opts.leaseDuration ?? 0,
    data: data ?? null,
    wrap_info: null,
    warnings: opts.warnings !== undefined && opts.warnings.length > 0 ? opts.warnings : null,
    auth: opts.auth ?? null,
    mount_type: opts.mountType ?? "",
  };
}

/** {@link envelope} with `data` given as JSON text (same fields, same order). */
export function envelopeText(
  dataJson: string,
  opts: { warnings?: string[]; leaseDuration?: number; mountType?: string } = {},
): string {
  const warnings =
    opts.warnings !== undefined && opts.warnings.length > 0 ? JSON.stringify(opts.warnings) : "null";
  return (
    `{"request_id":"${randomUUID()}","lease_id":"","renewable":false,"lease_duration":${opts.leaseDuration ?? 0},` +
    `"data":${dataJson},"wrap_info":null,"warnings":${warnings},"auth":null,"mount_type":${JSON.stringify(opts.mountType ?? "")}}`
  );
}

export function send(reply: FastifyReply, result: Result): FastifyReply {
  if (result === undefined) return reply.code(204).send();
  reply.code(result.status ?? 200);
  if (result.contentType !== undefined) {
    reply.header("content-type", result.contentType);
    return reply.send(result.body);
  }
  reply.header("content-type", "application/json");
  return reply.send(result.json ?? JSON.stringify(result.body));
}

export interface RouteSpec {
  methods: HTTPMethods[];
  /** Fastify URL pattern, e.g. "/v1/sys/policy/:name". */
  url: string;
  /** "none": unauthenticated (seal-status, unseal, …); "token": a valid token and the ACL. */
  auth: "none" | "token";
  /** Also require `sudo` on the path (Vault's root-protected paths). */
  sudo?: boolean;
  /** ACL operation regardless of method (e.g. capabilities-self is always update). */
  operation?: Operation;
  /**
   * How the request is audited (audit.ts): "full" (default for token routes: a request and a
   * response record), "request-only" (sys/seal, sys/step-down), "non-logical" (the unauthenticated
   * share-holder endpoints), "none" (default for unauthenticated routes: sys/init, sys/unseal, …).
   */
  audit?: AuditMode;
  /** Audit the request even when no device is enabled yet (sys/audit/<path>: the new device gets the response record). */
  auditFirstDevice?: boolean;
  handler(call: Call): Promise<Result>;
}

export function route(app: FastifyInstance, ctx: AppContext, spec: RouteSpec): void {
  const mode: AuditMode = spec.audit ?? (spec.auth === "token" ? "full" : "none");
  app.route({
    method: spec.methods,
    url: spec.url,
    handler: async (req, reply) => {
      checkHeaders(req);
      const path = logicalPath(req.url);
      const query = queryOf(req);
      // Synchronous while the active term's table is in memory (no promise hop per request).
      let state: AuditState = "off";
      if (mode !== "none") {
        const st = auditState(ctx);
        state = typeof st === "string" ? st : await st;
      }
      // Enabling the first device: its response record goes to it (OpenBao writes it there).
      if (
        state === "off" &&
        spec.auditFirstDevice === true &&
        !ctx.store.sealed &&
        ctx.store.activeTerm !== undefined
      )
        state = "audit";
      if (state === "off") return send(reply, await authorized(ctx, spec, req, reply, path, query));
      // A standby has no audit devices open: the active node serves (and logs) the request.
      if (state === "forward") return forwardAudited(ctx, req, reply);
      const op = spec.operation ?? operationOf(req.method, query);
      const started = requestAudit(ctx, req, path, mode === "non-logical" ? "update" : op, req.body);
      const audit = started instanceof Promise ? await started : started;
      return send(reply, await audited(ctx, spec, mode, audit, { req, reply, path, query, op }));
    },
  });
}

/** The route's checks and handler, unaudited. */
async function authorized(
  ctx: AppContext,
  spec: RouteSpec,
  req: FastifyRequest,
  reply: FastifyReply,
  path: string,
  query: Record<string, string | undefined>,
): Promise<Result> {
  let auth: Auth | undefined;
  if (spec.auth === "token") {
    auth = await authenticate(ctx, req);
    const op = spec.operation ?? operationOf(req.method, query);
    // Vault checks a LIST on the folder path (with its trailing '/'), as logical routes do.
    authorize(auth, aclPath(path, op), op, spec.sudo === true);
  }
  return spec.handler({ req, reply, path, query, body: req.body, auth });
}

/** The route's checks and handler between its audit records (see audit.ts for which are written). */
async function audited(
  ctx: AppContext,
  spec: RouteSpec,
  mode: AuditMode,
  audit: RequestAudit,
  r: {
    req: FastifyRequest;
    reply: FastifyReply;
    path: string;
    query: Record<string, string | undefined>;
    op: Operation;
  },
): Promise<Result> {
  const { req, reply, path, query, op } = r;
  let auth: Auth | undefined;
  if (spec.auth === "token") {
    try {
      auth = await authenticate(ctx, req);
      authorize(auth, aclPath(path, op), op, spec.sudo === true);
    } catch (e) {
      await auditRefusal(ctx, audit, req, path, auth, e, { responseRecord: mode === "full" });
      throw e;
    }
  }
  // An unauthenticated path of the router (sys/internal/ui/mounts): the records name the token
  // when a valid one came with the request.
  const caller = spec.auth === "none" && mode === "full" ? await callerIfAny(ctx, req) : auth;
  if (mode === "non-logical") {
    // OpenBao's handleAuditNonLogical: no token, no mount; the response record carries the answer.
    audit.anonymous();
  } else {
    if (caller !== undefined) {
      // No policy grants an unauthenticated path: OpenBao names none there.
      const granting = spec.auth === "none" ? [] : caller.acl.grantingPolicies(aclPath(path, op), op);
      const verdict = { allowed: true, granting };
      // sys/seal's record (OpenBao's SealWithRequest) has the token's entry only.
      if (mode === "request-only") audit.caller(caller, undefined, { issueTime: false, clientId: false });
      else audit.caller(caller, verdict);
    } else audit.anonymous({ allowed: true });
    if (mode === "full") audit.mount(await auditMountFor(ctx, path), op === "update" || op === "create");
    else audit.mount(undefined, false);
  }
  await audit.begin();
  let result: Result;
  try {
    result = await spec.handler({ req, reply, path, query, body: req.body, auth });
  } catch (e) {
    if (mode === "non-logical") await audit.end(nonLogicalResponse({ errors: toHttpError(e).errors }, true));
    else if (mode !== "request-only") await audit.fail(e);
    throw e;
  }
  if (mode === "non-logical") {
    const body = result?.json !== undefined ? JSON.parse(result.json) : result?.body;
    await audit.end(nonLogicalResponse(body, result !== undefined));
  } else if (mode !== "request-only") await audit.end(auditResponseOf(result));
  return result;
}

/**
 * OpenBao's handleAuditNonLogical records the HTTP answer itself: its JSON body as the data and
 * its headers (Vault's generic handler sets Cache-Control on every answer).
 */
function nonLogicalResponse(body: unknown, hasBody: boolean): AuditResponseInput {
  const out: AuditResponseInput = {
    headers: {
      "Cache-Control": ["no-store"],
      "Strict-Transport-Security": ["max-age=31536000; includeSubDomains"],
    },
  };
  if (hasBody && out.headers !== undefined) out.headers["Content-Type"] = ["application/json"];
  if (typeof body === "object" && body !== null && !Array.isArray(body))
    out.data = body as Record<string, unknown>;
  return out;
}

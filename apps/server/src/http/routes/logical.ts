/**
 * Everything below `/v1/` that is not a sys/ or auth/ route goes to the logical layer
 * (`Services.handle` of @bulwark/vault: token → ACL → mount → engine). This route keeps the HTTP
 * concerns: refused headers, the path's percent-decoding, method → operation, the 405 for a
 * known sys/auth path without this method, and Vault's response envelope.
 */
import type { AuditResponseInput, Operation, VaultRequest, VaultResponse } from "@bulwark/vault";
import type { FastifyInstance, FastifyRequest } from "fastify";
import {
  auditMountOf,
  auditRefusal,
  auditResponse,
  auditState,
  callerIfAny,
  forwardAudited,
  type RequestAudit,
  requestAudit,
} from "../audit.js";
import {
  type AppContext,
  authenticate,
  checkHeaders,
  envelope,
  envelopeText,
  logicalPath,
  operationOf,
  queryOf,
  type Result,
  send,
  tokenFrom,
} from "../context.js";
import { HttpError } from "../errors.js";

export function registerLogicalRoutes(
  app: FastifyInstance,
  ctx: AppContext,
  knownSystemPath: (path: string) => boolean,
): void {
  app.route({
    method: ["GET", "PUT", "POST", "DELETE", "PATCH"],
    url: "/v1/*",
    handler: async (req, reply) => {
      checkHeaders(req);
      const path = logicalPath(req.url);
      const query = queryOf(req);
      const isSystem =
        path.startsWith("sys/") || path.startsWith("auth/") || path === "sys" || path === "auth";
      // A sys/auth path reaches here only when no route has this method (or no route at all).
      if (isSystem && knownSystemPath(path)) throw new HttpError(405, "unsupported operation");
      let operation: Operation = "read"; // a sys/auth path is refused whatever the operation
      if (!isSystem) {
        try {
          operation = operationOf(req.method, query);
        } catch (e) {
          // A bad `?list=` is a 400, but only to a caller that passes authentication (503/403 first).
          await authenticate(ctx, req);
          throw e;
        }
      }
      const request: VaultRequest = { operation, path, data: req.body, query, token: tokenFrom(req) };
      const st = auditState(ctx);
      const state = typeof st === "string" ? st : await st;
      if (state === "off") return send(reply, resultOf(await ctx.services.handle(request)));
      // A standby has no audit devices open: the active node serves (and logs) the request.
      if (state === "forward") return forwardAudited(ctx, req, reply);
      const started = requestAudit(ctx, req, path, operation, req.body);
      const audit = started instanceof Promise ? await started : started;
      return send(reply, await auditedHandle(ctx, audit, request, req));
    },
  });
}

/** The envelope of the logical layer's answer (undefined: 204). */
function resultOf(res: VaultResponse): Result {
  if (res.data === undefined && res.rawData === undefined && res.status === undefined) return undefined;
  const opts: { warnings?: string[]; leaseDuration?: number; mountType: string } = {
    mountType: res.mountType,
  };
  if (res.warnings !== undefined) opts.warnings = res.warnings;
  if (res.leaseDuration !== undefined) opts.leaseDuration = res.leaseDuration;
  const status = res.status ?? 200;
  if (res.rawData !== undefined) return { status, body: undefined, json: envelopeText(res.rawData, opts) };
  return { status, body: envelope(res.data ?? null, opts) };
}

/**
 * The logical request between its audit records: the request record once the router has the
 * token and the ACL's yes (before the engine runs), or the refusal's records; the response record
 * after.
 */
async function auditedHandle(
  ctx: AppContext,
  audit: RequestAudit,
  request: VaultRequest,
  req: FastifyRequest,
): Promise<Result> {
  const { path } = request;
  let state: "before" | "logging" | "logged" = "before";
  request.exactOperation = true;
  request.onAuthorized = async (info) => {
    audit.operation(info.operation);
    audit.caller(info.auth, {
      allowed: true,
      granting: info.auth.acl.grantingPolicies(info.aclPath, info.operation),
    });
    // The router's mount (a secrets mount: logical paths are never sys/ or auth/).
    const mount = info.mount === undefined ? undefined : auditMountOf(info.mount, "secret");
    audit.mount(mount, info.operation === "create" || info.operation === "update");
    state = "logging";
    await audit.begin();
    state = "logged";
  };
  let res: VaultResponse;
  try {
    res = await ctx.services.handle(request);
  } catch (e) {
    if (state === "before")
      await auditRefusal(ctx, audit, req, path, await callerIfAny(ctx, req), e, { responseRecord: true });
    // "logging": the request record is what failed (fail-closed): no response record either.
    else if (state === "logged") await audit.fail(e);
    throw e;
  }
  await audit.end(auditResponseOfVault(res));
  return resultOf(res);
}

/** The response record's part of the engine's answer (its data as Go's JSON round trip leaves it). */
function auditResponseOfVault(res: VaultResponse): AuditResponseInput | undefined {
  const data = res.data === undefined && res.rawData !== undefined ? JSON.parse(res.rawData) : res.data;
  const out = auditResponse(data, res.warnings);
  // KV v1 answers a read as a secret with a lease (OpenBao's passthrough backend): its record has
  // `secret` (the lease id is empty: KV leases are not tracked).
  if (res.leaseDuration !== undefined) out.secret = { leaseId: "" };
  return Object.keys(out).length === 0 ? undefined : out;
}

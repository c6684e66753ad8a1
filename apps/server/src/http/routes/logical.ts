/**
 * Everything below `/v1/` that is not a sys/ or auth/ route goes to the logical layer
 * (`Services.handle` of @bulwark/vault: token → ACL → mount → engine). This route keeps the HTTP
 * concerns: refused headers, the path's percent-decoding, method → operation, the 405 for a
 * known sys/auth path without this method, and Vault's response envelope.
 */
import type { Operation, VaultResponse } from "@bulwark/vault";
import type { FastifyInstance } from "fastify";
import {
  type AppContext,
  authenticate,
  checkHeaders,
  envelope,
  envelopeText,
  logicalPath,
  operationOf,
  queryOf,
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
      const res: VaultResponse = await ctx.services.handle({
        operation,
        path,
        data: req.body,
        query,
        token: tokenFrom(req),
      });
      if (res.data === undefined && res.rawData === undefined && res.status === undefined)
        return send(reply, undefined);
      const opts: { warnings?: string[]; leaseDuration?: number; mountType: string } = {
        mountType: res.mountType,
      };
      if (res.warnings !== undefined) opts.warnings = res.warnings;
      if (res.leaseDuration !== undefined) opts.leaseDuration = res.leaseDuration;
      const status = res.status ?? 200;
      if (res.rawData !== undefined)
        return send(reply, { status, body: undefined, json: envelopeText(res.rawData, opts) });
      return send(reply, { status, body: envelope(res.data ?? null, opts) });
    },
  });
}

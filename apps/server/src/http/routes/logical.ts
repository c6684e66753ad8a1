/**
 * Everything below `/v1/` that is not a sys/ or auth/ route goes to the secrets engine mounted at
 * the longest matching prefix (KV v1 or v2). Writes are `create` or `update` for the ACL depending
 * on whether the target exists, as in Vault; LIST (method or `?list=true`) is checked on the path
 * with a trailing '/'.
 */

import type { KvOperation, Operation } from "@bulwark/vault";
import type { FastifyInstance } from "fastify";
import {
  type AppContext,
  authenticate,
  authorize,
  checkHeaders,
  envelope,
  envelopeText,
  logicalPath,
  operationOf,
  queryOf,
  send,
} from "../context.js";
import { HttpError } from "../errors.js";

const KV_OPERATION: Partial<Record<Operation, KvOperation>> = {
  read: "read",
  list: "list",
  create: "write",
  update: "write",
  delete: "delete",
};

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
      if (path.startsWith("sys/") || path.startsWith("auth/") || path === "sys" || path === "auth") {
        // A sys/auth path reaches here only when no route has this method (or no route at all).
        if (knownSystemPath(path)) throw new HttpError(405, "unsupported operation");
        // As Vault: a path Bulwark does not serve is a 404 only to a valid token (403 otherwise,
        // 503 sealed), so the answer tells an unauthenticated caller nothing about the server.
        await authenticate(ctx, req);
        throw new HttpError(404, `unsupported path ${JSON.stringify(path)}`);
      }
      const auth = await authenticate(ctx, req);
      let op = operationOf(req.method, query);
      const resolved = await ctx.services.mounts.resolve(path);
      // Create vs update matters only when the token holds one but not the other; skip the
      // existence check (a storage read) otherwise. One capability lookup answers both (a denied
      // path's capabilities are just `deny`).
      if (op === "update" && resolved !== undefined) {
        const caps = auth.acl.capabilities(path);
        if (caps.has("create") !== caps.has("update")) {
          const exists = await resolved.engine.exists(resolved.rest);
          if (exists === false) op = "create";
        }
      }
      authorize(auth, op === "list" && !path.endsWith("/") ? `${path}/` : path, op);
      if (resolved === undefined)
        throw new HttpError(404, `no handler for route ${JSON.stringify(path)}: nothing is mounted there`);
      const kvOp = KV_OPERATION[op];
      if (kvOp === undefined) throw new HttpError(405, `unsupported operation ${op} on a kv mount`);
      const res = await resolved.engine.handle({
        operation: kvOp,
        path: resolved.rest,
        body: req.body,
        query,
      });
      if (res.data === undefined && res.rawData === undefined && res.status === undefined)
        return send(reply, undefined);
      const opts: { warnings?: string[]; leaseDuration?: number; mountType: string } = { mountType: "kv" };
      if (res.warnings !== undefined) opts.warnings = res.warnings;
      if (res.leaseDuration !== undefined) opts.leaseDuration = res.leaseDuration;
      const status = res.status ?? 200;
      if (res.rawData !== undefined)
        return send(reply, { status, body: undefined, json: envelopeText(res.rawData, opts) });
      return send(reply, { status, body: envelope(res.data ?? null, opts) });
    },
  });
}

/**
 * The token auth method: auth/token/create, create-orphan, lookup, lookup-self, lookup-accessor,
 * renew, renew-self, renew-accessor, revoke, revoke-self, revoke-accessor, revoke-orphan.
 * Every route goes through the ACL (the `default` policy lets a token look itself up, renew and
 * revoke itself).
 */

import {
  type AuditAuthInput,
  type CreateTokenRequest,
  parseFields,
  type TokenEntry,
  tokenAuthData,
  tokenLookupData,
} from "@bulwark/vault";
import type { FastifyInstance } from "fastify";
import { type AppContext, callerOf, envelope, route } from "../context.js";
import { HttpError } from "../errors.js";

const CREATE_SPEC = {
  id: "string",
  role_name: "string",
  policies: "strings",
  meta: "stringMap",
  no_parent: "bool",
  no_default_policy: "bool",
  renewable: "bool",
  lease: "duration",
  ttl: "duration",
  type: "string",
  explicit_max_ttl: "duration",
  display_name: "string",
  num_uses: "int",
  period: "duration",
  entity_alias: "string",
} as const;

/** The body of auth/token/create as the token store's request; what Bulwark does not do is refused by name. */
function createRequest(body: unknown): CreateTokenRequest {
  const f = parseFields(body, CREATE_SPEC);
  if (f.role_name !== undefined && f.role_name !== "")
    throw new HttpError(400, "token roles are not supported by Bulwark: omit role_name");
  if (f.entity_alias !== undefined && f.entity_alias !== "")
    throw new HttpError(400, "entity aliases are not supported by Bulwark");
  if (f.type !== undefined && f.type !== "" && f.type !== "service" && f.type !== "default") {
    throw new HttpError(400, `token type ${JSON.stringify(f.type)} is not supported by Bulwark: use service`);
  }
  if (f.num_uses !== undefined && f.num_uses < 0) throw new HttpError(400, "num_uses must not be negative");
  const req: CreateTokenRequest = {};
  if (f.id !== undefined && f.id !== "") req.id = f.id;
  if (f.policies !== undefined) req.policies = f.policies;
  if (f.meta !== undefined) req.meta = f.meta;
  if (f.no_parent !== undefined) req.noParent = f.no_parent;
  if (f.no_default_policy !== undefined) req.noDefaultPolicy = f.no_default_policy;
  if (f.renewable !== undefined) req.renewable = f.renewable;
  const ttl = f.ttl ?? f.lease;
  if (ttl !== undefined) req.ttl = ttl;
  if (f.explicit_max_ttl !== undefined) req.explicitMaxTtl = f.explicit_max_ttl;
  if (f.period !== undefined) req.period = f.period;
  if (f.display_name !== undefined) req.displayName = f.display_name;
  if (f.num_uses !== undefined) req.numUses = f.num_uses;
  return req;
}

/** The response record's `auth` of a created or renewed token (OpenBao's `resp.Auth`; hashed by the device). */
function issuedAuditAuth(token: string, e: TokenEntry, renewed = false): AuditAuthInput {
  const out: AuditAuthInput = {
    accessor: e.accessor,
    displayName: e.display_name,
    policies: e.policies,
    tokenPolicies: e.policies,
    tokenType: e.type,
  };
  if (token !== "") out.clientToken = token;
  if (e.meta !== null && Object.keys(e.meta).length > 0) out.metadata = e.meta;
  if (e.num_uses > 0) out.numUses = e.num_uses;
  if (e.entity_id !== "") out.entityId = e.entity_id;
  if (e.lease_ttl > 0) out.tokenTtl = e.lease_ttl;
  // A renewal answers the lease's auth, which carries its issue time (a create's does not yet).
  if (renewed && e.issue_time !== "") {
    const t = Date.parse(e.issue_time);
    if (!Number.isNaN(t)) out.tokenIssueTime = new Date(t).toISOString().replace(/\.\d{3}Z$/, "Z");
  }
  return out;
}

export function registerTokenRoutes(app: FastifyInstance, ctx: AppContext): void {
  registerCreateRoutes(app, ctx);
  registerLookupRoutes(app, ctx);
  registerRenewRoutes(app, ctx);
  registerRevokeRoutes(app, ctx);
}

/** auth/token/create and create-orphan. */
function registerCreateRoutes(app: FastifyInstance, ctx: AppContext): void {
  for (const [url, orphanPath] of [
    ["/v1/auth/token/create", false],
    ["/v1/auth/token/create-orphan", true],
  ] as const) {
    route(app, ctx, {
      methods: ["PUT", "POST"],
      url,
      auth: "token",
      handler: async (call) => {
        const req = createRequest(call.body);
        const a = callerOf(call);
        const sudo = a.acl.allows(call.path, "update", { sudo: true });
        const issued = await ctx.services.tokens.create(a.entry, req, { sudo, orphanPath, path: call.path });
        return {
          body: envelope(null, {
            auth: tokenAuthData(issued.token, issued.entry),
            warnings: issued.warnings,
          }),
          audit: { auth: issuedAuditAuth(issued.token, issued.entry) },
        };
      },
    });
  }
}

/** auth/token/lookup, lookup-self and lookup-accessor. */
function registerLookupRoutes(app: FastifyInstance, ctx: AppContext): void {
  const tokens = ctx.services.tokens;
  route(app, ctx, {
    methods: ["PUT", "POST"],
    url: "/v1/auth/token/lookup",
    auth: "token",
    handler: async ({ body }) => {
      const f = parseFields(body, { token: "string" }, { required: ["token"] });
      const token = f.token ?? "";
      if (token === "") throw new HttpError(400, "missing token to look up");
      const e = await tokens.lookup(token);
      if (e === undefined) throw new HttpError(403, "bad token");
      return { body: envelope(tokenLookupData(token, e)) };
    },
  });

  route(app, ctx, {
    methods: ["GET", "PUT", "POST"],
    url: "/v1/auth/token/lookup-self",
    auth: "token",
    handler: async (call) => {
      if (call.req.method !== "GET") parseFields(call.body, { token: "string" });
      const a = callerOf(call);
      return { body: envelope(tokenLookupData(a.token, a.entry)) };
    },
  });

  route(app, ctx, {
    methods: ["PUT", "POST"],
    url: "/v1/auth/token/lookup-accessor",
    auth: "token",
    handler: async ({ body }) => {
      const f = parseFields(body, { accessor: "string" }, { required: ["accessor"] });
      const e = await tokens.lookupAccessor(f.accessor ?? "");
      if (e === undefined) throw new HttpError(400, "invalid accessor");
      return { body: envelope(tokenLookupData("", e)) };
    },
  });
}

/** auth/token/renew, renew-self and renew-accessor. */
function registerRenewRoutes(app: FastifyInstance, ctx: AppContext): void {
  const tokens = ctx.services.tokens;
  route(app, ctx, {
    methods: ["PUT", "POST"],
    url: "/v1/auth/token/renew",
    auth: "token",
    handler: async ({ body }) => {
      const f = parseFields(body, { token: "string", increment: "duration" }, { required: ["token"] });
      const token = f.token ?? "";
      // Vault: renewing an unknown token is a 400 "token not found".
      const e = await tokens.lookup(token);
      if (e === undefined) throw new HttpError(400, "token not found");
      const r = await tokens.renew(e, f.increment);
      return {
        body: envelope(null, { auth: tokenAuthData(token, r.entry), warnings: r.warnings }),
        audit: { auth: issuedAuditAuth(token, r.entry, true) },
      };
    },
  });

  route(app, ctx, {
    methods: ["PUT", "POST"],
    url: "/v1/auth/token/renew-self",
    auth: "token",
    handler: async (call) => {
      const f = parseFields(call.body, { token: "string", increment: "duration" });
      const a = callerOf(call);
      const r = await tokens.renew(a.entry, f.increment);
      return {
        body: envelope(null, { auth: tokenAuthData(a.token, r.entry), warnings: r.warnings }),
        audit: { auth: issuedAuditAuth(a.token, r.entry, true) },
      };
    },
  });

  route(app, ctx, {
    methods: ["PUT", "POST"],
    url: "/v1/auth/token/renew-accessor",
    auth: "token",
    handler: async ({ body }) => {
      const f = parseFields(body, { accessor: "string", increment: "duration" }, { required: ["accessor"] });
      const e = await tokens.lookupAccessor(f.accessor ?? "");
      if (e === undefined) throw new HttpError(400, "invalid accessor");
      const r = await tokens.renew(e, f.increment);
      return {
        body: envelope(null, { auth: tokenAuthData("", r.entry), warnings: r.warnings }),
        audit: { auth: issuedAuditAuth("", r.entry, true) },
      };
    },
  });
}

/** OpenBao's 400 for a batch token: nothing of it is stored, it lives until its TTL runs out. */
function revocable(e: TokenEntry): TokenEntry {
  if (e.type === "batch") throw new HttpError(400, "batch tokens cannot be revoked");
  return e;
}

/** auth/token/revoke, revoke-self, revoke-accessor and revoke-orphan (sudo). */
function registerRevokeRoutes(app: FastifyInstance, ctx: AppContext): void {
  const tokens = ctx.services.tokens;
  route(app, ctx, {
    methods: ["PUT", "POST"],
    url: "/v1/auth/token/revoke",
    auth: "token",
    handler: async ({ body }) => {
      const f = parseFields(body, { token: "string" }, { required: ["token"] });
      const e = await tokens.lookup(f.token ?? "");
      if (e !== undefined) await tokens.revoke(revocable(e).hash);
      return undefined;
    },
  });

  route(app, ctx, {
    methods: ["PUT", "POST"],
    url: "/v1/auth/token/revoke-self",
    auth: "token",
    handler: async (call) => {
      parseFields(call.body, { token: "string" });
      await tokens.revoke(revocable(callerOf(call).entry).hash);
      return undefined;
    },
  });

  route(app, ctx, {
    methods: ["PUT", "POST"],
    url: "/v1/auth/token/revoke-accessor",
    auth: "token",
    handler: async ({ body }) => {
      const f = parseFields(body, { accessor: "string" }, { required: ["accessor"] });
      const e = await tokens.lookupAccessor(f.accessor ?? "");
      // Vault answers 400 for an unknown accessor: a mistyped one must not look revoked.
      if (e === undefined) throw new HttpError(400, "invalid accessor");
      await tokens.revoke(e.hash);
      return undefined;
    },
  });

  route(app, ctx, {
    methods: ["PUT", "POST"],
    url: "/v1/auth/token/revoke-orphan",
    auth: "token",
    sudo: true,
    handler: async ({ body }) => {
      const f = parseFields(body, { token: "string" }, { required: ["token"] });
      const e = await tokens.lookup(f.token ?? "");
      if (e === undefined) throw new HttpError(400, "token to revoke not found");
      await tokens.revokeOrphan(revocable(e).hash);
      return undefined;
    },
  });
}

/**
 * Share-holder operations (unauthenticated, as in Vault: the shares are the authority):
 * sys/rekey/*, sys/rekey-recovery-key/*, sys/generate-root/*; and OpenBao 2.x's authenticated
 * sys/rotate/root/*, sys/rotate/recovery/* and sys/generate-root-token/*.
 *
 * Rekey verification (`require_verification`) is not supported: a rekey completes when the
 * threshold of current shares is in, and the new shares are returned. `require_verification =
 * true` is refused at init, and the `verify` endpoints answer 400 saying so.
 */
import { CoreError, type RekeyStatus, type RekeyTarget, type SealedStore } from "@bulwark/core";
import { createRootToken, parseFields } from "@bulwark/vault";
import type { FastifyInstance } from "fastify";
import { type AppContext, route as addRoute, envelope, type RouteSpec, requireUnsealed } from "../context.js";
import { HttpError } from "../errors.js";

function rekeyBody(
  ctx: AppContext,
  target: RekeyTarget,
  s: RekeyStatus | undefined,
): Record<string, unknown> {
  const mine = s !== undefined && s.target === target ? s : undefined;
  return {
    started: mine !== undefined,
    nonce: mine?.nonce ?? "",
    t: mine?.t ?? 0,
    n: mine?.n ?? 0,
    progress: mine?.progress ?? 0,
    required: mine?.required ?? ctx.store.status().t,
    pgp_fingerprints: null,
    backup: false,
    verification_required: false,
  };
}

/**
 * Rekeys and root generation run on the active node (they end by writing): an unsealed standby
 * refuses with the standby error, so the request is forwarded there (see forward.ts) — status,
 * shares, cancel and result all concern the one operation on the active node.
 */
function requireActive(store: SealedStore): void {
  requireUnsealed(store);
  if (!store.status().active)
    throw new CoreError(
      "standby",
      "this node is a standby: rekeys and root generation run on the active node",
    );
}

/**
 * OpenBao 2.6 (listener `disable_unauthed_rekey_endpoints` / `…_generate_root_endpoints`, default
 * true) drops the unauthenticated share-holder endpoints from its HTTP layer: the request falls
 * through to the sys backend, which answers — measured against bao 2.6 — 503 `Vault is sealed`
 * while sealed, else 405 `unsupported operation` for sys/rekey/* and sys/generate-root/*, 404
 * `unsupported path` for sys/rekey-recovery-key/*, token or not. Same here.
 */
function turnedOff(store: SealedStore, spec: RouteSpec, status: 404 | 405): RouteSpec {
  return {
    methods: spec.methods,
    url: spec.url,
    auth: "none",
    handler: async () => {
      requireUnsealed(store);
      throw new HttpError(status, status === 404 ? "unsupported path" : "unsupported operation");
    },
  };
}

/** The body of sys/rekey/init as the store's rekey request; PGP and verification are refused by name. */
function rekeyRequest(
  body: unknown,
  target: RekeyTarget,
): { secretShares?: number; secretThreshold?: number; target: RekeyTarget } {
  const f = parseFields(body, {
    secret_shares: "int",
    secret_threshold: "int",
    stored_shares: "int",
    pgp_keys: "any",
    backup: "bool",
    require_verification: "bool",
  });
  if (Array.isArray(f.pgp_keys) ? f.pgp_keys.length > 0 : f.pgp_keys !== undefined && f.pgp_keys !== "") {
    throw new HttpError(400, "pgp_keys is not supported by Bulwark: omit it");
  }
  if (f.backup === true)
    throw new HttpError(400, "backup requires PGP keys, which Bulwark does not support: omit it");
  if (f.require_verification === true) {
    throw new HttpError(
      400,
      "require_verification is not supported by Bulwark: rekeys complete without a verification step; omit it",
    );
  }
  const req: { secretShares?: number; secretThreshold?: number; target: RekeyTarget } = { target };
  if (f.secret_shares !== undefined) req.secretShares = f.secret_shares;
  if (f.secret_threshold !== undefined) req.secretThreshold = f.secret_threshold;
  return req;
}

/** The routes of one rekey flow: `base` (e.g. "rekey") for the `target` keys, behind a token when `authed`. */
function registerRekey(
  app: FastifyInstance,
  ctx: AppContext,
  base: string,
  target: RekeyTarget,
  authed = false,
): void {
  const { store } = ctx;
  const off = !authed && ctx.unauthedRekeyOff;
  const route = (spec: RouteSpec) =>
    addRoute(app, ctx, off ? turnedOff(store, spec, target === "recovery" ? 404 : 405) : spec);
  // Vault: the shares are the authority. With disable_unauthed_rekey_endpoints (OpenBao), a
  // token with sudo on the path is needed as well. OpenBao 2.x's sys/rotate/root/* and
  // sys/rotate/recovery/* always need one, and answer in the response envelope (`data`).
  const access =
    authed || ctx.rekeyNeedsToken
      ? ({ auth: "token", sudo: true } as const)
      : // OpenBao's handleAuditNonLogical: the share-holder endpoints are audited without a token.
        ({ auth: "none", audit: "non-logical" } as const);
  const wrap = (data: Record<string, unknown>) => ({ body: authed ? envelope(data) : data });
  route({
    methods: ["GET"],
    url: `/v1/sys/${base}/init`,
    ...access,
    handler: async () => {
      requireActive(store);
      return wrap(rekeyBody(ctx, target, store.rekeyStatus()));
    },
  });
  route({
    methods: ["PUT", "POST"],
    url: `/v1/sys/${base}/init`,
    ...access,
    handler: async ({ body }) => {
      const req = rekeyRequest(body, target);
      requireUnsealed(store);
      return wrap(rekeyBody(ctx, target, await store.rekeyInit(req)));
    },
  });
  route({
    methods: ["DELETE"],
    url: `/v1/sys/${base}/init`,
    ...access,
    handler: async () => {
      requireActive(store);
      if (store.rekeyStatus()?.target === target) store.rekeyCancel();
      return undefined;
    },
  });
  route({
    methods: ["PUT", "POST"],
    url: `/v1/sys/${base}/update`,
    ...access,
    handler: async ({ body }) => {
      const f = parseFields(body, { key: "string", nonce: "string" }, { required: ["key", "nonce"] });
      requireUnsealed(store);
      const cur = store.rekeyStatus();
      if (cur !== undefined && cur.target !== target) {
        throw new HttpError(
          400,
          `the rekey in progress is for the ${cur.target} keys: use the matching endpoint`,
        );
      }
      const r = await store.rekeyUpdate(f.key ?? "", f.nonce ?? "");
      if (!("complete" in r)) return wrap(rekeyBody(ctx, target, r));
      return wrap({
        complete: true,
        nonce: r.nonce,
        keys: r.keys,
        keys_base64: r.keysBase64,
        pgp_fingerprints: null,
        backup: false,
        // OpenBao's RekeyUpdateResponse omits an empty verification_nonce (omitempty).
        verification_required: false,
      });
    },
  });
  route({
    methods: ["GET", "PUT", "POST", "DELETE"],
    url: `/v1/sys/${base}/verify`,
    ...access,
    handler: async () => {
      throw new HttpError(
        400,
        "rekey verification is not supported by Bulwark: a rekey completes without a verification step (require_verification is refused at init)",
      );
    },
  });
}

export function registerKeyRoutes(app: FastifyInstance, ctx: AppContext): void {
  registerRekey(app, ctx, "rekey", "barrier");
  registerRekey(app, ctx, "rekey-recovery-key", "recovery");
  registerRekey(app, ctx, "rotate/root", "barrier", true);
  registerRekey(app, ctx, "rotate/recovery", "recovery", true);
  // Vault's unauthenticated sys/generate-root/* (the shares are the authority), and OpenBao 2.x's
  // sys/generate-root-token/*: the same flow behind a token with sudo, answered in the response
  // envelope (`data`), which is where the bao CLI reads it.
  registerGenerateRoot(app, ctx, "/v1/sys/generate-root", false);
  registerGenerateRoot(app, ctx, "/v1/sys/generate-root-token", true);
}

/** The routes of root-token generation under `base`, behind a token with sudo when `authed`. */
function registerGenerateRoot(app: FastifyInstance, ctx: AppContext, base: string, authed: boolean): void {
  const { store } = ctx;
  const gen = ctx.services.generateRoot;
  const required = () => store.status().t;
  const access = authed
    ? ({ auth: "token", sudo: true } as const)
    : // OpenBao's handleAuditNonLogical: the share-holder endpoints are audited without a token.
      ({ auth: "none", audit: "non-logical" } as const);
  const wrap = (data: unknown) => ({ body: authed ? envelope(data) : data });
  const off = !authed && ctx.unauthedGenerateRootOff;
  const route = (spec: RouteSpec) => addRoute(app, ctx, off ? turnedOff(store, spec, 405) : spec);
  route({
    methods: ["GET"],
    url: `${base}/attempt`,
    ...access,
    handler: async () => {
      requireActive(store);
      return wrap(gen.status(required()));
    },
  });
  route({
    methods: ["PUT", "POST"],
    url: `${base}/attempt`,
    ...access,
    handler: async ({ body }) => {
      const f = parseFields(body, { otp: "string", pgp_key: "string" });
      if (f.pgp_key !== undefined && f.pgp_key !== "") {
        throw new HttpError(
          400,
          "pgp_key is not supported by Bulwark: omit it and decode the token with the OTP",
        );
      }
      requireActive(store);
      return wrap(gen.start(required(), f.otp === "" ? undefined : f.otp));
    },
  });
  route({
    methods: ["DELETE"],
    url: `${base}/attempt`,
    ...access,
    handler: async () => {
      if (!store.sealed) requireActive(store);
      gen.cancel();
      return undefined;
    },
  });
  route({
    methods: ["PUT", "POST"],
    url: `${base}/update`,
    ...access,
    handler: async ({ body }) => {
      const f = parseFields(body, { key: "string", nonce: "string" }, { required: ["key", "nonce"] });
      requireActive(store);
      return wrap(
        await gen.update(store, f.key ?? "", f.nonce ?? "", required(), () => createRootToken(store)),
      );
    },
  });
}

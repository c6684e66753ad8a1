/**
 * Seal lifecycle and health: sys/init, seal-status, unseal, seal, health, leader, key-status,
 * rotate, rotate/config, metrics.
 */
import {
  ABSOLUTE_OPERATION_MAXIMUM,
  ABSOLUTE_OPERATION_MINIMUM,
  MINIMUM_ROTATION_INTERVAL_MS,
} from "@bulwark/barrier";
import type { SealedStore } from "@bulwark/core";
import { formatGoDuration, parseFields, rootTokenAfterInit, sealStatusData } from "@bulwark/vault";
import type { FastifyInstance } from "fastify";
import { type AppContext, envelope, requireUnsealed, route } from "../context.js";
import { HttpError } from "../errors.js";
import { queryBool, queryInt } from "../validate.js";
import { registerHelpHook } from "./help.js";

function nonEmpty(v: unknown): boolean {
  return Array.isArray(v) ? v.length > 0 : typeof v === "string" ? v.length > 0 : v !== undefined;
}

/** The body of sys/init as the store's init request; PGP-encrypted shares are refused by name. */
function initRequest(body: unknown): { request: InitRequest; threshold: number } {
  const f = parseFields(body, {
    secret_shares: "int",
    secret_threshold: "int",
    stored_shares: "int",
    pgp_keys: "any",
    root_token_pgp_key: "any",
    recovery_shares: "int",
    recovery_threshold: "int",
    recovery_pgp_keys: "any",
  });
  for (const k of ["pgp_keys", "root_token_pgp_key", "recovery_pgp_keys"] as const) {
    if (nonEmpty(f[k]))
      throw new HttpError(
        400,
        `${k} is not supported by Bulwark: omit it (shares are returned in hex and base64)`,
      );
  }
  const request: InitRequest = {};
  if (f.secret_shares !== undefined) request.secretShares = f.secret_shares;
  if (f.secret_threshold !== undefined) request.secretThreshold = f.secret_threshold;
  // Vault's API client (and so the bao/vault CLI) always sends recovery_shares: 0 and
  // recovery_threshold: 0; as in Vault, 0 means "not given" (a Shamir seal has no recovery keys).
  if (f.recovery_shares !== undefined && f.recovery_shares !== 0) request.recoveryShares = f.recovery_shares;
  if (f.recovery_threshold !== undefined && f.recovery_threshold !== 0)
    request.recoveryThreshold = f.recovery_threshold;
  return { request, threshold: f.secret_threshold ?? 1 };
}

type InitRequest = {
  secretShares?: number;
  secretThreshold?: number;
  recoveryShares?: number;
  recoveryThreshold?: number;
};

export function registerLifecycleRoutes(app: FastifyInstance, ctx: AppContext): void {
  // `?help=1` on every path (registered first: the routes are all registered after it).
  registerHelpHook(app, ctx);
  registerInitRoutes(app, ctx);
  registerSealRoutes(app, ctx);
  registerHealthRoutes(app, ctx);
  registerRotationRoutes(app, ctx);
  registerMetricsRoute(app, ctx);
}

/** sys/init: whether the store is initialized (GET), and init with the root token (PUT/POST). */
function registerInitRoutes(app: FastifyInstance, ctx: AppContext): void {
  const { store } = ctx;
  route(app, ctx, {
    methods: ["GET"],
    url: "/v1/sys/init",
    auth: "none",
    handler: async () => ({ body: { initialized: store.status().initialized } }),
  });

  route(app, ctx, {
    methods: ["PUT", "POST"],
    url: "/v1/sys/init",
    auth: "none",
    handler: async ({ body }) => {
      const { request, threshold } = initRequest(body);
      const result = await store.initialize(request);
      let rootToken = "";
      const warnings: string[] = [];
      try {
        rootToken = await rootTokenAfterInit(store, result.keys, threshold);
      } catch (e) {
        // The keys must reach the operator whatever happens: init cannot be undone.
        ctx.logger.error({ err: e }, "init succeeded but the root token could not be created");
        warnings.push(`the root token could not be created (${(e as Error).message}); use sys/generate-root`);
      }
      return {
        body: {
          keys: result.keys,
          keys_base64: result.keysBase64,
          recovery_keys: result.recoveryKeys,
          recovery_keys_base64: result.recoveryKeysBase64,
          root_token: rootToken,
          ...(warnings.length > 0 ? { warnings } : {}),
        },
      };
    },
  });
}

/** sys/seal-status, sys/unseal (unauthenticated, as in Vault) and sys/seal (sudo). */
function registerSealRoutes(app: FastifyInstance, ctx: AppContext): void {
  const { store } = ctx;
  route(app, ctx, {
    methods: ["GET"],
    url: "/v1/sys/seal-status",
    auth: "none",
    handler: async () => ({ body: await sealStatusData(ctx.services, ctx.clusterName) }),
  });

  route(app, ctx, {
    methods: ["PUT", "POST"],
    url: "/v1/sys/unseal",
    auth: "none",
    handler: async ({ body }) => {
      const f = parseFields(body, { key: "string", reset: "bool", migrate: "bool" });
      if (f.key === undefined && f.reset !== true) {
        throw new HttpError(400, "'key' must be specified in request body as JSON, or 'reset' set to true");
      }
      const opts: { reset?: boolean; migrate?: boolean } = {};
      if (f.reset !== undefined) opts.reset = f.reset;
      if (f.migrate !== undefined) opts.migrate = f.migrate;
      await store.unseal(f.key, opts);
      return { body: await sealStatusData(ctx.services, ctx.clusterName) };
    },
  });

  route(app, ctx, {
    methods: ["PUT", "POST"],
    url: "/v1/sys/seal",
    auth: "token",
    sudo: true,
    // OpenBao's SealWithRequest writes the request record only (the server is sealed after).
    audit: "request-only",
    handler: async ({ body }) => {
      parseFields(body, {});
      // Vault: only the active node can be sealed. Sealing a standby here would leave the active
      // node serving while the operator believes the cluster sealed; nor is the request forwarded.
      if (!store.sealed && !store.status().active)
        throw new HttpError(500, "cannot seal when in standby mode; please restart instead");
      await store.seal();
      ctx.services.generateRoot.cancel();
      return undefined;
    },
  });
}

/** The status code sys/health answers with, from its `*code` and `standbyok` query parameters. */
function healthStatus(store: SealedStore, query: Record<string, string | undefined>): number {
  const code = (name: string, dflt: number) => {
    const v = queryInt(query, name);
    if (v !== undefined && (v < 100 || v > 599))
      throw new HttpError(400, `${name} must be an HTTP status code (100-599)`);
    return v ?? dflt;
  };
  const standbyOk = queryBool(query, "standbyok") === true;
  // Accepted for Vault clients; Bulwark has no performance standbys.
  queryBool(query, "perfstandbyok");
  const active = code("activecode", 200);
  const standby = code("standbycode", 429);
  const sealed = code("sealedcode", 503);
  const uninit = code("uninitcode", 501);
  code("drsecondarycode", 472);
  code("performancestandbycode", 473);
  const st = store.status();
  if (!st.initialized) return uninit;
  if (st.sealed) return sealed;
  if (!st.active) return standbyOk ? active : standby;
  return active;
}

/** sys/health and sys/leader (unauthenticated, as in Vault: load balancers and clients poll them). */
function registerHealthRoutes(app: FastifyInstance, ctx: AppContext): void {
  const { store } = ctx;
  route(app, ctx, {
    methods: ["GET"],
    url: "/v1/sys/health",
    auth: "none",
    handler: async ({ query }) => {
      const status = healthStatus(store, query);
      const st = store.status();
      const c = st.sealed ? undefined : await ctx.services.cluster(ctx.clusterName).catch(() => undefined);
      return {
        status,
        body: {
          initialized: st.initialized,
          sealed: st.sealed,
          // As Vault: a sealed node reports standby (only an unsealed node can be active).
          standby: !st.active,
          performance_standby: false,
          replication_performance_mode: "disabled",
          replication_dr_mode: "disabled",
          server_time_utc: Math.floor(Date.now() / 1000),
          version: st.version,
          enterprise: false,
          ...(c === undefined ? {} : { cluster_name: c.cluster_name, cluster_id: c.cluster_id }),
          echo_duration_ms: 0,
          clock_skew_ms: 0,
        },
      };
    },
  });

  route(app, ctx, {
    methods: ["GET"],
    url: "/v1/sys/leader",
    auth: "none",
    handler: async () => {
      // As OpenBao: without HA storage there is nothing to look up, sealed or not (`bao status`
      // then shows "HA Enabled false", not the CLI's sealed fallback "true"). With HA, sealed is 503.
      if (store.sealed && !store.status().haEnabled) return { body: { ha_enabled: false } };
      requireUnsealed(store);
      const l = await store.leader();
      // The active node answers with the address it advertises, or else the one it is reached on.
      const self = l.leaderAddress || ctx.apiAddr || ctx.address() || "";
      return {
        body: {
          ha_enabled: l.haEnabled,
          is_self: l.isSelf,
          active_time: l.activeTime?.toISOString() ?? "0001-01-01T00:00:00Z",
          leader_address: l.isSelf ? self : l.leaderAddress,
          leader_cluster_address: "",
          performance_standby: false,
          performance_standby_last_remote_wal: 0,
        },
      };
    },
  });
}

/** The body of sys/rotate/config as the barrier's rotation settings, checked in the API's fields and units. */
function rotationConfig(body: unknown): { maxOperations?: number; intervalMs?: number; disabled?: boolean } {
  const f = parseFields(body, { max_operations: "int", interval: "duration", enabled: "bool" });
  // Checked here so the errors name the API's fields and units (the barrier's name its options).
  if (
    f.max_operations !== undefined &&
    (f.max_operations < ABSOLUTE_OPERATION_MINIMUM || f.max_operations > ABSOLUTE_OPERATION_MAXIMUM)
  ) {
    throw new HttpError(
      400,
      `max_operations must be between ${ABSOLUTE_OPERATION_MINIMUM} and ${ABSOLUTE_OPERATION_MAXIMUM} (AES-GCM's safe limit per key), got ${f.max_operations}`,
    );
  }
  if (f.interval !== undefined && f.interval !== 0 && f.interval * 1000 < MINIMUM_ROTATION_INTERVAL_MS) {
    throw new HttpError(
      400,
      `interval must be 0 (no time-based rotation) or at least ${formatGoDuration(MINIMUM_ROTATION_INTERVAL_MS)}, got ${formatGoDuration(f.interval * 1000)}`,
    );
  }
  const cfg: { maxOperations?: number; intervalMs?: number; disabled?: boolean } = {};
  if (f.max_operations !== undefined) cfg.maxOperations = f.max_operations;
  if (f.interval !== undefined) cfg.intervalMs = f.interval * 1000;
  if (f.enabled !== undefined) cfg.disabled = !f.enabled;
  return cfg;
}

/** sys/key-status, and the keyring's rotation and its configuration. */
function registerRotationRoutes(app: FastifyInstance, ctx: AppContext): void {
  const { store } = ctx;
  route(app, ctx, {
    methods: ["GET"],
    url: "/v1/sys/key-status",
    auth: "token",
    handler: async () => {
      const ks = store.keyStatus();
      const data = { term: ks.term, install_time: ks.installTimeText, encryptions: ks.encryptions };
      return { body: { ...data, ...envelope(data) } };
    },
  });

  // Vault's sys/rotate and OpenBao 2.x's sys/rotate/keyring (what `bao operator rotate` calls):
  // the same operation and configuration under both names.
  for (const rotate of ["/v1/sys/rotate", "/v1/sys/rotate/keyring"]) {
    route(app, ctx, {
      methods: ["PUT", "POST"],
      url: rotate,
      auth: "token",
      sudo: true,
      handler: async ({ body }) => {
        parseFields(body, {});
        await store.rotate();
        return undefined;
      },
    });

    route(app, ctx, {
      methods: ["GET"],
      url: `${rotate}/config`,
      auth: "token",
      sudo: true,
      handler: async () => {
        const c = store.rotationConfig();
        const data = {
          max_operations: c.maxOperations,
          // As OpenBao: 0 (a number) when off, else a Go duration ("24h0m0s").
          interval: c.intervalMs === 0 ? 0 : formatGoDuration(c.intervalMs),
          enabled: !c.disabled,
        };
        return { body: { ...data, ...envelope(data) } };
      },
    });

    route(app, ctx, {
      methods: ["PUT", "POST"],
      url: `${rotate}/config`,
      auth: "token",
      sudo: true,
      handler: async ({ body }) => {
        await store.setRotationConfig(rotationConfig(body));
        return undefined;
      },
    });
  }
}

/** sys/metrics in Prometheus' text format. */
function registerMetricsRoute(app: FastifyInstance, ctx: AppContext): void {
  route(app, ctx, {
    methods: ["GET"],
    url: "/v1/sys/metrics",
    auth: "token",
    handler: async ({ query }) => {
      if (query.format !== undefined && query.format !== "" && query.format !== "prometheus") {
        throw new HttpError(
          400,
          `unsupported metrics format ${JSON.stringify(query.format)}: use format=prometheus`,
        );
      }
      return { body: ctx.metrics.render(ctx.store), contentType: "text/plain; version=0.0.4; charset=utf-8" };
    },
  });
}

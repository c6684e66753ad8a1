/**
 * The Vault-compatible HTTP API on fastify 5.
 *
 * `buildApp()` assembles the routes (tests drive it with `app.inject`); `startHttpServer()` adds
 * the listener from the config (TLS when `tls_disable` is false, `max_request_size` as the body
 * limit) and returns a handle whose `close()` stops accepting, drains in-flight requests and
 * closes idle keep-alive connections.
 *
 * Bodies are parsed as JSON whatever the Content-Type (Vault does the same; `curl -d` sends
 * form-encoded headers); an empty body is "no body". Malformed JSON is a 400 before any route
 * runs, a body over the limit a 413 (body.ts). The listener — binding, TLS files, requests held
 * until the app is attached, ListenerError — is listener.ts.
 */
import type { SealedStore } from "@bulwark/core";
import { servicesFor } from "@bulwark/vault";
import Fastify, { type FastifyInstance, type FastifyReply, LogController } from "fastify";
import type { Logger } from "pino";
import type { HttpServerOptions, RunningServer } from "../contracts.js";
import { isSystemUrl, parseBody } from "./body.js";
import type { AppContext } from "./context.js";
import { HttpError, toHttpError } from "./errors.js";
import { forwardToActive, isStandbyRefusal } from "./forward.js";
import { clientErrorHandler } from "./list-method.js";
import {
  type BoundListener,
  bindListener,
  type HttpOrHttpsServer,
  type HttpsOptions,
  type RequestHandler,
} from "./listener.js";
import { Metrics } from "./metrics.js";
import { registerTokenRoutes } from "./routes/auth-token.js";
import { registerLogicalRoutes } from "./routes/logical.js";
import { registerAdminRoutes } from "./routes/sys-admin.js";
import { registerKeyRoutes } from "./routes/sys-keys.js";
import { registerLifecycleRoutes } from "./routes/sys-lifecycle.js";

export { createRootToken, mountKv } from "@bulwark/vault";
// Kept importable from here, where they were defined before body.ts and listener.ts.
export { MAX_JSON_DEPTH } from "./body.js";
export {
  type BoundListener,
  bindListener,
  ListenerError,
  type ListenerSetting,
  splitAddress,
} from "./listener.js";

/** Vault's default `max_request_size`: 32 MiB. */
export const DEFAULT_MAX_REQUEST_SIZE = 32 * 1024 * 1024;

export interface BuildAppOptions {
  store: SealedStore;
  logger: Logger;
  clusterName?: string;
  apiAddr?: string;
  /** Body limit in bytes; 0 = Vault's default (32 MiB), negative = no limit. */
  maxRequestSize?: number;
  https?: HttpsOptions;
  /** The address clients reach this server on (sys/leader); set by startHttpServer. */
  address?: () => string | undefined;
  /** sys/rekey* also need a token with sudo (OpenBao's `disable_unauthed_rekey_endpoints`). */
  disableUnauthedRekeyEndpoints?: boolean;
  /**
   * The listener's OpenBao 2.6 `disable_unauthed_rekey_endpoints` /
   * `disable_unauthed_generate_root_endpoints`: sys/rekey*, sys/generate-root/* answer as OpenBao
   * does when they are off. startHttpServer passes the listener's value (default true there);
   * an app built directly keeps them on unless told.
   */
  listenerDisablesUnauthedRekey?: boolean;
  listenerDisablesUnauthedGenerateRoot?: boolean;
  /**
   * Serve on the server this returns (Fastify's `serverFactory`, given the app's request
   * handler) instead of creating one; `https` is then ignored.
   */
  serverFactory?: (handler: RequestHandler) => HttpOrHttpsServer;
}

function bodyLimit(size: number | undefined): number {
  if (size === undefined || size === 0) return DEFAULT_MAX_REQUEST_SIZE;
  return size < 0 ? Number.MAX_SAFE_INTEGER : size;
}

/** Turns fastify route patterns into a matcher for "is this a sys/auth path with another method?". */
function patternMatcher(patterns: string[]): (path: string) => boolean {
  const res = patterns.map(
    (p) =>
      new RegExp(
        `^${p
          .replace(/^\/v1\//, "")
          .split("/")
          .map((seg) =>
            seg === "*" ? ".*" : seg.startsWith(":") ? "[^/]+" : seg.replace(/[.+?^${}()|[\]\\-]/g, "\\$&"),
          )
          .join("/")}$`,
      ),
  );
  return (path) => res.some((r) => r.test(path));
}

/** Builds the fastify app with every route (not listening). */
export function buildApp(opts: BuildAppOptions): FastifyInstance {
  const logger = opts.logger.child({ component: "http" });
  const metrics = new Metrics();
  const app = createFastify(opts, logger);
  const rawBodies = addBodyParser(app);
  const ctx: AppContext = {
    store: opts.store,
    services: servicesFor(opts.store, { logger: opts.logger.child({ component: "vault" }) }),
    metrics,
    logger,
    clusterName: opts.clusterName ?? "",
    apiAddr: opts.apiAddr,
    address: opts.address ?? (() => undefined),
    rekeyNeedsToken: opts.disableUnauthedRekeyEndpoints === true,
    unauthedRekeyOff: opts.listenerDisablesUnauthedRekey === true,
    unauthedGenerateRootOff: opts.listenerDisablesUnauthedGenerateRoot === true,
    rawBody: (req) => rawBodies.get(req),
  };
  addResponseHooks(app, logger, metrics);
  setErrorHandlers(app, opts.store, rawBodies);
  registerRoutes(app, ctx);
  // Tokens whose lease ran out are revoked while the server runs (Vault's expiration manager);
  // every listener of the store shares one poll, released when the listener closes.
  const releaseExpiration = ctx.services.keepExpiring();
  app.addHook("onClose", async () => releaseExpiration());
  return app;
}

/** The fastify instance with the server's options: body limit, TLS or a given server, Vault's errors for bad URLs. */
function createFastify(opts: BuildAppOptions, logger: Logger): FastifyInstance {
  // The client-error handler is given the app before `Fastify()` returns it (it reads it only
  // when a client errs, which needs a listening server).
  const app: FastifyInstance = Fastify({
    loggerInstance: logger,
    // Fastify's own per-request lines log the request object; ours (onResponse) log the path only.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: bodyLimit(opts.maxRequestSize),
    routerOptions: { maxParamLength: 2048 },
    forceCloseConnections: "idle",
    return503OnClosing: true,
    clientErrorHandler: clientErrorHandler(() => app),
    ...(opts.serverFactory === undefined ? {} : { serverFactory: opts.serverFactory }),
    // Bad percent-encoding in the URL and the like: Vault's error shape too.
    frameworkErrors: (err, req, res) => {
      const h = toHttpError(err, req.id);
      if (h.detail !== undefined)
        logger.warn({ reqId: req.id, status: h.status, detail: h.detail }, "request refused");
      (res as unknown as FastifyReply)
        .code(h.status)
        .header("content-type", "application/json")
        .send(JSON.stringify({ errors: h.errors }));
    },
    ...(opts.https === undefined || opts.serverFactory !== undefined
      ? {}
      : {
          https: {
            cert: opts.https.cert,
            key: opts.https.key,
            minVersion: opts.https.minVersion ?? "TLSv1.2",
          },
        }),
  }) as unknown as FastifyInstance;
  return app;
}

/**
 * Every body parsed as JSON whatever its Content-Type (see the file's comment); returns the
 * request bodies as received, for forwarding from a standby (see forward.ts).
 */
function addBodyParser(app: FastifyInstance): WeakMap<object, Buffer> {
  const rawBodies = new WeakMap<object, Buffer>();
  app.removeAllContentTypeParsers();
  app.addContentTypeParser("*", { parseAs: "buffer" }, (req, body, done) => {
    // A buffer always (`parseAs: "buffer"`); the type also allows the string of `parseAs: "string"`.
    const buf = typeof body === "string" ? Buffer.from(body) : body;
    if (buf.length === 0) {
      done(null, undefined);
      return;
    }
    rawBodies.set(req, buf);
    try {
      done(null, parseBody(buf, !isSystemUrl(req.url)));
    } catch (e) {
      done(
        new HttpError(400, `failed to parse JSON input: ${e instanceof Error ? e.message : String(e)}`),
        undefined,
      );
    }
  });
  return rawBodies;
}

/** Vault's exact content type, the per-request metrics and the one debug line per request. */
function addResponseHooks(app: FastifyInstance, logger: Logger, metrics: Metrics): void {
  // Vault sends exactly `application/json`; fastify appends "; charset=utf-8" to JSON it sends
  // (hvac, for one, parses error bodies only when the type is exactly Vault's).
  app.addHook("onSend", (_req, reply, payload, done) => {
    if (reply.getHeader("content-type") === "application/json; charset=utf-8")
      reply.header("content-type", "application/json");
    // Vault's generic handler: no answer of the API may be stored by a cache (tokens, secrets);
    // and its listeners' default custom header, HSTS (browsers keep to HTTPS once they saw it).
    reply.header("cache-control", "no-store");
    reply.header("strict-transport-security", "max-age=31536000; includeSubDomains");
    done(null, payload);
  });

  // No per-request child logger (pino child creation with redaction is a measurable share of a
  // request); the request id goes into the one debug line instead.
  app.setChildLoggerFactory((parent) => parent);

  const debug = logger.isLevelEnabled("debug");
  app.addHook("onResponse", (req, reply, done) => {
    metrics.observe(
      req.method,
      req.routeOptions.url ?? "unmatched",
      reply.statusCode,
      reply.elapsedTime / 1000,
    );
    // The path only: bodies, query strings and headers (tokens) are never logged.
    if (debug) {
      logger.debug(
        {
          reqId: req.id,
          method: req.method,
          path: req.url.split("?")[0],
          status: reply.statusCode,
          ms: Math.round(reply.elapsedTime),
        },
        "request",
      );
    }
    done();
  });
}

/**
 * Errors in Vault's shape (`{"errors": [...]}`) from the error table, a standby's refused write
 * forwarded to the active node, and Vault's 404 for a path no route has.
 */
function setErrorHandlers(
  app: FastifyInstance,
  store: SealedStore,
  rawBodies: WeakMap<object, Buffer>,
): void {
  app.setErrorHandler(async (err, req, reply) => {
    let failure: unknown = err;
    // A standby refused a write: nothing was written here; the active node answers instead.
    if (isStandbyRefusal(err)) {
      const fwd = await forwardToActive(store, req, rawBodies.get(req));
      if (!(fwd instanceof HttpError)) {
        req.log.debug({ status: fwd.status }, "request forwarded to the active node");
        reply.code(fwd.status).headers(fwd.headers);
        return reply.send(fwd.body);
      }
      failure = fwd;
    }
    // The client's text names the request id when details were held back from it (paths, ids);
    // the log line carries the same id and the full text.
    const h = toHttpError(failure, req.id);
    if (h.status >= 500 && h.status !== 503)
      req.log.error({ reqId: req.id, err, detail: h.detail }, "request failed");
    else if (h.detail !== undefined)
      req.log.warn({ reqId: req.id, status: h.status, detail: h.detail }, "request refused");
    else req.log.debug({ reqId: req.id, status: h.status, error: h.errors[0] }, "request refused");
    return reply
      .code(h.status)
      .header("content-type", "application/json")
      .send(JSON.stringify({ errors: h.errors }));
  });

  app.setNotFoundHandler((req, reply) => {
    reply
      .code(404)
      .header("content-type", "application/json")
      .send(JSON.stringify({ errors: [`no handler for route ${JSON.stringify(req.url.split("?")[0])}`] }));
  });
}

/**
 * Every route group; the logical catch-all last, told which sys/ and auth/ paths exist (a known
 * path with another method is a 405 there, not a secrets engine's request).
 */
function registerRoutes(app: FastifyInstance, ctx: AppContext): void {
  const patterns: string[] = [];
  app.addHook("onRoute", (r) => {
    if (r.url.startsWith("/v1/sys/") || r.url.startsWith("/v1/auth/")) patterns.push(r.url);
  });
  registerLifecycleRoutes(app, ctx);
  registerKeyRoutes(app, ctx);
  registerAdminRoutes(app, ctx);
  registerTokenRoutes(app, ctx);
  registerLogicalRoutes(app, ctx, patternMatcher(patterns));
}

/** How long close() waits for in-flight requests before cutting connections. */
const DRAIN_MS = 10_000;

/**
 * Starts one listener (binding it, unless `bound` is given). The store's lifecycle (seal on
 * shutdown) is the caller's.
 */
export async function startHttpServer(
  opts: HttpServerOptions & { bound?: BoundListener },
): Promise<RunningServer> {
  const bound = opts.bound ?? (await bindListener(opts.listener));
  const { server, address } = bound;
  let handler: RequestHandler | undefined;
  const app = buildApp({
    store: opts.store,
    logger: opts.logger,
    clusterName: opts.clusterName,
    ...(opts.apiAddr === undefined ? {} : { apiAddr: opts.apiAddr }),
    maxRequestSize: opts.listener.maxRequestSize,
    serverFactory: (h) => {
      handler = h;
      return server;
    },
    address: () => address,
    disableUnauthedRekeyEndpoints: opts.disableUnauthedRekeyEndpoints === true,
    listenerDisablesUnauthedRekey: opts.listener.disableUnauthedRekeyEndpoints !== false,
    listenerDisablesUnauthedGenerateRoot: opts.listener.disableUnauthedGenerateRootEndpoints !== false,
  });
  try {
    await app.ready();
    // fastify calls serverFactory while it is built, so the handler is known by now.
    if (handler === undefined)
      throw new Error("fastify did not ask for a server: no request handler to attach");
  } catch (err) {
    await bound.close();
    throw err;
  }
  // Only now, with every route registered, do requests reach the app.
  bound.attach(handler);
  opts.logger.info({ address, tls: bound.https !== undefined }, "listening");
  let closing: Promise<void> | undefined;
  return {
    address,
    close() {
      closing ??= (async () => {
        // Stop accepting now; resolves once every connection has ended.
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        const timer = setTimeout(() => server.closeAllConnections(), DRAIN_MS);
        timer.unref();
        // A keep-alive connection whose request finishes during the drain becomes idle only
        // then; close such connections as they go idle instead of waiting for the client.
        server.closeIdleConnections();
        const idle = setInterval(() => server.closeIdleConnections(), 50);
        idle.unref();
        try {
          // Marks the app as closing (new requests on open connections get a 503) and runs its hooks.
          await app.close();
          await closed;
        } finally {
          clearTimeout(timer);
          clearInterval(idle);
        }
      })();
      return closing;
    },
  };
}

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
 * runs, a body over the limit a 413.
 */
import { readFile } from "node:fs/promises";
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import type { SecureVersion } from "node:tls";
import type { SealedStore } from "@bulwark/core";
import { JsonRefusedError, parseJson, servicesFor } from "@bulwark/vault";
import Fastify, { type FastifyInstance, type FastifyReply, LogController } from "fastify";
import type { Logger } from "pino";
import type { HttpServerOptions, ListenerConfig, RunningServer } from "../contracts.js";
import type { AppContext } from "./context.js";
import { HttpError, toHttpError } from "./errors.js";
import { forwardToActive, isStandbyRefusal } from "./forward.js";
import { clientErrorHandler } from "./list-method.js";
import { Metrics } from "./metrics.js";
import { registerTokenRoutes } from "./routes/auth-token.js";
import { registerLogicalRoutes } from "./routes/logical.js";
import { registerAdminRoutes } from "./routes/sys-admin.js";
import { registerKeyRoutes } from "./routes/sys-keys.js";
import { registerLifecycleRoutes } from "./routes/sys-lifecycle.js";

export { createRootToken, mountKv } from "@bulwark/vault";

/** Vault's default `max_request_size`: 32 MiB. */
export const DEFAULT_MAX_REQUEST_SIZE = 32 * 1024 * 1024;

export interface BuildAppOptions {
  store: SealedStore;
  logger: Logger;
  clusterName?: string;
  apiAddr?: string;
  /** Body limit in bytes; 0 = Vault's default (32 MiB), negative = no limit. */
  maxRequestSize?: number;
  https?: { cert: Buffer; key: Buffer; minVersion?: SecureVersion };
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

type RequestHandler = (req: IncomingMessage, res: ServerResponse) => void;

type HttpOrHttpsServer = ReturnType<typeof createHttpServer> | ReturnType<typeof createHttpsServer>;

function bodyLimit(size: number | undefined): number {
  if (size === undefined || size === 0) return DEFAULT_MAX_REQUEST_SIZE;
  return size < 0 ? Number.MAX_SAFE_INTEGER : size;
}

/**
 * Parses a body. Syntax errors are reported without V8's message: that quotes the start of the
 * body, which may be an unseal key or a secret, and the error text is logged. Refusals of our own
 * (`__proto__` keys, nesting, numbers beyond float64) keep their message.
 *
 * `lossless`: numbers keep their exact text ({@link JsonNumber}s where `JSON.parse` would change
 * them) — for bodies that are stored as sent (secrets). The server's own routes get plain numbers.
 */
function parseBody(buf: Buffer, lossless: boolean): unknown {
  checkDepth(buf);
  const text = buf.toString("utf8");
  try {
    if (lossless) return parseJson(text);
    // A key can also be spelled with JSON escapes ("\u005f_proto__"), so any escape needs the check.
    if (!buf.includes("__proto__") && !buf.includes("\\u")) return JSON.parse(text);
    return JSON.parse(text, (k, v) => {
      if (k === "__proto__") throw new JsonRefusedError('the key "__proto__" is not allowed');
      return v;
    });
  } catch (e) {
    if (e instanceof JsonRefusedError) throw e;
    throw new SyntaxError("the body is not valid JSON");
  }
}

/** Paths the server itself answers (sys/, auth/): everything else is a secrets engine's. */
function isSystemUrl(url: string): boolean {
  return /^\/v1\/(?:sys|auth)(?:[/?]|$)/.test(url);
}

/**
 * Deepest nesting of arrays/objects a body may have. Deeper values parse, but serializing them
 * again (when stored, when read back) overflows the stack: a 500 after the fact instead of a 400.
 */
export const MAX_JSON_DEPTH = 1000;

/** Refuses bodies nested deeper than {@link MAX_JSON_DEPTH} (brackets inside strings do not count). */
function checkDepth(buf: Buffer): void {
  if (buf.length <= MAX_JSON_DEPTH) return; // each level takes at least one byte
  let depth = 0;
  let inString = false;
  for (let i = 0; i < buf.length; i++) {
    const c = buf[i];
    if (inString) {
      if (c === 0x5c)
        i++; // backslash: skip the escaped byte
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) {
      if (++depth > MAX_JSON_DEPTH)
        throw new JsonRefusedError(`the body is nested more than ${MAX_JSON_DEPTH} levels deep`);
    } else if (c === 0x5d || c === 0x7d) depth--;
  }
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
  const ctx: AppContext = {
    store: opts.store,
    services: servicesFor(opts.store),
    metrics,
    logger,
    clusterName: opts.clusterName ?? "",
    apiAddr: opts.apiAddr,
    address: opts.address ?? (() => undefined),
    rekeyNeedsToken: opts.disableUnauthedRekeyEndpoints === true,
    unauthedRekeyOff: opts.listenerDisablesUnauthedRekey === true,
    unauthedGenerateRootOff: opts.listenerDisablesUnauthedGenerateRoot === true,
  };
  const rawBodies = addBodyParser(app);
  addResponseHooks(app, logger, metrics);
  setErrorHandlers(app, opts.store, rawBodies);
  registerRoutes(app, ctx);
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

/** "host:port" → host and port; IPv6 as "[::1]:8200". */
export function splitAddress(address: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d+)$/.exec(address.trim());
  if (m === null) throw new HttpError(400, `listener address ${JSON.stringify(address)} must be host:port`);
  const port = Number(m[3]);
  if (port > 65535) throw new HttpError(400, `listener port ${port} is out of range`);
  return { host: m[1] ?? (m[2] || "0.0.0.0"), port };
}

async function tlsOptions(l: ListenerConfig): Promise<BuildAppOptions["https"]> {
  if (l.tlsDisable) return undefined;
  if (l.tlsCertFile === undefined || l.tlsKeyFile === undefined) {
    throw new Error("listener: tls_cert_file and tls_key_file are required unless tls_disable = true");
  }
  const read = async (setting: ListenerSetting, file: string): Promise<Buffer> => {
    try {
      return await readFile(file);
    } catch (err) {
      throw new ListenerError(
        setting,
        file,
        (err as NodeJS.ErrnoException).code ?? "UNKNOWN",
        `cannot be read (${(err as Error).message})`,
        `point ${setting} at a PEM file this user can read`,
        { cause: err },
      );
    }
  };
  // One after the other: with both unreadable, the error names the certificate every time.
  const cert = await read("tls_cert_file", l.tlsCertFile);
  const key = await read("tls_key_file", l.tlsKeyFile);
  return { cert, key, minVersion: l.tlsMinVersion === "tls13" ? "TLSv1.3" : "TLSv1.2" };
}

/** How long close() waits for in-flight requests before cutting connections. */
const DRAIN_MS = 10_000;

/** The listener setting a {@link ListenerError} is about. */
export type ListenerSetting = "address" | "tls_cert_file" | "tls_key_file";

/**
 * A listener cannot be used: its address cannot be bound (`code` is Node's: EADDRINUSE, EACCES,
 * EADDRNOTAVAIL, …) or its TLS files cannot be read. The message reads
 * `listener "tcp" <setting> <value> <problem>: <fix>`; a caller that knows where the setting was
 * written puts the file and line after the value.
 */
export class ListenerError extends Error {
  override name = "ListenerError";
  readonly code: string;
  readonly setting: ListenerSetting;
  readonly value: string;
  /** What is wrong, e.g. "is in use". */
  readonly problem: string;
  /** What to do about it. */
  readonly fix: string;
  constructor(
    setting: ListenerSetting,
    value: string,
    code: string,
    problem: string,
    fix: string,
    options?: { cause?: unknown },
  ) {
    super(`listener "tcp" ${setting} ${value} ${problem}: ${fix}`, options);
    this.setting = setting;
    this.value = value;
    this.code = code;
    this.problem = problem;
    this.fix = fix;
  }
}

function bindError(address: string, host: string, err: NodeJS.ErrnoException): ListenerError {
  const code = err.code ?? "UNKNOWN";
  const make = (problem: string, fix: string) =>
    new ListenerError("address", address, code, problem, fix, { cause: err });
  switch (code) {
    case "EADDRINUSE":
      return make("is in use", "another server is running there? stop it or choose another address");
    case "EACCES":
    case "EPERM":
      return make(
        "may not be bound by this user",
        "ports below 1024 need privileges: choose a port of 1024 or more (or grant CAP_NET_BIND_SERVICE)",
      );
    case "EADDRNOTAVAIL":
      return make(
        `names ${host}, which is not an address of this machine`,
        'choose one of its addresses (like "127.0.0.1:8200"), or "0.0.0.0:8200" for all of them',
      );
    case "ENOTFOUND":
    case "EAI_AGAIN":
      return make(
        `names the host ${host}, which does not resolve`,
        "use an IP address or a resolvable host name",
      );
    default:
      return make(`cannot be bound (${err.message})`, "choose another address");
  }
}

/**
 * A bound listener with no app yet: the server binds every listener before it touches the data
 * (a port in use must not cost a second opening of the same storage), and attaches the app once
 * the store is open. Requests that arrive meanwhile wait and are served then (a client polling
 * sys/health sees the server as it is once started, not a "starting" answer).
 */
export interface BoundListener {
  listener: ListenerConfig;
  /** The URL clients use, e.g. "http://127.0.0.1:8200". */
  address: string;
  /** Unbinds (when the start fails before the app is attached); waiting requests get a 503. */
  close(): Promise<void>;
  /** @internal */
  readonly server: HttpOrHttpsServer;
  /** @internal */
  readonly https: BuildAppOptions["https"];
  /** @internal Serves waiting and later requests with `handler`. */
  attach(handler: RequestHandler): void;
}

/** Requests held while the server starts; more than this get a 503 at once. */
const MAX_WAITING_REQUESTS = 1024;

function refuse(res: ServerResponse, message: string): void {
  res.statusCode = 503;
  res.setHeader("content-type", "application/json");
  res.setHeader("retry-after", "1");
  res.end(JSON.stringify({ errors: [message] }));
}

/** Binds one listener's address (TLS files read and checked first), without serving the API yet. */
export async function bindListener(listener: ListenerConfig): Promise<BoundListener> {
  const https = await tlsOptions(listener);
  const { host, port } = splitAddress(listener.address);
  // Until the app is attached, requests wait here (their bodies stay buffered in the socket).
  const waiting: [IncomingMessage, ServerResponse][] = [];
  let closed = false;
  const starting: RequestHandler = (req, res) => {
    if (closed) refuse(res, "Bulwark did not start");
    else if (waiting.length >= MAX_WAITING_REQUESTS) refuse(res, "Bulwark is starting: retry shortly");
    else waiting.push([req, res]);
  };
  let server: HttpOrHttpsServer;
  if (https === undefined) server = createHttpServer(starting);
  else {
    try {
      server = createHttpsServer(
        { cert: https.cert, key: https.key, minVersion: https.minVersion ?? "TLSv1.2" },
        starting,
      );
    } catch (err) {
      throw new ListenerError(
        "tls_cert_file",
        listener.tlsCertFile ?? "",
        (err as NodeJS.ErrnoException).code ?? "UNKNOWN",
        `and tls_key_file ${listener.tlsKeyFile ?? ""} cannot be used (${(err as Error).message})`,
        "set them to a PEM certificate and its PEM private key",
        { cause: err },
      );
    }
  }
  // Fastify's defaults for the server it would have created itself.
  server.keepAliveTimeout = 72_000;
  server.requestTimeout = 0;
  await new Promise<void>((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException) => {
      server.off("listening", onListening);
      reject(bindError(listener.address, host, err));
    };
    const onListening = () => {
      server.off("error", onError);
      resolve();
    };
    server.once("error", onError);
    server.once("listening", onListening);
    server.listen({ host, port });
  });
  const bound = server.address();
  const actualPort = typeof bound === "object" && bound !== null ? bound.port : port;
  const clientHost = host === "0.0.0.0" || host === "" ? "127.0.0.1" : host === "::" ? "::1" : host;
  const hostPart = clientHost.includes(":") ? `[${clientHost}]` : clientHost;
  const address = `${https === undefined ? "http" : "https"}://${hostPart}:${actualPort}`;
  let closing: Promise<void> | undefined;
  return {
    listener,
    address,
    server,
    https,
    attach(handler) {
      server.off("request", starting);
      server.on("request", handler);
      for (const [req, res] of waiting.splice(0)) handler(req, res);
    },
    close() {
      closed = true;
      for (const [, res] of waiting.splice(0)) refuse(res, "Bulwark did not start");
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
        // Let the refusals go out before the sockets are cut.
        setTimeout(() => server.closeAllConnections(), 100).unref();
      });
      return closing;
    },
  };
}

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
  } catch (err) {
    await bound.close();
    throw err;
  }
  // Only now, with every route registered, do requests reach the app.
  bound.attach(handler as RequestHandler);
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

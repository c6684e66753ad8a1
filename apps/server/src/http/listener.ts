/**
 * The listener: the address bound (with its TLS files read and checked first) before the app
 * exists, requests held until the app is attached, and a {@link ListenerError} that names the
 * setting and the fix when an address cannot be bound or a TLS file cannot be used.
 */
import { readFile } from "node:fs/promises";
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import type { SecureVersion } from "node:tls";
import { CodedError, type CodedErrorOptions } from "@bulwark/errors";
import { ConfigError } from "../config/errors.js";
import type { ListenerConfig } from "../contracts.js";
import { HttpError } from "./errors.js";

/** The app's request handler, as node's http server calls it. */
export type RequestHandler = (req: IncomingMessage, res: ServerResponse) => void;

export type HttpOrHttpsServer = ReturnType<typeof createHttpServer> | ReturnType<typeof createHttpsServer>;

/** A listener's TLS certificate and key (PEM) and its minimum version. */
export interface HttpsOptions {
  cert: Buffer;
  key: Buffer;
  minVersion?: SecureVersion;
}

/** Node's error code of a thrown value (`ENOENT`, `ERR_OSSL_…`), or "UNKNOWN". */
function codeOf(err: unknown): string {
  return err instanceof Error && "code" in err && typeof err.code === "string" ? err.code : "UNKNOWN";
}

/** The message of a thrown value (node's fs and TLS errors are Errors; anything else as text). */
function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** "host:port" → host and port; IPv6 as "[::1]:8200". */
export function splitAddress(address: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d+)$/.exec(address.trim());
  if (m === null) throw new HttpError(400, `listener address ${JSON.stringify(address)} must be host:port`);
  const port = Number(m[3]);
  if (port > 65535) throw new HttpError(400, `listener port ${port} is out of range`);
  return { host: m[1] ?? (m[2] || "0.0.0.0"), port };
}

async function tlsOptions(l: ListenerConfig): Promise<HttpsOptions | undefined> {
  if (l.tlsDisable) return undefined;
  if (l.tlsCertFile === undefined || l.tlsKeyFile === undefined) {
    // The config loader refuses this already; a ListenerConfig built in code reaches here.
    throw new ConfigError([
      {
        block: 'listener "tcp"',
        setting: "tls_cert_file",
        message: "listener: tls_cert_file and tls_key_file are required unless tls_disable = true",
      },
    ]);
  }
  const read = async (setting: ListenerSetting, file: string): Promise<Buffer> => {
    try {
      return await readFile(file);
    } catch (err) {
      throw new ListenerError(
        setting,
        file,
        codeOf(err),
        `cannot be read (${messageOf(err)})`,
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

/** The listener setting a {@link ListenerError} is about. */
export type ListenerSetting = "address" | "tls_cert_file" | "tls_key_file";

/**
 * A listener cannot be used: its address cannot be bound or its TLS files cannot be read. The
 * message reads `listener "tcp" <setting> <value> <problem>: <fix>`; a caller that knows where the
 * setting was written puts the file and line after the value.
 *
 * A `CodedError` of domain "listener" whose `code` is Node's system error code (EADDRINUSE,
 * EACCES, EADDRNOTAVAIL, ENOENT, …; "UNKNOWN" without one): an open set, as the operating system
 * reports it, so it has no list of its own. It is thrown at startup only and never reaches the
 * HTTP error table (the server turns it into a StartupError).
 */
export class ListenerError extends CodedError<string> {
  static override readonly kind: string = "@bulwark/server:ListenerError";
  override name = "ListenerError";
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
    options?: CodedErrorOptions,
  ) {
    super("listener", code, `listener "tcp" ${setting} ${value} ${problem}: ${fix}`, options);
    this.setting = setting;
    this.value = value;
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
  readonly https: HttpsOptions | undefined;
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
        codeOf(err),
        `and tls_key_file ${listener.tlsKeyFile ?? ""} cannot be used (${messageOf(err)})`,
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

/**
 * The `socket` audit device (OpenBao 2.6's internal/builtin/audit/socket): writes each record to a
 * TCP, UDP or unix stream socket.
 *
 * Options (besides the format options the broker reads): `address` (required: "host:port", or the
 * socket's path for "unix"), `socket_type` ("tcp", the default, "udp" or "unix"; "tcp4"/"tcp6"/
 * "udp4"/"udp6" as Go's net.Dial takes them) and `write_timeout` (default "2s"; a bare number is
 * seconds, as OpenBao's parseutil.ParseDurationSecond reads it).
 *
 * As OpenBao: nothing is dialled when the device is made; the first write connects; a write that
 * fails drops the connection, connects again and writes once more before it gives up; the next
 * write after that connects afresh, so a peer that comes back is used again without a restart.
 * `reopen()` (SIGHUP) drops and re-makes the connection.
 *
 * Stricter than OpenBao: `write_timeout` bounds the whole of one record's write — the wait behind
 * earlier records of the device, the dial, the write and the retry — not each step, so a peer that
 * stops reading holds no request longer than write_timeout. A record whose time ran out is not
 * sent; a write that timed out drops the connection (the peer may have part of the record), and
 * the next write connects again.
 */
import * as dgram from "node:dgram";
import * as net from "node:net";
import {
  type AuditDevice,
  type AuditDeviceContext,
  type AuditDeviceFactory,
  AuditOptionError,
} from "../types.js";
import { deviceFailure, parseGoDurationMs, SerialQueue } from "./common.js";

const SOCKET_TYPES = ["tcp", "tcp4", "tcp6", "udp", "udp4", "udp6", "unix"] as const;
export type SocketType = (typeof SOCKET_TYPES)[number];

export interface SocketDeviceOptions {
  address: string;
  socketType: SocketType;
  /** Milliseconds. */
  writeTimeoutMs: number;
}

/** Reads `address`, `socket_type` and `write_timeout` as OpenBao's socket Factory does. */
export function parseSocketOptions(options: Readonly<Record<string, string>>): SocketDeviceOptions {
  const address = options.address;
  if (address === undefined || address === "") {
    throw new AuditOptionError(
      "address",
      'address is required (host:port, e.g. "127.0.0.1:9090", or a unix socket path)',
    );
  }
  const socketType = (options.socket_type ?? "tcp") as SocketType;
  if (!SOCKET_TYPES.includes(socketType)) {
    throw new AuditOptionError(
      "socket_type",
      `socket_type must be one of ${SOCKET_TYPES.join(", ")}, not ${JSON.stringify(options.socket_type)}`,
    );
  }
  const rawTimeout = options.write_timeout ?? "2s";
  const writeTimeoutMs = parseGoDurationMs(rawTimeout);
  if (writeTimeoutMs === undefined) {
    throw new AuditOptionError(
      "write_timeout",
      `write_timeout must be a duration such as "2s", "500ms" or a number of seconds, not ${JSON.stringify(rawTimeout)}`,
    );
  }
  if (writeTimeoutMs <= 0) {
    // OpenBao takes it, and then every write misses its deadline: refuse a device that can never write.
    throw new AuditOptionError(
      "write_timeout",
      `write_timeout must be more than zero, not ${JSON.stringify(rawTimeout)}`,
    );
  }
  if (socketType !== "unix") splitHostPort(address);
  return { address, socketType, writeTimeoutMs };
}

/** Go's net.SplitHostPort for the addresses the device dials: "host:port", "[v6]:port", ":port". */
function splitHostPort(address: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]*)\]|([^:[\]]*)):(\d{1,5})$/.exec(address);
  const port = m ? Number(m[3]) : Number.NaN;
  if (!m || port > 65_535) {
    throw new AuditOptionError(
      "address",
      `address must be host:port with a numeric port (e.g. "127.0.0.1:9090" or "[::1]:9090"), not ${JSON.stringify(address)}`,
    );
  }
  return { host: m[1] ?? m[2] ?? "", port };
}

class TimeoutError extends Error {}

/** One connection; `send` resolves once the record is handed to the kernel. */
interface Conn {
  send(record: Uint8Array): Promise<void>;
  destroy(): void;
  /** The peer closed it or it failed: the next record connects again. */
  readonly broken: boolean;
}

function connectStream(opts: net.NetConnectOpts): { ready: Promise<Conn>; destroy(): void } {
  const socket = net.connect(opts);
  let broken = false;
  socket.setNoDelay(true);
  // A record must not be split by a peer that half-closes: treat any end as the end.
  socket.on("error", () => {
    broken = true;
  });
  socket.on("end", () => {
    broken = true;
  });
  socket.on("close", () => {
    broken = true;
  });
  // Anything the peer sends is read and dropped, so it never fills our receive buffer.
  socket.on("data", () => undefined);
  const conn: Conn = {
    send: (record) =>
      new Promise((resolve, reject) => {
        if (broken || socket.destroyed) {
          reject(new Error("the connection was closed by the peer"));
          return;
        }
        socket.write(record, (err) => (err ? reject(err) : resolve()));
      }),
    destroy: () => {
      broken = true;
      socket.destroy();
    },
    get broken() {
      return broken;
    },
  };
  const ready = new Promise<Conn>((resolve, reject) => {
    socket.once("connect", () => resolve(conn));
    socket.once("error", reject);
  });
  return { ready, destroy: () => conn.destroy() };
}

function connectDgram(
  type: "udp4" | "udp6",
  host: string,
  port: number,
): { ready: Promise<Conn>; destroy(): void } {
  const socket = dgram.createSocket(type);
  let broken = false;
  let closed = false;
  const destroy = () => {
    broken = true;
    if (!closed) {
      closed = true;
      socket.close();
    }
  };
  // ICMP "port unreachable" from an earlier datagram shows up here (ECONNREFUSED), as in Go.
  socket.on("error", () => {
    broken = true;
  });
  const conn: Conn = {
    send: (record) =>
      new Promise((resolve, reject) => {
        socket.send(record, (err) => (err ? reject(err) : resolve()));
      }),
    destroy,
    get broken() {
      return broken;
    },
  };
  const ready = new Promise<Conn>((resolve, reject) => {
    socket.once("error", reject);
    socket.connect(port, host || (type === "udp6" ? "::1" : "127.0.0.1"), () => resolve(conn));
  });
  return { ready, destroy };
}

/** Races `p` against the record's deadline; on timeout runs `onTimeout` (drops the connection). */
function beforeDeadline<T>(p: Promise<T>, deadline: number, onTimeout: () => void): Promise<T> {
  const left = deadline - Date.now();
  if (left <= 0) {
    onTimeout();
    return Promise.reject(new TimeoutError());
  }
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => {
      onTimeout();
      reject(new TimeoutError());
    }, left);
    p.then(
      (v) => {
        clearTimeout(timer);
        resolve(v);
      },
      (e: unknown) => {
        clearTimeout(timer);
        reject(e);
      },
    );
  });
}

class SocketDevice implements AuditDevice {
  readonly type = "socket";
  readonly #opts: SocketDeviceOptions;
  readonly #ctx: AuditDeviceContext;
  readonly #queue = new SerialQueue();
  #conn: Conn | undefined;
  #closed = false;

  constructor(opts: SocketDeviceOptions, ctx: AuditDeviceContext) {
    this.#opts = opts;
    this.#ctx = ctx;
  }

  write(record: Uint8Array): Promise<void> {
    // The record's time starts now: waiting behind a stalled earlier record counts too.
    const deadline = Date.now() + this.#opts.writeTimeoutMs;
    return this.#queue.run(async () => {
      if (this.#closed) throw deviceFailure(this.#ctx.path, "is closed", "the device was disabled");
      try {
        await this.#send(record, deadline);
        return;
      } catch (first) {
        this.#drop();
        if (first instanceof TimeoutError) throw this.#timedOut();
        this.#warn("audit socket write failed; reconnecting and writing once more", first);
      }
      // As OpenBao: reconnect once and write again.
      try {
        await this.#send(record, deadline);
      } catch (err) {
        this.#drop();
        if (err instanceof TimeoutError) throw this.#timedOut();
        this.#warn("audit socket write failed", err);
        throw deviceFailure(
          this.#ctx.path,
          `could not write to ${this.#opts.socketType} ${JSON.stringify(this.#opts.address)}`,
          err,
        );
      }
    });
  }

  reopen(): Promise<void> {
    const deadline = Date.now() + this.#opts.writeTimeoutMs;
    return this.#queue.run(async () => {
      if (this.#closed) return;
      this.#drop();
      try {
        this.#conn = await this.#connect(deadline);
      } catch (err) {
        throw err instanceof TimeoutError
          ? this.#timedOut()
          : deviceFailure(
              this.#ctx.path,
              `could not connect to ${this.#opts.socketType} ${JSON.stringify(this.#opts.address)}`,
              err,
            );
      }
    });
  }

  close(): Promise<void> {
    return this.#queue.run(async () => {
      this.#closed = true;
      this.#drop();
    });
  }

  async #send(record: Uint8Array, deadline: number): Promise<void> {
    if (this.#conn?.broken) this.#drop();
    if (this.#conn === undefined) this.#conn = await this.#connect(deadline);
    const conn = this.#conn;
    await beforeDeadline(conn.send(record), deadline, () => conn.destroy());
  }

  #connect(deadline: number): Promise<Conn> {
    const { address, socketType } = this.#opts;
    let attempt: { ready: Promise<Conn>; destroy(): void };
    if (socketType === "unix") {
      attempt = connectStream({ path: address });
    } else {
      const { host, port } = splitHostPort(address);
      const v6 = socketType.endsWith("6") || net.isIPv6(host);
      if (socketType.startsWith("udp")) {
        attempt = connectDgram(v6 ? "udp6" : "udp4", host, port);
      } else {
        const family = socketType === "tcp4" ? 4 : socketType === "tcp6" ? 6 : 0;
        attempt = connectStream({ host: host || "localhost", port, ...(family ? { family } : {}) });
      }
    }
    return beforeDeadline(attempt.ready, deadline, () => attempt.destroy()).catch((err: unknown) => {
      attempt.destroy();
      throw err;
    });
  }

  #drop(): void {
    this.#conn?.destroy();
    this.#conn = undefined;
  }

  #timedOut(): Error {
    const err = deviceFailure(
      this.#ctx.path,
      `could not write to ${this.#opts.socketType} ${JSON.stringify(this.#opts.address)}`,
      new Error(
        `write_timeout (${this.#opts.writeTimeoutMs} ms) passed; the connection is dropped and re-made on the next write`,
      ),
    );
    this.#warn("audit socket write timed out", err);
    return err;
  }

  #warn(msg: string, err: unknown): void {
    this.#ctx.logger?.warn(
      {
        audit_path: this.#ctx.path,
        address: this.#opts.address,
        socket_type: this.#opts.socketType,
        error: err instanceof Error ? err.message : String(err),
      },
      msg,
    );
  }
}

/** Makes a `socket` device (OpenBao's socket audit backend). */
export const socketDevice: AuditDeviceFactory = (options, ctx) =>
  new SocketDevice(parseSocketOptions(options), ctx);

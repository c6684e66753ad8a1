/**
 * The `syslog` audit device (OpenBao 2.6's internal/builtin/audit/syslog, which writes through
 * hashicorp/go-syslog, a copy of Go's log/syslog): each record goes to the LOCAL syslog daemon as
 * one message `<PRI>Mmm _d hh:mm:ss tag[pid]: record` — Go's local format: time.Stamp in local
 * time, no hostname — with PRI = facility | LOG_INFO.
 *
 * Options (besides the format options the broker reads): `facility` (default "AUTH"; KERN, USER,
 * MAIL, DAEMON, AUTH, SYSLOG, LPR, NEWS, UUCP, CRON, AUTHPRIV, FTP, LOCAL0…LOCAL7, any case) and
 * `tag` (default "bulwark"; OpenBao's is "vault"). Bulwark's own `socket_path` points the device at
 * one local syslog socket instead of Go's search list.
 *
 * Like Go, the device connects when it is made, trying a datagram socket ("unixgram") and then a
 * stream one ("unix") at /dev/log, /var/run/syslog and /var/run/log; a device that finds none is
 * refused. A write that fails connects again (the same search) and writes once more before it
 * gives up, as go-syslog's writeAndRetry; the next write after that searches afresh, so a syslog
 * daemon that restarts is used again without a restart of ours. Datagram sockets need the
 * @bulwark/unixgram addon (Node has none); its sends never block — a full daemon queue fails the
 * write at once, where Go waits up to its 20 ms write deadline. Stream writes are bounded by
 * STREAM_WRITE_TIMEOUT_MS. `reopen()` drops the connection so the next write searches again
 * (OpenBao's Reload does nothing).
 */
import * as fs from "node:fs";
import * as net from "node:net";
import { UnixDatagramSocket, unixgramAvailable } from "@bulwark/unixgram";
import {
  type AuditDevice,
  type AuditDeviceContext,
  type AuditDeviceFactory,
  AuditOptionError,
} from "../types.js";
import { deviceFailure, SerialQueue } from "./common.js";

/** Go's log/syslog facilities (sys/syslog.h values), by go-syslog's names. */
const FACILITIES: Readonly<Record<string, number>> = {
  KERN: 0,
  USER: 1,
  MAIL: 2,
  DAEMON: 3,
  AUTH: 4,
  SYSLOG: 5,
  LPR: 6,
  NEWS: 7,
  UUCP: 8,
  CRON: 9,
  AUTHPRIV: 10,
  FTP: 11,
  LOCAL0: 16,
  LOCAL1: 17,
  LOCAL2: 18,
  LOCAL3: 19,
  LOCAL4: 20,
  LOCAL5: 21,
  LOCAL6: 22,
  LOCAL7: 23,
};
const LOG_INFO = 6;

/** Where Go's log/syslog looks for the local daemon, in order. */
export const LOCAL_SYSLOG_PATHS: readonly string[] = ["/dev/log", "/var/run/syslog", "/var/run/log"];

/** How long a stream write may take (Go's local deadline is 20 ms; a loaded event loop needs more). */
export const STREAM_WRITE_TIMEOUT_MS = 1_000;

export interface SyslogDeviceOptions {
  /** facility << 3 | LOG_INFO. */
  priority: number;
  tag: string;
  /** The sockets to try, in order. */
  paths: readonly string[];
}

/** Reads `facility`, `tag` and `socket_path`. */
export function parseSyslogOptions(options: Readonly<Record<string, string>>): SyslogDeviceOptions {
  const facilityName = (options.facility ?? "AUTH").toUpperCase();
  const facility = FACILITIES[facilityName];
  if (facility === undefined) {
    throw new AuditOptionError(
      "facility",
      `facility must be one of ${Object.keys(FACILITIES).join(", ")}, not ${JSON.stringify(options.facility)}`,
    );
  }
  const tag = options.tag ?? "bulwark";
  if (/[\r\n\0]/.test(tag)) throw new AuditOptionError("tag", "tag must be one line of text");
  const socketPath = options.socket_path;
  if (socketPath !== undefined && socketPath === "") {
    throw new AuditOptionError(
      "socket_path",
      "socket_path must name a local syslog socket (or be left out for /dev/log …)",
    );
  }
  return {
    priority: (facility << 3) | LOG_INFO,
    tag,
    paths: socketPath === undefined ? LOCAL_SYSLOG_PATHS : [socketPath],
  };
}

const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
const two = (n: number) => String(n).padStart(2, "0");

/** Go's time.Stamp ("Jan _2 15:04:05") in local time. */
export function goStamp(d: Date): string {
  return `${MONTHS[d.getMonth()]} ${String(d.getDate()).padStart(2, " ")} ${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}`;
}

/** One message as Go's log/syslog writes it to a local daemon: `<PRI>Stamp tag[pid]: msg\n`. */
export function localSyslogMessage(
  priority: number,
  tag: string,
  record: Uint8Array,
  now = new Date(),
): Buffer {
  const head = Buffer.from(`<${priority}>${goStamp(now)} ${tag}[${process.pid}]: `);
  const nl = record.length > 0 && record[record.length - 1] === 0x0a ? [] : [Buffer.from("\n")];
  return Buffer.concat([head, record, ...nl]);
}

/** What the addon offers the device; undefined when it is not built. */
export interface DatagramApi {
  connect(path: string): { send(data: Uint8Array): void; close(): void };
}

type Target =
  | { kind: "unixgram"; path: string; socket: { send(data: Uint8Array): void; close(): void } }
  | { kind: "unix"; path: string };

const NOT_BUILT =
  "unix datagram sockets need the @bulwark/unixgram native addon, which is not built: install python3, make and a C compiler, then run `npm rebuild @bulwark/unixgram` (`pnpm install` in the Bulwark repository)";

/**
 * Go's unixSyslog(): a datagram connection to the first path that takes one, else a stream
 * socket. Synchronous (the device factory is): with the addon, a datagram connect to a stream
 * listener fails with EPROTOTYPE, which is what tells a stream socket is there; without it, only a
 * path listed as a stream socket in /proc/net/unix (Linux) or a socket file (elsewhere) is taken.
 */
function findTarget(paths: readonly string[], dgram: DatagramApi | undefined): Target {
  const problems: string[] = [];
  const streams: string[] = [];
  for (const path of paths) {
    if (dgram) {
      try {
        return { kind: "unixgram", path, socket: dgram.connect(path) };
      } catch (err) {
        const code = (err as { code?: string }).code;
        if (code === "EPROTOTYPE") streams.push(path);
        problems.push(`${path}: ${code ?? (err as Error).message}`);
      }
    } else {
      const kind = socketKind(path);
      if (kind === "stream") streams.push(path);
      else problems.push(`${path}: ${kind === "dgram" ? NOT_BUILT : kind}`);
    }
  }
  const stream = streams[0];
  if (stream !== undefined) return { kind: "unix", path: stream };
  throw new AuditOptionError(
    "socket_path",
    `no local syslog socket takes messages (tried ${problems.join("; ")}): start the syslog daemon, or set socket_path to its socket`,
  );
}

/** Without the addon: what kind of socket is at path, as far as can be told synchronously. */
function socketKind(path: string): "stream" | "dgram" | string {
  let real: string;
  try {
    if (!fs.statSync(path).isSocket()) return "not a socket";
    real = fs.realpathSync(path);
  } catch (err) {
    return (err as { code?: string }).code ?? "cannot be read";
  }
  try {
    // Num RefCount Protocol Flags Type St Inode Path: Type 0001 is SOCK_STREAM, 0002 SOCK_DGRAM.
    for (const line of fs.readFileSync("/proc/net/unix", "utf8").split("\n").slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length < 8 || f.slice(7).join(" ") !== real) continue;
      if (f[4] === "0002") return "dgram";
      // A stream socket takes connections only while listening (Flags __SO_ACCEPTCON).
      if (f[4] === "0001" && f[3] === "00010000") return "stream";
    }
    return "no socket listens there";
  } catch {
    return "stream"; // no /proc: try it as a stream socket; the write says if it is not one
  }
}

class SyslogDevice implements AuditDevice {
  readonly type = "syslog";
  readonly #opts: SyslogDeviceOptions;
  readonly #ctx: AuditDeviceContext;
  readonly #dgram: DatagramApi | undefined;
  readonly #queue = new SerialQueue();
  #target: Target | undefined;
  #stream: net.Socket | undefined;
  #streamBroken = false;
  #closed = false;

  constructor(opts: SyslogDeviceOptions, ctx: AuditDeviceContext, dgram: DatagramApi | undefined) {
    this.#opts = opts;
    this.#ctx = ctx;
    this.#dgram = dgram;
    // As gsyslog.NewLogger: the device is refused when no local syslog socket can be reached.
    this.#target = findTarget(opts.paths, dgram);
  }

  write(record: Uint8Array): Promise<void> {
    return this.#queue.run(async () => {
      if (this.#closed) throw deviceFailure(this.#ctx.path, "is closed", "the device was disabled");
      const message = localSyslogMessage(this.#opts.priority, this.#opts.tag, record);
      try {
        await this.#send(message);
        return;
      } catch (first) {
        this.#warn("syslog write failed; connecting again and writing once more", first);
      }
      // go-syslog's writeAndRetry: connect again (the whole search) and write once more.
      this.#drop();
      try {
        this.#target = findTarget(this.#opts.paths, this.#dgram);
        await this.#send(message);
      } catch (err) {
        this.#drop();
        this.#warn("syslog write failed", err);
        throw deviceFailure(this.#ctx.path, "could not write to the local syslog", err);
      }
    });
  }

  reopen(): Promise<void> {
    return this.#queue.run(async () => {
      this.#drop();
    });
  }

  close(): Promise<void> {
    return this.#queue.run(async () => {
      this.#closed = true;
      this.#drop();
    });
  }

  async #send(message: Buffer): Promise<void> {
    if (this.#target === undefined) this.#target = findTarget(this.#opts.paths, this.#dgram);
    const target = this.#target;
    if (target.kind === "unixgram") {
      target.socket.send(message);
      return;
    }
    if (this.#stream === undefined || this.#streamBroken) await this.#connectStream(target.path);
    const socket = this.#stream as net.Socket;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new Error(`the syslog stream socket took no data for ${STREAM_WRITE_TIMEOUT_MS} ms`));
      }, STREAM_WRITE_TIMEOUT_MS);
      socket.write(message, (err) => {
        clearTimeout(timer);
        if (err) reject(err);
        else resolve();
      });
    });
  }

  async #connectStream(path: string): Promise<void> {
    this.#stream?.destroy();
    this.#streamBroken = false;
    const socket = net.connect({ path });
    const mark = () => {
      if (this.#stream === socket) this.#streamBroken = true;
    };
    socket.on("error", mark);
    socket.on("close", mark);
    socket.on("end", mark);
    socket.on("data", () => undefined);
    this.#stream = socket;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        socket.destroy();
        reject(
          new Error(
            `connecting to the syslog stream socket ${path} took more than ${STREAM_WRITE_TIMEOUT_MS} ms`,
          ),
        );
      }, STREAM_WRITE_TIMEOUT_MS);
      socket.once("connect", () => {
        clearTimeout(timer);
        resolve();
      });
      socket.once("error", (err) => {
        clearTimeout(timer);
        reject(err);
      });
    });
  }

  #drop(): void {
    if (this.#target?.kind === "unixgram") {
      try {
        this.#target.socket.close();
      } catch {
        // already closed
      }
    }
    this.#target = undefined;
    this.#stream?.destroy();
    this.#stream = undefined;
  }

  #warn(msg: string, err: unknown): void {
    this.#ctx.logger?.warn(
      { audit_path: this.#ctx.path, error: err instanceof Error ? err.message : String(err) },
      msg,
    );
  }
}

/** The addon's datagram sockets, or undefined when it is not built. */
function datagramApi(): DatagramApi | undefined {
  return unixgramAvailable() ? { connect: (path) => UnixDatagramSocket.connect(path) } : undefined;
}

/**
 * Makes a syslog device with a given datagram implementation (undefined: none, as without the
 * addon). The tests use it to run the device as it runs where the addon is not built.
 */
export function makeSyslogDevice(
  options: Readonly<Record<string, string>>,
  ctx: AuditDeviceContext,
  dgram: DatagramApi | undefined,
): AuditDevice {
  return new SyslogDevice(parseSyslogOptions(options), ctx, dgram);
}

/** Makes a `syslog` device (OpenBao's syslog audit backend). */
export const syslogDevice: AuditDeviceFactory = (options, ctx) =>
  makeSyslogDevice(options, ctx, datagramApi());

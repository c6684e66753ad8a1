/**
 * What the audit devices write to, for the end-to-end suite (audit-devices.test.ts): a TCP
 * listener that collects the socket device's lines, one that accepts and never reads (a stuck
 * peer), a unix datagram socket standing in for the syslog daemon's (through @bulwark/unixgram),
 * and a small tmpfs that can be filled to ENOSPC (the file device's disk full) and freed again.
 *
 * Each is closed by the test's `finally` (the tmpfs is unmounted there too).
 */
import { execFileSync } from "node:child_process";
import { closeSync, mkdtempSync, openSync, rmSync, writeSync } from "node:fs";
import { createServer, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { UnixDatagramSocket } from "../../../../packages/unixgram/src/index.js";

async function listenOn(server: Server, port: number): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, "127.0.0.1", () => {
      server.off("error", reject);
      resolve();
    });
  });
  const a = server.address();
  return typeof a === "object" && a !== null ? a.port : 0;
}

async function closeServer(server: Server | undefined, sockets: Set<Socket>): Promise<void> {
  for (const s of sockets) s.destroy();
  sockets.clear();
  if (server === undefined || !server.listening) return;
  await new Promise<void>((resolve) => server.close(() => resolve()));
}

/**
 * A TCP peer for the socket device, on a fixed port across restarts: `listen()` collects the
 * lines every connection sends (in arrival order), `close()` goes away (listener closed,
 * connections destroyed), `listen()` again comes back; `stuck()` listens instead with a peer that
 * accepts and never reads, so the device's kernel buffers fill up.
 */
export class TcpPeer {
  /** Every complete line received, in order, across connections. */
  readonly lines: string[] = [];
  /** How many connections the peer has accepted (in either mode). */
  connections = 0;
  port = 0;
  #server: Server | undefined;
  readonly #sockets = new Set<Socket>();

  async listen(): Promise<void> {
    await this.close();
    const server = createServer((socket) => {
      this.connections++;
      this.#sockets.add(socket);
      socket.on("close", () => this.#sockets.delete(socket));
      socket.on("error", () => undefined);
      let pending = "";
      socket.setEncoding("utf8");
      socket.on("data", (d: string) => {
        pending += d;
        let nl = pending.indexOf("\n");
        while (nl >= 0) {
          this.lines.push(pending.slice(0, nl));
          pending = pending.slice(nl + 1);
          nl = pending.indexOf("\n");
        }
      });
    });
    this.#server = server;
    this.port = await listenOn(server, this.port);
  }

  /** Listens with a peer that accepts every connection and never reads from it. */
  async stuck(): Promise<void> {
    await this.close();
    const server = createServer({ pauseOnConnect: true }, (socket) => {
      this.connections++;
      this.#sockets.add(socket);
      socket.on("close", () => this.#sockets.delete(socket));
      socket.on("error", () => undefined);
    });
    this.#server = server;
    this.port = await listenOn(server, this.port);
  }

  async close(): Promise<void> {
    const s = this.#server;
    this.#server = undefined;
    await closeServer(s, this.#sockets);
  }
}

/**
 * A unix datagram socket bound at `path` (the syslog device's `socket_path`), drained every few
 * milliseconds: Linux queues only net.unix.max_dgram_qlen (often 10) datagrams per socket, and a
 * full queue fails the device's send at once (its sends never block).
 */
export class DatagramSink {
  readonly datagrams: string[] = [];
  readonly #rx: UnixDatagramSocket;
  readonly #timer: NodeJS.Timeout;

  constructor(readonly path: string) {
    this.#rx = UnixDatagramSocket.bind(path);
    this.#timer = setInterval(() => this.drain(), 5);
  }

  drain(): void {
    for (;;) {
      const d = this.#rx.receive(1 << 20);
      if (d === null) return;
      this.datagrams.push(d.toString("utf8"));
    }
  }

  close(): void {
    clearInterval(this.#timer);
    if (!this.#rx.closed) this.#rx.close();
    rmSync(this.path, { force: true });
  }
}

/** A tmpfs of `size` (mount's syntax: "2m") mounted at a fresh temp dir: needs root. */
export class SmallTmpfs {
  readonly dir: string;
  #mounted = false;
  readonly #filler: string;

  constructor(size: string) {
    this.dir = mkdtempSync(join(tmpdir(), "bulwark-audit-e2e-tmpfs-"));
    this.#filler = join(this.dir, "filler");
    try {
      execFileSync("mount", ["-t", "tmpfs", "-o", `size=${size},mode=0755`, "tmpfs", this.dir]);
    } catch (err) {
      rmSync(this.dir, { recursive: true, force: true });
      throw new Error(
        `mounting a ${size} tmpfs for the disk-full case needs root: ${(err as Error).message}`,
      );
    }
    this.#mounted = true;
  }

  /** Fills the file system to its last byte (until the write fails with ENOSPC). */
  fill(): void {
    const fd = openSync(this.#filler, "a");
    try {
      const chunk = Buffer.alloc(4096, 1);
      for (;;) writeSync(fd, chunk);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "ENOSPC") throw e;
    } finally {
      closeSync(fd);
    }
    // A short write may have left a few bytes free: fill them one at a time.
    const one = openSync(this.#filler, "a");
    try {
      for (;;) writeSync(one, Buffer.alloc(1, 1));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "ENOSPC") throw e;
    } finally {
      closeSync(one);
    }
  }

  /** Frees what {@link fill} took. */
  free(): void {
    rmSync(this.#filler, { force: true });
  }

  unmount(): void {
    if (this.#mounted) {
      execFileSync("umount", ["-l", this.dir]);
      this.#mounted = false;
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}

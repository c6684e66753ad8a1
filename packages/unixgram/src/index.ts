/**
 * Unix datagram sockets (AF_UNIX, SOCK_DGRAM) for Node: node:net has only stream unix sockets and
 * node:dgram only UDP, but the local syslog daemon listens on a datagram socket (/dev/log) — what
 * Go's log/syslog, and so OpenBao's syslog audit device, writes to first.
 *
 * A small Node-API addon (native/unixgram.c, compiled by node-gyp when the package is installed;
 * Node-API is ABI-stable, so one build serves every Node line). Every socket is non-blocking: a
 * send to a receiver whose queue is full throws EAGAIN at once, it never stalls the event loop.
 */
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { CodedError, type CodedErrorOptions } from "@bulwark/errors";

/** A socket call that failed: `code` is the errno's name ("ENOENT", "ECONNREFUSED", "EAGAIN" …). */
export class UnixgramError extends CodedError<string> {
  static override readonly kind: string = "@bulwark/unixgram:UnixgramError";
  override name = "UnixgramError";
  constructor(code: string, message: string, options?: CodedErrorOptions) {
    super("unixgram", code, message, options);
  }
}

interface Binding {
  connect(path: string): number;
  bind(path: string): number;
  send(fd: number, data: Uint8Array): number;
  recv(fd: number, max: number): Buffer | null;
  close(fd: number): void;
}

let binding: Binding | undefined;
let loadError: Error | undefined;

/** Where the addon is: built in native/ (this repository) or in dist/native (an installed package). */
function addonCandidates(): string[] {
  const here = dirname(fileURLToPath(import.meta.url));
  return [
    join(here, "native/build/Release/unixgram.node"),
    join(here, "../native/build/Release/unixgram.node"),
  ];
}

function load(): Binding {
  if (binding) return binding;
  if (loadError) throw loadError;
  const found = addonCandidates().find((p) => existsSync(p));
  try {
    if (found === undefined) throw new Error(`not found at ${addonCandidates().join(" or ")}`);
    binding = createRequire(import.meta.url)(found) as Binding;
    return binding;
  } catch (err) {
    loadError = new UnixgramError(
      "ERR_UNIXGRAM_NOT_BUILT",
      `@bulwark/unixgram's native addon is not built (${(err as Error).message}): install python3, make and a C compiler, then run \`npm rebuild @bulwark/unixgram\` (in the Bulwark repository: pnpm install)`,
      { cause: err },
    );
    throw loadError;
  }
}

/** Whether the native addon loads (unix datagram sockets can be used). */
export function unixgramAvailable(): boolean {
  try {
    load();
    return true;
  } catch {
    return false;
  }
}

/** Runs a binding call, turning the addon's errors into UnixgramErrors. */
function call<T>(fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof UnixgramError) throw err;
    const e = err as Error & { code?: string };
    throw new UnixgramError(e.code ?? "EUNKNOWN", e.message, { cause: err });
  }
}

/** One unix datagram socket: a sender connected to a path, or a receiver bound to one. */
export class UnixDatagramSocket {
  #fd: number | undefined;

  private constructor(fd: number) {
    this.#fd = fd;
  }

  /** A socket whose sends go to the datagram socket at `path` (throws ENOENT, ECONNREFUSED, EPROTOTYPE …). */
  static connect(path: string): UnixDatagramSocket {
    const b = load();
    return new UnixDatagramSocket(call(() => b.connect(path)));
  }

  /** A socket receiving at `path`, which must not exist yet (the caller removes the file when done). */
  static bind(path: string): UnixDatagramSocket {
    const b = load();
    return new UnixDatagramSocket(call(() => b.bind(path)));
  }

  /**
   * Sends one datagram, whole: throws EAGAIN when the receiver's queue is full (never waits),
   * ECONNREFUSED when nothing receives at the path any more, EMSGSIZE when it is too large.
   */
  send(data: Uint8Array): void {
    const fd = this.#open();
    call(() => load().send(fd, data));
  }

  /** The next datagram received (at most `max` bytes of it), or null when none is waiting. */
  receive(max = 65_536): Buffer | null {
    const fd = this.#open();
    return call(() => load().recv(fd, max));
  }

  get closed(): boolean {
    return this.#fd === undefined;
  }

  /** Closes the socket; closing twice does nothing. */
  close(): void {
    const fd = this.#fd;
    this.#fd = undefined;
    if (fd !== undefined) call(() => load().close(fd));
  }

  #open(): number {
    if (this.#fd === undefined) throw new UnixgramError("EBADF", "the unix datagram socket is closed");
    return this.#fd;
  }
}

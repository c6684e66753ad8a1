import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { UnixDatagramSocket, UnixgramError, unixgramAvailable } from "./index.js";

let dir: string;
const open: UnixDatagramSocket[] = [];
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "bulwark-unixgram-"));
});
afterEach(() => {
  for (const s of open.splice(0)) s.close();
  fs.rmSync(dir, { recursive: true, force: true });
});
const track = (s: UnixDatagramSocket) => {
  open.push(s);
  return s;
};
const codeOf = (fn: () => unknown) => {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(UnixgramError);
    return (e as UnixgramError).code;
  }
  return "no error";
};

describe("@bulwark/unixgram", () => {
  it("the addon is built and loads", () => {
    expect(unixgramAvailable()).toBe(true);
  });

  it("sends datagrams, whole and in order, to a bound receiver", () => {
    const at = path.join(dir, "rx.sock");
    const rx = track(UnixDatagramSocket.bind(at));
    expect(fs.statSync(at).isSocket()).toBe(true);
    const tx = track(UnixDatagramSocket.connect(at));
    expect(rx.receive()).toBeNull(); // nothing queued: null, no wait
    const big = Buffer.alloc(60_000, 0x61);
    tx.send(Buffer.from("one\n"));
    tx.send(new TextEncoder().encode("two\n"));
    tx.send(big);
    expect(rx.receive()?.toString()).toBe("one\n");
    expect(rx.receive()?.toString()).toBe("two\n");
    expect(rx.receive(100_000)?.equals(big)).toBe(true);
    expect(rx.receive()).toBeNull();
  });

  it("a receiver whose queue is full makes send throw EAGAIN at once instead of blocking", () => {
    const at = path.join(dir, "rx.sock");
    track(UnixDatagramSocket.bind(at)); // never reads
    const tx = track(UnixDatagramSocket.connect(at));
    const t0 = performance.now();
    let code = "";
    for (let i = 0; i < 100_000 && code === ""; i++) {
      try {
        tx.send(Buffer.alloc(1024));
      } catch (e) {
        code = (e as UnixgramError).code;
      }
    }
    expect(code).toBe("EAGAIN");
    expect(performance.now() - t0).toBeLessThan(5_000);
  });

  it("names the errno of failures: nothing at the path, a stream socket there, a receiver gone, a closed socket", async () => {
    expect(codeOf(() => UnixDatagramSocket.connect(path.join(dir, "missing.sock")))).toBe("ENOENT");
    expect(codeOf(() => UnixDatagramSocket.connect(`${dir}/${"x".repeat(120)}`))).toBe("ENAMETOOLONG");
    // A stream listener is not a datagram socket (Go then falls back to "unix").
    const streamAt = path.join(dir, "stream.sock");
    const server = net.createServer();
    await new Promise<void>((r) => server.listen(streamAt, r));
    try {
      expect(codeOf(() => UnixDatagramSocket.connect(streamAt))).toBe("EPROTOTYPE");
    } finally {
      await new Promise<void>((r) => server.close(() => r()));
    }
    const at = path.join(dir, "rx.sock");
    const rx = UnixDatagramSocket.bind(at);
    expect(codeOf(() => UnixDatagramSocket.bind(at))).toBe("EADDRINUSE");
    const tx = track(UnixDatagramSocket.connect(at));
    rx.close();
    expect(codeOf(() => tx.send(Buffer.from("x")))).toBe("ECONNREFUSED");
    tx.close();
    expect(tx.closed).toBe(true);
    expect(codeOf(() => tx.send(Buffer.from("x")))).toBe("EBADF");
  });
});

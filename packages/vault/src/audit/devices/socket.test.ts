import * as dgram from "node:dgram";
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { VaultError } from "../../errors.js";
import type { AuditDevice } from "../types.js";
import { AuditOptionError } from "../types.js";
import { AUDIT_DEVICE_FACTORIES } from "./index.js";
import { socketDevice } from "./socket.js";

const ctx = { path: "socket/" };
const enc = new TextEncoder();
const rec = (s: string) => enc.encode(`${s}\n`);

// Everything a test opens is closed after it, however it ends.
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function device(options: Record<string, string>): AuditDevice {
  const dev = socketDevice(options, ctx);
  cleanups.push(() => dev.close());
  return dev;
}

/** A stream listener that collects what every connection sends; `stop()` closes it and its connections. */
async function streamServer(listen: number | string, opts: net.ServerOpts = {}) {
  const conns = new Set<net.Socket>();
  let received = "";
  let reading = !opts.pauseOnConnect;
  const server = net.createServer(opts, (s) => {
    conns.add(s);
    if (reading) s.resume();
    s.on("data", (d) => {
      received += d.toString();
    });
    s.on("error", () => undefined);
    s.on("close", () => conns.delete(s));
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    if (typeof listen === "string") server.listen(listen, resolve);
    else server.listen(listen, "127.0.0.1", resolve);
  });
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    for (const c of conns) c.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
  cleanups.push(stop);
  return {
    port: (server.address() as net.AddressInfo).port,
    conns,
    received: () => received,
    /** A pauseOnConnect server starts reading its connections, and any new one. */
    resumeAll: () => {
      reading = true;
      for (const c of conns) c.resume();
    },
    stop,
  };
}

async function until(check: () => boolean, ms = 5_000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error("timed out waiting");
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe("socket audit device", () => {
  it("is registered as 'socket'", () => {
    expect(AUDIT_DEVICE_FACTORIES.socket).toBe(socketDevice);
  });

  it("refuses bad options with an AuditOptionError naming the option", () => {
    const opt = (options: Record<string, string>) => {
      try {
        socketDevice(options, ctx);
      } catch (e) {
        expect(e).toBeInstanceOf(AuditOptionError);
        return (e as AuditOptionError).option;
      }
      return "none";
    };
    expect(opt({})).toBe("address");
    expect(opt({ address: "127.0.0.1" })).toBe("address");
    expect(opt({ address: "127.0.0.1:99999" })).toBe("address");
    expect(opt({ address: "127.0.0.1:1", socket_type: "sctp" })).toBe("socket_type");
    expect(opt({ address: "127.0.0.1:1", write_timeout: "soon" })).toBe("write_timeout");
    expect(opt({ address: "127.0.0.1:1", write_timeout: "0s" })).toBe("write_timeout");
    // Accepted as OpenBao's ParseDurationSecond takes them.
    expect(opt({ address: "127.0.0.1:1", write_timeout: "5" })).toBe("none");
    expect(opt({ address: "127.0.0.1:1", write_timeout: "1m30s" })).toBe("none");
    expect(opt({ address: "[::1]:1", socket_type: "udp" })).toBe("none");
    expect(opt({ address: "/tmp/x.sock", socket_type: "unix" })).toBe("none");
  });

  it("dials lazily, as OpenBao: making a device for a peer that is not there succeeds; its write rejects", async () => {
    const free = await streamServer(0);
    await free.stop();
    const dev = device({ address: `127.0.0.1:${free.port}` });
    const err = await dev.write(rec("x")).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(VaultError);
    expect((err as VaultError).code).toBe("audit_failed");
    expect((err as Error).message).toMatch(/ECONNREFUSED/);
  });

  it("writes records in order over TCP (the default socket_type)", async () => {
    const srv = await streamServer(0);
    const dev = device({ address: `127.0.0.1:${srv.port}` });
    const all = Array.from({ length: 50 }, (_, i) => `{"n":${i}}`);
    await Promise.all(all.map((r) => dev.write(rec(r))));
    await until(() => srv.received().split("\n").length > 50);
    expect(srv.received()).toBe(all.map((r) => `${r}\n`).join(""));
    expect(srv.conns.size).toBe(1); // one connection for all of them
  });

  it("writes records over a unix stream socket", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "bulwark-audit-sock-"));
    cleanups.push(() => fs.rmSync(dir, { recursive: true, force: true }));
    const sock = path.join(dir, "audit.sock");
    const srv = await streamServer(sock);
    const dev = device({ address: sock, socket_type: "unix" });
    await dev.write(rec("a"));
    await dev.write(rec("b"));
    await until(() => srv.received() === "a\nb\n");
  });

  it("sends one datagram per record over UDP", async () => {
    const rx = dgram.createSocket("udp4");
    cleanups.push(() => new Promise<void>((r) => rx.close(() => r())));
    const got: string[] = [];
    rx.on("message", (m) => got.push(m.toString()));
    await new Promise<void>((r) => rx.bind(0, "127.0.0.1", r));
    const dev = device({ address: `127.0.0.1:${rx.address().port}`, socket_type: "udp" });
    await dev.write(rec('{"type":"request"}'));
    await dev.write(rec('{"type":"response"}'));
    await until(() => got.length === 2);
    expect(got).toEqual(['{"type":"request"}\n', '{"type":"response"}\n']);
  });

  it("a peer that is gone makes the write reject; when it is back the device writes again without a restart", async () => {
    const srv = await streamServer(0);
    const port = srv.port;
    const dev = device({ address: `127.0.0.1:${port}` });
    await dev.write(rec("one"));
    await until(() => srv.received() === "one\n");
    await srv.stop();
    await new Promise((r) => setTimeout(r, 50)); // the FIN reaches the device's socket
    await expect(dev.write(rec("lost"))).rejects.toThrow(/could not write to tcp/);
    await expect(dev.write(rec("lost again"))).rejects.toThrow(/ECONNREFUSED/);
    const back = await streamServer(port);
    await dev.write(rec("two"));
    await until(() => back.received() === "two\n");
  });

  it("a peer that never reads makes writes reject within write_timeout, measured; the connection is re-made after", async () => {
    const srv = await streamServer(0, { pauseOnConnect: true }); // accepts, never reads
    const dev = device({ address: `127.0.0.1:${srv.port}`, write_timeout: "300ms" });
    const chunk = rec(`{"pad":"${"z".repeat(1 << 20)}"}`);
    // Fill the kernel buffers until a write cannot complete.
    let stalledMs = -1;
    for (let i = 0; i < 200 && stalledMs < 0; i++) {
      const t0 = performance.now();
      const ok = await dev.write(chunk).then(
        () => true,
        () => false,
      );
      if (!ok) stalledMs = performance.now() - t0;
    }
    expect(stalledMs).toBeGreaterThanOrEqual(250);
    expect(stalledMs).toBeLessThan(1_000);
    // Records queued behind a stalled one keep their own deadline from their call: none waits
    // write_timeout per record ahead of it.
    const t0 = performance.now();
    const many = await Promise.allSettled(Array.from({ length: 5 }, () => dev.write(chunk)));
    const took = performance.now() - t0;
    expect(many.some((r) => r.status === "rejected")).toBe(true);
    expect(took).toBeLessThan(1_200); // 5 × write_timeout (1.5 s) if each waited for the one before
    // A peer that reads again gets records again (a timed-out connection was dropped and re-made).
    srv.resumeAll();
    await dev.write(rec("fresh"));
    await until(() => srv.received().includes("fresh\n"), 10_000);
  }, 30_000);

  it("reopen() re-makes the connection (SIGHUP)", async () => {
    const srv = await streamServer(0);
    let accepted = 0;
    const dev = device({ address: `127.0.0.1:${srv.port}` });
    await dev.write(rec("a"));
    await until(() => srv.received() === "a\n");
    const first = [...srv.conns][0];
    await dev.reopen();
    await dev.write(rec("b"));
    await until(() => srv.received() === "a\nb\n");
    await until(() => first?.destroyed === true);
    accepted = srv.conns.size;
    expect(accepted).toBe(1);
  });
});

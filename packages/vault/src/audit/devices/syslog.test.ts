import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { UnixDatagramSocket } from "@bulwark/unixgram";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { VaultError } from "../../errors.js";
import { type AuditDevice, AuditOptionError } from "../types.js";
import capture from "./fixtures/openbao-2.6.2-syslog.json" with { type: "json" };
import { AUDIT_DEVICE_FACTORIES } from "./index.js";
import { goStamp, localSyslogMessage, makeSyslogDevice, syslogDevice } from "./syslog.js";

const ctx = { path: "syslog/" };
const enc = new TextEncoder();

let dir: string;
const cleanups: (() => Promise<void> | void)[] = [];
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "bulwark-audit-syslog-"));
});
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
  fs.rmSync(dir, { recursive: true, force: true });
});

function receiver(at: string): UnixDatagramSocket {
  const rx = UnixDatagramSocket.bind(at);
  cleanups.push(() => rx.close());
  return rx;
}
function device(options: Record<string, string>): AuditDevice {
  const dev = syslogDevice(options, ctx);
  cleanups.push(() => dev.close());
  return dev;
}
async function streamListener(at: string) {
  let received = "";
  const conns = new Set<net.Socket>();
  const server = net.createServer((s) => {
    conns.add(s);
    s.on("data", (d) => {
      received += d.toString();
    });
    s.on("error", () => undefined);
  });
  await new Promise<void>((r) => server.listen(at, r));
  cleanups.push(
    () =>
      new Promise<void>((r) => {
        for (const c of conns) c.destroy();
        server.close(() => r());
      }),
  );
  return { received: () => received };
}
async function until(check: () => boolean, ms = 5_000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error("timed out waiting");
    await new Promise((r) => setTimeout(r, 10));
  }
}

// Go's local syslog line: <PRI>Mmm _d hh:mm:ss tag[pid]: msg
const LINE = /^<(\d+)>([A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d) ([^[]+)\[(\d+)\]: (.*)\n$/s;

describe("syslog audit device", () => {
  it("is registered as 'syslog'", () => {
    expect(AUDIT_DEVICE_FACTORIES.syslog).toBe(syslogDevice);
  });

  it("formats as Go's log/syslog does for a local daemon (time.Stamp, no hostname, one newline)", () => {
    expect(goStamp(new Date(2026, 0, 5, 3, 4, 5))).toBe("Jan  5 03:04:05");
    expect(goStamp(new Date(2026, 11, 25, 23, 59, 0))).toBe("Dec 25 23:59:00");
    const at = new Date(2026, 1, 14, 9, 8, 7);
    expect(localSyslogMessage(38, "bulwark", enc.encode('{"a":1}\n'), at).toString()).toBe(
      `<38>Feb 14 09:08:07 bulwark[${process.pid}]: {"a":1}\n`,
    );
    // A record without its newline gets one, as Go adds it.
    expect(localSyslogMessage(38, "t", enc.encode("x"), at).toString()).toBe(
      `<38>Feb 14 09:08:07 t[${process.pid}]: x\n`,
    );
  });

  it("rebuilds, byte for byte, the datagrams OpenBao 2.6.2 sent to /dev/log (fixtures/)", () => {
    const months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    expect(capture.datagrams).toHaveLength(2);
    for (const datagram of capture.datagrams) {
      const m = LINE.exec(datagram);
      expect(m).not.toBeNull();
      const [, pri, stamp, tag, pid, body] = m as unknown as string[];
      expect(pid).toBe(String(capture.pid));
      const [mon, day, hms] = (stamp as string).split(/ +/);
      const [h, mi, sec] = (hms as string).split(":").map(Number);
      const at = new Date(2026, months.indexOf(mon as string), Number(day), h, mi, sec);
      const ours = localSyslogMessage(Number(pri), tag as string, enc.encode(`${body}\n`), at).toString();
      expect(ours.replace(`[${process.pid}]`, `[${capture.pid}]`)).toBe(datagram);
    }
    // OpenBao's defaults: AUTH|INFO; local3 is 19<<3|6.
    expect(capture.datagrams.map((d) => d.slice(0, d.indexOf(">") + 1))).toEqual(["<38>", "<158>"]);
  });

  it("sends each record as one datagram to a unix datagram socket: priority AUTH|INFO and tag bulwark by default", async () => {
    const at = path.join(dir, "log.sock");
    const rx = receiver(at);
    const dev = device({ socket_path: at });
    const record = `{"type":"request","request":{"path":"secret/db","data":{"x":"${"v".repeat(5_000)}"}}}\n`;
    await dev.write(enc.encode(record));
    await dev.write(enc.encode('{"type":"response"}\n'));
    const first = rx.receive()?.toString() ?? "";
    const m = LINE.exec(first);
    expect(m).not.toBeNull();
    expect(m?.[1]).toBe(String((4 << 3) | 6)); // LOG_AUTH|LOG_INFO = 38, as OpenBao
    expect(m?.[3]).toBe("bulwark");
    expect(m?.[4]).toBe(String(process.pid));
    expect(m?.[5]).toBe(record.slice(0, -1));
    expect(Math.abs(Date.parse(`${m?.[2]} ${new Date().getFullYear()}`) - Date.now())).toBeLessThan(60_000);
    expect(LINE.exec(rx.receive()?.toString() ?? "")?.[5]).toBe('{"type":"response"}');
    expect(rx.receive()).toBeNull();
  });

  it("takes facility (any case) and tag", async () => {
    const at = path.join(dir, "log.sock");
    const rx = receiver(at);
    const dev = device({ socket_path: at, facility: "local3", tag: "vault" });
    await dev.write(enc.encode("{}\n"));
    const m = LINE.exec(rx.receive()?.toString() ?? "");
    expect(m?.[1]).toBe(String((19 << 3) | 6));
    expect(m?.[3]).toBe("vault");
  });

  it("refuses bad options and a socket nobody listens on, naming the option", () => {
    const opt = (options: Record<string, string>) => {
      try {
        syslogDevice(options, ctx);
      } catch (e) {
        expect(e).toBeInstanceOf(AuditOptionError);
        return [(e as AuditOptionError).option, (e as Error).message];
      }
      return ["none", ""];
    };
    expect(opt({ socket_path: path.join(dir, "x"), facility: "AUTHX" })[0]).toBe("facility");
    expect(opt({ socket_path: path.join(dir, "x"), tag: "a\nb" })[0]).toBe("tag");
    const [option, message] = opt({ socket_path: path.join(dir, "missing.sock") });
    expect(option).toBe("socket_path");
    expect(message).toContain("missing.sock: ENOENT");
  });

  it('writes to a unix stream socket when that is what listens there (Go\'s fallback to "unix")', async () => {
    const at = path.join(dir, "stream.sock");
    const srv = await streamListener(at);
    const dev = device({ socket_path: at, tag: "t" });
    await dev.write(enc.encode("one\n"));
    await dev.write(enc.encode("two\n"));
    await until(() => srv.received().split("\n").length === 3);
    const lines = srv.received().split("\n").slice(0, 2);
    expect(lines.map((l) => LINE.exec(`${l}\n`)?.[5])).toEqual(["one", "two"]);
  });

  it("a receiver that went away makes the write reject; once it is back, writes go through without a restart", async () => {
    const at = path.join(dir, "log.sock");
    const rx = UnixDatagramSocket.bind(at);
    const dev = device({ socket_path: at });
    await dev.write(enc.encode("a\n"));
    expect(LINE.exec(rx.receive()?.toString() ?? "")?.[5]).toBe("a");
    rx.close();
    fs.rmSync(at);
    const err = await dev.write(enc.encode("lost\n")).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(VaultError);
    expect((err as VaultError).code).toBe("audit_failed");
    const back = receiver(at);
    await dev.write(enc.encode("b\n"));
    expect(LINE.exec(back.receive()?.toString() ?? "")?.[5]).toBe("b");
  });

  it("a daemon whose queue is full makes the write reject at once, not stall", async () => {
    const at = path.join(dir, "log.sock");
    receiver(at); // never reads
    const dev = device({ socket_path: at });
    const t0 = performance.now();
    let failed = false;
    for (let i = 0; i < 100_000 && !failed; i++) {
      failed = await dev.write(enc.encode(`${"r".repeat(1000)}\n`)).then(
        () => false,
        () => true,
      );
    }
    expect(failed).toBe(true);
    expect(performance.now() - t0).toBeLessThan(10_000);
  });

  it("without the native addon: a datagram socket is refused at creation naming what to install; a stream socket works", async () => {
    const dgramAt = path.join(dir, "log.sock");
    receiver(dgramAt);
    let err: unknown;
    try {
      makeSyslogDevice({ socket_path: dgramAt }, ctx, undefined);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(AuditOptionError);
    expect((err as Error).message).toMatch(
      /@bulwark\/unixgram native addon.*install python3, make and a C compiler/,
    );
    const streamAt = path.join(dir, "stream.sock");
    const srv = await streamListener(streamAt);
    const dev = makeSyslogDevice({ socket_path: streamAt }, ctx, undefined);
    cleanups.push(() => dev.close());
    await dev.write(enc.encode("s\n"));
    await until(() => LINE.exec(srv.received())?.[5] === "s");
  });
});

/**
 * Audit devices end to end, against a real `bulwark server` process (issue 15): fail-closed with
 * a file device on a full disk (a small tmpfs filled to ENOSPC) and with a socket device whose
 * peer goes away or stops reading; the syslog device writing to a local datagram socket; two
 * devices, one failing; SIGHUP reopening the file (logrotate) and applying added and removed
 * declarative `audit` blocks. Every secret, token and share used is looked for in plaintext in
 * every device's output and the server's own output.
 *
 * The figures (latencies under a stuck socket peer, counts) are printed with console.info.
 */
import { readFileSync, renameSync, statSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { unixgramAvailable } from "../../../packages/unixgram/src/index.js";
import { DatagramSink, SmallTmpfs, TcpPeer } from "./helpers/audit-e2e-peers.js";
import {
  type AuditNode,
  auditBlock,
  baseConfig,
  type InitKeys,
  initNode,
  type Json,
  mountKv2,
  parseLines,
  plaintextSecrets,
  readRecords,
  readUntilRefused,
  recordsFor,
  startAuditNode,
} from "./helpers/audit-e2e-server.js";
import { BIN, serviceGate, tempDir } from "./helpers/server-process.js";

const missing = serviceGate("audit devices e2e suite", BIN, "the bulwark CLI");

/** Vault's answer to a request no audit device could record. */
const AUDIT_FAILED = { errors: ["internal error"] };

/** Fresh random secret values (long enough that a plaintext hit is no accident). */
function secret(label: string): string {
  return `${label}-${crypto.randomUUID()}-${crypto.randomUUID()}`;
}

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  // Reverse order: the server stops before the tmpfs it writes to is unmounted.
  for (const c of cleanups.splice(0).reverse()) {
    try {
      await c();
    } catch (err) {
      console.warn(`cleanup failed: ${(err as Error).message}`);
    }
  }
});

async function startNode(dir: string, audit: string): Promise<{ node: AuditNode; keys: InitKeys }> {
  const node = await startAuditNode({ dir, config: `${baseConfig(join(dir, "data"))}${audit}` });
  cleanups.push(() => node.stop());
  const keys = await initNode(node);
  await mountKv2(node);
  return { node, keys };
}

function keySecrets(keys: InitKeys): string[] {
  return [keys.rootToken, keys.unsealKey, keys.unsealKeyHex, keys.rootAccessor];
}

/** The request and response records of each path, in order: [req, resp] with one request id. */
function expectPairs(records: Json[], paths: string[]): void {
  const picked = records.filter((r) => paths.includes(r?.request?.path));
  expect(picked.map((r) => `${r.type} ${r.request.path}`)).toEqual(
    paths.flatMap((p) => [`request ${p}`, `response ${p}`]),
  );
  for (let i = 0; i < picked.length; i += 2) expect(picked[i + 1].request.id).toBe(picked[i].request.id);
}

/** Polls `ready` (the TCP peer reads after the server has answered) for up to `ms`. */
async function until(ready: () => boolean, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!ready() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
}

describe.skipIf(missing !== undefined)("audit devices against a real bulwark server", () => {
  it("file device on a full disk: requests fail closed (500, nothing written) and succeed again once space is freed, without a restart", async () => {
    const dir = tempDir("audit-e2e-file");
    const fs = new SmallTmpfs("2m");
    cleanups.push(() => fs.unmount());
    const log = join(fs.dir, "audit.log");
    const { node, keys } = await startNode(dir, auditBlock("file", "file", { file_path: log }));
    const [v1, v2, v3] = [secret("v1"), secret("v2"), secret("v3")];
    const w1 = await node.http("PUT", "secret/data/app", { data: { password: v1 } });
    expect(w1.status, w1.text).toBe(200);
    expect(w1.json.data.version).toBe(1);
    // A token id chosen here (root may set it, as Vault's `id`): after recovery it must not exist.
    const refusedTokenId = secret("token");

    fs.fill();
    // The log's last page may still have room for a few records (tmpfs allocates whole pages): a
    // harmless read until one is refused uses it up.
    const absorbed = await readUntilRefused(node, "secret/data/app");
    // A record longer than any page's slack: the key name is logged as is (only values are HMAC'd).
    const longKey = `k${"x".repeat(6000)}`;
    const refusedWrite = await node.http("PUT", "secret/data/app", {
      data: { password: v2, [longKey]: "1" },
    });
    expect(refusedWrite.status, refusedWrite.text).toBe(500);
    expect(refusedWrite.json).toEqual(AUDIT_FAILED);
    const refusedNew = await node.http("PUT", "secret/data/new", { data: { [longKey]: v2 } });
    expect(refusedNew.status, refusedNew.text).toBe(500);
    expect(refusedNew.json).toEqual(AUDIT_FAILED);
    const refusedRead = await node.http("GET", "secret/data/app");
    expect(refusedRead.status, refusedRead.text).toBe(500);
    expect(refusedRead.json).toEqual(AUDIT_FAILED);
    // Other parts of the pipeline fail closed too: a token is not created, a generate-root
    // attempt (sys/generate-root-token: the token-authenticated form) is not started.
    const refusedToken = await node.http("POST", "auth/token/create", {
      id: refusedTokenId,
      policies: ["default"],
      [longKey]: "1",
    });
    expect(refusedToken.status, refusedToken.text).toBe(500);
    expect(refusedToken.json).toEqual(AUDIT_FAILED);
    const refusedAttempt = await node.http("PUT", "sys/generate-root-token/attempt", { [longKey]: "1" });
    expect(refusedAttempt.status, refusedAttempt.text).toBe(500);
    expect(refusedAttempt.json).toEqual(AUDIT_FAILED);
    // Unaudited endpoints still answer.
    expect((await node.http("GET", "sys/health", undefined, "")).status).toBe(200);

    fs.free();
    const back = await node.http("GET", "secret/data/app");
    expect(back.status, back.text).toBe(200);
    expect(back.json.data.data).toEqual({ password: v1 });
    expect(back.json.data.metadata.version).toBe(1);
    expect((await node.http("GET", "secret/data/new")).status).toBe(404);
    const w3 = await node.http("PUT", "secret/data/app", { data: { password: v3 } });
    expect(w3.status, w3.text).toBe(200);
    expect(w3.json.data.version).toBe(2); // the refused write made no version
    const lookup = await node.http("POST", "auth/token/lookup", { token: refusedTokenId });
    expect(lookup.status, lookup.text).toBe(403); // the refused token create made no token
    const attempt = await node.http("GET", "sys/generate-root-token/attempt");
    expect(attempt.status, attempt.text).toBe(200);
    expect(attempt.json.data.started).toBe(false);

    const records = readRecords(log); // every line whole: no torn record was left behind
    // Only the read-back after recovery (404) is logged for the path the refused write was to.
    expect(recordsFor(records, "secret/data/new").map((r) => `${r.type} ${r.request.operation}`)).toEqual([
      "request read",
      "response read",
    ]);
    const app = recordsFor(records, "secret/data/app");
    // The last two: the write after recovery, logged as a request and a response.
    expect(app.slice(-2).map((r) => `${r.type} ${r.request.operation}`)).toEqual([
      "request update",
      "response update",
    ]);
    expect(
      app.some((r) => r.request.data !== undefined && Object.hasOwn(r.request.data.data ?? {}, longKey)),
    ).toBe(false);
    expect(
      plaintextSecrets({ [log]: readFileSync(log, "utf8"), output: node.output() }, [
        ...keySecrets(keys),
        v1,
        v2,
        v3,
      ]),
    ).toEqual([]);
    console.info(
      `[audit e2e] file on a full tmpfs: ${absorbed} read(s) fit in the log's last page before the first refusal; ${records.length} records in the log`,
    );
  }, 180_000);

  it("socket device (tcp): records arrive in order; the peer gone → 500 and nothing changes; back → served; a peer that never reads → each request ends within write_timeout and sys/health stays responsive", async () => {
    const dir = tempDir("audit-e2e-socket");
    const peer = new TcpPeer();
    cleanups.push(() => peer.close());
    await peer.listen();
    const writeTimeoutMs = 2000;
    const { node, keys } = await startNode(
      dir,
      auditBlock("socket", "socket", {
        address: `127.0.0.1:${peer.port}`,
        socket_type: "tcp",
        write_timeout: `${writeTimeoutMs / 1000}s`,
      }),
    );
    const values = [secret("s0"), secret("s1"), secret("s2")];
    for (const [i, v] of values.entries()) {
      const w = await node.http("PUT", `secret/data/s${i}`, { data: { password: v } });
      expect(w.status, w.text).toBe(200);
    }
    const received = () => parseLines(peer.lines.join("\n"), "the TCP peer");
    await until(() => recordsFor(received(), "secret/data/s2").length >= 2);
    expectPairs(received(), ["secret/data/s0", "secret/data/s1", "secret/data/s2"]);
    // The value in the record is the device's HMAC, as sys/audit-hash computes it.
    const hashed = await node.http("PUT", "sys/audit-hash/socket", { input: values[0] });
    expect(hashed.status, hashed.text).toBe(200);
    const s0 = recordsFor(received(), "secret/data/s0")[0];
    expect(s0.request.data.data.password).toBe(hashed.json.data?.hash ?? hashed.json.hash);

    // The peer goes away.
    await peer.close();
    await new Promise((r) => setTimeout(r, 300));
    const linesBefore = peer.lines.length;
    const gone = secret("gone");
    const refusedWrite = await node.http("PUT", "secret/data/s0", { data: { password: gone } });
    expect(refusedWrite.status, refusedWrite.text).toBe(500);
    expect(refusedWrite.json).toEqual(AUDIT_FAILED);
    const refusedRead = await node.http("GET", "secret/data/s1");
    expect(refusedRead.status, refusedRead.text).toBe(500);
    expect(refusedRead.json).toEqual(AUDIT_FAILED);

    // It comes back: served again, and the refused write did not happen.
    await peer.listen();
    const back = await node.http("GET", "secret/data/s0");
    expect(back.status, back.text).toBe(200);
    expect(back.json.data.data).toEqual({ password: values[0] });
    expect(back.json.data.metadata.version).toBe(1);
    await until(() => peer.lines.length >= linesBefore + 2);
    const afterBack = received();
    expect(afterBack.slice(linesBefore).map((r) => `${r.type} ${r.request.path}`)).toEqual([
      "request secret/data/s0",
      "response secret/data/s0",
    ]);

    // A peer that accepts and never reads: big records fill the kernel's buffers.
    await peer.stuck();
    const latencies: { status: number; ms: number }[] = [];
    const health: number[] = [];
    let polling = true;
    const poller = (async () => {
      while (polling) {
        const h = await node.http("GET", "sys/health", undefined, "");
        expect(h.status).toBe(200);
        health.push(h.ms);
        await new Promise((r) => setTimeout(r, 100));
      }
    })();
    const bigKey = `k${"b".repeat(512 * 1024)}`;
    let concurrentFailed = 0;
    try {
      let failed = 0;
      for (let i = 0; i < 60 && failed < 3; i++) {
        const r = await node.http("PUT", "secret/data/fill", { data: { [bigKey]: "1" } });
        expect([200, 500], r.text.slice(0, 200)).toContain(r.status);
        if (r.status === 500) {
          expect(r.json).toEqual(AUDIT_FAILED);
          failed++;
        }
        latencies.push({ status: r.status, ms: r.ms });
      }
      expect(failed, `no request failed against a peer that never reads (${latencies.length} sent)`).toBe(3);
      // Small requests while the peer still does not read: each answers within the bound too.
      for (let i = 0; i < 5; i++) {
        const r = await node.http("GET", "secret/data/s2");
        expect([200, 500]).toContain(r.status);
        latencies.push({ status: r.status, ms: r.ms });
      }
      // Concurrent big writes: the later ones wait behind the earlier ones for the device, and
      // write_timeout counts that wait too, so none takes longer than the bound either.
      const burst = await Promise.all(
        Array.from({ length: 8 }, () => node.http("PUT", "secret/data/fill", { data: { [bigKey]: "2" } })),
      );
      for (const r of burst) {
        expect([200, 500], r.text.slice(0, 200)).toContain(r.status);
        latencies.push({ status: r.status, ms: r.ms });
      }
      concurrentFailed = burst.filter((r) => r.status === 500).length;
    } finally {
      polling = false;
      await poller;
    }
    const worst = Math.max(...latencies.map((l) => l.ms));
    const failures = latencies.filter((l) => l.status === 500).map((l) => Math.round(l.ms));
    const worstHealth = Math.max(...health);
    console.info(
      `[audit e2e] stuck socket peer, write_timeout ${writeTimeoutMs} ms: ${latencies.length} requests, ${failures.length} failed (500) after ${failures.join(", ")} ms; slowest request ${Math.round(worst)} ms; ${concurrentFailed} of 8 concurrent failed; sys/health polled ${health.length} times meanwhile, slowest ${Math.round(worstHealth)} ms`,
    );
    for (const l of latencies) expect(l.ms).toBeLessThan(writeTimeoutMs + 1500);
    for (const ms of failures) expect(ms).toBeGreaterThanOrEqual(writeTimeoutMs - 50);
    expect(worstHealth).toBeLessThan(writeTimeoutMs - 500);

    // A reading peer again: served at once.
    await peer.listen();
    await new Promise((r) => setTimeout(r, 300));
    const lastBefore = peer.lines.length;
    const again = await node.http("GET", "secret/data/s2");
    expect(again.status, again.text).toBe(200);
    expect(again.json.data.data).toEqual({ password: values[2] });
    await until(() => peer.lines.length >= lastBefore + 2);
    expectPairs(parseLines(peer.lines.slice(lastBefore).join("\n"), "the TCP peer"), ["secret/data/s2"]);

    expect(
      plaintextSecrets({ "socket peer": peer.lines.join("\n"), output: node.output() }, [
        ...keySecrets(keys),
        ...values,
        gone,
      ]),
    ).toEqual([]);
  }, 300_000);

  it.skipIf(!unixgramAvailable())(
    "syslog device to a local datagram socket (socket_path): <PRI>Stamp tag[pid]: {json} records",
    async () => {
      const dir = tempDir("audit-e2e-syslog");
      const sink = new DatagramSink(join(dir, "log.sock"));
      cleanups.push(() => sink.close());
      const { node, keys } = await startNode(
        dir,
        auditBlock("syslog", "syslog", { socket_path: sink.path, tag: "bulwark-e2e", facility: "LOCAL0" }),
      );
      const v = secret("syslog");
      const w = await node.http("PUT", "secret/data/sys", { data: { password: v } });
      expect(w.status, w.text).toBe(200);
      const r = await node.http("GET", "secret/data/sys");
      expect(r.status, r.text).toBe(200);
      await new Promise((res) => setTimeout(res, 100));
      sink.drain();
      const shape = /^<(\d+)>([A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d) bulwark-e2e\[(\d+)\]: (\{.*\})\n?$/s;
      const records = sink.datagrams.map((d) => {
        const m = shape.exec(d);
        expect(m, `not a syslog record: ${d.slice(0, 120)}`).not.toBeNull();
        const [, pri, , pid, json] = m as RegExpExecArray;
        expect(Number(pri)).toBe(16 * 8 + 6); // LOCAL0 | INFO
        expect(Number(pid)).toBe(node.pid);
        return JSON.parse(json as string);
      });
      const sys = recordsFor(records, "secret/data/sys");
      expect(sys.map((x) => `${x.type} ${x.request.operation}`)).toEqual([
        "request create",
        "response create",
        "request read",
        "response read",
      ]);
      expect(sys[3].response.data.data.password).toMatch(/^hmac-sha256:[0-9a-f]{64}$/);

      // The receiver goes away (its socket closed and removed): fail-closed; back at the same path: served.
      sink.close();
      const refused = await node.http("GET", "secret/data/sys");
      expect(refused.status, refused.text).toBe(500);
      expect(refused.json).toEqual(AUDIT_FAILED);
      const sink2 = new DatagramSink(sink.path);
      cleanups.push(() => sink2.close());
      const again = await node.http("GET", "secret/data/sys");
      expect(again.status, again.text).toBe(200);
      await new Promise((res) => setTimeout(res, 100));
      sink2.drain();
      expect(sink2.datagrams.filter((d) => d.includes('"path":"secret/data/sys"')).length).toBe(2);
      expect(
        plaintextSecrets({ syslog: sink.datagrams.join("\n"), output: node.output() }, [
          ...keySecrets(keys),
          v,
        ]),
      ).toEqual([]);
    },
    120_000,
  );

  it("two devices, one failing (socket with no peer), one fine (file): requests succeed and the file logs them", async () => {
    const dir = tempDir("audit-e2e-two");
    const log = join(dir, "audit.log");
    const nobody = new TcpPeer(); // listened on once for a free port, then closed: nothing answers there
    await nobody.listen();
    await nobody.close();
    const { node, keys } = await startNode(
      dir,
      auditBlock("file", "file", { file_path: log }) +
        // skip_test: a device whose test record fails is not created (OpenBao's enableAudit).
        auditBlock("socket", "gone", {
          address: `127.0.0.1:${nobody.port}`,
          write_timeout: "1s",
          skip_test: "true",
        }),
    );
    const list = await node.http("GET", "sys/audit");
    expect(list.status, list.text).toBe(200);
    expect(
      Object.keys(list.json.data ?? list.json)
        .filter((k) => k.endsWith("/"))
        .sort(),
    ).toEqual(["file/", "gone/"]);
    const v = secret("two");
    const w = await node.http("PUT", "secret/data/two", { data: { password: v } });
    expect(w.status, w.text).toBe(200);
    const r = await node.http("GET", "secret/data/two");
    expect(r.status, r.text).toBe(200);
    expect(r.json.data.data).toEqual({ password: v });
    // The failing device was tried (and failed) for these records.
    expect(node.output()).toMatch(/"audit_path":"gone\/"[^\n]*audit socket write failed/);
    const two = recordsFor(readRecords(log), "secret/data/two");
    expect(two.map((x) => `${x.type} ${x.request.operation}`)).toEqual([
      "request create",
      "response create",
      "request read",
      "response read",
    ]);
    expect(
      plaintextSecrets({ [log]: readFileSync(log, "utf8"), output: node.output() }, [...keySecrets(keys), v]),
    ).toEqual([]);
  }, 120_000);

  it("two devices, one stuck (a socket peer that never reads), one fine (file): requests succeed, none slower than write_timeout for each of its two records + a margin", async () => {
    const dir = tempDir("audit-e2e-two-stuck");
    const log = join(dir, "audit.log");
    const peer = new TcpPeer();
    cleanups.push(() => peer.close());
    await peer.stuck();
    const writeTimeoutMs = 1000;
    const { node, keys } = await startNode(
      dir,
      auditBlock("file", "file", { file_path: log }) +
        auditBlock("socket", "stuck", { address: `127.0.0.1:${peer.port}`, write_timeout: "1s" }),
    );
    const bigKey = `k${"b".repeat(512 * 1024)}`;
    const latencies: number[] = [];
    let slow = 0;
    for (let i = 0; i < 60 && slow < 3; i++) {
      const r = await node.http("PUT", "secret/data/both", { data: { [bigKey]: "1" } });
      expect(r.status, r.text.slice(0, 200)).toBe(200);
      latencies.push(r.ms);
      if (r.ms >= writeTimeoutMs - 50) slow++;
    }
    const v = secret("stuck");
    const last = await node.http("PUT", "secret/data/both", { data: { password: v } });
    expect(last.status, last.text).toBe(200);
    latencies.push(last.ms);
    console.info(
      `[audit e2e] file + stuck socket (write_timeout ${writeTimeoutMs} ms): ${latencies.length} writes all 200, ${slow} waited out the socket's timeout; slowest ${Math.round(Math.max(...latencies))} ms`,
    );
    expect(slow, "the socket peer never filled up").toBe(3);
    for (const ms of latencies) expect(ms).toBeLessThan(2 * writeTimeoutMs + 1500);
    expect(recordsFor(readRecords(log), "secret/data/both").length).toBe(2 * latencies.length);
    expect(
      plaintextSecrets({ [log]: readFileSync(log, "utf8"), output: node.output() }, [...keySecrets(keys), v]),
    ).toEqual([]);
  }, 180_000);

  it("SIGHUP: a renamed log (logrotate) is reopened at file_path with nothing lost or duplicated; an audit block added to the config appears in sys/audit, removed is disabled", async () => {
    const dir = tempDir("audit-e2e-sighup");
    const log = join(dir, "audit.log");
    const extraLog = join(dir, "extra.log");
    const fileBlock = auditBlock("file", "file", { file_path: log });
    const base = baseConfig(join(dir, "data"));
    const { node, keys } = await startNode(dir, fileBlock);
    const values: string[] = [];
    const write = async (name: string) => {
      const v = secret(name);
      values.push(v);
      const w = await node.http("PUT", `secret/data/${name}`, { data: { password: v } });
      expect(w.status, w.text).toBe(200);
    };
    for (const n of ["a1", "a2", "a3"]) await write(n);
    renameSync(log, `${log}.1`);
    // logrotate's window between the rename and its postrotate SIGHUP: still the open (renamed) file.
    for (const n of ["b1", "b2"]) await write(n);
    await node.reload(/audit devices reopened/);
    for (const n of ["c1", "c2", "c3"]) await write(n);

    // OpenBao's default mode for the file it creates, the reopened one included.
    expect(statSync(`${log}.1`).mode & 0o777).toBe(0o600);
    expect(statSync(log).mode & 0o777).toBe(0o600);
    const old = readRecords(`${log}.1`);
    const fresh = readRecords(log);
    const paths = (rs: Json[]) =>
      rs.map((r) => r.request.path).filter((p: string) => p.startsWith("secret/data/"));
    expect(paths(old)).toEqual(
      ["a1", "a1", "a2", "a2", "a3", "a3", "b1", "b1", "b2", "b2"].map((n) => `secret/data/${n}`),
    );
    expect(paths(fresh)).toEqual(["c1", "c1", "c2", "c2", "c3", "c3"].map((n) => `secret/data/${n}`));
    const ids = [...old, ...fresh].map((r) => `${r.type} ${r.request.id}`);
    expect(new Set(ids).size).toBe(ids.length); // no record twice

    // A declarative block added: SIGHUP applies it.
    node.writeConfig(`${base}${fileBlock}${auditBlock("file", "extra", { file_path: extraLog })}`);
    await node.reload(/reload: audit settings applied/);
    const listed = await node.http("GET", "sys/audit");
    expect(listed.status, listed.text).toBe(200);
    const table = listed.json.data ?? listed.json;
    expect(table["extra/"]).toMatchObject({ type: "file", path: "extra/", options: { file_path: extraLog } });
    await write("d1");
    expect(paths(readRecords(extraLog))).toEqual(["secret/data/d1", "secret/data/d1"]);

    // Removed: SIGHUP disables it; the next requests are not in its file.
    node.writeConfig(`${base}${fileBlock}`);
    await node.reload(/reload: audit settings applied/);
    const after = await node.http("GET", "sys/audit");
    expect(Object.keys(after.json.data ?? after.json)).not.toContain("extra/");
    expect(Object.keys(after.json.data ?? after.json)).toContain("file/");
    await write("e1");
    expect(paths(readRecords(extraLog))).toEqual(["secret/data/d1", "secret/data/d1"]);
    expect(paths(readRecords(log)).slice(-2)).toEqual(["secret/data/e1", "secret/data/e1"]);

    expect(
      plaintextSecrets(
        {
          [`${log}.1`]: readFileSync(`${log}.1`, "utf8"),
          [log]: readFileSync(log, "utf8"),
          [extraLog]: readFileSync(extraLog, "utf8"),
          output: node.output(),
        },
        [...keySecrets(keys), ...values],
      ),
    ).toEqual([]);
  }, 180_000);

  it("a client cannot make a record claim the request was forwarded: X-Bulwark-Forwarded-By sent by a client to a node gives no forwarded_from / forwarded in its records (OpenBao sets them only for requests its cluster port forwarded)", async () => {
    const dir = tempDir("audit-e2e-spoof");
    const log = join(dir, "audit.log");
    const { node, keys } = await startNode(dir, auditBlock("file", "file", { file_path: log }));
    const v = secret("spoof");
    const r = await node.http("PUT", "secret/data/spoof", { data: { password: v } }, node.rootToken, {
      "X-Bulwark-Forwarded-By": "spoofed-standby",
    });
    // Refused or served, the log must not say a standby forwarded it; served, it is logged.
    const records = recordsFor(readRecords(log), "secret/data/spoof");
    if (r.status === 200) expect(records.length, r.text).toBe(2);
    expect(records.map((x) => [x.type, x.forwarded_from, x.forwarded])).toEqual(
      records.map((x) => [x.type, undefined, undefined]),
    );
    expect(plaintextSecrets({ [log]: readFileSync(log, "utf8") }, [...keySecrets(keys), v])).toEqual([]);
  }, 120_000);
});

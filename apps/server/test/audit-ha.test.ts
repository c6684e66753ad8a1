/**
 * Audit devices on an HA pair (issue 15: "a standby that forwards a request does not double-log
 * it; the active node logs it once"): two `bulwark server` nodes on one Consul KV path (a real
 * `consul agent -dev`), each with the same declarative `audit "file" "file"` block.
 *
 * Node-local logs: OpenBao refuses a config block that differs from the stored table entry on any
 * node (validateAuditFromConfig: "modifications to audit devices are not allowed" — a different
 * file_path per node included), so an HA cluster's nodes carry the same options and each writes
 * the file at that path on its own host. Here both nodes run on one host, so the block names a
 * relative `file_path = "audit.log"` and each node runs in its own working directory.
 *
 * A request sent to the standby (a write and a read) is forwarded and logged once, in the active
 * node's log, with `forwarded_from` naming the standby; the standby's log has nothing for it.
 * Then the active node stops, the standby takes over and logs what it serves in its own file.
 */
import { mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { ConsulAgent } from "../../../packages/storage-consul/test/consul-agent.js";
import { SmallTmpfs } from "./helpers/audit-e2e-peers.js";
import {
  type AuditNode,
  auditBlock,
  initNode,
  type Json,
  mountKv2,
  plaintextSecrets,
  readRecords,
  readUntilRefused,
  recordsFor,
  requestFrom,
  startAuditNode,
  unsealNode,
  waitForHealth,
} from "./helpers/audit-e2e-server.js";
import { CONSUL } from "./helpers/openbao-nodes.js";
import { freePort, serviceGate, tempDir } from "./helpers/server-process.js";

const missing = serviceGate("audit HA e2e suite", CONSUL, "the consul binary");

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) {
    try {
      await c();
    } catch (err) {
      console.warn(`cleanup failed: ${(err as Error).message}`);
    }
  }
});

function secret(label: string): string {
  return `${label}-${crypto.randomUUID()}-${crypto.randomUUID()}`;
}

function haConfig(consul: string, filePath = "audit.log"): string {
  return `storage "consul" {
  address = "${consul}"
  path    = "bulwark-audit-ha/"
}
listener "tcp" {
  address     = "127.0.0.1:{{PORT}}"
  tls_disable = true
}
disable_mlock = true
api_addr = "http://127.0.0.1:{{PORT}}"
${auditBlock("file", "file", { file_path: filePath })}`;
}

/**
 * The node id a node logged when it became active (waits a little: its stdout may arrive after
 * its HTTP answers say it is active).
 */
async function activeNodeId(node: AuditNode): Promise<string | undefined> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    for (const line of node.output().split("\n")) {
      if (!line.includes("this node is now active")) continue;
      try {
        const j = JSON.parse(line) as { nodeId?: string };
        if (typeof j.nodeId === "string") return j.nodeId;
      } catch {
        // Not a JSON log line.
      }
    }
    if (Date.now() > deadline) return undefined;
    await new Promise((r) => setTimeout(r, 100));
  }
}

const summary = (rs: Json[]) => rs.map((r) => `${r.type} ${r.request.operation}`);

/** The secrets found in plain text in node 1's log or either node's output (by index, never the value). */
function twoNodeLeaks(log1: string, node1: AuditNode, node2: AuditNode, secrets: string[]): string[] {
  return plaintextSecrets(
    { [log1]: readFileSync(log1, "utf8"), "node 1 output": node1.output(), "node 2 output": node2.output() },
    secrets,
  );
}

describe.skipIf(missing !== undefined)("audit on an HA pair (Consul storage)", () => {
  it("a request sent to the standby is logged once, on the active node, with forwarded_from; after failover the new active node logs to its own file", async () => {
    const agent = await ConsulAgent.start();
    cleanups.push(() => agent.stop());
    const work = tempDir("audit-e2e-ha");
    const [dir1, dir2] = [join(work, "node1"), join(work, "node2")];
    mkdirSync(dir1);
    mkdirSync(dir2);
    const [log1, log2] = [join(dir1, "audit.log"), join(dir2, "audit.log")];

    const node1 = await startAuditNode({ dir: dir1, cwd: dir1, config: haConfig(agent.address) });
    cleanups.push(() => node1.stop());
    const keys = await initNode(node1);
    await waitForHealth(node1, (s) => s === 200, "active");
    await mountKv2(node1);
    const node2 = await startAuditNode({ dir: dir2, cwd: dir2, config: haConfig(agent.address) });
    cleanups.push(() => node2.stop());
    await unsealNode(node2, keys);
    await waitForHealth(node2, (s, b) => s === 429 && b?.standby === true, "a standby");
    const node1Id = await activeNodeId(node1);
    expect(node1Id, node1.output()).toBeDefined();

    // To the standby: a write and a read, forwarded.
    const v1 = secret("ha1");
    const w = await node2.http("PUT", "secret/data/ha", { data: { password: v1 } });
    expect(w.status, w.text).toBe(200);
    const r = await node2.http("GET", "secret/data/ha");
    expect(r.status, r.text).toBe(200);
    expect(r.json.data.data).toEqual({ password: v1 });
    // To the active node directly: not forwarded.
    const direct = await node1.http("GET", "secret/data/ha");
    expect(direct.status, direct.text).toBe(200);
    // A token that does not authenticate, to the standby: refused once, on the active node.
    const badToken = secret("bad-token");
    const denied = await node2.http("GET", "secret/data/denied", undefined, badToken);
    expect(denied.status, denied.text).toBe(403);

    const onActive = recordsFor(readRecords(log1), "secret/data/ha");
    expect(summary(onActive)).toEqual([
      "request create",
      "response create",
      "request read",
      "response read",
      "request read",
      "response read",
    ]);
    // Each forwarded request once (its request and response records share one id), no duplicate.
    const ids = onActive.map((x) => `${x.type} ${x.request.id}`);
    expect(new Set(ids).size).toBe(ids.length);
    const forwarded = onActive.slice(0, 4);
    const notForwarded = onActive.slice(4);
    for (const rec of forwarded) {
      if (rec.type === "request") expect(typeof rec.forwarded_from, JSON.stringify(rec)).toBe("string");
      else expect(rec.forwarded, JSON.stringify(rec)).toBe(true);
    }
    for (const rec of notForwarded) {
      expect(rec.forwarded_from).toBeUndefined();
      expect(rec.forwarded).toBeUndefined();
    }
    expect(forwarded[0].forwarded_from).not.toBe(node1Id);
    const deniedRecords = recordsFor(readRecords(log1), "secret/data/denied");
    expect(deniedRecords.map((x) => `${x.type} ${x.error ?? ""}`.trim())).toEqual([
      "request permission denied",
      expect.stringMatching(/^response .*permission denied/s),
    ]);
    expect(typeof deniedRecords[0].forwarded_from).toBe("string");
    // The standby's own log: nothing for these requests.
    expect(recordsFor(readRecords(log2), "secret/data/ha")).toEqual([]);
    expect(recordsFor(readRecords(log2), "secret/data/denied")).toEqual([]);

    // The active node goes away (graceful: its HA lock is released); the standby takes over.
    const log1Count = readRecords(log1).length;
    await node1.stop();
    await waitForHealth(node2, (s) => s === 200, "active");
    const node2Id = await activeNodeId(node2);
    expect(node2Id, node2.output()).toBeDefined();
    expect(node2Id).not.toBe(node1Id);
    // The standby that forwarded was node 2: its node id is what the active node logged.
    expect(forwarded[0].forwarded_from).toBe(node2Id);

    const v2 = secret("ha2");
    const w2 = await node2.http("PUT", "secret/data/ha", { data: { password: v2 } });
    expect(w2.status, w2.text).toBe(200);
    const r2 = await node2.http("GET", "secret/data/ha");
    expect(r2.status, r2.text).toBe(200);
    expect(r2.json.data.data).toEqual({ password: v2 });
    const onNew = recordsFor(readRecords(log2), "secret/data/ha");
    expect(summary(onNew)).toEqual(["request update", "response update", "request read", "response read"]);
    for (const rec of onNew) {
      expect(rec.forwarded_from).toBeUndefined();
      expect(rec.forwarded).toBeUndefined();
    }
    expect(readRecords(log1).length).toBe(log1Count);

    const texts: Record<string, string> = {
      [log1]: readFileSync(log1, "utf8"),
      [log2]: readFileSync(log2, "utf8"),
      "node 1 output": node1.output(),
      "node 2 output": node2.output(),
    };
    expect(
      plaintextSecrets(texts, [
        keys.rootToken,
        keys.unsealKey,
        keys.unsealKeyHex,
        keys.rootAccessor,
        v1,
        v2,
        badToken,
      ]),
    ).toEqual([]);
    console.info(
      `[audit e2e] HA: ${forwarded.length} records of 2 forwarded requests on the active node's log, 0 on the standby's; after failover ${onNew.length} records on the new active node's log`,
    );
  }, 300_000);

  it("the same block with a different absolute file_path per node: the standby still forwards (logged once on the active node), and after failover the new active node refuses audited requests (500) as OpenBao refuses the changed block, writing to neither file", async () => {
    const agent = await ConsulAgent.start();
    cleanups.push(() => agent.stop());
    const work = tempDir("audit-e2e-ha-paths");
    const [log1, log2] = [join(work, "node1.log"), join(work, "node2.log")];
    const node1 = await startAuditNode({ dir: work, config: haConfig(agent.address, log1) });
    cleanups.push(() => node1.stop());
    const keys = await initNode(node1);
    await waitForHealth(node1, (s) => s === 200, "active");
    await mountKv2(node1);
    const node2 = await startAuditNode({ dir: work, config: haConfig(agent.address, log2) });
    cleanups.push(() => node2.stop());
    await unsealNode(node2, keys);
    await waitForHealth(node2, (s, b) => s === 429 && b?.standby === true, "a standby");

    const v1 = secret("paths1");
    const w = await node2.http("PUT", "secret/data/paths", { data: { password: v1 } });
    expect(w.status, w.text).toBe(200);
    expect(summary(recordsFor(readRecords(log1), "secret/data/paths"))).toEqual([
      "request create",
      "response create",
    ]);
    expect(readRecords(log2)).toEqual([]);

    const log1Count = readRecords(log1).length;
    await node1.stop();
    await waitForHealth(node2, (s) => s === 200, "active");
    const v2 = secret("paths2");
    const refused = await node2.http("PUT", "secret/data/paths", { data: { password: v2 } });
    expect(refused.status, refused.text).toBe(500);
    expect(refused.json).toEqual({ errors: ["internal error"] });
    const read = await node2.http("GET", "secret/data/paths");
    expect(read.status, read.text).toBe(500);
    expect(node2.output()).toMatch(/modifications to audit devices are not allowed/);
    expect(readRecords(log1).length).toBe(log1Count);
    expect(readRecords(log2)).toEqual([]);
    expect(
      twoNodeLeaks(log1, node1, node2, [
        keys.rootToken,
        keys.unsealKey,
        keys.unsealKeyHex,
        keys.rootAccessor,
        v1,
        v2,
      ]),
    ).toEqual([]);
  }, 300_000);

  it("a forwarded request's records name the client's address and port, not the standby's (OpenBao's forwarding carries the client's RemoteAddr to the active node)", async () => {
    const agent = await ConsulAgent.start();
    cleanups.push(() => agent.stop());
    const work = tempDir("audit-e2e-ha-remote");
    const log1 = join(work, "audit.log");
    const node1 = await startAuditNode({ dir: work, cwd: work, config: haConfig(agent.address) });
    cleanups.push(() => node1.stop());
    const keys = await initNode(node1);
    await waitForHealth(node1, (s) => s === 200, "active");
    await mountKv2(node1);
    const dir2 = join(work, "node2");
    mkdirSync(dir2);
    const node2 = await startAuditNode({ dir: dir2, cwd: dir2, config: haConfig(agent.address) });
    cleanups.push(() => node2.stop());
    await unsealNode(node2, keys);
    await waitForHealth(node2, (s, b) => s === 429 && b?.standby === true, "a standby");

    // The test's own loopback source addresses (all of 127/8 is local on Linux), one port each.
    const direct = { address: "127.0.0.7", port: await freePort() };
    const viaStandby = { address: "127.0.0.8", port: await freePort() };
    const v = secret("remote");
    const w = await requestFrom(node1, direct, "PUT", "secret/data/direct", { data: { password: v } });
    expect(w.status, w.text).toBe(200);
    const f = await requestFrom(node2, viaStandby, "PUT", "secret/data/forwarded", { data: { password: v } });
    expect(f.status, f.text).toBe(200);

    const records = readRecords(log1);
    const d = recordsFor(records, "secret/data/direct");
    expect(d.map((r) => [r.request.remote_address, r.request.remote_port])).toEqual([
      [direct.address, direct.port],
      [direct.address, direct.port],
    ]);
    const fw = recordsFor(records, "secret/data/forwarded");
    expect(fw.length).toBe(2);
    expect(typeof fw[0].forwarded_from).toBe("string");
    expect(fw.map((r) => [r.request.remote_address, r.request.remote_port])).toEqual([
      [viaStandby.address, viaStandby.port],
      [viaStandby.address, viaStandby.port],
    ]);
    expect(
      plaintextSecrets({ [log1]: readFileSync(log1, "utf8") }, [keys.rootToken, keys.rootAccessor, v]),
    ).toEqual([]);
  }, 300_000);

  it("a device enabled through the API on the active node: the standby's next read (right after the enable answered) is forwarded and logged, never served unaudited", async () => {
    const agent = await ConsulAgent.start();
    cleanups.push(() => agent.stop());
    const work = tempDir("audit-e2e-ha-enable");
    const log = join(work, "api.log");
    const config = haConfig(agent.address).replace(
      /audit "file"[\s\S]*$/,
      "unsafe_allow_api_audit_creation = true\n",
    );
    expect(config).not.toMatch(/audit "/);
    const node1 = await startAuditNode({ dir: work, config });
    cleanups.push(() => node1.stop());
    const keys = await initNode(node1);
    await waitForHealth(node1, (s) => s === 200, "active");
    await mountKv2(node1);
    const node2 = await startAuditNode({ dir: work, config });
    cleanups.push(() => node2.stop());
    await unsealNode(node2, keys);
    await waitForHealth(node2, (s, b) => s === 429 && b?.standby === true, "a standby");
    const v = secret("enable");
    expect((await node1.http("PUT", "secret/data/gap", { data: { password: v } })).status).toBe(200);
    // The standby reads (no device yet: served unaudited, as OpenBao's standby would forward it
    // to an active node that logs nothing), then a device is enabled and the standby reads again.
    expect((await node2.http("GET", "secret/data/gap")).status).toBe(200);
    const enabled = await node1.http("PUT", "sys/audit/file", { type: "file", options: { file_path: log } });
    expect(enabled.status, enabled.text).toBe(204);
    const after = await node2.http("GET", "secret/data/gap");
    expect(after.status, after.text).toBe(200);
    expect(summary(recordsFor(readRecords(log), "secret/data/gap"))).toEqual([
      "request read",
      "response read",
    ]);
    expect(
      plaintextSecrets({ [log]: readFileSync(log, "utf8") }, [keys.rootToken, keys.rootAccessor, v]),
    ).toEqual([]);
  }, 300_000);

  it("fail-closed through forwarding: the active node's log on a full disk → requests sent to the standby answer 500 and change nothing; space freed → served again", async () => {
    const agent = await ConsulAgent.start();
    cleanups.push(() => agent.stop());
    const fs = new SmallTmpfs("2m");
    cleanups.push(() => fs.unmount());
    const work = tempDir("audit-e2e-ha-full");
    // Node 1's working directory is the tmpfs: its relative audit.log is written there.
    const node1 = await startAuditNode({ dir: work, cwd: fs.dir, config: haConfig(agent.address) });
    cleanups.push(() => node1.stop());
    const keys = await initNode(node1);
    await waitForHealth(node1, (s) => s === 200, "active");
    await mountKv2(node1);
    const dir2 = join(work, "node2");
    mkdirSync(dir2);
    const node2 = await startAuditNode({ dir: dir2, cwd: dir2, config: haConfig(agent.address) });
    cleanups.push(() => node2.stop());
    await unsealNode(node2, keys);
    await waitForHealth(node2, (s, b) => s === 429 && b?.standby === true, "a standby");
    const v1 = secret("full1");
    expect((await node2.http("PUT", "secret/data/full", { data: { password: v1 } })).status).toBe(200);

    fs.fill();
    await readUntilRefused(node1, "secret/data/full"); // the log's last page may hold a few more records
    const longKey = `k${"x".repeat(6000)}`;
    const v2 = secret("full2");
    const refused = await node2.http("PUT", "secret/data/full", { data: { password: v2, [longKey]: "1" } });
    expect(refused.status, refused.text).toBe(500);
    expect(refused.json).toEqual({ errors: ["internal error"] });
    const refusedRead = await node2.http("GET", "secret/data/full");
    expect(refusedRead.status, refusedRead.text).toBe(500);

    fs.free();
    const back = await node2.http("GET", "secret/data/full");
    expect(back.status, back.text).toBe(200);
    expect(back.json.data.data).toEqual({ password: v1 });
    expect(back.json.data.metadata.version).toBe(1);
    const log1 = join(fs.dir, "audit.log");
    expect(summary(recordsFor(readRecords(log1), "secret/data/full")).slice(-2)).toEqual([
      "request read",
      "response read",
    ]);
    expect(readRecords(join(dir2, "audit.log"))).toEqual([]);
    expect(
      twoNodeLeaks(log1, node1, node2, [
        keys.rootToken,
        keys.unsealKey,
        keys.unsealKeyHex,
        keys.rootAccessor,
        v1,
        v2,
      ]),
    ).toEqual([]);
  }, 300_000);
});

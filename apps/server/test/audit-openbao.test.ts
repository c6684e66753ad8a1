/**
 * Audit devices, differential (issue 15): the same request sequence (helpers/audit-sequence.ts:
 * KV v2 write/read/list/missing/metadata/patch/delete/undelete/destroy/check-and-set, policy
 * write/read, child, orphan (metadata, num_uses) and periodic tokens and requests with them,
 * lookup-self, token lookup/renew/revoke with the token in the body, no token, a bogus token, a
 * denied write, sys/mounts, sys/audit, sys/audit-hash, sys/capabilities-self,
 * sys/internal/ui/mounts with and without a token, a second device enabled and disabled, 400s and
 * a path with no mount, a KV v1 mount with nested data, the unauthenticated generate-root and rekey
 * flows, sys/seal) against a real OpenBao 2.6.2 and `bulwark server`, each with a file audit
 * device — enabled through the API (`unsafe_allow_api_audit_creation = true`), declared in the
 * config, and enabled with hmac_accessor=false and elide_list_responses=true — then:
 * - the two logs hold the same records (type, operation, path) in the same order, with the same
 *   key set at every nesting level, common keys in the same order and of the same JSON type, and
 *   the same values wherever they do not differ by nature (helpers/audit-compare.ts);
 * - `sys/audit-hash/file` of the password written and of the child token equals the HMAC at the
 *   place the log carries it, on both servers (the same method);
 * - no secret value, token, accessor (hmac_accessor is on by default), unseal share (before and
 *   after the rekey), generate-root OTP, encoded token or generated root token appears in
 *   Bulwark's audit log or server output (nor in OpenBao's audit log: the reference).
 *
 * The binary is installed by tooling/services/install.sh; without it the suite is skipped locally
 * and fails under CI=true.
 */
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it, vi } from "vitest";
import { compareAuditLogs, plaintextHits, readAuditLog, summary } from "./helpers/audit-compare.js";
import { newSecrets, POLL_PATH, runSequence, type SequenceRun } from "./helpers/audit-sequence.js";
import {
  type AuditMode,
  type AuditServer,
  BAO,
  type Json,
  type Kind,
  startAuditServer,
} from "./helpers/audit-servers.js";
import { SERVER_DIR, serviceGate, tempDir } from "./helpers/server-process.js";

// Two server starts and ~40 requests per test on a loaded 2-core machine.
vi.setConfig({ testTimeout: 240_000, hookTimeout: 60_000 });

const missing = serviceGate("audit differential suite", BAO, "the bao binary");

/** One run of the sequence on both servers: how the device is made, with which options. */
interface Variant {
  tag: string;
  title: string;
  mode: AuditMode;
  options: Record<string, string>;
}

const VARIANTS: Variant[] = [
  { tag: "api", title: "device enabled through sys/audit", mode: "api", options: {} },
  { tag: "config", title: "device declared in the config", mode: "config", options: {} },
  {
    tag: "api-options",
    title: "device enabled through sys/audit with hmac_accessor=false and elide_list_responses=true",
    mode: "api",
    options: { hmac_accessor: "false", elide_list_responses: "true" },
  },
];

interface Side {
  run: SequenceRun;
  log: Json[];
  logText: string;
  output: string;
}

/** Starts `kind`, sends the sequence, stops it however the sequence ends; its log and output. */
async function side(kind: Kind, v: Variant): Promise<Side> {
  const dir = tempDir(`audit-${kind}`);
  try {
    return await sideIn(dir, kind, v);
  } finally {
    // The storage, the root token's data set and the logs of a finished run are of no further use.
    rmSync(dir, { recursive: true, force: true });
  }
}

async function sideIn(dir: string, kind: Kind, v: Variant): Promise<Side> {
  const { mode, tag } = v;
  const s: AuditServer = await startAuditServer(kind, dir, mode);
  let run: SequenceRun;
  try {
    run = await runSequence(s, mode, newSecrets(), v.options);
  } catch (err) {
    const tail = s.output().split("\n").slice(-40).join("\n");
    throw new Error(`${kind}: ${(err as Error).message}\n--- last lines of the ${kind} log ---\n${tail}`);
  } finally {
    await s.stop();
  }
  const logText = readFileSync(s.auditFile, "utf8");
  // AUDIT_DIFF_DUMP=<prefix>: both logs and the answers are kept as <prefix>-<tag>-<kind>.* (debugging).
  const dump = process.env.AUDIT_DIFF_DUMP;
  if (dump !== undefined && dump !== "") {
    writeFileSync(`${dump}-${tag}-${kind}.log`, logText);
    writeFileSync(`${dump}-${tag}-${kind}.steps.json`, JSON.stringify(run.steps, null, 1));
  }
  return { run, log: readAuditLog(s.auditFile), logText, output: s.output() };
}

/** The first record of `type` for `operation` on `path`, or a failure naming what was looked for. */
function record(log: Json[], type: string, operation: string, path: string): Json {
  const r = log.find(
    (x) => x.type === type && x.request?.operation === operation && x.request?.path === path,
  );
  if (r === undefined)
    throw new Error(
      `no ${type} record for ${operation} ${path}; the log has:\n${log.map(summary).join("\n")}`,
    );
  return r;
}

function report(lines: string[], limit = 150): string {
  return lines.length <= limit
    ? lines.join("\n")
    : `${lines.slice(0, limit).join("\n")}\n… ${lines.length - limit} more`;
}

const HMAC = /^hmac-sha256:[0-9a-f]{64}$/;

// The comparison itself, on records OpenBao 2.6.2 wrote (no server needed): it must see each kind
// of difference it is there to report.
describe("audit log comparison", () => {
  const fixture = join(SERVER_DIR, "../../packages/vault/src/audit/fixtures/openbao-2.6.2/default.log");
  const base = readAuditLog(fixture);
  const copy = (): Json[] => structuredClone(base);

  it("finds nothing between a log and itself, and compares every record", () => {
    const c = compareAuditLogs(base, copy());
    expect(c.diffs).toEqual([]);
    expect(c.valueDiffs).toEqual([]);
    expect(c.records).toBe(base.length);
    expect(c.keyPaths).toBeGreaterThan(base.length * 10);
  });

  it("names a missing key, an extra key, a type change, a key order change and a value change", () => {
    const other = copy();
    delete other[1].request.mount_accessor;
    other[2].auth.extra = 1;
    other[3].auth.policies = "root";
    const { time, type, ...rest } = other[4];
    other[4] = { type, time, ...rest };
    other[5].auth.display_name = "not-root";
    const c = compareAuditLogs(base, other);
    expect(c.diffs).toEqual([
      `#1/#1 ${summary(base[1])}: request: keys only in OpenBao: [mount_accessor]; only in Bulwark: []`,
      `#2/#2 ${summary(base[2])}: auth: keys only in OpenBao: []; only in Bulwark: [extra]`,
      `#3/#3 ${summary(base[3])}: auth.policies: JSON type: OpenBao array, Bulwark string`,
      `#4/#4 ${summary(base[4])}: (top level): key order: OpenBao [time, type, auth, request], Bulwark [type, time, auth, request]`,
    ]);
    expect(c.valueDiffs).toEqual([
      `#5/#5 ${summary(base[5])}: auth.display_name: OpenBao "root", Bulwark "not-root"`,
    ]);
  });

  it("the plaintext scan names what it found and where, never the value", () => {
    const hits = plaintextHits('{"a":"x"}\n{"b":"the-secret-value"}\n', {
      "a secret": "the-secret-value",
      "an absent one": "not-there-at-all",
    });
    expect(hits).toEqual(["a secret in plaintext at line 2"]);
  });

  it("names a record only one side wrote, and still pairs the rest", () => {
    const other = copy();
    const [dropped] = other.splice(6, 1);
    other.push({ ...structuredClone(base[0]), request: { ...base[0].request, path: "sys/extra" } });
    const c = compareAuditLogs(base, other);
    expect(c.diffs).toEqual([
      `record only in OpenBao's log: #6 ${summary(dropped)}`,
      `record only in Bulwark's log: #${base.length - 1} ${summary(other[other.length - 1])}`,
    ]);
    expect(c.records).toBe(base.length - 1);
  });
});

describe.skipIf(missing !== undefined)("audit: one request sequence, OpenBao 2.6.2 and Bulwark", () => {
  for (const v of VARIANTS) {
    it(`${v.title}: same records, key sets, audit-hash, no plaintext`, async () => {
      const mode = v.tag;
      const accessorsRaw = v.options.hmac_accessor === "false";
      // One at a time: two servers and their storage fsyncs on 2 shared cores.
      const bao = await side("openbao", v);
      const bw = await side("bulwark", v);

      // The servers answered what the sequence expects (a differing answer would explain a
      // differing record, and is reported first).
      expect.soft([...bao.run.statusProblems, ...bw.run.statusProblems]).toEqual([]);

      // 1. Same records in the same order, same key sets at every level.
      const cmp = compareAuditLogs(bao.log, bw.log, (r) => r?.request?.path === POLL_PATH);
      console.log(
        `audit differential (${mode}): OpenBao ${bao.log.length} records, Bulwark ${bw.log.length}; ` +
          `${cmp.records} record pairs compared, ${cmp.keyPaths} key paths compared, ${cmp.diffs.length} differences; ` +
          `${cmp.values} values compared, ${cmp.valueDiffs.length} differ`,
      );
      expect(cmp.records).toBeGreaterThan(60);
      expect.soft(cmp.diffs, `audit logs differ (${mode}):\n${report(cmp.diffs)}`).toEqual([]);
      // The values the same sequence must give the same on both servers (helpers/audit-compare.ts:
      // everything but HMACs, times, ids, ports, accessors, running versions and TTLs): error texts,
      // policies, token types, mount types and classes, client ids, numbers and booleans in data.
      expect.soft(cmp.valueDiffs, `audit values differ (${mode}):\n${report(cmp.valueDiffs)}`).toEqual([]);

      // 2. sys/audit-hash equals the HMAC where the log carries the value, on both servers.
      for (const [who, s] of [
        ["OpenBao", bao],
        ["Bulwark", bw],
      ] as const) {
        const { run, log } = s;
        expect.soft(run.hashOfPassword, `${who}: audit-hash of the password`).toMatch(HMAC);
        expect.soft(run.hashOfChild, `${who}: audit-hash of the child token`).toMatch(HMAC);
        const write = record(log, "request", "update", "secret/data/app");
        expect
          .soft(write.request?.data?.data?.password, `${who}: KV write request.data.data.password`)
          .toBe(run.hashOfPassword);
        const read = record(log, "response", "read", "secret/data/app");
        expect
          .soft(read.response?.data?.data?.password, `${who}: KV read response.data.data.password`)
          .toBe(run.hashOfPassword);
        const created = record(log, "response", "update", "auth/token/create");
        expect
          .soft(created.response?.auth?.client_token, `${who}: token create response.auth.client_token`)
          .toBe(run.hashOfChild);
        const self = record(log, "request", "read", "auth/token/lookup-self");
        expect
          .soft(self.auth?.client_token, `${who}: lookup-self as child auth.client_token`)
          .toBe(run.hashOfChild);
        expect
          .soft(self.request?.client_token, `${who}: lookup-self as child request.client_token`)
          .toBe(run.hashOfChild);
      }

      // 3. No plaintext: every value is real (non-empty), and none is in Bulwark's audit log or
      // server output; OpenBao's audit log is the reference and must be clean as well.
      // The decoded generate-root token is a real token (the OTP and encoding were understood).
      expect.soft(bw.run.generatedRoot, "Bulwark's generated root token").toMatch(/^s\.[A-Za-z0-9]{24}$/);
      expect.soft(bao.run.generatedRoot, "OpenBao's generated root token").toMatch(/^s\.[A-Za-z0-9]{24}$/);
      for (const [what, value] of Object.entries(bw.run.sensitive))
        expect.soft(value.length, `Bulwark's sequence got no ${what}`).toBeGreaterThanOrEqual(8);
      // With hmac_accessor=false the accessors are written as they are (OpenBao does so too): the
      // scan must find them there — proof that it sees what is in the log — and nothing else.
      const hidden = (sensitive: Record<string, string>) =>
        accessorsRaw
          ? Object.fromEntries(Object.entries(sensitive).filter(([what]) => !what.endsWith("accessor")))
          : sensitive;
      expect.soft(plaintextHits(bw.logText, hidden(bw.run.sensitive)), "Bulwark's audit log").toEqual([]);
      expect.soft(plaintextHits(bw.output, bw.run.sensitive), "Bulwark's server output").toEqual([]);
      expect
        .soft(plaintextHits(bao.logText, hidden(bao.run.sensitive)), "OpenBao's audit log (reference)")
        .toEqual([]);
      if (accessorsRaw)
        for (const [who, s] of [
          ["OpenBao", bao],
          ["Bulwark", bw],
        ] as const)
          expect
            .soft(
              plaintextHits(s.logText, { "child accessor": s.run.childAccessor }),
              `${who}: the child accessor as it is, with hmac_accessor=false`,
            )
            .toEqual([expect.stringMatching(/^child accessor in plaintext at line \d+$/)]);

      // elide_list_responses: a list response's keys are written as their count (OpenBao's
      // ElideListResponses); otherwise as the hashed list.
      for (const [who, s] of [
        ["OpenBao", bao],
        ["Bulwark", bw],
      ] as const) {
        const listed = record(s.log, "response", "list", "secret/metadata/").response?.data?.keys;
        if (v.options.elide_list_responses === "true")
          expect.soft(listed, `${who}: elided KV v2 list`).toBe(1);
        else expect.soft(listed, `${who}: KV v2 list keys`).toEqual([expect.stringMatching(HMAC)]);
      }
    });
  }
});

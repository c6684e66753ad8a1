/**
 * Audit devices, differential (issue 15): the same request sequence (helpers/audit-sequence.ts:
 * KV v2 write/read/list/missing/metadata/patch/delete/undelete/destroy, policy write/read, a child
 * token and requests with it, lookup-self, no token, a bogus token, a denied write, sys/mounts,
 * sys/audit, sys/audit-hash, sys/internal/ui/mounts with and without a token, a 400, a path with
 * no mount, a KV v1 mount, the unauthenticated generate-root attempt/update, sys/seal) against a
 * real OpenBao 2.6.2 and `bulwark server`, each with a file audit device — enabled through the API
 * (`unsafe_allow_api_audit_creation = true`) in one run, declared in the config in the other —
 * then:
 * - the two logs hold the same records (type, operation, path) in the same order, with the same
 *   key set at every nesting level and the same JSON type at every common key
 *   (helpers/audit-compare.ts; values differ by nature and are not compared);
 * - `sys/audit-hash/file` of the password written and of the child token equals the HMAC at the
 *   place the log carries it, on both servers (the same method);
 * - no secret value, token, accessor (hmac_accessor is on by default), unseal share, generate-root
 *   OTP, encoded token or generated root token appears in Bulwark's audit log or server output
 *   (nor in OpenBao's audit log: the reference for what the scan expects).
 *
 * The binary is installed by tooling/services/install.sh; without it the suite is skipped locally
 * and fails under CI=true.
 */
import { readFileSync, writeFileSync } from "node:fs";
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
import { serviceGate, tempDir } from "./helpers/server-process.js";

// Two server starts and ~40 requests per test on a loaded 2-core machine.
vi.setConfig({ testTimeout: 240_000, hookTimeout: 60_000 });

const missing = serviceGate("audit differential suite", BAO, "the bao binary");

interface Side {
  run: SequenceRun;
  log: Json[];
  logText: string;
  output: string;
}

/** Starts `kind`, sends the sequence, stops it however the sequence ends; its log and output. */
async function side(kind: Kind, mode: AuditMode): Promise<Side> {
  const s: AuditServer = await startAuditServer(kind, tempDir(`audit-${kind}`), mode);
  let run: SequenceRun;
  try {
    run = await runSequence(s, mode, newSecrets());
  } catch (err) {
    const tail = s.output().split("\n").slice(-40).join("\n");
    throw new Error(`${kind}: ${(err as Error).message}\n--- last lines of the ${kind} log ---\n${tail}`);
  } finally {
    await s.stop();
  }
  const logText = readFileSync(s.auditFile, "utf8");
  // AUDIT_DIFF_DUMP=<prefix>: both logs and the answers are kept as <prefix>-<mode>-<kind>.* (debugging).
  const dump = process.env.AUDIT_DIFF_DUMP;
  if (dump !== undefined && dump !== "") {
    writeFileSync(`${dump}-${mode}-${kind}.log`, logText);
    writeFileSync(`${dump}-${mode}-${kind}.steps.json`, JSON.stringify(run.steps, null, 1));
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

describe.skipIf(missing !== undefined)("audit: one request sequence, OpenBao 2.6.2 and Bulwark", () => {
  for (const mode of ["api", "config"] as const) {
    it(`device ${mode === "api" ? "enabled through sys/audit" : "declared in the config"}: same records, key sets, audit-hash, no plaintext`, async () => {
      // One at a time: two servers and their storage fsyncs on 2 shared cores.
      const bao = await side("openbao", mode);
      const bw = await side("bulwark", mode);

      // The servers answered what the sequence expects (a differing answer would explain a
      // differing record, and is reported first).
      expect([...bao.run.statusProblems, ...bw.run.statusProblems]).toEqual([]);

      // 1. Same records in the same order, same key sets at every level.
      const cmp = compareAuditLogs(bao.log, bw.log, (r) => r?.request?.path === POLL_PATH);
      console.log(
        `audit differential (${mode}): OpenBao ${bao.log.length} records, Bulwark ${bw.log.length}; ` +
          `${cmp.records} record pairs compared, ${cmp.keyPaths} key paths compared, ${cmp.diffs.length} differences`,
      );
      expect(cmp.records).toBeGreaterThan(60);
      expect(cmp.diffs, `audit logs differ (${mode}):\n${report(cmp.diffs)}`).toEqual([]);

      // 2. sys/audit-hash equals the HMAC where the log carries the value, on both servers.
      for (const [who, s] of [
        ["OpenBao", bao],
        ["Bulwark", bw],
      ] as const) {
        const { run, log } = s;
        expect(run.hashOfPassword, `${who}: audit-hash of the password`).toMatch(HMAC);
        expect(run.hashOfChild, `${who}: audit-hash of the child token`).toMatch(HMAC);
        const write = record(log, "request", "update", "secret/data/app");
        expect(write.request?.data?.data?.password, `${who}: KV write request.data.data.password`).toBe(
          run.hashOfPassword,
        );
        const read = record(log, "response", "read", "secret/data/app");
        expect(read.response?.data?.data?.password, `${who}: KV read response.data.data.password`).toBe(
          run.hashOfPassword,
        );
        const created = record(log, "response", "update", "auth/token/create");
        expect(created.response?.auth?.client_token, `${who}: token create response.auth.client_token`).toBe(
          run.hashOfChild,
        );
        const self = record(log, "request", "read", "auth/token/lookup-self");
        expect(self.auth?.client_token, `${who}: lookup-self as child auth.client_token`).toBe(
          run.hashOfChild,
        );
        expect(self.request?.client_token, `${who}: lookup-self as child request.client_token`).toBe(
          run.hashOfChild,
        );
      }

      // 3. No plaintext: every value is real (non-empty), and none is in Bulwark's audit log or
      // server output; OpenBao's audit log is the reference and must be clean as well.
      for (const [what, v] of Object.entries(bw.run.sensitive))
        expect(v.length, `Bulwark's sequence got no ${what}`).toBeGreaterThanOrEqual(8);
      expect(plaintextHits(bw.logText, bw.run.sensitive), "Bulwark's audit log").toEqual([]);
      expect(plaintextHits(bw.output, bw.run.sensitive), "Bulwark's server output").toEqual([]);
      expect(plaintextHits(bao.logText, bao.run.sensitive), "OpenBao's audit log (reference)").toEqual([]);
    });
  }
});

/**
 * Self-test of the harness's lifecycle and arithmetic (no suite, no service):
 * `node --import tsx tooling/bench/src/harness.selftest.ts` exits non-zero on a failed check.
 */
import assert from "node:assert/strict";
import { compare, type Subject } from "./harness.js";

const checks: [string, () => Promise<void>][] = [];
const check = (name: string, fn: () => Promise<void>) => checks.push([name, fn]);

check("a side set up is torn down when the other side's setup fails", async () => {
  const log: string[] = [];
  const ours: Subject = {
    name: "ours",
    op: () => {},
    setup: async () => void log.push("ours setup"),
    teardown: async () => void log.push("ours teardown"),
  };
  const baseline: Subject = {
    name: "baseline",
    op: () => {},
    setup: async () => {
      throw new Error("baseline failed to start");
    },
  };
  await assert.rejects(
    compare({ name: "x", ours, baseline, ops: 10, rounds: 1 }),
    /baseline failed to start/,
  );
  assert.deepEqual(log, ["ours setup", "ours teardown"]);
});

check("a failing teardown does not skip the other side's teardown", async () => {
  const log: string[] = [];
  const ours: Subject = {
    name: "ours",
    op: () => {},
    teardown: async () => {
      throw new Error("ours teardown failed");
    },
  };
  const baseline: Subject = {
    name: "baseline",
    op: () => {},
    teardown: async () => void log.push("baseline teardown"),
  };
  await assert.rejects(compare({ name: "x", ours, baseline, ops: 10, rounds: 1 }), /ours teardown failed/);
  assert.deepEqual(log, ["baseline teardown"]);
});

check("ratio is ours/baseline of the median ops/s, rounds alternate the order", async () => {
  const order: string[] = [];
  const fixed = (name: string, values: number[]): Subject => {
    let n = 0;
    return {
      name,
      op: () => {},
      measure: async () => {
        order.push(name);
        // The first call is the warm-up.
        const v = n === 0 ? 1 : (values[n - 1] as number);
        n++;
        return { opsPerSec: v, p50Us: 1, p99Us: 1 };
      },
    };
  };
  const r = await compare({
    name: "x",
    ours: fixed("o", [100, 300, 200]),
    baseline: fixed("b", [50, 400, 100]),
    ops: 10,
    rounds: 3,
  });
  assert.equal(r.ours.opsPerSec, 200);
  assert.equal(r.baseline.opsPerSec, 100);
  assert.equal(r.ratio, 2);
  // Each round's pair: ours and the baseline measured back to back in that round.
  assert.deepEqual(r.roundRatios, [2, 0.75, 2]);
  assert.deepEqual(order, ["o", "b", "o", "b", "b", "o", "o", "b"]);
});

check("CPU per op: median per side, ratio baseline/ours only when both sides report it", async () => {
  const side = (name: string, cpu: number[] | undefined): Subject => {
    let n = 0;
    return {
      name,
      op: () => {},
      measure: async () => {
        const c = cpu?.[n++ % cpu.length];
        return { opsPerSec: 1, p50Us: 1, p99Us: 1, ...(c === undefined ? {} : { cpuUsPerOp: c }) };
      },
    };
  };
  // Warm-up first, then three rounds: medians 20 (ours) and 40 (baseline).
  const r = await compare({
    name: "x",
    ours: side("o", [99, 10, 20, 30]),
    baseline: side("b", [99, 40, 50, 30]),
    ops: 10,
    rounds: 3,
  });
  assert.equal(r.ours.cpuUsPerOp, 20);
  assert.equal(r.baseline.cpuUsPerOp, 40);
  assert.equal(r.cpuRatio, 2);
  const none = await compare({
    name: "x",
    ours: side("o", [1]),
    baseline: side("b", undefined),
    ops: 10,
    rounds: 1,
  });
  assert.equal(none.cpuRatio, undefined);
});

let failed = 0;
for (const [name, fn] of checks) {
  try {
    await fn();
    console.log(`ok   ${name}`);
  } catch (e) {
    failed++;
    console.log(`FAIL ${name}: ${(e as Error).message}`);
  }
}
console.log(`${failed} self-test check(s) failed`);
process.exitCode = failed === 0 ? 0 : 1;

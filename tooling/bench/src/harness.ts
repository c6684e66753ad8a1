import { mkdirSync, writeFileSync } from "node:fs";
import { cpus, totalmem } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";

/** One round's figures from a custom measurement (see `Subject.measure`). */
export interface Measurement {
  opsPerSec: number;
  p50Us: number;
  p99Us: number;
  /** RSS of the process under test (e.g. a server child); default: this process's RSS. */
  rssMiB?: number;
  /**
   * CPU time (user + system, all threads) the process under test spent per operation, when the
   * subject can tell (a server child's /proc stat). Steadier than ops/s when other processes
   * share the cores: it does not count the time the process waited for one.
   */
  cpuUsPerOp?: number;
  /** Requests the round really sent and had answered, when the subject counts them (HTTP load). */
  requests?: number;
}

/** One measured side of a comparison: an async operation run `concurrency` at a time. */
export interface Subject {
  name: string;
  op: () => Promise<void> | void;
  concurrency?: number;
  setup?: () => Promise<void>;
  teardown?: () => Promise<void>;
  /**
   * Optional: measures a round itself instead of timing `op` (e.g. an HTTP load generator such
   * as autocannon against a server process). Runs `ops` operations and reports the figures.
   */
  measure?: (ops: number) => Promise<Measurement>;
}

export interface Comparison {
  /** Row name, e.g. "barrier encrypt+decrypt 1 KiB". */
  name: string;
  ours: Subject;
  baseline: Subject;
  /** The target ratio ours/baseline (ops/s), if the project set one. */
  target?: number;
  /** Operations per measured round (per side). */
  ops: number;
  rounds?: number;
}

export interface SideResult {
  name: string;
  opsPerSec: number;
  p50Us: number;
  p99Us: number;
  rssMiB: number;
  /** Median CPU µs per operation, when every round of the side reported one. */
  cpuUsPerOp?: number;
}

export interface ComparisonResult {
  name: string;
  ours: SideResult;
  baseline: SideResult;
  ratio: number;
  target: number | undefined;
  met: boolean | undefined;
  rounds: number;
  /**
   * ours/baseline ops/s of each round pair (the two sides measured back to back): their spread
   * shows how much the machine's noise moved the ratio in this run.
   */
  roundRatios: number[];
  /** baseline/ours CPU per operation (higher is better, like `ratio`), when both sides report it. */
  cpuRatio?: number;
}

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return 0;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1));
  return sorted[i] as number;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
}

/** Runs `ops` operations with the subject's concurrency; returns ops/s and per-op latencies. */
async function round(subject: Subject, ops: number): Promise<{ opsPerSec: number; lat: Float64Array }> {
  const lat = new Float64Array(ops);
  const concurrency = subject.concurrency ?? 1;
  let next = 0;
  const worker = async () => {
    for (;;) {
      const i = next++;
      if (i >= ops) return;
      const t0 = performance.now();
      await subject.op();
      lat[i] = (performance.now() - t0) * 1000;
    }
  };
  const start = performance.now();
  await Promise.all(Array.from({ length: concurrency }, worker));
  const seconds = (performance.now() - start) / 1000;
  lat.sort();
  return { opsPerSec: ops / seconds, lat };
}

/** One round of `subject`: its own `measure` hook, or `op` timed here. */
async function measureRound(subject: Subject, ops: number): Promise<Measurement> {
  if (subject.measure !== undefined) return subject.measure(ops);
  const res = await round(subject, ops);
  return { opsPerSec: res.opsPerSec, p50Us: percentile(res.lat, 0.5), p99Us: percentile(res.lat, 0.99) };
}

/**
 * Measures ours and the baseline in alternating rounds of the same process (so both see the same
 * machine noise) and reports the median of each; the ratio is median(ours)/median(baseline).
 */
export async function compare(c: Comparison): Promise<ComparisonResult> {
  const sides = [c.ours, c.baseline];
  // Every side whose setup started is torn down, also when the other side's setup fails (a server
  // child started by the first would otherwise outlive the run).
  const started: Subject[] = [];
  let outcome: { result: ComparisonResult } | { error: unknown };
  try {
    for (const s of sides) {
      started.push(s);
      await s.setup?.();
    }
    outcome = { result: await measureSides(c, sides) };
  } catch (error) {
    outcome = { error };
  }
  // Each teardown runs even when an earlier one throws. A failed run's error wins over a
  // teardown's; otherwise the first teardown error is raised after all ran.
  const errors: unknown[] = [];
  for (const s of started) {
    try {
      await s.teardown?.();
    } catch (e) {
      errors.push(e);
    }
  }
  if ("error" in outcome) throw outcome.error;
  if (errors.length > 0) throw errors[0];
  return outcome.result;
}

async function measureSides(c: Comparison, sides: Subject[]): Promise<ComparisonResult> {
  const rounds = c.rounds ?? 7;
  // Warm-up: JIT, caches, file system.
  for (const s of sides) await measureRound(s, Math.max(10, Math.floor(c.ops / 5)));
  const samples = sides.map(() => ({
    ops: [] as number[],
    p50: [] as number[],
    p99: [] as number[],
    rss: [] as number[],
    cpu: [] as number[],
  }));
  for (let r = 0; r < rounds; r++) {
    // Alternate the order each round so neither side always runs on a warmer machine.
    const order = r % 2 === 0 ? [0, 1] : [1, 0];
    for (const i of order) {
      (globalThis as { gc?: () => void }).gc?.();
      const res = await measureRound(sides[i] as Subject, c.ops);
      const s = samples[i] as (typeof samples)[number];
      s.ops.push(res.opsPerSec);
      s.p50.push(res.p50Us);
      s.p99.push(res.p99Us);
      s.rss.push(res.rssMiB ?? process.memoryUsage().rss / 1024 / 1024);
      if (res.cpuUsPerOp !== undefined) s.cpu.push(res.cpuUsPerOp);
    }
  }
  const out = samples.map((s, i) => {
    const side: SideResult = {
      name: (sides[i] as Subject).name,
      opsPerSec: median(s.ops),
      p50Us: median(s.p50),
      p99Us: median(s.p99),
      rssMiB: median(s.rss),
    };
    if (s.cpu.length === rounds) side.cpuUsPerOp = median(s.cpu);
    return side;
  });
  const [ours, baseline] = out as [SideResult, SideResult];
  const ratio = ours.opsPerSec / baseline.opsPerSec;
  const [o, b] = samples as [(typeof samples)[number], (typeof samples)[number]];
  const roundRatios = o.ops.map((v, r) => v / (b.ops[r] as number));
  const result: ComparisonResult = {
    name: c.name,
    ours,
    baseline,
    ratio,
    target: c.target,
    met: c.target === undefined ? undefined : ratio >= c.target,
    rounds,
    roundRatios,
  };
  if (ours.cpuUsPerOp !== undefined && baseline.cpuUsPerOp !== undefined)
    result.cpuRatio = baseline.cpuUsPerOp / ours.cpuUsPerOp;
  return result;
}

const fmt = (n: number, d = 0) =>
  n.toLocaleString("en-US", { maximumFractionDigits: d, minimumFractionDigits: d });

export function printTable(results: ComparisonResult[]): void {
  const rows = results.map((r) => [
    r.name,
    `${fmt(r.ours.opsPerSec)}`,
    `${fmt(r.baseline.opsPerSec)}`,
    `${fmt(r.ratio, 2)}×`,
    r.target === undefined ? "—" : `≥ ${r.target}× ${r.met ? "met" : "MISSED"}`,
    `${fmt(r.ours.p50Us, 1)} / ${fmt(r.ours.p99Us, 1)}`,
    `${fmt(r.baseline.p50Us, 1)} / ${fmt(r.baseline.p99Us, 1)}`,
    fmt(r.ours.rssMiB),
    r.cpuRatio === undefined
      ? "—"
      : `${fmt(r.ours.cpuUsPerOp ?? 0)} / ${fmt(r.baseline.cpuUsPerOp ?? 0)} → ${fmt(r.cpuRatio, 2)}×`,
  ]);
  const head = [
    "benchmark",
    "ours ops/s",
    "baseline ops/s",
    "ratio",
    "target",
    "ours p50/p99 µs",
    "base p50/p99 µs",
    "RSS MiB",
    "CPU µs/op ours / base → ratio",
  ];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] as string).length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i] as number)).join(" | ");
  console.log(line(head));
  console.log(widths.map((w) => "-".repeat(w)).join("-|-"));
  for (const r of rows) console.log(line(r));
}

export function machine(): Record<string, unknown> {
  return {
    node: process.version,
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model,
    memGiB: Math.round(totalmem() / 2 ** 30),
    platform: process.platform,
  };
}

export function writeResults(dir: string, results: ComparisonResult[]): string {
  mkdirSync(dir, { recursive: true });
  const stamp = new Date().toISOString().replace(/[:.]/g, "-");
  const body = JSON.stringify({ date: new Date().toISOString(), machine: machine(), results }, null, 2);
  const file = join(dir, `bench-${stamp}.json`);
  writeFileSync(file, body);
  writeFileSync(join(dir, "latest.json"), body);
  return file;
}

import { readdirSync } from "node:fs";
import { resolve } from "node:path";
import {
  type Comparison,
  type ComparisonResult,
  compare,
  machine,
  printTable,
  writeResults,
} from "./harness.js";

/**
 * Every file in suites/ exports `suite(): Promise<Comparison[]>`: comparisons of ours against a
 * baseline measured in the same run. Named by file; loaded lazily so one suite runs without the
 * others' services (`pnpm bench barrier`).
 */
const suiteDir = resolve(import.meta.dirname, "suites");
const suites: Record<string, () => Promise<Comparison[]>> = Object.fromEntries(
  readdirSync(suiteDir)
    .filter((f) => /\.ts$/.test(f))
    .sort()
    .map((f) => [
      f.replace(/\.ts$/, ""),
      async () => ((await import(resolve(suiteDir, f))) as { suite: () => Promise<Comparison[]> }).suite(),
    ]),
);

async function main(): Promise<void> {
  const only = process.argv.slice(2).filter((a) => !a.startsWith("-"));
  // A misspelt suite name ran nothing, exited 0 and overwrote bench-results/latest.json with no rows.
  const unknown = only.filter((n) => !(n in suites));
  if (unknown.length > 0) {
    console.error(`unknown bench suite(s): ${unknown.join(", ")}; suites: ${Object.keys(suites).join(", ")}`);
    process.exitCode = 2;
    return;
  }
  const results: ComparisonResult[] = [];
  console.log(`machine: ${JSON.stringify(machine())}`);
  for (const [name, suite] of Object.entries(suites)) {
    if (only.length > 0 && !only.includes(name)) continue;
    for (const c of await suite()) {
      const r = await compare(c);
      const spread =
        r.roundRatios.length > 1
          ? ` (rounds ${Math.min(...r.roundRatios).toFixed(2)}–${Math.max(...r.roundRatios).toFixed(2)}×)`
          : "";
      const cpu = r.cpuRatio === undefined ? "" : `; CPU per op ${r.cpuRatio.toFixed(2)}×`;
      console.log(`  ${r.name}: ${r.ratio.toFixed(2)}×${spread}${cpu}`);
      results.push(r);
    }
  }
  console.log("");
  printTable(results);
  const file = writeResults(resolve(import.meta.dirname, "../../../bench-results"), results);
  console.log(`\nresults: ${file}`);
}

await main();

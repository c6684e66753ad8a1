import { resolve } from "node:path";
import { type Comparison, type ComparisonResult, compare, machine, printTable, writeResults } from "./harness.js";

// Each suite returns comparisons of ours against a baseline measured in the same run. Loaded
// lazily so one suite runs without the others' packages.
const suites: Record<string, () => Promise<Comparison[]>> = {
  barrier: async () => (await import("./suites/barrier.js")).barrierSuite(),
  file: async () => (await import("./suites/file.js")).fileSuite(),
};

async function main(): Promise<void> {
  const only = process.argv.slice(2).filter((a) => !a.startsWith("-"));
  const results: ComparisonResult[] = [];
  console.log(`machine: ${JSON.stringify(machine())}`);
  for (const [name, suite] of Object.entries(suites)) {
    if (only.length > 0 && !only.includes(name)) continue;
    for (const c of await suite()) {
      const r = await compare(c);
      console.log(`  ${r.name}: ${r.ratio.toFixed(2)}×`);
      results.push(r);
    }
  }
  console.log("");
  printTable(results);
  const file = writeResults(resolve(import.meta.dirname, "../../../bench-results"), results);
  console.log(`\nresults: ${file}`);
}

await main();

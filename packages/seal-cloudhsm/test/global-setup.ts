/**
 * Builds cloudhsm-sim once per test run (tooling/cloudhsm-sim/build.sh; a no-op when it is up to
 * date), so `pnpm test` on a fresh machine needs nothing but gcc, make and SoftHSM. In CI a failed
 * build fails the run; locally the sim suites then skip with the reason.
 */
import { buildSim } from "./sim.js";

export default function setup(): void {
  const { ok, output } = buildSim();
  if (ok) return;
  const message = `cloudhsm-sim build failed (tooling/cloudhsm-sim/build.sh):\n${output}`;
  if (process.env.CI === "true") throw new Error(message);
  console.warn(message);
}

import { describe } from "vitest";
import { consulAvailability } from "./consul-agent.js";

const availability = consulAvailability();

/**
 * `describe` for suites that need the Consul binary: skipped with a one-line reason when it is
 * missing locally, but a failure under CI (`CI=true`), where a missing service must not pass.
 */
export const describeConsul: typeof describe = (() => {
  if (availability.available) return describe;
  if (process.env.CI === "true") {
    throw new Error(`CI=true and ${availability.reason}`);
  }
  console.warn(`[storage-consul] skipping Consul suites: ${availability.reason}`);
  return describe.skip as unknown as typeof describe;
})();

export const consulAvailable = availability.available;

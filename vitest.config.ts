import { defineConfig } from "vitest/config";

// .ci/run sets BULWARK_TEST_JSON to a file path so it can print the `N passed, N failed` line CI reads.
const jsonReport = process.env.BULWARK_TEST_JSON;

export default defineConfig({
  test: {
    projects: ["packages/*", "apps/*", "examples/seal-plugin", "tooling/metrics"],
    // Last resort against leftover test processes: kills, after the run, every process group a test
    // worker started and could not stop itself (a worker killed outright). See
    // packages/core/test/support/processes.ts.
    globalSetup: ["packages/core/test/support/global-setup.ts"],
    ...(jsonReport ? { reporters: ["default", "json"], outputFile: { json: jsonReport } } : {}),
  },
});

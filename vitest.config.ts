import { defineConfig } from "vitest/config";

// .ci/run sets BULWARK_TEST_JSON to a file path so it can print the `N passed, N failed` line CI reads.
const jsonReport = process.env.BULWARK_TEST_JSON;

export default defineConfig({
  test: {
    projects: ["packages/*", "apps/*"],
    ...(jsonReport ? { reporters: ["default", "json"], outputFile: { json: jsonReport } } : {}),
  },
});

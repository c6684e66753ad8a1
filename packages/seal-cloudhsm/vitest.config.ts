import { defineProject } from "vitest/config";

export default defineProject({
  test: {
    name: "seal-cloudhsm",
    include: ["src/**/*.test.ts", "test/**/*.test.ts"],
    // Builds tooling/cloudhsm-sim (the emulated CloudHSM PKCS#11 library) before any test file runs.
    globalSetup: ["test/global-setup.ts"],
    testTimeout: 30_000,
  },
});

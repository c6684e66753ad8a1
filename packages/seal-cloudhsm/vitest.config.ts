import { defineProject } from "vitest/config";

export default defineProject({
  test: {
    name: "seal-cloudhsm",
    include: ["src/**/*.test.ts", "test/**/*.test.ts"],
    // Builds tooling/cloudhsm-sim (the emulated CloudHSM PKCS#11 library) before any test file runs.
    globalSetup: ["test/global-setup.ts"],
    // SoftHSM under the sim, child processes and the C tests: generous on a loaded 2-core machine.
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Tests that start processes stop them after each test, timeouts included
    // (packages/core/test/support/processes.ts).
    setupFiles: ["../core/test/support/vitest-setup.ts"],
  },
});

import { defineProject } from "vitest/config";

export default defineProject({
  test: {
    name: "seal-awskms",
    include: ["src/**/*.test.ts", "test/**/*.test.ts"],
    // The emulator, fault-proxy and cross-process tests wait on real timeouts and child processes;
    // on a loaded 2-core machine (every package's suite runs at once) 5 s is too tight.
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Tests that start processes stop them after each test, timeouts included
    // (packages/core/test/support/processes.ts).
    setupFiles: ["../core/test/support/vitest-setup.ts"],
  },
});

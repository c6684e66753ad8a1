import { defineProject } from "vitest/config";

export default defineProject({
  test: {
    name: "storage-consul",
    include: ["src/**/*.test.ts", "test/**/*.test.ts"],
    // Real Consul agents: elections, restarts and lock hand-overs take seconds, more on a loaded
    // 2-core machine; a 3-server cluster's start in a hook takes longer still.
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // Tests that start processes stop them after each test, timeouts included
    // (packages/core/test/support/processes.ts).
    setupFiles: ["../core/test/support/vitest-setup.ts"],
  },
});

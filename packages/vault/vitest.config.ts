import { defineProject } from "vitest/config";

export default defineProject({
  test: {
    name: "vault",
    include: ["src/**/*.test.ts", "test/**/*.test.ts"],
    // Tests that start processes stop them after each test, timeouts included
    // (packages/core/test/support/processes.ts).
    setupFiles: ["../core/test/support/vitest-setup.ts"],
  },
});

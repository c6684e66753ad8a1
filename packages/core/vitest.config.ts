import { defineProject } from "vitest/config";

export default defineProject({
  test: {
    name: "core",
    include: ["src/**/*.test.ts", "test/**/*.test.ts"],
    // Tests that start processes stop them after each test, timeouts included (test/support/processes.ts).
    setupFiles: ["test/support/vitest-setup.ts"],
  },
});

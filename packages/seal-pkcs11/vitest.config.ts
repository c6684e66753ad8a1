import { defineProject } from "vitest/config";

export default defineProject({
  test: {
    name: "seal-pkcs11",
    include: ["src/**/*.test.ts", "test/**/*.test.ts"],
    // Tests that start processes stop them after each test, timeouts included; those files set
    // their own generous timeouts (packages/core/test/support/processes.ts).
    setupFiles: ["../core/test/support/vitest-setup.ts"],
  },
});

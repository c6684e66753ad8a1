import { fileURLToPath } from "node:url";
import { defineProject } from "vitest/config";

export default defineProject({
  resolve: {
    // The tests' MemoryBackend (see tsconfig.json's paths).
    alias: {
      "@bulwark/storage-memory": fileURLToPath(new URL("../storage-memory/src/index.ts", import.meta.url)),
    },
  },
  test: {
    name: "vault",
    include: ["src/**/*.test.ts", "test/**/*.test.ts"],
    // Tests that start processes stop them after each test, timeouts included
    // (packages/core/test/support/processes.ts).
    setupFiles: ["../core/test/support/vitest-setup.ts"],
  },
});

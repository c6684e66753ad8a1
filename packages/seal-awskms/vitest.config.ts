import { defineProject } from "vitest/config";

export default defineProject({
  test: {
    name: "seal-awskms",
    include: ["src/**/*.test.ts", "test/**/*.test.ts"],
    // The emulator, fault-proxy and cross-process tests wait on real timeouts and child processes;
    // on a loaded CI machine (every package's suite runs at once) 5 s is too tight.
    testTimeout: 30_000,
    hookTimeout: 30_000,
  },
});

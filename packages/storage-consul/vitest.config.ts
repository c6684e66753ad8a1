import { defineProject } from "vitest/config";

export default defineProject({
  test: {
    name: "storage-consul",
    include: ["src/**/*.test.ts", "test/**/*.test.ts"],
    // Real Consul agents: elections, restarts and lock hand-overs take seconds, more on a busy CI box.
    testTimeout: 30_000,
    hookTimeout: 90_000,
  },
});

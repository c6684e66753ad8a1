import { defineProject } from "vitest/config";

export default defineProject({
  test: {
    name: "storage-memory",
    include: ["src/**/*.test.ts", "test/**/*.test.ts"],
  },
});

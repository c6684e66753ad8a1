import { defineProject } from "vitest/config";

export default defineProject({
  test: {
    name: "barrier",
    include: ["src/**/*.test.ts", "test/**/*.test.ts"],
  },
});

import { defineProject } from "vitest/config";

export default defineProject({
  test: {
    name: "seal-cloudhsm",
    include: ["src/**/*.test.ts", "test/**/*.test.ts"],
  },
});

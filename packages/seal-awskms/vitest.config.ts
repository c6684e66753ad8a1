import { defineProject } from "vitest/config";

export default defineProject({
  test: {
    name: "seal-awskms",
    include: ["src/**/*.test.ts", "test/**/*.test.ts"],
  },
});

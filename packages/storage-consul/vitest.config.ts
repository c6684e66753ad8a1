import { defineProject } from "vitest/config";

export default defineProject({
  test: {
    name: "storage-consul",
    include: ["src/**/*.test.ts", "test/**/*.test.ts"],
  },
});

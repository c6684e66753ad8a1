import { defineProject } from "vitest/config";

export default defineProject({
  test: {
    name: "seal-plugin",
    include: ["test/**/*.test.ts"],
  },
});

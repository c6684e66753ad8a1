import { defineProject } from "vitest/config";

export default defineProject({
  test: {
    name: "unixgram",
    include: ["src/**/*.test.ts"],
  },
});

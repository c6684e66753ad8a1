import { defineProject } from "vitest/config";

export default defineProject({
  test: {
    name: "seal-pkcs11",
    include: ["src/**/*.test.ts", "test/**/*.test.ts"],
  },
});

import { defineProject } from "vitest/config";

const test = {
  name: "storage-file",
  include: ["src/**/*.test.ts", "test/**/*.test.ts"],
  // Temporary: runBackendConformance(…, { transactional: false }) in @bulwark/storage/testing still
  // registers an empty describe("transactions"), which vitest fails as "No test found in suite".
  // vitest types this option as root-only (hence not inline), but honours it per project.
  // Remove once the suite stops registering that block.
  passWithNoTests: true,
};

export default defineProject({ test });

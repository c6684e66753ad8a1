/**
 * The `bulwark` bin in a clone that was never built: a clear "run pnpm build" instead of Node's
 * raw ERR_MODULE_NOT_FOUND for ../dist/index.js.
 */
import { copyFileSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { runGroup } from "../../../packages/core/test/support/processes.js";
import { BIN, tempDir } from "./helpers/server-process.js";

describe("bin/bulwark.mjs", () => {
  it("says to run pnpm build when dist is missing, exit 1", async () => {
    const dir = tempDir("unbuilt");
    mkdirSync(join(dir, "bin"));
    copyFileSync(BIN, join(dir, "bin/bulwark.mjs"));
    const r = await runGroup(process.execPath, [join(dir, "bin/bulwark.mjs"), "status"], {
      timeoutMs: 30_000,
    });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("bulwark is not built yet");
    expect(r.stderr).toContain("pnpm build");
    expect(r.stderr).not.toContain("ERR_MODULE_NOT_FOUND");
  }, 60_000);
});

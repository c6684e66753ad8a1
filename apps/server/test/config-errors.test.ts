/**
 * End to end: `bulwark server -config <bad.hcl>` refuses a config with problems in several blocks,
 * naming every one of them (file:line:column, block, setting, fix) in one error, in file order,
 * and exits non-zero without a stack trace (issue 11: it used to stop at the first problem).
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { requireBuild, runBin } from "./cli-helpers.js";

/** A cold `node` start of the built CLI on a loaded 2-core machine takes seconds; runBin kills it after 60 s. */
const TEST_TIMEOUT_MS = 90_000;

let dir: string;
beforeAll(async () => {
  requireBuild();
  dir = await mkdtemp(join(tmpdir(), "bulwark-config-errors-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("bulwark server -config with many problems", () => {
  it(
    "exits 1 and prints every problem of every block at once, in file order, without a stack trace",
    async () => {
      const file = join(dir, "bad.hcl");
      await writeFile(
        file,
        [
          'storage "file" {', // 1
          `  pth = "${join(dir, "data")}"`, // 2
          "}", // 3
          'listner "tcp" {}', // 4
          'listener "tcp" {', // 5
          '  address     = "127.0.0.1:0"', // 6
          "  tls_disable = true", // 7
          '  max_request_size = "big"', // 8
          "}", // 9
          'seal "pkcs11" {', // 10
          '  lib       = "/usr/lib/softhsm/libsofthsm2.so"', // 11
          '  slot      = "abc"', // 12
          '  pin       = "1234"', // 13
          '  key_lable = "bulwark"', // 14
          "}", // 15
          'log_levle = "debug"', // 16
          "",
        ].join("\n"),
      );
      const res = await runBin(["server", "-config", file]);
      expect(res.code, res.stderr).toBe(1);
      const lines = res.stderr.trim().split("\n");
      expect(lines[0]).toBe("Error loading the configuration: 6 config problems:");
      expect(lines.slice(1).map((l) => l.trim())).toEqual([
        `${file}:2:3: storage "file": unknown setting \`pth\` — did you mean \`path\`?`,
        `${file}:4:1: unknown setting \`listner\` — did you mean \`listener\`?`,
        `${file}:8:22: \`max_request_size\` must be an integer, found string "big"`,
        expect.stringMatching(
          new RegExp(
            `^${file.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&")}:12:3: seal "pkcs11": \`slot\`: "abc" is not a slot id`,
          ),
        ),
        `${file}:14:3: seal "pkcs11": unknown setting \`key_lable\` — did you mean \`key_label\`?`,
        `${file}:16:1: unknown setting \`log_levle\` — did you mean \`log_level\`?`,
      ]);
      expect(res.stderr).not.toMatch(/^\s+at /m);
      expect(res.stdout).toBe("");
    },
    TEST_TIMEOUT_MS,
  );
});

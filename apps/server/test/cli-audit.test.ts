/**
 * `bulwark audit enable|disable|list`: the same arguments, output and exit codes as OpenBao
 * 2.6.2's `bao audit …` (captured from the real CLI against a real OpenBao: the strings below are
 * its output, with Bulwark's paths and addresses).
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { columns } from "../src/cli/commands/audit.js";
import { ConfigError } from "../src/config/errors.js";
import { type BulwarkServer, startServer } from "../src/main.js";
import { Capture, cli } from "./cli-helpers.js";

/** No server listens here: argument errors must be reported before any request. */
const NOWHERE = { BULWARK_ADDR: "http://127.0.0.1:9", BULWARK_TOKEN: "unused" };

describe("bulwark audit: arguments (bao's texts and exit codes, no request sent)", () => {
  it("enable without a type", async () => {
    expect(await cli(["audit", "enable"], { env: NOWHERE })).toEqual({
      code: 1,
      stdout: "",
      stderr:
        "Error enabling audit device: audit type missing. Valid types include 'file', 'socket' and 'syslog'.\n",
    });
  });

  it("enable with an option that is not key=value", async () => {
    expect(await cli(["audit", "enable", "file", "bad"], { env: NOWHERE })).toEqual({
      code: 1,
      stdout: "",
      stderr: 'Failed to parse K=V data: invalid key/value pair "bad": format must be key=value\n',
    });
  });

  it("disable without or with too many paths; list with an argument", async () => {
    expect(await cli(["audit", "disable"], { env: NOWHERE })).toEqual({
      code: 1,
      stdout: "",
      stderr: "Not enough arguments (expected 1, got 0)\n",
    });
    expect((await cli(["audit", "disable", "a", "b"], { env: NOWHERE })).stderr).toBe(
      "Too many arguments (expected 1, got 2)\n",
    );
    expect(await cli(["audit", "list", "extra"], { env: NOWHERE })).toEqual({
      code: 1,
      stdout: "",
      stderr: "Too many arguments (expected 0, got 1)\n",
    });
  });

  it("columns: bao's table layout (four spaces between columns, n/a for an empty cell, no trailing spaces)", () => {
    // `bao audit list -detailed` against OpenBao 2.6.2, byte for byte.
    expect(
      columns(
        ["Path", "Type", "Description", "Replication", "Options"],
        [
          ["a2/", "file", "my dev", "local", "file_path=/tmp/h4bao/b.log mode=0640"],
          ["cfg-one/", "file", "5", "replicated", "file_path=/tmp/h4bao/cfg.log mode=0600"],
          ["y/", "file", "", "replicated", "file_path=/tmp/h4bao/x.log"],
        ],
      ),
    ).toBe(
      [
        "Path        Type    Description    Replication    Options",
        "----        ----    -----------    -----------    -------",
        "a2/         file    my dev         local          file_path=/tmp/h4bao/b.log mode=0640",
        "cfg-one/    file    5              replicated     file_path=/tmp/h4bao/cfg.log mode=0600",
        "y/          file    n/a            replicated     file_path=/tmp/h4bao/x.log",
        "",
      ].join("\n"),
    );
  });
});

/** A dev server (in this process, real HTTP) started with a config file: `hcl` is its content. */
async function devServer(
  dir: string,
  hcl: string,
): Promise<{ server: BulwarkServer; env: Record<string, string> }> {
  const file = join(dir, `bulwark-${Math.random().toString(36).slice(2)}.hcl`);
  writeFileSync(file, hcl);
  const server = await startServer({
    dev: true,
    devListenAddress: "127.0.0.1:0",
    configPaths: [file],
    env: {},
    out: new Capture(),
    logDestination: new Capture(),
  });
  return { server, env: { BULWARK_ADDR: server.address, BULWARK_TOKEN: server.dev?.rootToken ?? "" } };
}

describe("bulwark audit against a Bulwark server", () => {
  let dir: string;
  let allowed: { server: BulwarkServer; env: Record<string, string> };
  let plain: { server: BulwarkServer; env: Record<string, string> };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "bulwark-cli-audit-"));
    allowed = await devServer(
      dir,
      `unsafe_allow_api_audit_creation = true
audit "file" "cfg-one" {
  description = 5
  options {
    file_path = "${join(dir, "cfg.log")}"
    mode      = 0600
  }
}
`,
    );
    plain = await devServer(dir, "ui = false\n");
  }, 60_000);

  afterAll(async () => {
    await allowed?.server.shutdown("tests done");
    await plain?.server.shutdown("tests done");
    rmSync(dir, { recursive: true, force: true });
  }, 60_000);

  it("enable, list (table, -detailed, -format=json), disable: bao's output", async () => {
    const { env } = allowed;
    const a = join(dir, "a.log");
    const b = join(dir, "b.log");
    expect(await cli(["audit", "enable", "file", `file_path=${a}`], { env })).toEqual({
      code: 0,
      stdout: "Success! Enabled the file audit device at: file/\n",
      stderr: "",
    });
    expect(
      await cli(
        [
          "audit",
          "enable",
          "-path=a2",
          "-description=my dev",
          "-local",
          "file",
          `file_path=${b}`,
          "mode=0640",
        ],
        {
          env,
        },
      ),
    ).toEqual({ code: 0, stdout: "Success! Enabled the file audit device at: a2/\n", stderr: "" });

    expect(await cli(["audit", "list"], { env })).toEqual({
      code: 0,
      stdout: [
        "Path        Type    Description",
        "----        ----    -----------",
        "a2/         file    my dev",
        "cfg-one/    file    5",
        "file/       file    n/a",
        "",
      ].join("\n"),
      stderr: "",
    });
    const detailed = await cli(["audit", "list", "-detailed"], { env });
    expect(detailed.code).toBe(0);
    expect(detailed.stdout.split("\n").map((l) => l.replace(/\s+/g, " "))).toEqual([
      "Path Type Description Replication Options",
      "---- ---- ----------- ----------- -------",
      `a2/ file my dev local file_path=${b} mode=0640`,
      `cfg-one/ file 5 replicated file_path=${join(dir, "cfg.log")} mode=0600`,
      `file/ file n/a replicated file_path=${a}`,
      "",
    ]);
    const asJson = JSON.parse((await cli(["audit", "list", "-format=json"], { env })).stdout);
    expect(Object.keys(asJson)).toEqual(["a2/", "cfg-one/", "file/"]);
    expect(asJson["a2/"]).toEqual({
      type: "file",
      description: "my dev",
      options: { file_path: b, mode: "0640" },
      local: true,
      path: "a2/",
    });
    // The CLI's own requests are in the devices' logs.
    expect(readFileSync(a, "utf8")).toContain('"path":"sys/audit"');

    const again = await cli(["audit", "enable", "file", `file_path=${a}`], { env });
    expect(again.code).toBe(2);
    expect(again.stderr).toMatch(
      new RegExp(
        `^Error enabling audit device: Error making API request\\.\\n\\nURL: PUT ${env.BULWARK_ADDR}/v1/sys/audit/file\\nCode: 400\\. Errors:\\n\\n\\* `,
      ),
    );

    expect(await cli(["audit", "disable", "a2"], { env })).toEqual({
      code: 0,
      stdout: "Success! Disabled audit device (if it was enabled) at: a2/\n",
      stderr: "",
    });
    expect((await cli(["audit", "disable", "/nothere/"], { env })).stdout).toBe(
      "Success! Disabled audit device (if it was enabled) at: nothere/\n",
    );
    const cfg = await cli(["audit", "disable", "cfg-one"], { env });
    expect(cfg.code).toBe(2);
    expect(cfg.stderr).toContain("Error disabling audit device: Error making API request.");
    expect(cfg.stderr).toContain("* cannot disable configuration-managed audit device");
    expect((await cli(["audit", "list"], { env })).stdout).not.toContain("a2/");
  });

  it("a config block the active node cannot set up stops the start: a config error at the block, naming it and the option", async () => {
    const err = await devServer(
      dir,
      'ui = false\naudit "file" "broken" {\n  options { mode = "0600" }\n}\n',
    ).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).problems[0]).toMatchObject({
      line: 2,
      column: 1,
      block: 'audit "file" "broken"',
    });
    expect((err as Error).message).toMatch(
      /\.hcl:2:1: audit "file" "broken": the audit device cannot be set up: .*file_path/,
    );
  });

  it("without unsafe_allow_api_audit_creation the server refuses, and no devices lists as bao does", async () => {
    const { env } = plain;
    const r = await cli(["audit", "enable", "file", "file_path=discard"], { env });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(
      "* cannot enable audit device via API; use declarative, config-based audit device management instead",
    );
    expect(await cli(["audit", "list"], { env })).toEqual({
      code: 2,
      stdout: "No audit devices are enabled.\n",
      stderr: "",
    });
    expect(await cli(["audit", "list", "-format=json"], { env })).toEqual({
      code: 0,
      stdout: "{}\n",
      stderr: "",
    });
  });
});

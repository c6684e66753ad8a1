/**
 * `bulwark audit enable|disable|list`: the same arguments, output and exit codes as OpenBao
 * 2.6.2's `bao audit …` (captured from the real CLI against a real OpenBao: the strings below are
 * its output, with Bulwark's paths and addresses).
 */
import { describe, expect, it } from "vitest";
import { columns } from "../src/cli/commands/audit.js";
import { cli } from "./cli-helpers.js";

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

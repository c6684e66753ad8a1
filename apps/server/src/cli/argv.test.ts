import { FALSE_WORDS, TRUE_WORDS } from "@bulwark/settings";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { normaliseArgs } from "./argv.js";
import { cell, formatDuration, keyList, parseFormat, table, UsageError } from "./output.js";

describe("normaliseArgs: Vault's single-dash flags for commander", () => {
  it("turns -name and -name=value into --name forms", () => {
    expect(normaliseArgs(["server", "-config", "a.hcl", "-config=b.hcl", "-dev"])).toEqual([
      "server",
      "--config",
      "a.hcl",
      "--config=b.hcl",
      "--dev",
    ]);
    expect(normaliseArgs(["operator", "init", "-key-shares=5", "-key-threshold", "3"])).toEqual([
      "operator",
      "init",
      "--key-shares=5",
      "--key-threshold",
      "3",
    ]);
  });

  it("booleans written with =true/=false become bare flags or disappear, as Go's flag package reads them", () => {
    expect(normaliseArgs(["operator", "unseal", "-reset=true", "-migrate=false"])).toEqual([
      "operator",
      "unseal",
      "--reset",
    ]);
    expect(normaliseArgs(["x", "--dev=1", "--tls-skip-verify=F"])).toEqual(["x", "--dev"]);
    // Where false is a setting of its own, =false becomes the negated flag.
    expect(normaliseArgs(["kv", "metadata", "put", "-cas-required=false", "s/x"])).toEqual([
      "kv",
      "metadata",
      "put",
      "--no-cas-required",
      "s/x",
    ]);
    // A non-boolean value is left for commander to reject.
    expect(normaliseArgs(["x", "-reset=maybe"])).toEqual(["x", "--reset=maybe"]);
    // Exactly the settings kernel's words (Go's strconv.ParseBool): no other casing, no spaces.
    for (const w of TRUE_WORDS) expect(normaliseArgs(["x", `-reset=${w}`]), w).toEqual(["x", "--reset"]);
    for (const w of FALSE_WORDS) expect(normaliseArgs(["x", `-reset=${w}`]), w).toEqual(["x"]);
    for (const w of ["tRue", "FaLse", " true", "yes"])
      expect(normaliseArgs(["x", `-reset=${w}`]), w).toEqual(["x", `--reset=${w}`]);
  });

  it("leaves single letters, stdin, negative numbers, values and everything after -- alone", () => {
    expect(normaliseArgs(["write", "-f", "sys/rotate"])).toEqual(["write", "-f", "sys/rotate"]);
    expect(normaliseArgs(["kv", "put", "secret/x", "-"])).toEqual(["kv", "put", "secret/x", "-"]);
    expect(normaliseArgs(["kv", "put", "secret/x", "n=-5", "-1"])).toEqual([
      "kv",
      "put",
      "secret/x",
      "n=-5",
      "-1",
    ]);
    expect(normaliseArgs(["read", "--", "-weird-path"])).toEqual(["read", "--", "-weird-path"]);
    expect(normaliseArgs(["-h"])).toEqual(["-h"]);
  });

  it("is idempotent: normalising twice changes nothing more", () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.oneof(fc.string(), fc.constantFrom("-dev", "-reset=true", "-a=b", "--", "-", "-x", "--y=false")),
        ),
        (args) => {
          const once = normaliseArgs(args);
          expect(normaliseArgs(once)).toEqual(once);
        },
      ),
    );
  });
});

describe("output helpers", () => {
  it("table aligns a Key/Value table like Vault", () => {
    expect(
      table([
        ["Sealed", false],
        ["Total Shares", 5],
      ]),
    ).toBe("Key             Value\n---             -----\nSealed          false\nTotal Shares    5\n");
  });

  it("cells show lists Vault-style and objects as JSON", () => {
    expect(cell(["default", "app"])).toBe("[default app]");
    expect(cell({ a: 1 })).toBe('{"a":1}');
    expect(cell(null)).toBe("n/a");
  });

  it("durations, key lists and formats", () => {
    expect(formatDuration(2764800)).toBe("768h");
    expect(formatDuration(5400)).toBe("1h30m");
    expect(formatDuration(45)).toBe("45s");
    expect(formatDuration(0)).toBe("∞");
    expect(keyList(["a", "b/"])).toBe("Keys\n----\na\nb/\n");
    expect(parseFormat(undefined, { VAULT_FORMAT: "JSON" })).toBe("json");
    expect(() => parseFormat("yaml", {})).toThrow(UsageError);
  });
});

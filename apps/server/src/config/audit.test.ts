/**
 * `audit "<type>" "<path>"` blocks and OpenBao 2.6's two audit switches. What OpenBao 2.6.2 itself
 * did with the same configs (run against the real binary): `mode = 0600` and `description = 5`
 * load as the strings "0600" and "5"; `log_raw = true`, `mode = 1.5` and `local = "true"` stop it
 * ("unknown type for string *ast.LiteralType"); `type`/`path` inside the block win over the labels.
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ConfigError, finalizeConfig, loadConfig, parseConfig } from "./load.js";

const BASE = `storage "file" { path = "/tmp/data" }
listener "tcp" {
  address     = "127.0.0.1:8200"
  tls_disable = true
}
`;

/** The settings a one-file config gives, through the whole loader's rules. */
function auditOf(text: string, filename = "bulwark.hcl") {
  return finalizeConfig(parseConfig(text, filename)).audit;
}

function problemsOf(fn: () => unknown): string[] {
  try {
    fn();
  } catch (err) {
    if (err instanceof ConfigError)
      return err.problems.map((p) => `${p.line ?? "-"}:${p.column ?? "-"} ${p.message}`);
    throw err;
  }
  throw new Error("no ConfigError");
}

describe("audit blocks", () => {
  it("OpenBao's documented HCL and JSON forms give the same device", () => {
    const hcl = auditOf(`${BASE}
audit "file" "to-stdout" {
  description = "Write audit information to standard output."
  options {
    file_path = "stdout"
  }
}
`);
    const json = finalizeConfig(
      parseConfig(
        JSON.stringify({
          storage: { file: { path: "/tmp/data" } },
          listener: { tcp: { address: "127.0.0.1:8200", tls_disable: true } },
          audit: [
            {
              file: {
                "to-stdout": {
                  description: "Write audit information to standard output.",
                  options: { file_path: "stdout" },
                },
              },
            },
          ],
        }),
        "bulwark.json",
      ),
    ).audit;
    const expected = {
      devices: [
        {
          type: "file",
          path: "to-stdout/",
          description: "Write audit information to standard output.",
          local: false,
          options: { file_path: "stdout" },
        },
      ],
      unsafeAllowApiAuditCreation: false,
      allowAuditLogPrefixing: false,
    };
    expect(hcl).toEqual(expected);
    expect(json).toEqual(expected);
  });

  it("no audit block: no devices, both switches off", () => {
    expect(auditOf(BASE)).toEqual({
      devices: [],
      unsafeAllowApiAuditCreation: false,
      allowAuditLogPrefixing: false,
    });
  });

  it("several blocks in config order; integers as written, local, options = { … }, type/path keys win", () => {
    const audit = auditOf(`${BASE}
unsafe_allow_api_audit_creation = true
allow_audit_log_prefixing = "true"
audit "socket" "net/" {
  local = true
  options = {
    address = "127.0.0.1:9090"
    socket_type = "tcp"
    write_timeout = "2s"
  }
}
audit "file" "cfg-one" {
  description = 5
  options {
    file_path = "/var/log/bulwark/audit.log"
    mode = 0600
    prefix = "bulwark:"
  }
}
audit "file" "x" {
  type = "syslog"
  path = "y"
}
`);
    expect(audit.unsafeAllowApiAuditCreation).toBe(true);
    expect(audit.allowAuditLogPrefixing).toBe(true);
    expect(audit.devices).toEqual([
      {
        type: "socket",
        path: "net/",
        description: "",
        local: true,
        options: { address: "127.0.0.1:9090", socket_type: "tcp", write_timeout: "2s" },
      },
      {
        type: "file",
        path: "cfg-one/",
        description: "5",
        local: false,
        options: { file_path: "/var/log/bulwark/audit.log", mode: "0600", prefix: "bulwark:" },
      },
      { type: "syslog", path: "y/", description: "", local: false, options: {} },
    ]);
  });

  it("two blocks with one path are refused with OpenBao's text and both positions", () => {
    expect(
      problemsOf(() =>
        auditOf(`${BASE}
audit "file" "a" { options { file_path = "/tmp/a.log" } }
audit "socket" "a/" { options { address = "127.0.0.1:9" } }
`),
      ),
    ).toEqual([
      "8:1 two audit devices with same path (a/) exist in config (the first at bulwark.hcl:7): give each audit block its own path",
    ]);
  });

  it("a prefix option needs allow_audit_log_prefixing; the error names the block and the option's line", () => {
    const text = `${BASE}
audit "file" "prefixed" {
  options {
    file_path = "/tmp/a.log"
    prefix    = "bulwark:"
  }
}
`;
    let err: unknown;
    try {
      auditOf(text);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    const [p] = (err as ConfigError).problems;
    expect(p).toMatchObject({
      filename: "bulwark.hcl",
      line: 10,
      block: 'audit "file" "prefixed"',
      setting: "prefix",
    });
    expect((err as ConfigError).message).toBe(
      'bulwark.hcl:10:5: audit "file" "prefixed": audit log prefixing is not allowed: remove the prefix option, or set allow_audit_log_prefixing = true at the top level of the config',
    );
    expect(auditOf(`${text}allow_audit_log_prefixing = true\n`).devices[0]?.options).toEqual({
      file_path: "/tmp/a.log",
      prefix: "bulwark:",
    });
  });

  it("unknown keys, wrong types and missing labels are errors naming the key, with file:line:column", () => {
    expect(
      problemsOf(() =>
        parseConfig(
          `${BASE}
audit "file" "one" {
  descripton = "typo"
  file_path = "/tmp/a.log"
  local = "true"
  options {
    log_raw = true
    mode = 1.5
    nested { a = "b" }
  }
}
audit "kafka" "two" {}
audit "file" "three" { options = "file_path=/tmp/x" }
`,
          "bulwark.hcl",
        ),
      ),
    ).toEqual([
      '8:3 audit "file" "one": unknown setting `descripton` — did you mean `description`? (an audit block takes description, local and options { … }; device options such as file_path go inside options)',
      '9:3 audit "file" "one": unknown setting `file_path` (an audit block takes description, local and options { … }; device options such as file_path go inside options)',
      '10:11 audit "file" "one": `local` must be true or false, found string "true"',
      '12:15 audit "file" "one": option `log_raw` must be a string, found bool true: write it quoted, "true"',
      '13:12 audit "file" "one": option `mode` must be a string, found number 1.5: write it quoted, "1.5"',
      '14:5 audit "file" "one": option `nested` must be a string, found a block',
      '17:7 audit "kafka" "two": audit device type "kafka" is not supported: use "file", "socket", "syslog"',
      '18:34 audit "file" "three": `options` must be a map of strings, found string "file_path=/tmp/x": write options { file_path = "…" }',
    ]);
    expect(problemsOf(() => parseConfig(`${BASE}\naudit "file" "a" "b" {}\n`, "bulwark.hcl"))[0]).toMatch(
      /`audit` takes 2 labels, found 3/,
    );
    expect(
      problemsOf(() =>
        parseConfig(
          `${BASE}\naudit "file" {\n  options {\n    file_path = "stdout"\n  }\n}\n`,
          "bulwark.hcl",
        ),
      ),
    ).toEqual([
      '8:3 audit "file" needs two labels, its type and its path: write audit "file" "<path>" { options { … } }',
    ]);
    expect(problemsOf(() => parseConfig(`${BASE}\naudit "file" "" {}\n`, "bulwark.hcl"))).toEqual([
      '7:14 audit "file" "": the audit device needs a path: write audit "file" "<path>" { … }',
    ]);
    expect(
      problemsOf(() => parseConfig(`${BASE}\nunsafe_allow_api_audit_creation = "maybe"\n`, "bulwark.hcl")),
    ).toEqual(['7:35 `unsafe_allow_api_audit_creation` must be true or false, found string "maybe"']);
  });
});

describe("audit settings across files", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "bulwark-audit-config-"));
    await writeFile(
      join(dir, "a.hcl"),
      `${BASE}
unsafe_allow_api_audit_creation = true
audit "file" "first" { options { file_path = "stdout" } }
`,
    );
    await writeFile(
      join(dir, "b.hcl"),
      `unsafe_allow_api_audit_creation = false
audit "syslog" "second" { options { tag = "bulwark" } }
`,
    );
    await writeFile(join(dir, "dup.hcl"), `audit "file" "first/" { options { file_path = "discard" } }\n`);
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("blocks add up in file order; a switch is on when any file turns it on (OpenBao's merge)", async () => {
    const config = await loadConfig([join(dir, "a.hcl"), join(dir, "b.hcl")], {
      env: {},
      checkProviders: false,
    });
    expect(config.audit.devices.map((d) => `${d.type} ${d.path}`)).toEqual(["file first/", "syslog second/"]);
    expect(config.audit.unsafeAllowApiAuditCreation).toBe(true);
    expect(config.audit.allowAuditLogPrefixing).toBe(false);
  });

  it("the same path in two files is refused at the second, naming the first", async () => {
    const err = await loadConfig([join(dir, "a.hcl"), join(dir, "dup.hcl")], {
      env: {},
      checkProviders: false,
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).message).toBe(
      `${join(dir, "dup.hcl")}:1:1: two audit devices with same path (first/) exist in config (the first at ${join(dir, "a.hcl")}:8): give each audit block its own path`,
    );
  });
});

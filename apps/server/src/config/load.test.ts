import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  blockSource,
  ConfigError,
  DEFAULT_MAX_REQUEST_SIZE,
  describeBlock,
  finalizeConfig,
  loadConfig,
  parseBoolean,
  parseConfig,
  sourceOf,
} from "./load.js";

/** Vault's documented `seal "pkcs11"` example over file storage (configuration/seal/pkcs11.mdx). */
export const VAULT_FILE_PKCS11 = `
storage "file" {
  path = "/mnt/vault/data"
}

listener "tcp" {
  address     = "127.0.0.1:8200"
  tls_disable = "true"
}

seal "pkcs11" {
  lib            = "/usr/vendor/pkcs11/lib/libCryptoki2_64.so"
  slot           = "2305843009213693953"
  pin            = "AAAA-BBBB-CCCC-DDDD"
  key_label      = "vault-hsm-key"
  hmac_key_label = "vault-hsm-hmac-key"
}

api_addr      = "http://127.0.0.1:8200"
cluster_addr  = "https://127.0.0.1:8201"
disable_mlock = true
ui            = true
`;

/** Vault's documented consul storage + `seal "awskms"` (configuration/storage/consul.mdx, seal/awskms.mdx). */
export const VAULT_CONSUL_AWSKMS = `
storage "consul" {
  address = "127.0.0.1:8500"
  path    = "vault/"
  token   = "abcd1234"
  service = "vault"
}

listener "tcp" {
  address         = "0.0.0.0:8200"
  tls_cert_file   = "/etc/vault/tls/vault.crt"
  tls_key_file    = "/etc/vault/tls/vault.key"
  tls_min_version = "tls12"
  max_request_size = 1048576
}

seal "awskms" {
  region     = "us-east-1"
  access_key = "AKIAIOSFODNN7EXAMPLE"
  secret_key = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
  kms_key_id = "19ec80b0-dfdd-4d97-8164-c6examplekey"
  endpoint   = "https://vpce-0e1bb1852241f8cc6-pzi0do8n.kms.us-east-1.vpce.amazonaws.com"
}

telemetry {
  statsd_address   = "statsd.example.com:8125"
  disable_hostname = true
}

default_lease_ttl = "168h"
max_lease_ttl     = "720h"
cluster_name      = "prod-east"
log_level         = "Warn"
`;

const VAULT_FILE_PKCS11_JSON = JSON.stringify({
  storage: { file: { path: "/mnt/vault/data" } },
  listener: [{ tcp: { address: "127.0.0.1:8200", tls_disable: true } }],
  seal: {
    pkcs11: { lib: "/usr/lib/softhsm/libsofthsm2.so", token_label: "vault", pin: "1234", key_label: "k" },
  },
  api_addr: "http://127.0.0.1:8200",
  disable_mlock: true,
});

const noEnv = { env: {} };

function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  throw new Error("expected a ConfigError");
}

async function configErrorAsync(p: Promise<unknown>): Promise<ConfigError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  throw new Error("expected a ConfigError");
}

describe("Vault configs load unchanged", () => {
  it("file storage + pkcs11 seal (Vault's documented example)", () => {
    const config = finalizeConfig(parseConfig(VAULT_FILE_PKCS11, "vault.hcl"), noEnv);
    expect(config.storage).toEqual({ type: "file", options: { path: "/mnt/vault/data" } });
    expect(config.seals).toEqual([
      {
        type: "pkcs11",
        disabled: false,
        options: {
          lib: "/usr/vendor/pkcs11/lib/libCryptoki2_64.so",
          slot: "2305843009213693953",
          pin: "AAAA-BBBB-CCCC-DDDD",
          key_label: "vault-hsm-key",
          hmac_key_label: "vault-hsm-hmac-key",
        },
      },
    ]);
    expect(config.listeners).toEqual([
      {
        address: "127.0.0.1:8200",
        tlsDisable: true,
        maxRequestSize: DEFAULT_MAX_REQUEST_SIZE,
        disableUnauthedRekeyEndpoints: true,
        disableUnauthedGenerateRootEndpoints: true,
      },
    ]);
    expect(config).toMatchObject({ apiAddr: "http://127.0.0.1:8200", ui: true, logLevel: "info" });
    expect(config.warnings.join("\n")).toMatch(
      /vault\.hcl:20:1: `cluster_addr` is a Vault setting with no effect/,
    );
    expect(config.warnings.join("\n")).toMatch(/vault\.hcl:21:1: `disable_mlock`/);
    expect(config.warnings.join("\n")).toMatch(/no web UI/);
  });

  it("disable_unauthed_rekey_endpoints is honoured, not ignored (default false, as Vault)", () => {
    const base =
      'storage "inmem" {}\nlistener "tcp" {\n  address = "127.0.0.1:8200"\n  tls_disable = true\n}\n';
    expect(finalizeConfig(parseConfig(base, "a.hcl"), noEnv).disableUnauthedRekeyEndpoints).toBe(false);
    const on = finalizeConfig(
      parseConfig(`${base}disable_unauthed_rekey_endpoints = true\n`, "b.hcl"),
      noEnv,
    );
    expect(on.disableUnauthedRekeyEndpoints).toBe(true);
    expect(on.warnings.join("\n")).not.toMatch(/disable_unauthed_rekey_endpoints/);
  });

  it("disable_sealwrap is honoured, not ignored (default false, as Vault Enterprise); a non-boolean is an error", () => {
    const base =
      'storage "inmem" {}\nlistener "tcp" {\n  address = "127.0.0.1:8200"\n  tls_disable = true\n}\n';
    expect(finalizeConfig(parseConfig(base, "a.hcl"), noEnv).disableSealWrap).toBe(false);
    const on = finalizeConfig(parseConfig(`${base}disable_sealwrap = true\n`, "b.hcl"), noEnv);
    expect(on.disableSealWrap).toBe(true);
    expect(on.warnings.join("\n")).not.toMatch(/disable_sealwrap/);
    expect(() =>
      finalizeConfig(parseConfig(`${base}disable_sealwrap = "sometimes"\n`, "c.hcl"), noEnv),
    ).toThrow(/disable_sealwrap/);
  });

  it("listener disable_unauthed_rekey_endpoints / _generate_root_endpoints: default true (OpenBao 2.6), false turns them on", () => {
    const listener = (extra: string) =>
      `storage "inmem" {}\nlistener "tcp" {\n  address = "127.0.0.1:8200"\n  tls_disable = true\n${extra}}\n`;
    const dflt = finalizeConfig(parseConfig(listener(""), "a.hcl"), noEnv);
    expect(dflt.listeners[0]).toMatchObject({
      disableUnauthedRekeyEndpoints: true,
      disableUnauthedGenerateRootEndpoints: true,
    });
    const off = finalizeConfig(
      parseConfig(
        listener(
          "  disable_unauthed_rekey_endpoints = false\n  disable_unauthed_generate_root_endpoints = false\n",
        ),
        "b.hcl",
      ),
      noEnv,
    );
    expect(off.listeners[0]).toMatchObject({
      disableUnauthedRekeyEndpoints: false,
      disableUnauthedGenerateRootEndpoints: false,
    });
    expect(off.warnings.join("\n")).not.toMatch(/disable_unauthed/);
    expect(() =>
      finalizeConfig(
        parseConfig(listener('  disable_unauthed_generate_root_endpoints = "nope"\n'), "c.hcl"),
        noEnv,
      ),
    ).toThrow(/c\.hcl:5:\d+: .*disable_unauthed_generate_root_endpoints/);
  });

  it("consul storage + awskms seal with a TLS listener and telemetry (Vault's documented keys)", () => {
    const config = finalizeConfig(parseConfig(VAULT_CONSUL_AWSKMS, "/etc/vault.d/vault.hcl"), noEnv);
    expect(config.storage).toEqual({
      type: "consul",
      options: { address: "127.0.0.1:8500", path: "vault/", token: "abcd1234", service: "vault" },
    });
    expect(config.seals).toHaveLength(1);
    expect(config.seals[0]).toMatchObject({ type: "awskms", disabled: false });
    expect(config.seals[0]?.options).toMatchObject({
      region: "us-east-1",
      kms_key_id: "19ec80b0-dfdd-4d97-8164-c6examplekey",
    });
    expect(config.listeners).toEqual([
      {
        address: "0.0.0.0:8200",
        tlsDisable: false,
        tlsCertFile: "/etc/vault/tls/vault.crt",
        tlsKeyFile: "/etc/vault/tls/vault.key",
        tlsMinVersion: "tls12",
        maxRequestSize: 1048576,
        disableUnauthedRekeyEndpoints: true,
        disableUnauthedGenerateRootEndpoints: true,
      },
    ]);
    expect(config).toMatchObject({ clusterName: "prod-east", logLevel: "warn", ui: false });
    const warnings = config.warnings.join("\n");
    for (const key of ["telemetry", "default_lease_ttl", "max_lease_ttl"])
      expect(warnings).toContain(`\`${key}\``);
  });

  it("the JSON form of a Vault config", () => {
    const config = finalizeConfig(parseConfig(VAULT_FILE_PKCS11_JSON, "vault.json"), noEnv);
    expect(config.storage).toEqual({ type: "file", options: { path: "/mnt/vault/data" } });
    expect(config.seals[0]).toMatchObject({ type: "pkcs11", options: { token_label: "vault" } });
    expect(config.listeners[0]).toMatchObject({ address: "127.0.0.1:8200", tlsDisable: true });
  });

  it("seal migration: the disabled seal is kept apart from the enabled one", () => {
    const config = finalizeConfig(
      parseConfig(
        `${VAULT_FILE_PKCS11}\nseal "awskms" {\n  kms_key_id = "alias/old"\n  disabled = "true"\n}\n`,
        "m.hcl",
      ),
      noEnv,
    );
    expect(config.seals.map((s) => [s.type, s.disabled])).toEqual([
      ["pkcs11", false],
      ["awskms", true],
    ]);
    expect(config.seals[1]?.options).toEqual({ kms_key_id: "alias/old" });
  });

  it("remembers where each block and option was written (for provider errors)", () => {
    const config = finalizeConfig(parseConfig(VAULT_FILE_PKCS11, "vault.hcl"), noEnv);
    const seal = config.seals[0]!;
    expect(blockSource(seal)).toMatchObject({ filename: "vault.hcl", line: 11, column: 1 });
    expect(blockSource(seal)?.keys.get("pin")).toMatchObject({ line: 14, column: 3 });
    expect(describeBlock("seal", seal, "pin")).toBe('seal "pkcs11" (vault.hcl:14:3)');
    expect(describeBlock("storage", { type: "inmem", options: {} })).toBe('storage "inmem"');
  });
});

describe("errors name the file, line and column", () => {
  it("unknown settings, with a suggestion, all reported at once", () => {
    const err = configError(() =>
      parseConfig(
        'storage "file" { path = "/d" }\nlisten "tcp" {}\napi_adr = "http://x"\nlistener "tcp" {\n  adress = "x"\n}\n',
        "c.hcl",
      ),
    );
    expect(err.problems.map((p) => [p.line, p.column])).toEqual([
      [2, 1],
      [3, 1],
      [5, 3],
      [4, 1],
    ]);
    expect(err.message).toContain("c.hcl:2:1: unknown setting `listen` — did you mean `listener`?");
    expect(err.message).toContain("c.hcl:3:1: unknown setting `api_adr` — did you mean `api_addr`?");
    expect(err.message).toContain("c.hcl:5:3: unknown listener setting `adress` — did you mean `address`?");
    expect(err.message).toContain('c.hcl:4:1: listener "tcp" has TLS on but no certificate');
  });

  it("syntax errors keep the parser's position", () => {
    const err = configError(() => parseConfig('storage "file" {\n  path = \n}', "c.hcl"));
    expect(err.problems[0]).toMatchObject({ filename: "c.hcl", line: 3, column: 1 });
    expect(err.message).toMatch(/^c\.hcl:3:1: expected a value/);
  });

  it("wrong types and values", () => {
    const cases: Array<[string, RegExp]> = [
      ['ui = "maybe"', /1:6: `ui` must be true or false, found string "maybe"/],
      ["api_addr = 8200", /`api_addr` must be a string/],
      ['api_addr = "127.0.0.1:8200"', /api_addr must be a URL like "https:\/\/bulwark.example.com:8200"/],
      ['api_addr = "ftp://x"', /api_addr must start with http:\/\/ or https:\/\//],
      ['log_level = "loud"', /log_level must be trace, debug, info, warn or error/],
      ['api_addr = "http://a"\napi_addr = "http://b"', /2:1: `api_addr` is set twice \(first at line 1\)/],
      [
        'storage "file" {}\nstorage "consul" {}',
        /2:1: only one storage block is allowed \(the first is at line 1\)/,
      ],
      ['backend "file" {}\nstorage "consul" {}', /only one storage block/],
      ["storage {}", /`storage` needs 1 label/],
      ['listener "unix" { address = "/run/v.sock" }', /listener "unix" is not supported/],
      ['listener "tcp" { address = "localhost" }', /listener address must be host:port/],
      ['listener "tcp" { address = "1.2.3.4:99999" tls_disable = 1 }', /port 99999 is out of range/],
      ['listener "tcp" { address = "127.0.0.1:1" }', /has TLS on but no certificate/],
      ['listener "tcp" { tls_disable = true\n tls_min_version = "tls10" }', /TLS below 1.2 is refused/],
      [
        'listener "tcp" { tls_disable = true\n max_request_size = "big" }',
        /`max_request_size` must be an integer/,
      ],
      [
        'listener "tcp" { tls_disable = true\n tls_require_and_verify_client_cert = true }',
        /client certificate verification is not supported/,
      ],
      [
        'listener "tcp" { tls_disable = true\n address = "a:1"\n address = "a:2" }',
        /3:2: `address` is set twice in this listener/,
      ],
      ['seal "pkcs11" { disabled = "sometimes" }', /`disabled` must be true or false/],
      ['seal "bad name" {}', /seal type "bad name" is not a valid name/],
      ['kms "awskms" {}', /Bulwark reads Vault's name, seal "<type>"/],
    ];
    for (const [src, message] of cases)
      expect(configError(() => parseConfig(src, "c.hcl")).message).toMatch(message);
  });

  it("cross-block rules: storage and listener required, one enabled seal, one disabled seal", () => {
    const missing = configError(() => finalizeConfig(parseConfig("ui = false", "c.hcl"), noEnv));
    expect(missing.problems).toHaveLength(2);
    expect(missing.message).toMatch(/no storage block: add one, e.g. storage "file"/);
    expect(missing.message).toMatch(/no listener block/);
    const two = configError(() =>
      finalizeConfig(parseConfig(`${VAULT_FILE_PKCS11}\nseal "awskms" { kms_key_id = "k" }`, "c.hcl"), noEnv),
    );
    expect(two.message).toMatch(
      /at most one seal may be enabled; mark the one being migrated away from with disabled = true/,
    );
    expect(two.message).toMatch(/seal "pkcs11" \(c\.hcl:11:1\), seal "awskms" \(c\.hcl:24:1\)/);
    const twoDisabled = configError(() =>
      finalizeConfig(
        parseConfig(
          'storage "inmem" {}\nlistener "tcp" { tls_disable = 1 }\nseal "a" { disabled = true }\nseal "b" { disabled = true }',
          "c.hcl",
        ),
        noEnv,
      ),
    );
    expect(twoDisabled.message).toMatch(/migrate from one seal at a time/);
    const dupListener = configError(() =>
      finalizeConfig(
        parseConfig(
          'storage "inmem" {}\nlistener "tcp" { tls_disable = 1 }\nlistener "tcp" { tls_disable = 1 }',
          "c.hcl",
        ),
        noEnv,
      ),
    );
    expect(dupListener.message).toMatch(/two listeners use the address 127.0.0.1:8200/);
  });

  it("accepted-but-ignored settings warn with their position, and unsupported ha_storage too", () => {
    const f = parseConfig(
      'storage "file" { path = "/d" }\nha_storage "consul" { address = "x" }\nlistener "tcp" {\n  tls_disable = true\n  http_read_timeout = "30s"\n  max_request_size = -1\n}\nplugin_directory = "/p"\n',
      "c.hcl",
    );
    const text = f.warnings.join("\n");
    expect(text).toMatch(/c\.hcl:2:1: ha_storage "consul" is not supported \(ignored\)/);
    expect(text).toMatch(/c\.hcl:5:3: listener "tcp": `http_read_timeout` is a Vault setting with no effect/);
    expect(text).toMatch(
      /c\.hcl:6:22: listener "tcp": a negative max_request_size turns the body size limit off/,
    );
    expect(text).toMatch(/c\.hcl:8:1: `plugin_directory`/);
    expect(f.listeners[0]?.maxRequestSize).toBe(Number.MAX_SAFE_INTEGER);
  });

  it("max_request_size = 0 means Vault's default (32 MiB), only a negative size turns the limit off", () => {
    const zero = parseConfig(
      'storage "file" { path = "/d" }\nlistener "tcp" {\n  tls_disable = true\n  max_request_size = 0\n}\n',
      "c.hcl",
    );
    expect(zero.listeners[0]?.maxRequestSize).toBe(32 * 1024 * 1024);
    expect(zero.warnings.join("\n")).not.toMatch(/turns the body size limit off/);
    const off = parseConfig(
      'storage "file" { path = "/d" }\nlistener "tcp" {\n  tls_disable = true\n  max_request_size = -1\n}\n',
      "c.hcl",
    );
    expect(off.listeners[0]?.maxRequestSize).toBe(Number.MAX_SAFE_INTEGER);
    expect(off.warnings.join("\n")).toMatch(
      /c\.hcl:4:22: listener "tcp": a negative max_request_size turns the body size limit off/,
    );
  });
});

describe("environment overrides", () => {
  const base =
    'storage "inmem" {}\nlistener "tcp" { tls_disable = true }\napi_addr = "http://cfg:8200"\nlog_level = "debug"\n';

  it("BULWARK_* wins over VAULT_*, which wins over the file", () => {
    const f = parseConfig(base, "c.hcl");
    expect(finalizeConfig(f, { env: { VAULT_API_ADDR: "http://vault:8200" } }).apiAddr).toBe(
      "http://vault:8200",
    );
    expect(
      finalizeConfig(f, { env: { VAULT_API_ADDR: "http://vault:8200", BULWARK_API_ADDR: "https://bw:8200" } })
        .apiAddr,
    ).toBe("https://bw:8200");
    expect(finalizeConfig(f, { env: { VAULT_LOG_LEVEL: "ERR" } }).logLevel).toBe("error");
    expect(
      finalizeConfig(f, { env: { BULWARK_LOG_LEVEL: "trace", VAULT_LOG_LEVEL: "error" } }).logLevel,
    ).toBe("trace");
    expect(finalizeConfig(f, { env: { BULWARK_LOG_LEVEL: "trace" }, logLevel: "warn" }).logLevel).toBe(
      "warn",
    );
    expect(finalizeConfig(f, { env: { BULWARK_CLUSTER_NAME: "east" } }).clusterName).toBe("east");
    expect(finalizeConfig(f, noEnv)).toMatchObject({
      apiAddr: "http://cfg:8200",
      logLevel: "debug",
      clusterName: "",
    });
  });

  it("invalid environment values are errors naming the variable", () => {
    const f = parseConfig(base, "c.hcl");
    expect(configError(() => finalizeConfig(f, { env: { BULWARK_API_ADDR: "nope" } })).message).toMatch(
      /BULWARK_API_ADDR must be a URL/,
    );
    expect(configError(() => finalizeConfig(f, { env: { VAULT_LOG_LEVEL: "loud" } })).message).toMatch(
      /VAULT_LOG_LEVEL must be/,
    );
  });

  it("VAULT_SEAL_TYPE / BULWARK_SEAL_TYPE set the enabled seal's type as Vault does", () => {
    const shamirCfg = parseConfig(base, "c.hcl");
    const added = finalizeConfig(shamirCfg, { env: { VAULT_SEAL_TYPE: "pkcs11" } });
    expect(added.seals).toEqual([{ type: "pkcs11", options: {}, disabled: false }]);
    expect(added.warnings).toContain(
      "VAULT_SEAL_TYPE=pkcs11 selects the pkcs11 seal (configured from its environment variables)",
    );
    const pkcs11Cfg = parseConfig(VAULT_FILE_PKCS11, "v.hcl");
    const same = finalizeConfig(pkcs11Cfg, { env: { BULWARK_SEAL_TYPE: "pkcs11" } });
    expect(same.seals[0]?.options).toMatchObject({ key_label: "vault-hsm-key" });
    const replaced = finalizeConfig(pkcs11Cfg, { env: { VAULT_SEAL_TYPE: "awskms" } });
    expect(replaced.seals).toEqual([{ type: "awskms", options: {}, disabled: false }]);
    expect(replaced.warnings.join("\n")).toMatch(
      /VAULT_SEAL_TYPE=awskms replaces the configured seal "pkcs11"/,
    );
    const toShamir = finalizeConfig(pkcs11Cfg, {
      env: { BULWARK_SEAL_TYPE: "shamir", VAULT_SEAL_TYPE: "awskms" },
    });
    expect(toShamir.seals).toEqual([]);
    // A disabled seal stays: the environment only names the target of a migration.
    const migrating = parseConfig(`${base}seal "awskms" { disabled = true }`, "c.hcl");
    expect(
      finalizeConfig(migrating, { env: { VAULT_SEAL_TYPE: "pkcs11" } }).seals.map((s) => [
        s.type,
        s.disabled,
      ]),
    ).toEqual([
      ["awskms", true],
      ["pkcs11", false],
    ]);
  });
});

describe("dev defaults", () => {
  it("-dev without files: memory storage and a plain-HTTP listener on 127.0.0.1:8200", () => {
    const config = finalizeConfig(
      { files: [], seals: [], listeners: [], warnings: [] },
      { dev: true, env: {} },
    );
    expect(config.storage).toEqual({ type: "inmem", options: {} });
    expect(config.listeners).toEqual([
      { address: "127.0.0.1:8200", tlsDisable: true, maxRequestSize: DEFAULT_MAX_REQUEST_SIZE },
    ]);
  });

  it("-dev-listen-address replaces the default listener", () => {
    const config = finalizeConfig(
      { files: [], seals: [], listeners: [], warnings: [] },
      { dev: true, env: {}, devListenAddress: "127.0.0.1:0" },
    );
    expect(config.listeners.map((l) => l.address)).toEqual(["127.0.0.1:0"]);
  });
});

describe("files and directories merge like Vault's -config", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "bulwark-config-"));
    await mkdir(join(dir, "conf.d"));
    await writeFile(
      join(dir, "conf.d", "10-storage.hcl"),
      'storage "file" { path = "/a" }\nlog_level = "debug"\n',
    );
    await writeFile(
      join(dir, "conf.d", "20-listener.json"),
      JSON.stringify({ listener: { tcp: { address: "127.0.0.1:8300", tls_disable: "1" } } }),
    );
    await writeFile(join(dir, "conf.d", "00_override.hcl"), 'log_level = "error"\n');
    await writeFile(join(dir, "conf.d", "notes.txt"), "not a config");
    await writeFile(
      join(dir, "extra.hcl"),
      'storage "file" { path = "/b" }\nlistener "tcp" { address = "127.0.0.1:8301" tls_disable = true }\n',
    );
    await writeFile(join(dir, "broken.hcl"), 'storage "file" {\n  pth = 1\n}\nnope = 2\n');
    await mkdir(join(dir, "empty"));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("a directory: .hcl and .json by name, override files last; later files win for storage", async () => {
    const config = await loadConfig(["conf.d", "extra.hcl"], { cwd: dir, env: {} });
    expect(config.storage.options).toEqual({ path: "/b" });
    expect(config.listeners.map((l) => l.address)).toEqual(["127.0.0.1:8300", "127.0.0.1:8301"]);
    expect(config.logLevel).toBe("error");
  });

  it("problems of every file are listed together; missing paths and empty directories are errors", async () => {
    const err = await configErrorAsync(
      loadConfig(["broken.hcl", "missing.hcl", "empty"], { cwd: dir, env: {} }),
    );
    // broken.hcl's storage block is checked too: its `pth` used to go unreported (issue 11).
    expect(err.problems.map((p) => p.message)).toEqual([
      'storage "file": unknown setting `pth` — did you mean `path`?',
      "unknown setting `nope`",
      expect.stringMatching(/^cannot read the config: ENOENT/),
      "the directory holds no .hcl or .json config files",
    ]);
    expect(err.problems[0]).toMatchObject({ line: 2, column: 3, filename: join(dir, "broken.hcl") });
    expect(err.problems[1]).toMatchObject({ line: 4, column: 1, filename: join(dir, "broken.hcl") });
  });
});

describe("parseBoolean (Vault's weak decoding)", () => {
  it("accepts Go's ParseBool words and 0/1, nothing else", () => {
    for (const v of [true, 1, "1", "t", "T", "true", "TRUE", "True", " true "])
      expect(parseBoolean(v)).toBe(true);
    for (const v of [false, 0, "0", "f", "false", "FALSE", "False"]) expect(parseBoolean(v)).toBe(false);
    for (const v of [2, "yes", "", null, [], {}]) expect(parseBoolean(v)).toBeUndefined();
  });
});

describe("every problem of every block at once (issue 11)", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "bulwark-config-all-"));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  /** Writes `files` into the temp dir and loads them (in the given order), expecting problems. */
  async function problemsOf(files: Record<string, string>, env: Record<string, string> = {}) {
    const names = Object.keys(files);
    for (const name of names) await writeFile(join(dir, name), files[name] as string);
    const err = await configErrorAsync(loadConfig(names, { cwd: dir, env }));
    return err;
  }

  it("top-level keys, settings inside each block and provider settings, all in file order", async () => {
    const err = await problemsOf({
      "many.hcl": [
        'storage "file" {', // 1
        '  pth   = "./data"', // 2
        '  fsync = "sometimes"', // 3
        "}", // 4
        'listner "tcp" {}', // 5
        'listener "tcp" {', // 6
        '  adress      = "127.0.0.1:8200"', // 7
        "  tls_disable = true", // 8
        "}", // 9
        'seal "awskms" {', // 10
        '  kms_key_id      = "alias/bulwark"', // 11
        '  regoin          = "us-east-1"', // 12
        '  request_timeout = "soon"', // 13
        "}", // 14
        'api_adr = "http://x"', // 15
        "",
      ].join("\n"),
    });
    const file = join(dir, "many.hcl");
    expect(err.problems.map((p) => [p.filename, p.line, p.column, p.message])).toEqual([
      [file, 2, 3, 'storage "file": unknown setting `pth` — did you mean `path`?'],
      [file, 3, 3, 'storage "file": `fsync` must be true or false, found string "sometimes"'],
      [file, 5, 1, "unknown setting `listner` — did you mean `listener`?"],
      [file, 7, 3, "unknown listener setting `adress` — did you mean `address`?"],
      [file, 12, 3, 'seal "awskms": unknown setting `regoin` — did you mean `region`?'],
      [file, 13, 3, expect.stringMatching(/^seal "awskms": `request_timeout`: "soon" is not a duration/)],
      [file, 15, 1, "unknown setting `api_adr` — did you mean `api_addr`?"],
    ]);
    // One error, one line per problem, each starting with file:line:column.
    expect(err.message.split("\n")[0]).toBe("7 config problems:");
    expect(err.message).toContain(
      `${file}:2:3: storage "file": unknown setting \`pth\` — did you mean \`path\`?`,
    );
    expect(err.problems[0]).toMatchObject({ block: 'storage "file"', setting: "pth" });
    expect(err.problems[5]).toMatchObject({ block: 'seal "awskms"', setting: "request_timeout" });
  });

  it("the issue's example: `listner` + `pth` are both reported", async () => {
    const err = await problemsOf({
      "issue.hcl": 'storage "file" { pth = "./data" }\nlistner "tcp" { address = "127.0.0.1:8200" }\n',
    });
    expect(err.problems.map((p) => `${p.line}: ${p.message}`)).toEqual([
      '1: storage "file": unknown setting `pth` — did you mean `path`?',
      "2: unknown setting `listner` — did you mean `listener`?",
    ]);
  });

  it("did you mean inside every built-in block type; the typo's missing setting is not reported twice", async () => {
    const cases: Array<[string, string]> = [
      ['storage "file" { pth = "/d" }', 'storage "file": unknown setting `pth` — did you mean `path`?'],
      ['storage "inmem" { max_value_sise = 10 }', "did you mean `max_value_size`?"],
      [
        'storage "consul" { adress = "127.0.0.1:8500" }',
        'storage "consul": unknown setting `adress` — did you mean `address`?',
      ],
      [
        'storage "inmem" {}\nseal "pkcs11" {\n lib = "/x.so"\n token_label = "t"\n pin = "1"\n key_lable = "k"\n}',
        'seal "pkcs11": unknown setting `key_lable` — did you mean `key_label`?',
      ],
      [
        'storage "inmem" {}\nseal "static" {\n kye = "k"\n key_id = "a"\n}',
        "unknown setting `kye` — did you mean `key`?",
      ],
      [
        'storage "flie" { path = "/d" }',
        'did you mean storage "file"?; for a third-party storage, add plugin',
      ],
    ];
    for (const [hcl, message] of cases) {
      const err = await problemsOf({ "one.hcl": `${hcl}\nlistener "tcp" { tls_disable = true }\n` });
      expect(err.problems, hcl).toHaveLength(1);
      expect(err.problems[0]?.message, hcl).toContain(message);
    }
  });

  it("a block without a close match lists the known settings", async () => {
    const err = await problemsOf({
      "far.hcl": 'storage "file" {\n path = "/d"\n bucket = "b"\n}\nlistener "tcp" { tls_disable = true }',
    });
    expect(err.problems).toEqual([
      expect.objectContaining({
        line: 3,
        setting: "bucket",
        message: expect.stringMatching(
          /^storage "file": `bucket` is not a storage "file" setting \(known: .*path/,
        ),
      }),
    ]);
  });

  it("problems of several files come in file order; rules across files last", async () => {
    const err = await problemsOf({
      "b-seal.hcl": 'seal "pkcs11" {\n  lib = "/x.so"\n}\nseal "awskms" { kms_key_id = "k" }\n',
      "a-storage.hcl": 'storage "consul" {\n  session_ttl = "fast"\n}\nlog_levl = "debug"\n',
    });
    expect(err.problems.map((p) => [p.filename?.replace(`${dir}/`, ""), p.line, p.setting])).toEqual([
      ["b-seal.hcl", 1, "slot"],
      ["b-seal.hcl", 1, "pin"],
      ["b-seal.hcl", 1, "key_label"],
      ["b-seal.hcl", 4, "kms_key_id"],
      ["a-storage.hcl", 2, "session_ttl"],
      ["a-storage.hcl", 4, undefined],
      [undefined, undefined, undefined],
      [undefined, undefined, undefined],
    ]);
    expect(err.problems[6]?.message).toMatch(/no listener block/);
    expect(err.problems[7]?.message).toMatch(/at most one seal may be enabled/);
  });

  it("a misspelt or rejected block is not reported again as missing", async () => {
    const err = await problemsOf({ "gone.hcl": 'storage "file" { path = "/d" }\nlistner "tcp" {}\n' });
    expect(err.problems.map((p) => p.message)).toEqual([
      "unknown setting `listner` — did you mean `listener`?",
    ]);
  });

  it("environment settings are checked with the block: a seal chosen by BULWARK_SEAL_TYPE too", async () => {
    const err = await problemsOf(
      { "env.hcl": 'storage "inmem" {}\nlistener "tcp" { tls_disable = true }\n' },
      { BULWARK_SEAL_TYPE: "awskms" },
    );
    expect(err.problems).toEqual([
      expect.objectContaining({
        block: 'seal "awskms"',
        setting: "kms_key_id",
        message: expect.stringMatching(/is required/),
      }),
    ]);
    expect(err.problems[0]?.filename).toBeUndefined();
  });

  it("checkProviders: false leaves the provider settings to createProviders", async () => {
    await writeFile(
      join(dir, "late.hcl"),
      'storage "file" { pth = "/d" }\nlistener "tcp" { tls_disable = true }\n',
    );
    const config = await loadConfig(["late.hcl"], { cwd: dir, env: {}, checkProviders: false });
    expect(config.storage.options).toEqual({ pth: "/d" });
  });
});

describe("position lookup (for start-up errors)", () => {
  const hcl = [
    'storage "file" {', // 1
    '  path = "/d"', // 2
    "}", // 3
    'listener "tcp" {', // 4
    "  tls_disable = true", // 5
    '  address     = "127.0.0.1:8300"', // 6
    "}", // 7
    'listener "tcp" { tls_disable = 1 }', // 8
    "",
  ].join("\n");

  it("sourceOf names the file, line and column of a block or one of its settings", () => {
    const config = finalizeConfig(parseConfig(hcl, "b.hcl"), noEnv);
    expect(sourceOf(config.storage, "path")).toEqual({ filename: "b.hcl", line: 2, column: 3 });
    expect(sourceOf(config.storage)).toEqual({ filename: "b.hcl", line: 1, column: 1 });
    const [first, second] = config.listeners;
    expect(sourceOf(first!, "address")).toEqual({ filename: "b.hcl", line: 6, column: 3 });
    // A setting left at its default points at its block.
    expect(sourceOf(second!, "address")).toEqual({ filename: "b.hcl", line: 8, column: 1 });
    expect(describeBlock("listener", first!, "address")).toBe('listener "tcp" (b.hcl:6:3)');
    expect(describeBlock("storage", config.storage, "path")).toBe('storage "file" (b.hcl:2:3)');
  });

  it("blocks that came from no file have no position", () => {
    const dev = finalizeConfig({ files: [], seals: [], listeners: [], warnings: [] }, { env: {}, dev: true });
    expect(sourceOf(dev.storage, "path")).toBeUndefined();
    expect(sourceOf(dev.listeners[0]!, "address")).toBeUndefined();
    expect(describeBlock("listener", dev.listeners[0]!)).toBe('listener "tcp"');
  });
});

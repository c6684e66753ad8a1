import { mkdir, mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { SealedStore } from "@bulwark/core";
import { assertSeal, ShamirSeal, StaticKeySeal } from "@bulwark/seal";
import { FileBackend } from "@bulwark/storage-file";
import { MemoryBackend } from "@bulwark/storage-memory";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { finalizeConfig, loadConfig, parseConfig } from "../config/load.js";
import type { ProviderBlock, SealBlock } from "../contracts.js";
import { ProviderError } from "./errors.js";
import {
  checkProviderBlock,
  checkProviderBlocks,
  createProviders,
  type ProviderContext,
  ProviderRegistry,
} from "./registry.js";

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = "true";

const here = dirname(fileURLToPath(import.meta.url));
const FIXTURES = resolve(here, "../../test/fixtures/plugins");
const SOFTHSM_LIB = "/usr/lib/softhsm/libsofthsm2.so";
const KEY_HEX = "11".repeat(32);

function recordingLogger() {
  const lines: string[] = [];
  const log = (level: string) => (msg: string) => {
    lines.push(`${level}: ${msg}`);
  };
  return {
    lines,
    logger: { debug: log("debug"), info: log("info"), warn: log("warn"), error: log("error") },
  };
}

function ctx(extra: Partial<ProviderContext> = {}): ProviderContext {
  return { env: {}, logger: recordingLogger().logger, pluginBaseDirs: [FIXTURES], ...extra };
}

async function providerError(p: Promise<unknown>): Promise<ProviderError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof ProviderError) return err;
    throw err;
  }
  throw new Error("expected a ProviderError");
}

/** A config's storage and seal blocks, parsed from HCL so they carry file positions. */
function parse(hcl: string, filename = join(FIXTURES, "server.hcl")) {
  return finalizeConfig(parseConfig(`listener "tcp" { tls_disable = true }\n${hcl}`, filename), { env: {} });
}

let tmp: string;
beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), "bulwark-registry-"));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe("built-in storage", () => {
  const registry = ProviderRegistry.withBuiltins();

  it("file → FileBackend at `path`, usable at once", async () => {
    const cfg = parse(`storage "file" { path = "${join(tmp, "data")}" }`);
    const { backend, ha } = await registry.createStorage(cfg.storage, ctx());
    expect(backend).toBeInstanceOf(FileBackend);
    expect(ha).toBeUndefined();
    await backend.put({ key: "a/b", value: new Uint8Array([1, 2]) });
    expect((await backend.get("a/b"))?.value).toEqual(new Uint8Array([1, 2]));
  });

  it("inmem and memory → MemoryBackend; HA lock only with ha_enabled = true (Vault's inmem is not HA)", async () => {
    for (const type of ["inmem", "memory"]) {
      const plain = await registry.createStorage({ type, options: {} }, ctx());
      expect(plain.backend).toBeInstanceOf(MemoryBackend);
      expect(plain.ha).toBeUndefined();
    }
    const ha = await registry.createStorage(
      { type: "inmem", options: { ha_enabled: "true", max_value_size: 10 } },
      ctx(),
    );
    expect(ha.ha).toBe(ha.backend);
    await expect(ha.backend.put({ key: "k", value: new Uint8Array(11) })).rejects.toThrow(/too large/);
  });

  it("consul → ConsulBackend with HA on by default; Vault's service keys are warnings", async () => {
    const { lines, logger } = recordingLogger();
    const cfg = parse(
      'storage "consul" {\n  address = "127.0.0.1:1"\n  path = "vault/"\n  service = "vault"\n}',
    );
    const { backend, ha } = await registry.createStorage(cfg.storage, ctx({ logger }));
    expect(backend.constructor.name).toBe("ConsulBackend");
    expect(ha).toBe(backend);
    expect(lines.join("\n")).toMatch(/warn: storage "consul" \(.*server\.hcl:5:3\): `service` has no effect/);
    await (backend as unknown as { close(): Promise<void> }).close();
  });

  it("setting errors name the block, the file position and the fix", async () => {
    const missing = await providerError(registry.createStorage(parse('storage "file" {}').storage, ctx()));
    expect(missing).toMatchObject({ code: "invalid_options", field: "path" });
    expect(missing.message).toMatch(
      /^storage "file" \(.*server\.hcl:2:1\): `path` must be set: the directory that holds the data/,
    );
    const unknown = await providerError(
      registry.createStorage(parse('storage "file" {\n  path = "/x"\n  paht = "/y"\n}').storage, ctx()),
    );
    expect(unknown.message).toMatch(
      /server\.hcl:4:3\): `paht` is not a storage "file" setting \(known: .*path/,
    );
    const consul = await providerError(
      registry.createStorage(parse('storage "consul" {\n  session_ttl = "fast"\n}').storage, ctx()),
    );
    expect(consul).toMatchObject({ code: "invalid_options", field: "session_ttl" });
    expect(consul.message).toMatch(/^storage "consul" \(.*server\.hcl:3:3\): .*session_ttl/);
  });

  it("an unknown type says how to use a plugin", async () => {
    const err = await providerError(
      registry.createStorage(parse('storage "s3" { bucket = "b" }').storage, ctx()),
    );
    expect(err.code).toBe("unknown_type");
    expect(err.message).toMatch(
      /"s3" is not a built-in storage type \(file, inmem, memory, consul\); .*add plugin = "<npm package or path>"/,
    );
  });
});

describe("built-in seals", () => {
  const registry = ProviderRegistry.withBuiltins();
  const seal = (type: string, options: Record<string, unknown> = {}): SealBlock => ({
    type,
    options,
    disabled: false,
  });

  it("shamir takes no settings", async () => {
    expect(await registry.createSeal(seal("shamir"), ctx())).toBeInstanceOf(ShamirSeal);
    const err = await providerError(registry.createSeal(seal("shamir", { x: 1 }), ctx()));
    expect(err.message).toMatch(/`x` is not a seal "shamir" setting \(this type takes no settings\)/);
  });

  it("static: key from the block or BULWARK_STATIC_SEAL_KEY, with a loud warning", async () => {
    const { lines, logger } = recordingLogger();
    const fromBlock = await registry.createSeal(
      seal("static", { key: KEY_HEX, key_id: "dev-1" }),
      ctx({ logger }),
    );
    expect(fromBlock).toBeInstanceOf(StaticKeySeal);
    expect(fromBlock.keyId()).toBe("dev-1");
    expect(lines.join("\n")).toMatch(
      /warn: seal "static": THE STATIC SEAL IS FOR DEVELOPMENT AND TESTS ONLY/,
    );
    const fromEnv = await registry.createSeal(
      seal("static"),
      ctx({ env: { BULWARK_STATIC_SEAL_KEY: KEY_HEX, BULWARK_STATIC_SEAL_KEY_ID: "env-1" } }),
    );
    expect(fromEnv.keyId()).toBe("env-1");
    const half = await providerError(registry.createSeal(seal("static", { key: KEY_HEX }), ctx()));
    expect(half.message).toMatch(/`current_key_id` must be set with current_key/);
    const noEnv = await providerError(registry.createSeal(seal("static"), ctx()));
    expect(noEnv.message).toMatch(/BULWARK_STATIC_SEAL_KEY.*is not set/);
  });

  it("pkcs11 and awskms come from their packages; their field errors get the file position", async () => {
    const pkcs11 = await registry.createSeal(
      seal("pkcs11", { lib: SOFTHSM_LIB, token_label: "t", pin: "1234", key_label: "k" }),
      ctx(),
    );
    expect(pkcs11.type).toBe("pkcs11");
    const cfg = parse(
      `storage "inmem" {}\nseal "pkcs11" {\n  lib = "${SOFTHSM_LIB}"\n  key_label = "k"\n  token_label = "t"\n  pinn = "1"\n}`,
    );
    const err = await providerError(registry.createSeal(cfg.seals[0]!, ctx()));
    expect(err).toMatchObject({ code: "invalid_options", field: "pinn" });
    expect(err.message).toMatch(/^seal "pkcs11" \(.*server\.hcl:7:3\): invalid seal configuration `pinn`/);
    const kms = await registry.createSeal(
      seal("awskms", { kms_key_id: "alias/bulwark", region: "us-east-1", endpoint: "http://127.0.0.1:1" }),
      ctx(),
    );
    expect(kms.type).toBe("awskms");
  });

  it("an unknown seal type says how to use a plugin", async () => {
    const err = await providerError(registry.createSeal(seal("gcpckms"), ctx()));
    expect(err.message).toMatch(
      /"gcpckms" is not a built-in seal type \(shamir, pkcs11, cloudhsm, awskms, static\)/,
    );
  });
});

describe("AWS CloudHSM", () => {
  it("a Vault pkcs11 block with CloudHSM's library gets the CloudHSM profile and keeps type pkcs11", async () => {
    const config = parse(`
storage "inmem" {}
seal "pkcs11" {
  lib       = "/opt/cloudhsm/lib/libcloudhsm_pkcs11.so"
  slot      = "2305843009213693953"
  pin       = "vault_user:Password1"
  key_label = "vault_key"
}
`);
    const p = await createProviders(config, { env: {} });
    const sealed = p.seal as { type: string; profile?: string };
    expect(sealed.type).toBe("pkcs11");
    expect(sealed.profile).toBe("cloudhsm");
    await p.release();
  });

  it('seal "cloudhsm" refuses a PIN without user:password, naming the field', async () => {
    const config = parse(`
storage "inmem" {}
seal "cloudhsm" {
  pin       = "nocolon"
  key_label = "vault_key"
}
`);
    await expect(createProviders(config, { env: {} })).rejects.toThrow(/pin/);
  });

  it('seal "pkcs11" with another library stays a plain PKCS#11 seal', async () => {
    const config = parse(
      `storage "inmem" {}\nseal "pkcs11" {\n  lib = "${SOFTHSM_LIB}"\n  token_label = "t"\n  pin = "1234"\n  key_label = "k"\n}\n`,
    );
    const p = await createProviders(config, { env: {} });
    expect((p.seal as { profile?: string }).profile).toBeUndefined();
    await p.release();
  });
});

describe("Vault configs build their providers unchanged apart from paths", () => {
  it("file + pkcs11 (Vault's documented pkcs11 example, lib pointed at SoftHSM)", async () => {
    const config = parse(`
storage "file" {
  path = "${join(tmp, "vault-data")}"
}
seal "pkcs11" {
  lib            = "${SOFTHSM_LIB}"
  slot           = "2305843009213693953"
  pin            = "AAAA-BBBB-CCCC-DDDD"
  key_label      = "vault-hsm-key"
  hmac_key_label = "vault-hsm-hmac-key"
}
disable_mlock = true
`);
    const p = await createProviders(config, { env: {} });
    expect(p.storage).toBeInstanceOf(FileBackend);
    expect(p.seal?.type).toBe("pkcs11");
    expect(p.storageType).toBe("file");
    await p.release();
  });

  it("consul + awskms (Vault's documented example, key id included)", async () => {
    const config = parse(`
storage "consul" {
  address = "127.0.0.1:8500"
  path    = "vault/"
  token   = "abcd1234"
}
seal "awskms" {
  region     = "us-east-1"
  access_key = "AKIAIOSFODNN7EXAMPLE"
  secret_key = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
  kms_key_id = "19ec80b0-dfdd-4d97-8164-c6examplekey"
  endpoint   = "http://127.0.0.1:4599"
}
`);
    const p = await createProviders(config, { env: {} });
    expect(p.storage.constructor.name).toBe("ConsulBackend");
    expect(p.ha).toBe(p.storage);
    expect(p.seal?.type).toBe("awskms");
    await p.release();
  });

  it("migration: the disabled seal becomes migrationSeal, the enabled one seal", async () => {
    const config = parse(
      `storage "inmem" {}\nseal "static" {\n  key = "${KEY_HEX}"\n  key_id = "old"\n  disabled = true\n}\nseal "shamir" {}\n`,
    );
    const p = await createProviders(config, { env: {} });
    expect(p.migrationSeal?.type).toBe("static");
    expect(p.seal).toBeInstanceOf(ShamirSeal);
  });
});

describe("plugins", () => {
  const registry = ProviderRegistry.withBuiltins();

  it("a package directory by path: its createSeal, checked, then usable by SealedStore (auto-unseal on reopen)", async () => {
    const cfg = parse(`storage "inmem" {}\nseal "acme" {\n  plugin = "./acme-seal"\n  key = "${KEY_HEX}"\n}`);
    const storage = new MemoryBackend();
    const seal = await registry.createSeal(cfg.seals[0]!, ctx());
    expect(seal.type).toBe("acme");
    const store = await SealedStore.open({ storage, seal });
    const { recoveryKeys } = await store.initialize({ recoveryShares: 3, recoveryThreshold: 2 });
    expect(recoveryKeys).toHaveLength(3);
    await store.put("secret/data/app", new TextEncoder().encode("s3cret"), { sealWrap: true });
    await store.close();
    const again = await SealedStore.open({ storage, seal: await registry.createSeal(cfg.seals[0]!, ctx()) });
    expect(again.status()).toMatchObject({ sealed: false, type: "acme", recoverySeal: true });
    expect(new TextDecoder().decode(await again.get("secret/data/app"))).toBe("s3cret");
    await again.close();
  });

  it("a bare package name resolves from the config file's node_modules", async () => {
    const dir = join(tmp, "site");
    await mkdir(join(dir, "node_modules", "@acme"), { recursive: true });
    await symlink(join(FIXTURES, "acme-seal"), join(dir, "node_modules", "@acme", "bulwark-seal"), "dir");
    await symlink(
      join(FIXTURES, "acme-storage"),
      join(dir, "node_modules", "@acme", "bulwark-storage"),
      "dir",
    );
    await writeFile(
      join(dir, "bulwark.hcl"),
      `storage "acme" {\n  plugin = "@acme/bulwark-storage"\n  label = "x"\n}\nseal "acme" {\n  plugin = "@acme/bulwark-seal"\n}\nlistener "tcp" { tls_disable = true }\n`,
    );
    const config = await loadConfig([join(dir, "bulwark.hcl")], { env: {} });
    const p = await createProviders(config, { env: { ACME_SEAL_KEY: KEY_HEX } });
    expect(p.seal?.type).toBe("acme");
    // The CommonJS storage plugin's default export is the factory; MemoryBackend has a lock, so HA is on.
    expect((p.storage as unknown as { label: string }).label).toBe("x");
    expect(p.ha).toBe(p.storage);
    expect(p.storageType).toBe("acme");
  });

  const cases: Array<[string, string, "seal" | "storage", string, RegExp]> = [
    [
      "missing package",
      "@acme/not-installed",
      "seal",
      "plugin_not_found",
      /cannot find plugin "@acme\/not-installed": install it where the config is \(npm install @acme\/not-installed\)/,
    ],
    [
      "missing file",
      "./nope.mjs",
      "seal",
      "plugin_not_found",
      /cannot find plugin "\.\/nope\.mjs": check the path/,
    ],
    [
      "no factory export",
      "./no-factory.mjs",
      "seal",
      "plugin_invalid",
      /exports no seal factory: export function createSeal\(config, env\) returning a Seal \(@bulwark\/seal\) \(found exports: version, helper\)/,
    ],
    [
      "not a seal",
      "./not-a-seal.mjs",
      "seal",
      "plugin_invalid",
      /is not a seal: method decrypt\(blob, opts\?\) is missing .*extend BaseSeal/,
    ],
    [
      "not a backend",
      "./not-a-backend.mjs",
      "storage",
      "plugin_invalid",
      /is not a storage backend: method list\(prefix\) is missing|list/,
    ],
    [
      "throws on import",
      "./throws-on-import.mjs",
      "seal",
      "plugin_invalid",
      /failed to load: acme plugin: native addon not built/,
    ],
  ];
  for (const [name, spec, kind, code, message] of cases) {
    it(`${name} → ${code}`, async () => {
      const block: ProviderBlock = { type: "acme", options: { plugin: spec } };
      const p =
        kind === "seal"
          ? registry.createSeal({ ...block, disabled: false }, ctx())
          : registry.createStorage(block, ctx());
      const err = await providerError(p);
      expect(err).toMatchObject({ code, field: "plugin" });
      expect(err.message).toMatch(message);
    });
  }

  it("the plugin's own setting errors carry the block's position", async () => {
    const cfg = parse(`storage "inmem" {}\nseal "acme" {\n  plugin = "./acme-seal"\n  colour = "blue"\n}`);
    const err = await providerError(registry.createSeal(cfg.seals[0]!, ctx()));
    expect(err).toMatchObject({ code: "invalid_options", field: "colour" });
    expect(err.message).toMatch(/^seal "acme" \(.*server\.hcl:5:3\): invalid seal configuration `colour`/);
  });

  it("an empty plugin setting is an error", async () => {
    const err = await providerError(
      registry.createSeal({ type: "acme", options: { plugin: " " }, disabled: false }, ctx()),
    );
    expect(err.message).toMatch(/`plugin` must name an npm package or a file/);
  });

  it("createProviders releases what it built when a later block fails", async () => {
    let closed = 0;
    const r = ProviderRegistry.withBuiltins().registerStorage("tracked", {
      description: "test",
      haByDefault: false,
      create: () => Object.assign(new MemoryBackend(), { close: async () => void closed++ }),
    });
    const config = parse('storage "tracked" {}\nseal "acme" { plugin = "./no-factory.mjs" }');
    await expect(
      createProviders(config, { registry: r, env: {}, pluginBaseDirs: [FIXTURES] }),
    ).rejects.toThrow(/exports no seal factory/);
    expect(closed).toBe(1);
  });
});

describe("assertSeal", () => {
  const good = {
    type: "x",
    autoUnseal: true,
    supportsSealWrap: false,
    init: async () => {},
    finalize: async () => {},
    keyId: () => "",
    encrypt: async () => ({}),
    decrypt: async () => new Uint8Array(),
  };
  it("accepts the Seal shape and names the first thing missing otherwise", () => {
    expect(() => assertSeal(good, "s")).not.toThrow();
    expect(() => assertSeal(new StaticKeySeal({ key: KEY_HEX, keyId: "a" }), "s")).not.toThrow();
    expect(() => assertSeal(null, "s")).toThrow(
      /s is not a seal: expected an object implementing Seal, got null/,
    );
    expect(() => assertSeal({ ...good, type: "" }, "s")).toThrow(/`type` must be a non-empty string/);
    expect(() => assertSeal({ ...good, autoUnseal: "yes" }, "s")).toThrow(
      /`autoUnseal` must be a boolean \(found string\)/,
    );
    expect(() => assertSeal({ ...good, keyId: "k" }, "s")).toThrow(
      /method keyId\(\) is missing \(found string\)/,
    );
    expect(() => assertSeal({ ...good, health: 1 }, "s")).toThrow(/health must be a method/);
  });
});

describe("checking blocks before building them (the config check)", () => {
  const registry = ProviderRegistry.withBuiltins();

  it("a built-in type's check and its create agree on the first problem", async () => {
    for (const hcl of [
      'storage "file" {\n  fsync = "x"\n  path = 5\n}',
      'storage "inmem" {\n  max_value_size = 0\n  ha_enabled = "maybe"\n}',
      'storage "consul" {\n  session_ttl = "fast"\n  max_parallel = "x"\n}',
    ]) {
      const block = parse(hcl).storage;
      const problems = await checkProviderBlock("storage", block, { registry, env: {} });
      expect(problems.length, hcl).toBe(2);
      const err = await providerError(registry.createStorage(block, ctx()));
      expect(problems[0]?.setting, hcl).toBe(err.field);
    }
  });

  it("every problem carries the block, the setting and the setting's position", async () => {
    const cfg = parse('storage "file" {\n  path = 5\n  fsync = "x"\n}');
    const problems = await checkProviderBlock("storage", cfg.storage, { registry, env: {} });
    expect(problems).toEqual([
      expect.objectContaining({ block: 'storage "file"', setting: "path", line: 3, column: 3 }),
      expect.objectContaining({ block: 'storage "file"', setting: "fsync", line: 4, column: 3 }),
    ]);
    expect(problems[0]?.message).toBe('storage "file": `path` must be a string, found number 5');
  });

  it("plugin blocks are left to the plugin; only `plugin` itself is checked", async () => {
    const ok = parse('storage "inmem" {}\nseal "acme" {\n  plugin = "./acme-seal"\n  colour = "blue"\n}');
    expect(await checkProviderBlocks(ok, { registry, env: {} })).toEqual([]);
    const empty = await checkProviderBlock("seal", {
      type: "acme",
      options: { plugin: "" },
      disabled: false,
    } as SealBlock);
    expect(empty).toEqual([
      expect.objectContaining({
        setting: "plugin",
        message: expect.stringMatching(/`plugin` must name an npm package/),
      }),
    ]);
  });

  it("a type registered without a check is checked when it is built; unknown types get did-you-mean", async () => {
    const r = ProviderRegistry.withBuiltins().registerStorage("tracked", {
      description: "test",
      haByDefault: false,
      create: () => new MemoryBackend(),
    });
    expect(
      await checkProviderBlock("storage", { type: "tracked", options: { any: 1 } }, { registry: r }),
    ).toEqual([]);
    const unknown = await checkProviderBlock("seal", { type: "awskm", options: {} } as ProviderBlock, {
      registry: r,
    });
    expect(unknown[0]?.message).toMatch(
      /^seal "awskm": "awskm" is not a built-in seal type .* — did you mean seal "awskms"\?/,
    );
  });
});

import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import type { ProviderModule } from "@bulwark/settings";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { finalizeConfig, parseConfig } from "../config/load.js";
import type { ProviderBlock, SealBlock } from "../contracts.js";
import { BUILTIN_SEALS, BUILTIN_STORAGE } from "./builtins.js";
import { ProviderError } from "./errors.js";
import { assertProviderModule, ProviderTable } from "./provider-table.js";
import { checkProviderBlock, type ProviderContext, ProviderRegistry } from "./registry.js";

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = "true";

let tmp: string;
beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), "bulwark-provider-table-"));
});
afterAll(() => rm(tmp, { recursive: true, force: true }));

function recording() {
  const lines: string[] = [];
  const log = (level: string) => (msg: string) => void lines.push(`${level}: ${msg}`);
  const ctx: ProviderContext = {
    env: {},
    logger: { debug: log("debug"), info: log("info"), warn: log("warn"), error: log("error") },
    pluginBaseDirs: [tmp],
  };
  return { lines, ctx };
}

/** A config's storage block parsed from HCL, so it carries file positions. */
function storageBlock(hcl: string): ProviderBlock {
  return finalizeConfig(
    parseConfig(`listener "tcp" { tls_disable = true }\n${hcl}`, join(tmp, "server.hcl")),
    {
      env: {},
    },
  ).storage;
}

async function providerError(p: Promise<unknown>): Promise<ProviderError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (err instanceof ProviderError) return err;
  throw new Error(`expected a ProviderError, got ${String(err)}`);
}

const mapBackend = () => {
  const m = new Map<string, Uint8Array>();
  return {
    get: async (key: string) => (m.has(key) ? { key, value: m.get(key) as Uint8Array } : undefined),
    put: async (e: { key: string; value: Uint8Array }) => void m.set(e.key, e.value),
    delete: async (key: string) => void m.delete(key),
    list: async () => [...m.keys()],
  };
};

describe("every built-in provider module has the module shape", () => {
  for (const [kind, list] of [
    ["storage", BUILTIN_STORAGE],
    ["seal", BUILTIN_SEALS],
  ] as const) {
    for (const entry of list) {
      it(`${kind} "${entry.type}"`, async () => {
        const module = "load" in entry ? await entry.load() : entry;
        expect(() => assertProviderModule(module, entry.type)).not.toThrow();
        expect(module.type).toBe(entry.type);
        expect(module.description.length).toBeGreaterThan(10);
        // Every built-in lists its settings, for "did you mean" in the config check.
        expect(Array.isArray(module.settings)).toBe(true);
        if ("load" in entry) expect(module.claims?.type).toBe(entry.claims);
      });
    }
  }
});

describe("assertProviderModule", () => {
  const good = { type: "x", description: "d", create: () => ({}) };
  it("names the first thing wrong", () => {
    expect(() => assertProviderModule(good, "m")).not.toThrow();
    expect(() => assertProviderModule(null, "m")).toThrow(
      /m is not a provider module: expected an object, got null/,
    );
    expect(() => assertProviderModule({ ...good, type: "" }, "m")).toThrow(
      /`type` must be a non-empty string/,
    );
    expect(() => assertProviderModule({ ...good, description: 1 }, "m")).toThrow(
      /`description` must be a string/,
    );
    expect(() => assertProviderModule({ ...good, create: undefined }, "m")).toThrow(
      /method create\(config, env, context\) is missing \(found undefined\)/,
    );
    expect(() => assertProviderModule({ ...good, check: "yes" }, "m")).toThrow(/`check` must be a method/);
    expect(() => assertProviderModule({ ...good, settings: ["a", 1] }, "m")).toThrow(
      /`settings` must be a list of strings/,
    );
    expect(() => assertProviderModule({ ...good, aliases: "b" }, "m")).toThrow(
      /`aliases` must be a list of strings/,
    );
    expect(() => assertProviderModule({ ...good, haByDefault: "no" }, "m")).toThrow(
      /`haByDefault` must be a boolean/,
    );
    expect(() => assertProviderModule({ ...good, claims: { type: "y" } }, "m")).toThrow(
      /`claims` must be \{ type, when\(config, env\) \}/,
    );
  });
});

describe("the table: claims first, lazy modules loaded only when asked", () => {
  it("a claimer is asked before the type's own module, and only for blocks of the type it claims", async () => {
    let loads = 0;
    const own: ProviderModule<string> = { type: "pkcs11", description: "own", create: () => "own" };
    const claimer: ProviderModule<string> = {
      type: "cloud",
      description: "claims some pkcs11 blocks",
      claims: { type: "pkcs11", when: (config) => config.lib === "cloud.so" },
      create: () => "cloud",
    };
    const table = new ProviderTable<ProviderModule<string>>();
    table.register(own);
    table.register({
      type: "cloud",
      claims: "pkcs11",
      load: async () => {
        loads++;
        return claimer;
      },
    });
    table.register({ type: "other", description: "o", create: () => "o" });
    expect(await table.resolve("other", {}, {})).toMatchObject({ type: "other" });
    expect(loads).toBe(0);
    expect(await table.resolve("pkcs11", { lib: "soft.so" }, {})).toBe(own);
    expect(await table.resolve("pkcs11", { lib: "cloud.so" }, {})).toBe(claimer);
    expect(await table.resolve("cloud", {}, {})).toBe(claimer);
    expect(loads).toBe(1);
    expect(await table.resolve("nope", {}, {})).toBeUndefined();
    expect(table.types()).toEqual(["pkcs11", "cloud", "other"]);
  });

  it("a lazy module that is not what its registration says is refused when loaded", async () => {
    const table = new ProviderTable<ProviderModule<string>>();
    table.register({
      type: "a",
      load: async () => ({ type: "b", description: "d", create: () => "b" }),
    });
    await expect(table.resolve("a", {}, {})).rejects.toThrow(/the module loaded for "a" is of type "b"/);
  });
});

describe("a plugin module and a built-in one go through the same path", () => {
  const mapModule = `
function read(settings) {
  const label = settings.string("label", true, "a name for the store");
  settings.boolean("ha_enabled");
  settings.finish();
  return label;
}
export const storageProvider = {
  type: "mapstore",
  description: "a Map, for tests",
  settings: ["label", "ha_enabled"],
  check(config, env, { settings }) {
    read(settings);
    return [];
  },
  create(config, env, { settings, warn }) {
    const label = read(settings);
    warn("is only for tests", "label");
    const m = new Map();
    return {
      label,
      async get(key) { return m.has(key) ? { key, value: m.get(key) } : undefined; },
      async put(e) { m.set(e.key, e.value); },
      async delete(key) { m.delete(key); },
      async list() { return [...m.keys()]; },
    };
  },
};`;

  it("a plugin's provider module gets the host's settings reader, block positions and warnings", async () => {
    await writeFile(join(tmp, "map-provider.mjs"), mapModule);
    const { lines, ctx } = recording();
    const registry = ProviderRegistry.withBuiltins();
    const ok = await registry.createStorage(
      storageBlock('storage "map" {\n  plugin = "./map-provider.mjs"\n  label = "x"\n}'),
      ctx,
    );
    expect((ok.backend as unknown as { label: string }).label).toBe("x");
    expect(ok.ha).toBeUndefined();
    expect(lines).toEqual([
      expect.stringMatching(/^warn: storage "map" \(.*server\.hcl:4:3\): is only for tests$/),
    ]);

    const missing = await providerError(
      registry.createStorage(storageBlock('storage "map" {\n  plugin = "./map-provider.mjs"\n}'), ctx),
    );
    expect(missing).toMatchObject({ code: "invalid_options", field: "label" });
    expect(missing.message).toMatch(
      /^storage "map" \(.*server\.hcl:2:1\): `label` must be set: a name for the store$/,
    );
    const typo = await providerError(
      registry.createStorage(
        storageBlock('storage "map" {\n  plugin = "./map-provider.mjs"\n  label = "x"\n  lable = "y"\n}'),
        ctx,
      ),
    );
    expect(typo.message).toMatch(
      /server\.hcl:5:3\): `lable` is not a storage "map" setting .* did you mean `label`\?/,
    );
  });

  it("the same module registered as a built-in answers the same, with the same messages", async () => {
    const url = pathToFileURL(join(tmp, "map-provider.mjs")).href;
    const mod = (await import(url)) as { storageProvider: ProviderModule<unknown> };
    const registry = new ProviderRegistry().registerStorage(mod.storageProvider as never);
    const { ctx } = recording();
    const missing = await providerError(registry.createStorage(storageBlock('storage "mapstore" {}'), ctx));
    expect(missing).toMatchObject({ code: "invalid_options", field: "label" });
    expect(missing.message).toMatch(
      /^storage "mapstore" \(.*server\.hcl:2:1\): `label` must be set: a name for the store$/,
    );
    const built = await registry.createStorage(storageBlock('storage "mapstore" { label = "y" }'), ctx);
    expect((built.backend as unknown as { label: string }).label).toBe("y");
    // The config check reads the block with the same module and reader, building nothing.
    const problems = await checkProviderBlock(
      "storage",
      storageBlock('storage "mapstore" {\n  lable = "y"\n}'),
      {
        registry,
        env: {},
      },
    );
    expect(problems.map((p) => [p.setting, p.message])).toEqual([
      ["lable", 'storage "mapstore": unknown setting `lable` — did you mean `label`?'],
    ]);
  });

  it("a built-in module's create() that returns the wrong shape is a provider failure, not a plugin's", async () => {
    const registry = new ProviderRegistry().registerStorage({
      type: "broken",
      description: "returns no list()",
      create: () => ({ ...mapBackend(), list: undefined }) as never,
    });
    const err = await providerError(
      registry.createStorage(storageBlock('storage "broken" {}'), recording().ctx),
    );
    expect(err.code).toBe("provider_failed");
    expect(err.message).toMatch(
      /the storage "broken" module's create\(\) is not a storage backend: method list\(prefix\)/,
    );
  });

  it("a plugin's provider export with the wrong shape is plugin_invalid naming what is wrong", async () => {
    await writeFile(
      join(tmp, "bad-provider.mjs"),
      'export const sealProvider = { type: "x", description: "d" };\n',
    );
    const block: SealBlock = { type: "x", options: { plugin: "./bad-provider.mjs" }, disabled: false };
    const err = await providerError(ProviderRegistry.withBuiltins().createSeal(block, recording().ctx));
    expect(err).toMatchObject({ code: "plugin_invalid", field: "plugin" });
    expect(err.message).toMatch(
      /plugin "\.\/bad-provider\.mjs" sealProvider is not a provider module: method create\(config, env, context\) is missing/,
    );
  });

  it("a seal plugin's module builds through the same checks as a factory's seal", async () => {
    await writeFile(
      join(tmp, "seal-provider.mjs"),
      'export default { type: "half", description: "d", create: () => ({ type: "half", autoUnseal: true }) };\n',
    );
    const block: SealBlock = { type: "half", options: { plugin: "./seal-provider.mjs" }, disabled: false };
    const err = await providerError(ProviderRegistry.withBuiltins().createSeal(block, recording().ctx));
    expect(err).toMatchObject({ code: "plugin_invalid", field: "plugin" });
    expect(err.message).toMatch(
      /the object from plugin "\.\/seal-provider\.mjs" default\.create\(\) is not a seal: `supportsSealWrap` must be a boolean .*extend BaseSeal/,
    );
  });
});

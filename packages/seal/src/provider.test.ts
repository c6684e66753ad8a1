import { describe, expect, it } from "vitest";
import { SealConfigError } from "./errors.js";
import {
  fieldIssues,
  type ProviderIssue,
  type ProviderSettings,
  type SealProvider,
  type SealProviderContext,
  shamirSealProvider,
  staticSealProvider,
} from "./provider.js";
import { ShamirSeal } from "./shamir-seal.js";
import { StaticKeySeal } from "./static-key-seal.js";

const KEY_HEX = "11".repeat(32);

/**
 * A host's reader reduced to what these modules use: strings and unknown settings; throws while
 * creating, collects while checking (the server's reader is tested with the registry).
 */
function context(config: Record<string, unknown>, collect = false) {
  const issues: ProviderIssue[] = [];
  const warnings: string[] = [];
  const used = new Set<string>();
  const error = (field: string, message: string) =>
    Object.assign(new Error(`\`${field}\` ${message}`), { field });
  const problem = (field: string, message: string) => {
    if (!collect) throw error(field, message);
    issues.push({ field, message: `\`${field}\` ${message}` });
  };
  const settings = {
    string(key: string) {
      used.add(key);
      const v = config[key];
      if (v === undefined || v === "") return undefined;
      if (typeof v !== "string") return problem(key, "must be a string");
      return v;
    },
    boolean: () => undefined,
    integer: () => undefined,
    ignore() {},
    problem,
    error,
    finish() {
      for (const k of Object.keys(config)) if (!used.has(k)) problem(k, "is not a setting");
    },
    issues,
  } as ProviderSettings;
  const ctx: SealProviderContext = {
    logger: { debug() {}, info() {}, warn() {}, error() {} },
    warn: (m: string) => void warnings.push(m),
    settings,
  };
  return { ctx, warnings, issues };
}

async function check(p: SealProvider, config: Record<string, unknown>) {
  const { ctx, issues } = context(config, true);
  const own = (await p.check?.(config, {}, ctx)) ?? [];
  return [...issues, ...own];
}

describe("the module shape", () => {
  it.each([shamirSealProvider, staticSealProvider])(
    "$type: type, description, settings, check and create",
    (p) => {
      expect(p.type).toMatch(/^[a-z0-9]+$/);
      expect(p.description.length).toBeGreaterThan(10);
      expect(Array.isArray(p.settings)).toBe(true);
      expect(typeof p.check).toBe("function");
      expect(typeof p.create).toBe("function");
    },
  );

  it("fieldIssues puts the setting in front of a package's own message", () => {
    expect(fieldIssues([{ field: "pin", message: "must be set" }])).toEqual([
      { field: "pin", message: "`pin`: must be set" },
    ]);
  });
});

describe("shamir", () => {
  it("takes no settings", async () => {
    expect(await shamirSealProvider.create({}, {}, context({}).ctx)).toBeInstanceOf(ShamirSeal);
    expect(() => shamirSealProvider.create({ x: 1 }, {}, context({ x: 1 }).ctx)).toThrow(
      /`x` is not a setting/,
    );
    expect(await check(shamirSealProvider, { x: 1 })).toEqual([
      { field: "x", message: "`x` is not a setting" },
    ]);
  });
});

describe("static", () => {
  it("builds from key and key_id, warning loudly through the host", async () => {
    const { ctx, warnings } = context({ key: KEY_HEX, key_id: "dev-1" });
    const seal = await staticSealProvider.create({ key: KEY_HEX, key_id: "dev-1" }, {}, ctx);
    expect(seal).toBeInstanceOf(StaticKeySeal);
    expect(seal.keyId()).toBe("dev-1");
    expect(warnings).toEqual([expect.stringMatching(/^THE STATIC SEAL IS FOR DEVELOPMENT AND TESTS ONLY/)]);
  });

  it("without settings the key comes from the environment", async () => {
    const env = { BULWARK_STATIC_SEAL_KEY: KEY_HEX, BULWARK_STATIC_SEAL_KEY_ID: "env-1" };
    expect((await staticSealProvider.create({}, env, context({}).ctx)).keyId()).toBe("env-1");
    expect(() => staticSealProvider.create({}, {}, context({}).ctx)).toThrow(SealConfigError);
  });

  it("current_key and current_key_id come together; a bad key is found without building the seal for use", async () => {
    expect(() => staticSealProvider.create({ key: KEY_HEX }, {}, context({ key: KEY_HEX }).ctx)).toThrow(
      /`current_key_id` must be set with current_key/,
    );
    expect(await check(staticSealProvider, { current_key_id: "a" })).toEqual([
      {
        field: "current_key",
        message: expect.stringMatching(/^`current_key` must be set with current_key_id/),
      },
    ]);
    expect(await check(staticSealProvider, { current_key: "short", current_key_id: "a" })).toEqual([
      { field: "current_key", message: expect.stringMatching(/^`current_key` /) },
    ]);
    // A key of the wrong type is the reader's problem alone: no second "must be set with" about it.
    expect(await check(staticSealProvider, { current_key: 5, current_key_id: "a" })).toEqual([
      { field: "current_key", message: "`current_key` must be a string" },
    ]);
    expect(await check(staticSealProvider, { current_key: KEY_HEX, current_key_id: "a" })).toEqual([]);
    expect(
      await check(staticSealProvider, { previous_key: KEY_HEX, current_key: KEY_HEX, current_key_id: "a" }),
    ).toEqual([{ field: "previous_key_id", message: expect.stringMatching(/come together/) }]);
    // Bulwark's earlier spellings still work.
    expect(await check(staticSealProvider, { key: KEY_HEX, key_id: "a" })).toEqual([]);
    expect(await check(staticSealProvider, {})).toEqual([]);
  });

  it("takes OpenBao's settings: BAO_STATIC_SEAL_* override the block, and the previous key still decrypts", async () => {
    const old = await staticSealProvider.create(
      { current_key: "11".repeat(32), current_key_id: "k1" },
      {},
      context({ current_key: "11".repeat(32), current_key_id: "k1" }).ctx,
    );
    await old.init();
    const blob = await old.encrypt(new TextEncoder().encode("root key"));
    const cfg = { current_key: "22".repeat(32), current_key_id: "k2" };
    const env = { BAO_STATIC_SEAL_PREVIOUS_KEY: "11".repeat(32), BAO_STATIC_SEAL_PREVIOUS_KEY_ID: "k1" };
    const rotated = await staticSealProvider.create(cfg, env, context(cfg).ctx);
    await rotated.init();
    expect(rotated.keyId()).toBe("k2");
    expect(new TextDecoder().decode(await rotated.decrypt(blob))).toBe("root key");
    const overridden = await staticSealProvider.create(
      cfg,
      { BAO_STATIC_SEAL_CURRENT_KEY_ID: "k9" },
      context(cfg).ctx,
    );
    expect(overridden.keyId()).toBe("k9");
  });
});

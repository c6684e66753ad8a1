import type { ProviderSettings, StorageProviderContext } from "@bulwark/storage";
import { describe, expect, it } from "vitest";
import { MemoryBackend } from "./memory-backend.js";
import { memoryStorageProvider } from "./provider.js";

function context(config: Record<string, unknown>): StorageProviderContext {
  const used = new Set<string>();
  const error = (field: string, message: string) =>
    Object.assign(new Error(`\`${field}\` ${message}`), { field });
  const settings = {
    integer(key: string, min = Number.MIN_SAFE_INTEGER) {
      used.add(key);
      const v = config[key];
      if (typeof v === "number" && v < min) throw error(key, `must be at least ${min}, found ${v}`);
      return typeof v === "number" ? v : undefined;
    },
    boolean: (key: string) => void used.add(key),
    ignore: (keys: readonly string[]) => {
      for (const k of keys) used.add(k);
    },
    error,
    finish() {
      for (const k of Object.keys(config)) if (!used.has(k)) throw error(k, "is not a setting");
    },
    issues: [],
  } as unknown as ProviderSettings;
  return { logger: { debug() {}, info() {}, warn() {}, error() {} }, warn() {}, settings };
}

describe("memoryStorageProvider", () => {
  it("serves inmem and memory; Vault's inmem is not HA by default", () => {
    expect(memoryStorageProvider).toMatchObject({ type: "inmem", aliases: ["memory"], haByDefault: false });
  });

  it("builds a MemoryBackend with max_value_size", async () => {
    const config = { max_value_size: 10, ha_enabled: true, cluster_addr: "x" };
    const backend = await memoryStorageProvider.create(config, {}, context(config));
    expect(backend).toBeInstanceOf(MemoryBackend);
    await expect(backend.put({ key: "k", value: new Uint8Array(11) })).rejects.toThrow(/too large/);
    expect(() =>
      memoryStorageProvider.create({ max_value_size: 0 }, {}, context({ max_value_size: 0 })),
    ).toThrow(/`max_value_size` must be at least 1/);
    expect(() => memoryStorageProvider.create({ size: 1 }, {}, context({ size: 1 }))).toThrow(
      /`size` is not a setting/,
    );
  });
});

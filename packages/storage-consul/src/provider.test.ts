import type { ProviderSettings, StorageProviderContext } from "@bulwark/storage";
import { describe, expect, it } from "vitest";
import { ConsulBackend } from "./backend.js";
import { CONSUL_CONFIG_KEYS } from "./config.js";
import { consulStorageProvider } from "./provider.js";

function context() {
  const warnings: Array<[string, string | undefined]> = [];
  const ctx: StorageProviderContext = {
    logger: { debug() {}, info() {}, warn() {}, error() {} },
    warn: (message, field) => void warnings.push([message, field]),
    // The consul module reads its settings with its own parser, not the host's reader.
    settings: {} as ProviderSettings,
  };
  return { ctx, warnings };
}

describe("consulStorageProvider", () => {
  it("has the module shape: HA on by default, Vault's consul settings listed", () => {
    expect(consulStorageProvider).toMatchObject({
      type: "consul",
      haByDefault: true,
      settings: CONSUL_CONFIG_KEYS,
    });
  });

  it("check names each setting at fault, without connecting", async () => {
    const issues = await consulStorageProvider.check?.({ session_ttl: "fast" }, {}, context().ctx);
    expect(issues).toEqual([{ field: "session_ttl", message: expect.stringMatching(/^`session_ttl`: /) }]);
  });

  it("create warns about Vault's service keys through the host, naming each (ha_enabled is the host's)", async () => {
    const { ctx, warnings } = context();
    const backend = await consulStorageProvider.create(
      { address: "127.0.0.1:1", service: "vault", ha_enabled: "true" },
      {},
      ctx,
    );
    expect(backend).toBeInstanceOf(ConsulBackend);
    expect(warnings).toEqual([["`service` has no effect in Bulwark (ignored)", "service"]]);
    await backend.close?.();
  });
});

import type { ProviderSettings, SealProviderContext } from "@bulwark/seal";
import { describe, expect, it } from "vitest";
import { pkcs11SealProvider } from "./provider.js";

const SOFTHSM_LIB = "/usr/lib/softhsm/libsofthsm2.so";
const ctx: SealProviderContext = {
  logger: { debug() {}, info() {}, warn() {}, error() {} },
  warn() {},
  // The pkcs11 module reads its settings with its own parser, not the host's reader.
  settings: {} as ProviderSettings,
};

describe("pkcs11SealProvider", () => {
  it("has the module shape; it claims nothing (CloudHSM's module claims its blocks)", () => {
    expect(pkcs11SealProvider.type).toBe("pkcs11");
    expect(pkcs11SealProvider.claims).toBeUndefined();
    expect(pkcs11SealProvider.settings).toEqual(
      expect.arrayContaining(["lib", "pin", "key_label", "token_label"]),
    );
  });

  it("builds an uninitialised PKCS#11 seal from Vault's settings", async () => {
    const seal = await pkcs11SealProvider.create(
      { lib: SOFTHSM_LIB, token_label: "t", pin: "1234", key_label: "k" },
      {},
      ctx,
    );
    expect(seal.type).toBe("pkcs11");
    await seal.finalize();
  });

  it("check names each setting at fault", async () => {
    const issues = await pkcs11SealProvider.check?.({ lib: SOFTHSM_LIB, key_label: "k", pinn: "1" }, {}, ctx);
    expect(issues).toEqual(
      expect.arrayContaining([{ field: "pinn", message: expect.stringMatching(/^`pinn`: /) }]),
    );
  });
});

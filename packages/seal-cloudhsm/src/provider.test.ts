import type { ProviderSettings, SealProviderContext } from "@bulwark/seal";
import { describe, expect, it } from "vitest";
import { cloudHsmSealProvider, isCloudHsmLibrary } from "./provider.js";

const CLOUDHSM_LIB = "/opt/cloudhsm/lib/libcloudhsm_pkcs11.so";
const ctx: SealProviderContext = {
  logger: { debug() {}, info() {}, warn() {}, error() {} },
  warn() {},
  // The CloudHSM module reads its settings with its own parser, not the host's reader.
  settings: {} as ProviderSettings,
};

describe("cloudHsmSealProvider", () => {
  it("has the module shape and claims pkcs11 blocks", () => {
    expect(cloudHsmSealProvider).toMatchObject({ type: "cloudhsm", claims: { type: "pkcs11" } });
    expect(cloudHsmSealProvider.settings).toEqual(expect.arrayContaining(["lib", "pin", "key_label"]));
  });

  it("claims a pkcs11 block by its library: BULWARK_HSM_LIB, else VAULT_HSM_LIB, else the block's lib (Vault's rule)", () => {
    const when = cloudHsmSealProvider.claims?.when;
    if (when === undefined) throw new Error("no claim");
    expect(when({ lib: CLOUDHSM_LIB }, {})).toBe(true);
    expect(when({ lib: ` ${CLOUDHSM_LIB} ` }, {})).toBe(true);
    expect(when({ lib: "libcloudhsm_pkcs11.so" }, {})).toBe(true);
    expect(when({ lib: "/usr/lib/softhsm/libsofthsm2.so" }, {})).toBe(false);
    expect(when({}, { BULWARK_HSM_LIB: CLOUDHSM_LIB })).toBe(true);
    expect(when({}, { VAULT_HSM_LIB: CLOUDHSM_LIB })).toBe(true);
    expect(
      when({}, { BULWARK_HSM_LIB: "/usr/lib/softhsm/libsofthsm2.so", VAULT_HSM_LIB: CLOUDHSM_LIB }),
    ).toBe(false);
    expect(when({ lib: "/usr/lib/softhsm/libsofthsm2.so" }, { VAULT_HSM_LIB: CLOUDHSM_LIB })).toBe(true);
    expect(when({ lib: CLOUDHSM_LIB }, { VAULT_HSM_LIB: "/usr/lib/softhsm/libsofthsm2.so" })).toBe(false);
    // An empty variable is unset, as everywhere.
    expect(when({ lib: CLOUDHSM_LIB }, { BULWARK_HSM_LIB: " " })).toBe(true);
    expect(when({}, {})).toBe(false);
    expect(isCloudHsmLibrary(5)).toBe(false);
    expect(isCloudHsmLibrary("/opt/cloudhsm/lib/libcloudhsm_pkcs11.so.bak")).toBe(false);
  });

  it("a claimed pkcs11 block builds the CloudHSM profile and keeps the type pkcs11", async () => {
    const seal = await cloudHsmSealProvider.create(
      { lib: CLOUDHSM_LIB, slot: "2305843009213693953", pin: "vault_user:Password1", key_label: "vault_key" },
      {},
      ctx,
    );
    expect(seal.type).toBe("pkcs11");
    expect((seal as unknown as { profile: string }).profile).toBe("cloudhsm");
  });

  it("check names the setting at fault without touching an HSM", async () => {
    const issues = await cloudHsmSealProvider.check?.({ pin: "nocolon", key_label: "k" }, {}, ctx);
    expect(issues).toEqual(
      expect.arrayContaining([{ field: "pin", message: expect.stringMatching(/^`pin`: /) }]),
    );
  });
});

/**
 * `seal "cloudhsm" { … }` as a provider module (see `SealProvider` in `@bulwark/seal`), which also
 * claims Vault's way of configuring CloudHSM: a `seal "pkcs11"` block whose library is CloudHSM's.
 * Such a block gets the CloudHSM profile (HSM-generated IVs, user:password PIN, cluster health) and
 * its seal keeps the type "pkcs11", so the stored seal configuration does not change.
 */

import { fieldIssues, type ProviderConfig, type ProviderEnv, type SealProvider } from "@bulwark/seal";
import { pickSetting } from "@bulwark/settings";
import { createCloudHsmSeal } from "./cloudhsm-seal.js";
import { CLOUDHSM_CONFIG_KEYS, checkCloudHsmConfig } from "./config.js";

/** CloudHSM Client SDK 5's PKCS#11 library, by file name (its default path is /opt/cloudhsm/lib/). */
export function isCloudHsmLibrary(lib: unknown): boolean {
  return typeof lib === "string" && /(^|\/)libcloudhsm_pkcs11\.so$/.test(lib.trim());
}

/**
 * Whether a `seal "pkcs11"` block is CloudHSM's: by the library the pkcs11 seal will load, chosen
 * by the same rule (Vault's: `BULWARK_HSM_LIB`, then `VAULT_HSM_LIB`, override the block's `lib`).
 */
function isCloudHsmBlock(config: ProviderConfig, env: ProviderEnv): boolean {
  const lib = pickSetting({
    key: "lib",
    block: config.lib,
    env,
    variables: ["BULWARK_HSM_LIB", "VAULT_HSM_LIB"],
    role: "overrides",
  });
  return isCloudHsmLibrary(lib?.value);
}

export const cloudHsmSealProvider: SealProvider = {
  type: "cloudhsm",
  description:
    "AWS CloudHSM (SDK 5) auto-unseal: Vault's pkcs11 settings plus cluster_id, region, user, password; also serves seal \"pkcs11\" blocks whose lib is CloudHSM's",
  settings: CLOUDHSM_CONFIG_KEYS,
  claims: { type: "pkcs11", when: isCloudHsmBlock },
  check(config, env) {
    return fieldIssues(checkCloudHsmConfig(config, env));
  },
  create(config, env, { logger }) {
    return createCloudHsmSeal({ ...config, logger }, env);
  },
};

/**
 * `seal "pkcs11" { … }` as a provider module (see `SealProvider` in `@bulwark/seal`). A block whose
 * library is AWS CloudHSM's is claimed by `@bulwark/seal-cloudhsm`'s module before this one is asked.
 */
import { fieldIssues, type SealProvider } from "@bulwark/seal";
import { checkPkcs11Config, PKCS11_CONFIG_KEYS } from "./config.js";
import { createPkcs11Seal } from "./pkcs11-seal.js";

export const pkcs11SealProvider: SealProvider = {
  type: "pkcs11",
  description: "PKCS#11 HSM auto-unseal (Vault's pkcs11 settings; VAULT_HSM_* / BULWARK_HSM_*)",
  settings: PKCS11_CONFIG_KEYS,
  check(config, env) {
    return fieldIssues(checkPkcs11Config(config, env));
  },
  create(config, env) {
    return createPkcs11Seal(config, env);
  },
};

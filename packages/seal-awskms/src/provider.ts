/** `seal "awskms" { … }` as a provider module (see `SealProvider` in `@bulwark/seal`). */
import { fieldIssues, type SealProvider } from "@bulwark/seal";
import { createAwsKmsSeal } from "./awskms-seal.js";
import { AWSKMS_CONFIG_KEYS, checkAwsKmsSealConfig } from "./options.js";

export const awsKmsSealProvider: SealProvider = {
  type: "awskms",
  description: "AWS KMS auto-unseal (Vault's awskms settings; AWSKMS_* / VAULT_AWSKMS_*)",
  settings: AWSKMS_CONFIG_KEYS,
  check(config, env) {
    return fieldIssues(checkAwsKmsSealConfig(config, env));
  },
  create(config, env) {
    return createAwsKmsSeal(config, env);
  },
};

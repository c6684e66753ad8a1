import type { EnvLike } from "./secret.js";

/**
 * Environment versus block, one rule (Vault's, as go-kms-wrapping's wrappers implement it):
 *
 * - A provider's own variables (`AWSKMS_WRAPPER_KEY_ID`, `VAULT_AWSKMS_SEAL_KEY_ID`,
 *   `BULWARK_…`) **override** the setting in the block, the first non-empty one of the list
 *   winning; `disallow_env_vars = true` in the block turns every one of them off.
 * - General-purpose variables that a provider only takes as a default (`AWS_REGION`, the AWS
 *   SDK's own; `CONSUL_HTTP_ADDR`) **fill in** a setting the block leaves unset; the block wins.
 *   `disallow_env_vars` turns them off too.
 *
 * A variable that is empty (or only whitespace) counts as unset, as an empty setting does; a set
 * variable's value is returned as written.
 */
export type EnvironmentRole = "overrides" | "fills-in";

export interface SettingSource<V> {
  /** The value: the block's as written, or the variable's text. */
  value: V | string;
  /** Where it came from: the block key, or the variable's name (for error messages). */
  from: string;
  fromEnvironment: boolean;
}

export interface PickSettingInput<V> {
  /** The setting's key in the block (`kms_key_id`). */
  key: string;
  /** The block's value; `undefined`, `null` and `""` mean "not set". */
  block: V | undefined | null;
  env: EnvLike;
  /** Variables for this setting, highest precedence first. */
  variables: readonly string[];
  role: EnvironmentRole;
  /** The block's `disallow_env_vars`: no variable is read. */
  disallowEnv?: boolean | undefined;
}

/** The first non-empty variable of `names` in `env`, with its name. */
export function firstVariable(
  env: EnvLike,
  names: readonly string[],
): { name: string; value: string } | undefined {
  for (const name of names) {
    const value = env[name];
    if (value !== undefined && value.trim() !== "") return { name, value };
  }
  return undefined;
}

/** Applies the rule above to one setting; `undefined` when neither the block nor a variable sets it. */
export function pickSetting<V>(input: PickSettingInput<V>): SettingSource<V> | undefined {
  const fromBlock =
    input.block === undefined || input.block === null || input.block === ""
      ? undefined
      : { value: input.block, from: input.key, fromEnvironment: false };
  const variable = input.disallowEnv === true ? undefined : firstVariable(input.env, input.variables);
  const fromEnv =
    variable === undefined
      ? undefined
      : { value: variable.value, from: variable.name, fromEnvironment: true };
  return input.role === "overrides" ? (fromEnv ?? fromBlock) : (fromBlock ?? fromEnv);
}

/**
 * The plugin's entry point. The bulwark server imports this module for
 * `seal "keyfile" { plugin = "@acme/bulwark-seal-keyfile" ... }` and builds the seal with
 * `sealProvider`, the same provider module shape as its built-in seals (`SealProvider` from
 * `@bulwark/seal`): `create` gets the block's settings as written (strings, numbers, booleans;
 * `plugin` removed) and the process environment, and returns the seal uninitialised (the server
 * calls `init()`). `createSeal(config, env)` is the same for code that builds the seal itself (a
 * server older than provider modules looks for it too).
 */
import { type Seal, SealConfigError, type SealProvider } from "@bulwark/seal";
import { KeyFileSeal, type KeyFileSealOptions } from "./key-file-seal.js";

export { KeyFileSeal, type KeyFileSealOptions, keyIdOf } from "./key-file-seal.js";

/** Environment variables read when the block leaves the setting out (env wins over nothing, config wins over env). */
export const KEY_FILE_ENV = "KEYFILE_SEAL_KEY_FILE";
export const PREVIOUS_KEY_FILES_ENV = "KEYFILE_SEAL_PREVIOUS_KEY_FILES";

const SETTINGS = ["key_file", "previous_key_files", "strict_permissions"] as const;

function text(config: Record<string, unknown>, field: string): string | undefined {
  const v = config[field];
  if (v === undefined) return undefined;
  if (typeof v !== "string") throw new SealConfigError(field, `must be a string, got ${typeof v}`);
  return v.trim() === "" ? undefined : v.trim();
}

/** `"a.key, b.key"` or an HCL list `["a.key", "b.key"]`. */
function fileList(value: unknown, field: string): string[] {
  if (value === undefined) return [];
  const items = typeof value === "string" ? value.split(",") : value;
  if (!Array.isArray(items) || !items.every((i) => typeof i === "string")) {
    throw new SealConfigError(field, 'must be a comma-separated string or a list of paths, e.g. ["old.key"]');
  }
  return items.map((i: string) => i.trim()).filter((i) => i !== "");
}

export function createSeal(
  config: Record<string, unknown>,
  env: Record<string, string | undefined> = process.env,
): Seal {
  // An unknown setting is most likely a typo: say so now instead of ignoring it.
  for (const key of Object.keys(config)) {
    if (!(SETTINGS as readonly string[]).includes(key)) {
      throw new SealConfigError(key, `is not a keyfile seal setting (known: ${SETTINGS.join(", ")})`);
    }
  }
  const keyFile = text(config, "key_file") ?? env[KEY_FILE_ENV]?.trim();
  if (keyFile === undefined || keyFile === "") {
    throw new SealConfigError(
      "key_file",
      `is not set: name the key file in the block (key_file = "/etc/bulwark/seal.key") or in ${KEY_FILE_ENV}`,
    );
  }
  // HCL gives booleans; Vault configs often quote them ("false"): accept both.
  const rawStrict = config.strict_permissions;
  const strict = rawStrict === "true" ? true : rawStrict === "false" ? false : rawStrict;
  if (strict !== undefined && typeof strict !== "boolean") {
    throw new SealConfigError("strict_permissions", "must be true or false");
  }
  const options: KeyFileSealOptions = {
    keyFile,
    previousKeyFiles: fileList(
      config.previous_key_files ?? env[PREVIOUS_KEY_FILES_ENV],
      "previous_key_files",
    ),
  };
  if (strict !== undefined) options.strictPermissions = strict;
  return new KeyFileSeal(options);
}

/** The provider module the server builds `seal "keyfile"` blocks with. */
export const sealProvider: SealProvider = {
  type: "keyfile",
  description:
    "an AES-256-GCM key encryption key read from a file (key_file; previous_key_files after a rotation)",
  settings: SETTINGS,
  create: (config, env) => createSeal(config, env),
};

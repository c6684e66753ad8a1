/**
 * `storage "file" { path = "…" }` as a provider module (see `StorageProvider` in
 * `@bulwark/storage`): Vault's file backend settings, read the same way when checking a config and
 * when building the backend.
 */
import { type ProviderSettings, type StorageProvider, VAULT_CLUSTER_KEYS } from "@bulwark/storage";
import { FileBackend } from "./file-backend.js";

function readSettings(settings: ProviderSettings): { path: string; fsync: boolean | undefined } {
  const path = settings.string("path", true, 'the directory that holds the data, e.g. path = "./data"');
  if (typeof path === "string" && path.includes("\0")) settings.problem("path", "must not contain NUL bytes");
  const fsync = settings.boolean("fsync");
  // Read here so it counts as known; the host decides on HA for every backend alike.
  settings.boolean("ha_enabled");
  settings.ignore(VAULT_CLUSTER_KEYS, "there is no cluster port");
  settings.finish();
  return { path, fsync };
}

export const fileStorageProvider: StorageProvider = {
  type: "file",
  description: "files in a directory, Vault's layout (path)",
  haByDefault: false,
  settings: ["path", "fsync", "ha_enabled", ...VAULT_CLUSTER_KEYS],
  check(_config, _env, { settings }) {
    readSettings(settings);
    return [];
  },
  create(_config, _env, { settings }) {
    const { path, fsync } = readSettings(settings);
    return new FileBackend(fsync === undefined ? { path } : { path, fsync });
  },
};

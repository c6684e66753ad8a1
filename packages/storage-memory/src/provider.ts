/**
 * `storage "inmem" {}` (also `"memory"`) as a provider module (see `StorageProvider` in
 * `@bulwark/storage`): process memory, lost on exit.
 */
import { type ProviderSettings, type StorageProvider, VAULT_CLUSTER_KEYS } from "@bulwark/storage";
import { MemoryBackend } from "./memory-backend.js";

function readSettings(settings: ProviderSettings): { maxValueSize: number | undefined } {
  const maxValueSize = settings.integer("max_value_size", 1);
  settings.boolean("ha_enabled");
  settings.ignore(VAULT_CLUSTER_KEYS, "there is no cluster port");
  settings.finish();
  return { maxValueSize };
}

export const memoryStorageProvider: StorageProvider = {
  type: "inmem",
  aliases: ["memory"],
  description: "process memory, lost on exit (max_value_size; ha_enabled)",
  // Vault's `inmem` is not HA; `ha_enabled = true` turns on the in-process lock (tests).
  haByDefault: false,
  settings: ["max_value_size", "ha_enabled", ...VAULT_CLUSTER_KEYS],
  check(_config, _env, { settings }) {
    readSettings(settings);
    return [];
  },
  create(_config, _env, { settings }) {
    const { maxValueSize } = readSettings(settings);
    return new MemoryBackend(maxValueSize === undefined ? {} : { maxValueSize });
  },
};

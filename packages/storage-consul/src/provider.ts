/**
 * `storage "consul" { … }` as a provider module (see `StorageProvider` in `@bulwark/storage`), and
 * `createConsulBackend`, the same for code that builds a backend without the server.
 */
import { fieldIssues, type StorageProvider } from "@bulwark/storage";
import { ConsulBackend } from "./backend.js";
import {
  CONSUL_CONFIG_KEYS,
  type ConsulBackendOptions,
  checkConsulConfig,
  parseConsulConfig,
} from "./config.js";

export const consulStorageProvider: StorageProvider = {
  type: "consul",
  description: "Consul KV with session-lock HA (Vault's consul settings)",
  haByDefault: true,
  settings: CONSUL_CONFIG_KEYS,
  check(config, env) {
    return fieldIssues(checkConsulConfig(config, env));
  },
  create(config, env, { warn }) {
    const parsed = parseConsulConfig(config, env);
    for (const key of parsed.ignored) {
      // `ha_enabled` is every backend's setting, which the host reads.
      if (key !== "ha_enabled") warn(`\`${key}\` has no effect in Bulwark (ignored)`, key);
    }
    return new ConsulBackend(parsed.options);
  },
};

/**
 * Builds a `ConsulBackend` from a parsed `storage "consul" { … }` block (Vault's setting names:
 * `address`, `path`, `token`, `session_ttl`, …) or from `ConsulBackendOptions`. `CONSUL_HTTP_ADDR`
 * and `CONSUL_HTTP_TOKEN` in `env` apply when the config sets no address or token. Invalid
 * settings throw `ConsulConfigError` naming the setting. Vault's service-registration keys are
 * accepted and ignored (see `parseConsulConfig` to learn which were present).
 */
export function createConsulBackend(
  config: Record<string, unknown> | ConsulBackendOptions = {},
  env: Record<string, string | undefined> = process.env,
): ConsulBackend {
  return new ConsulBackend(parseConsulConfig(config, env).options);
}

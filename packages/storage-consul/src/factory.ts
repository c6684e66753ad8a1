import { ConsulBackend } from "./backend.js";
import { type ConsulBackendOptions, parseConsulConfig } from "./config.js";

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

export { CONSUL_TRANSACTION_LIMITS, ConsulBackend, MAX_VALUE_BYTES } from "./backend.js";
export {
  CONSUL_CONFIG_KEYS,
  type ConsulBackendOptions,
  ConsulConfigError,
  type ConsulConfigIssue,
  checkConsulConfig,
  IGNORED_VAULT_KEYS,
  type ParsedConsulConfig,
  parseConsulConfig,
} from "./config.js";
export { formatDuration, parseDurationMs } from "./duration.js";
export { type ConsulLock, SESSION_NAME } from "./lock.js";
export { consulStorageProvider, createConsulBackend } from "./provider.js";

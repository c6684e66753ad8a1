/**
 * `@bulwark/server`'s embedding API: start a server from config files or in dev mode
 * (`startServer`, `runUntilSignal`), load or parse a Vault config (`loadConfig`, `parseConfig` +
 * `finalizeConfig`), the provider registry seal and storage plugins are loaded through, the HTTP
 * pieces the dev server is made of (`startHttpServer`, `buildApp`, `createRootToken`, `mountKv`,
 * the logger), and `main`, the `bulwark` CLI (what bin/bulwark.mjs runs). The HCL reader is
 * `@bulwark/hcl`; tokens, policies, ACL and the KV engines are `@bulwark/vault`.
 */

export type { Io } from "./cli/output.js";
export { main } from "./cli/program.js";
export { ConfigError, type ConfigProblem } from "./config/errors.js";
export {
  type ConfigFragment,
  finalizeConfig,
  type LoadConfigOptions,
  loadConfig,
  parseConfig,
} from "./config/load.js";
export type {
  HttpServerOptions,
  ListenerConfig,
  ProviderBlock,
  RunningServer,
  SealBlock,
  ServerConfig,
} from "./contracts.js";
export {
  type BuildAppOptions,
  buildApp,
  createRootToken,
  mountKv,
  startHttpServer,
} from "./http/server.js";
export { type CreateLoggerOptions, coreLogger, createLogger } from "./logging.js";
export {
  type BulwarkServer,
  type DevCredentials,
  holdSignalsWhileStarting,
  runUntilSignal,
  type StartServerOptions,
  startServer,
} from "./main.js";
export { ProviderError, type ProviderErrorCode } from "./registry/errors.js";
export {
  type CreateProvidersOptions,
  createProviders,
  type LazyProvider,
  type PluginFactory,
  PROVIDER_EXPORTS,
  type ProviderContext,
  ProviderRegistry,
  type Providers,
  SEAL_PLUGIN_EXPORTS,
  STORAGE_PLUGIN_EXPORTS,
} from "./registry/registry.js";

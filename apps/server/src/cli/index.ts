export { BOOLEAN_FLAGS, normaliseArgs } from "./argv.js";
export {
  ApiClient,
  ApiError,
  type ApiResponse,
  type ClientOptions,
  ConnectionError,
  DEFAULT_ADDRESS,
} from "./client.js";
export { MIGRATION_LOCK, type MigrateOptions, runMigrate } from "./migrate.js";
export { type Format, type Io, UsageError } from "./output.js";
export { buildProgram, main } from "./program.js";

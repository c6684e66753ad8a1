/**
 * `@bulwark/settings` — the settings kernel every provider and the server read their blocks with:
 * Go's boolean words, Go durations (parse and format), `env://`/`file://`/`string://` secret references, one
 * configuration error carrying the field, and one environment-versus-block rule. The grammar of
 * each is documented once, in its module and in the package README.
 */
export {
  describeValue,
  FALSE_WORDS,
  parseBool,
  parseOptionalBool,
  TRUE_WORDS,
  tryParseBool,
} from "./boolean.js";
export {
  DURATION_HELP,
  formatGoDuration,
  formatGoDurationNs,
  MAX_DURATION_NS,
  parseDuration,
  parseGoDuration,
  parseOptionalDuration,
  tryParseDuration,
  tryParseDurationNs,
} from "./duration.js";
export {
  type EnvironmentRole,
  firstVariable,
  type PickSettingInput,
  pickSetting,
  type SettingSource,
} from "./precedence.js";
export {
  fieldIssues,
  type ProviderClaim,
  type ProviderConfig,
  type ProviderContext,
  type ProviderEnv,
  type ProviderIssue,
  type ProviderLogger,
  type ProviderModule,
  type ProviderSettings,
} from "./provider.js";
export {
  ENV_REFERENCE,
  type EnvLike,
  FILE_REFERENCE,
  isSecretReference,
  parseSecret,
  type ReadSecretFile,
  resolveSecret,
  STRING_REFERENCE,
} from "./secret.js";
export {
  convertSettingsErrors,
  SETTINGS_ERROR_CODES,
  SettingsError,
  type SettingsErrorCode,
} from "./settings-error.js";

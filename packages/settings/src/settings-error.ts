import { CodedError, type CodedErrorOptions } from "@bulwark/errors";

/**
 * Stable codes of {@link SettingsError} (domain "settings"):
 * - `invalid_boolean`: not one of Go's `strconv.ParseBool` words nor a JSON/HCL boolean;
 * - `invalid_duration`: not a duration in the kernel's grammar, negative, or too large;
 * - `unresolved_reference`: an `env://` or `file://` reference that could not be resolved;
 * - `invalid_value`: any other value a setting refuses.
 */
export const SETTINGS_ERROR_CODES = [
  "invalid_boolean",
  "invalid_duration",
  "unresolved_reference",
  "invalid_value",
] as const;

export type SettingsErrorCode = (typeof SETTINGS_ERROR_CODES)[number];

/**
 * The one configuration error of the settings kernel: which setting (`field`), what is wrong and
 * how to fix it (`detail`). `message` is `invalid setting \`<field>\`: <detail>`.
 *
 * Providers that have a domain error of their own (`SealConfigError`, `ConsulConfigError`, …)
 * convert it at their boundary with {@link convertSettingsErrors}: the field and the detail carry
 * over unchanged.
 */
export class SettingsError extends CodedError<SettingsErrorCode> {
  static override readonly kind: string = "@bulwark/settings:SettingsError";
  override name = "SettingsError";
  /** The setting as the user wrote it (`generate_key`, `BULWARK_HSM_PIN`, `listener.tls_disable`). */
  readonly field: string;
  /** What is wrong and what to write instead, without the field. */
  readonly detail: string;

  constructor(code: SettingsErrorCode, field: string, detail: string, options?: CodedErrorOptions) {
    super("settings", code, `invalid setting \`${field}\`: ${detail}`, options);
    this.field = field;
    this.detail = detail;
  }
}

/**
 * Runs `fn`; a {@link SettingsError} it throws is rethrown as `convert(error)` (the provider's own
 * configuration error, built from `error.field` and `error.detail`, with the SettingsError as its
 * cause). Anything else passes through untouched.
 */
export function convertSettingsErrors<T>(fn: () => T, convert: (error: SettingsError) => Error): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof SettingsError) throw convert(err);
    throw err;
  }
}

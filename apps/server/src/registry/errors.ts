import { CodedError, type CodedErrorOptions } from "@bulwark/errors";

/** Why a storage backend or seal could not be built from its config block (domain "registry"). */
export const PROVIDER_ERROR_CODES = [
  /** The block names a type that is neither built in nor given a `plugin`. */
  "unknown_type",
  /** A setting of the block is missing or wrong (the message names it and its position). */
  "invalid_options",
  /** The `plugin` module could not be found or imported. */
  "plugin_not_found",
  /** The plugin module has no factory, or its factory returned something that is not a Seal/Backend. */
  "plugin_invalid",
  /** The factory threw for another reason. */
  "provider_failed",
] as const;

export type ProviderErrorCode = (typeof PROVIDER_ERROR_CODES)[number];

/**
 * A `storage`/`seal` block could not be turned into a provider. The message starts with the block
 * and where it is written (`seal "pkcs11" (vault.hcl:12:3): …`) and says how to fix it.
 */
export class ProviderError extends CodedError<ProviderErrorCode> {
  static override readonly kind: string = "@bulwark/server:ProviderError";
  override name = "ProviderError";
  /** The offending setting, when one is to blame. */
  readonly field: string | undefined;

  constructor(code: ProviderErrorCode, message: string, options?: CodedErrorOptions & { field?: string }) {
    super("registry", code, message, options);
    this.field = options?.field;
  }
}

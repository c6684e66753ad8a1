/** Why a storage backend or seal could not be built from its config block. */
export type ProviderErrorCode =
  /** The block names a type that is neither built in nor given a `plugin`. */
  | "unknown_type"
  /** A setting of the block is missing or wrong (the message names it and its position). */
  | "invalid_options"
  /** The `plugin` module could not be found or imported. */
  | "plugin_not_found"
  /** The plugin module has no factory, or its factory returned something that is not a Seal/Backend. */
  | "plugin_invalid"
  /** The factory threw for another reason. */
  | "provider_failed";

/**
 * A `storage`/`seal` block could not be turned into a provider. The message starts with the block
 * and where it is written (`seal "pkcs11" (vault.hcl:12:3): …`) and says how to fix it.
 */
export class ProviderError extends Error {
  override name = "ProviderError";
  readonly code: ProviderErrorCode;
  /** The offending setting, when one is to blame. */
  readonly field: string | undefined;

  constructor(code: ProviderErrorCode, message: string, options?: { cause?: unknown; field?: string }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.field = options?.field;
  }
}

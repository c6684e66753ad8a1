/**
 * The provider module shape: how a seal or a storage backend is made from its config block
 * (`seal "<type>" { … }`, `storage "<type>" { … }`). Every provider the server can build — built
 * in or a plugin — is one of these, held in the server's table of providers by `type`.
 * `@bulwark/seal` names it `SealProvider` (`ProviderModule<Seal>`), `@bulwark/storage`
 * `StorageProvider` (`ProviderModule<Backend>` plus `haByDefault`). It is declared here, once,
 * because it is about reading a block: both packages sit above this kernel.
 *
 * A module never sees the config file: it gets the block's settings as written (strings, numbers,
 * booleans, lists; `plugin` removed), the process environment, and a context from the host that
 * reads settings with Vault's weak typing, logs, and puts the block's name and file position in
 * front of its warnings. An error with a `field` property is reported at that setting's line.
 */

/** The block's settings as written, `plugin` removed. */
export type ProviderConfig = Record<string, unknown>;

/** The process environment (settings a block leaves out may come from variables). */
export type ProviderEnv = Record<string, string | undefined>;

/** Structural logger (the core's `Logger` fits). Messages never carry secrets. */
export interface ProviderLogger {
  debug(msg: string): void;
  info(msg: string): void;
  warn(msg: string): void;
  error(msg: string): void;
}

/** One problem of a block, found by a config check: the setting to blame and the whole message about it. */
export interface ProviderIssue {
  field?: string;
  /** The text after the block's name, naming the setting and the fix, e.g. "`key_label`: must be set". */
  message: string;
}

/**
 * The block's settings as the host reads them: Vault's weak typing (`"true"`, `1`), errors that
 * name the setting and its file position, and `finish()` for settings nobody asked for ("did you
 * mean"). While creating, the first problem throws; while checking, every problem is collected and
 * the getters return `undefined` for a bad or missing setting.
 */
export interface ProviderSettings {
  string(key: string, required: true, hint?: string): string;
  string(key: string, required?: false, hint?: string): string | undefined;
  boolean(key: string): boolean | undefined;
  integer(key: string, min?: number): number | undefined;
  /** Vault settings accepted without effect: each one present becomes a warning saying `why`. */
  ignore(keys: readonly string[], why: string): void;
  /** Reports a problem with `field`: thrown while creating, collected while checking. */
  problem(field: string, message: string): void;
  /** The error `problem` would throw, for a provider to throw itself. */
  error(field: string, message: string): Error;
  /** Reports every setting no getter asked for. */
  finish(): void;
  /**
   * The problems recorded so far while checking (always empty while creating). The host reports
   * them with whatever `check` returns, so `check` returns only the problems it finds itself.
   */
  readonly issues: readonly ProviderIssue[];
}

/** What the host gives `check` and `create`. */
export interface ProviderContext {
  readonly logger: ProviderLogger;
  /** Warns about the block (or one of its settings): the host puts the block's name and position in front. */
  warn(message: string, field?: string): void;
  readonly settings: ProviderSettings;
}

/**
 * A module that also serves blocks of another type, decided by their settings (the CloudHSM seal
 * takes `seal "pkcs11"` blocks whose library is CloudHSM's). Asked before the type's own module.
 */
export interface ProviderClaim {
  readonly type: string;
  when(config: ProviderConfig, env: ProviderEnv): boolean;
}

/** A provider module that builds `T` (a seal, a storage backend) from its block. */
export interface ProviderModule<T> {
  /** The block label it serves: `seal "<type>"`, `storage "<type>"`. */
  readonly type: string;
  /** One line for help output. */
  readonly description: string;
  /** Other labels for the same module (Vault's `inmem` is also `memory`). */
  readonly aliases?: readonly string[];
  /** Every setting the block accepts, for "did you mean" in the config check. */
  readonly settings?: readonly string[];
  readonly claims?: ProviderClaim;
  /**
   * Every problem of the block, without connecting to an HSM, a KMS or a storage service and
   * without creating files (the config check). Without it, the block is checked when it is built.
   */
  check?(
    config: ProviderConfig,
    env: ProviderEnv,
    context: ProviderContext,
  ): ProviderIssue[] | Promise<ProviderIssue[]>;
  /** The object, built from the block (a seal is returned not initialised: the store calls `init()`). */
  create(config: ProviderConfig, env: ProviderEnv, context: ProviderContext): T | Promise<T>;
}

/** A package's own check results (`{ field, message }` without the field) as the module's issues. */
export function fieldIssues(issues: ReadonlyArray<{ field: string; message: string }>): ProviderIssue[] {
  return issues.map((i) => ({ field: i.field, message: `\`${i.field}\`: ${i.message}` }));
}

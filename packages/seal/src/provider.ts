/**
 * The provider module: how a seal is made from a `seal "<type>" { … }` block. Every seal the
 * server can build — the built-in ones and plugins alike — is one of these, held in the server's
 * table of providers by `type`. `@bulwark/storage` declares the same shape for storage backends
 * (`StorageProvider`); the two differ only in what `create` returns (and storage's `haByDefault`).
 * The shape is declared in each package rather than shared so that a seal package needs nothing
 * from storage.
 *
 * A module never sees the config file: it gets the block's settings as written (strings, numbers,
 * booleans, lists; `plugin` removed), the process environment, and a context from the host that
 * reads settings with Vault's weak typing, logs, and puts the block's name and file position in
 * front of its warnings. A `SealConfigError` (or any error with a `field`) is reported at that
 * setting's line.
 *
 * This file also holds the two seals of this package as modules: `shamir` and `static`.
 */
import { SealConfigError } from "./errors.js";
import type { Seal } from "./seal.js";
import { ShamirSeal } from "./shamir-seal.js";
import { StaticKeySeal } from "./static-key-seal.js";

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
export interface SealProviderContext {
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

export interface SealProvider {
  /** The block label it serves: `seal "<type>"`. */
  readonly type: string;
  /** One line for help output. */
  readonly description: string;
  /** Other labels for the same module. */
  readonly aliases?: readonly string[];
  /** Every setting the block accepts, for "did you mean" in the config check. */
  readonly settings?: readonly string[];
  readonly claims?: ProviderClaim;
  /**
   * Every problem of the block, without connecting to an HSM or KMS (the config check). Without
   * it, the block is checked when it is built.
   */
  check?(
    config: ProviderConfig,
    env: ProviderEnv,
    context: SealProviderContext,
  ): ProviderIssue[] | Promise<ProviderIssue[]>;
  /** The seal, not initialised: the store calls `init()`. */
  create(config: ProviderConfig, env: ProviderEnv, context: SealProviderContext): Seal | Promise<Seal>;
}

/** A package's own check results (`{ field, message }` without the field) as the module's issues. */
export function fieldIssues(issues: ReadonlyArray<{ field: string; message: string }>): ProviderIssue[] {
  return issues.map((i) => ({ field: i.field, message: `\`${i.field}\`: ${i.message}` }));
}

// --------------------------------------------------------------------------- shamir

export const shamirSealProvider: SealProvider = {
  type: "shamir",
  description: "key shares (the default without a seal block)",
  settings: [],
  check(_config, _env, { settings }) {
    settings.finish();
    return [];
  },
  create(_config, _env, { settings }) {
    settings.finish();
    return new ShamirSeal();
  },
};

// --------------------------------------------------------------------------- static

const STATIC_WARNING =
  "THE STATIC SEAL IS FOR DEVELOPMENT AND TESTS ONLY. Its key sits in the config or the environment of this " +
  "process, next to the data it protects: it adds no protection against anyone who can read this server. " +
  "Use pkcs11 or awskms in production.";
const KEY_WITHOUT_ID = "must be set with key_id (64 hex characters; `openssl rand -hex 32`)";
const ID_WITHOUT_KEY = "must be set with key: a name for the key, changed whenever the key changes";

/** A SealConfigError's message without its `invalid seal configuration \`field\`: ` prefix. */
function sealMessage(err: SealConfigError): string {
  const prefix = `invalid seal configuration \`${err.field}\`: `;
  return err.message.startsWith(prefix) ? err.message.slice(prefix.length) : err.message;
}

export const staticSealProvider: SealProvider = {
  type: "static",
  description: "a fixed AES key from the config or BULWARK_STATIC_SEAL_KEY — development and tests only",
  settings: ["key", "key_id"],
  async check(_config, _env, { settings }) {
    const issues: ProviderIssue[] = [];
    const problem = (field: string, message: string) =>
      issues.push({ field, message: `\`${field}\` ${message}` });
    const key = settings.string("key");
    const keyId = settings.string("key_id");
    settings.finish();
    // A key or key_id of the wrong type is already reported (by the reader): nothing to pair.
    if (settings.issues.some((i) => i.field === "key" || i.field === "key_id")) return issues;
    // Neither: the key comes from the environment, which the seal reads when it is built.
    if (key === undefined && keyId !== undefined) problem("key", KEY_WITHOUT_ID);
    else if (keyId === undefined && key !== undefined) problem("key_id", ID_WITHOUT_KEY);
    else if (key !== undefined && keyId !== undefined) {
      try {
        await new StaticKeySeal({ key, keyId }).finalize();
      } catch (err) {
        if (!(err instanceof SealConfigError)) throw err;
        problem(err.field === "options" ? "key" : err.field, sealMessage(err));
      }
    }
    return issues;
  },
  create(_config, env, { settings, warn }) {
    const key = settings.string("key");
    const keyId = settings.string("key_id");
    settings.finish();
    warn(STATIC_WARNING);
    if (key === undefined && keyId === undefined) return StaticKeySeal.fromEnv(env);
    if (key === undefined) throw settings.error("key", KEY_WITHOUT_ID);
    if (keyId === undefined) throw settings.error("key_id", ID_WITHOUT_KEY);
    return new StaticKeySeal({ key, keyId });
  },
};

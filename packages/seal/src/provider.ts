/**
 * The provider module: how a seal is made from a `seal "<type>" { … }` block. Every seal the
 * server can build — the built-in ones and plugins alike — is one of these, held in the server's
 * table of providers by `type`. The shape is `ProviderModule` from `@bulwark/settings`, which
 * `@bulwark/storage`'s `StorageProvider` shares (adding `haByDefault`).
 *
 * A module never sees the config file: it gets the block's settings as written (strings, numbers,
 * booleans, lists; `plugin` removed), the process environment, and a context from the host that
 * reads settings with Vault's weak typing, logs, and puts the block's name and file position in
 * front of its warnings. A `SealConfigError` (or any error with a `field`) is reported at that
 * setting's line.
 *
 * This file also holds the two seals of this package as modules: `shamir` and `static`.
 */
import type { ProviderContext, ProviderIssue, ProviderModule } from "@bulwark/settings";
import { SealConfigError } from "./errors.js";
import type { Seal } from "./seal.js";
import { ShamirSeal } from "./shamir-seal.js";
import { StaticKeySeal } from "./static-key-seal.js";

/** What the host gives a seal module's `check` and `create`. */
export type SealProviderContext = ProviderContext;

/** A seal's provider module: `create` returns the seal, not initialised (the store calls `init()`). */
export type SealProvider = ProviderModule<Seal>;

export {
  fieldIssues,
  type ProviderClaim,
  type ProviderConfig,
  type ProviderEnv,
  type ProviderIssue,
  type ProviderLogger,
  type ProviderSettings,
} from "@bulwark/settings";

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

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
import type { ProviderContext, ProviderEnv, ProviderIssue, ProviderModule } from "@bulwark/settings";
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
const KEY_WITHOUT_ID = "must be set with current_key_id (64 hex characters; `openssl rand -hex 32`)";
const ID_WITHOUT_KEY = "must be set with current_key: a name for the key, changed whenever the key changes";
const PREVIOUS_UNPAIRED = "previous_key and previous_key_id come together: give both, or neither";

/**
 * OpenBao's `seal "static"` settings and environment (go-kms-wrapping `wrappers/static`):
 * `current_key`/`current_key_id`, optionally `previous_key`/`previous_key_id` (still read, never
 * written); `BAO_STATIC_SEAL_*` override the block, as in OpenBao. Bulwark's earlier spellings
 * `key`/`key_id` are read too (OpenBao's win when both are set).
 */
interface StaticSettings {
  key: string | undefined;
  keyId: string | undefined;
  previousKey: string | undefined;
  previousKeyId: string | undefined;
}

const STATIC_ENV = {
  key: "BAO_STATIC_SEAL_CURRENT_KEY",
  keyId: "BAO_STATIC_SEAL_CURRENT_KEY_ID",
  previousKey: "BAO_STATIC_SEAL_PREVIOUS_KEY",
  previousKeyId: "BAO_STATIC_SEAL_PREVIOUS_KEY_ID",
} as const;

function readStatic(settings: ProviderContext["settings"], env: ProviderEnv): StaticSettings {
  const pick = (name: keyof typeof STATIC_ENV, block: string | undefined): string | undefined => {
    const v = env[STATIC_ENV[name]];
    return v !== undefined && v !== "" ? v : block;
  };
  const out = {
    key: pick("key", settings.string("current_key") ?? settings.string("key")),
    keyId: pick("keyId", settings.string("current_key_id") ?? settings.string("key_id")),
    previousKey: pick("previousKey", settings.string("previous_key")),
    previousKeyId: pick("previousKeyId", settings.string("previous_key_id")),
  };
  settings.finish();
  return out;
}

function staticSeal(s: StaticSettings): StaticKeySeal {
  const key = s.key as string;
  const keyId = s.keyId as string;
  if (s.previousKey === undefined || s.previousKeyId === undefined || s.previousKeyId === keyId)
    return new StaticKeySeal({ key, keyId });
  return new StaticKeySeal({ key, keyId, previousKeys: [{ keyId: s.previousKeyId, key: s.previousKey }] });
}

/** A SealConfigError's message without its `invalid seal configuration \`field\`: ` prefix. */
function sealMessage(err: SealConfigError): string {
  const prefix = `invalid seal configuration \`${err.field}\`: `;
  return err.message.startsWith(prefix) ? err.message.slice(prefix.length) : err.message;
}

/** The setting a StaticKeySeal option error is about. */
function staticField(field: string): string {
  if (field === "keyId") return "current_key_id";
  if (field.startsWith("previousKeys")) return field.endsWith(".keyId") ? "previous_key_id" : "previous_key";
  return "current_key";
}

export const staticSealProvider: SealProvider = {
  type: "static",
  description:
    "a fixed AES key from the config or BAO_STATIC_SEAL_CURRENT_KEY (OpenBao's static seal) — development and tests only",
  settings: ["current_key", "current_key_id", "previous_key", "previous_key_id", "key", "key_id"],
  async check(_config, env, { settings }) {
    const issues: ProviderIssue[] = [];
    const problem = (field: string, message: string) =>
      issues.push({ field, message: `\`${field}\` ${message}` });
    const s = readStatic(settings, env);
    // A setting of the wrong type is already reported (by the reader): nothing to pair.
    if (settings.issues.length > 0) return issues;
    if ((s.previousKey === undefined) !== (s.previousKeyId === undefined))
      problem(s.previousKey === undefined ? "previous_key" : "previous_key_id", PREVIOUS_UNPAIRED);
    // Neither: the key comes from Bulwark's environment variables, read when the seal is built.
    if (s.key === undefined && s.keyId !== undefined) problem("current_key", KEY_WITHOUT_ID);
    else if (s.keyId === undefined && s.key !== undefined) problem("current_key_id", ID_WITHOUT_KEY);
    else if (s.key !== undefined && s.keyId !== undefined && issues.length === 0) {
      try {
        await staticSeal(s).finalize();
      } catch (err) {
        if (!(err instanceof SealConfigError)) throw err;
        problem(err.field === "options" ? "current_key" : staticField(err.field), sealMessage(err));
      }
    }
    return issues;
  },
  create(_config, env, { settings, warn }) {
    const s = readStatic(settings, env);
    warn(STATIC_WARNING);
    if (s.key === undefined && s.keyId === undefined) return StaticKeySeal.fromEnv(env);
    if (s.key === undefined) throw settings.error("current_key", KEY_WITHOUT_ID);
    if (s.keyId === undefined) throw settings.error("current_key_id", ID_WITHOUT_KEY);
    if ((s.previousKey === undefined) !== (s.previousKeyId === undefined))
      throw settings.error(
        s.previousKey === undefined ? "previous_key" : "previous_key_id",
        PREVIOUS_UNPAIRED,
      );
    return staticSeal(s);
  },
};

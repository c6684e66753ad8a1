import {
  SealConfigError,
  type SealConfigIssue,
  SealConfigProblems,
  sealConfigIssue,
  sealSetting,
} from "@bulwark/seal";
import { type EnvLike, parseOptionalBool, pickSetting, resolveSecret } from "@bulwark/settings";
import {
  CKF_RW_SESSION,
  CKF_SERIAL_SESSION,
  CKM_AES_CBC,
  CKM_AES_CBC_PAD,
  CKM_AES_GCM,
  CKM_RSA_PKCS,
  CKM_RSA_PKCS_OAEP,
  CKM_SHA256_HMAC,
  DEFAULT_MAX_DIRECT_BYTES,
  OAEP_HASHES,
  type Pkcs11Mechanism,
  type RsaOaepHash,
} from "./constants.js";

/** One PKCS#11 call, reported to {@link Pkcs11SealOptions.trace}. Never carries data, keys or PINs. */
export interface Pkcs11TraceEvent {
  /** `C_Login`, `C_Encrypt`, … */
  call: string;
  /** 0 (CKR_OK) or the CK_RV the call failed with; -1 when it failed without a CK_RV. */
  rv: number;
  /** Wall time of the call in milliseconds (async calls: until the promise settled). */
  ms: number;
}

/**
 * Typed options of {@link Pkcs11Seal}. Names follow Vault's `seal "pkcs11"` keys in camelCase;
 * the last group are capability knobs for HSM profiles (CloudHSM) and tests.
 */
export interface Pkcs11SealOptions {
  /** Absolute path of the PKCS#11 library (`lib`). */
  lib: string;
  /** Slot id (`slot`): a bigint, a safe integer, or a decimal / `0x` hex string (64-bit). */
  slot?: bigint | number | string | undefined;
  /** Token label (`token_label`). */
  tokenLabel?: string | undefined;
  /** Token serial number (`serial`): picks one of several tokens with the same label. */
  serial?: string | undefined;
  /** User PIN (`pin`). CloudHSM: `"<crypto-user>:<password>"`. */
  pin: string;
  /** Label of the encryption key (`key_label`); a new label = key rotation. */
  keyLabel?: string | undefined;
  /** `CKA_ID` of the encryption key (`key_id`): hex (optional `0x`) or bytes. */
  keyId?: string | Uint8Array | undefined;
  /** Label of the HMAC key (`hmac_key_label`), required with `CKM_AES_CBC_PAD`. */
  hmacKeyLabel?: string | undefined;
  /** `CKA_ID` of the HMAC key (`hmac_key_id`). */
  hmacKeyId?: string | Uint8Array | undefined;
  /** Key label for blobs that name no key (Vault < 0.10.1 data), `default_key_label`. */
  defaultKeyLabel?: string | undefined;
  /** HMAC key label for blobs that name no HMAC key, `default_hmac_key_label`. */
  defaultHmacKeyLabel?: string | undefined;
  /** `0x1087` AES-GCM, `0x1085` AES-CBC-PAD + HMAC, `0x0009` RSA-OAEP; default from the key type. */
  mechanism?: number | string | undefined;
  /** Only `0x0251` (CKM_SHA256_HMAC). */
  hmacMechanism?: number | string | undefined;
  /** OAEP hash (`rsa_oaep_hash`), default `sha256` as in Vault; SoftHSM needs `sha1`. */
  rsaOaepHash?: RsaOaepHash | undefined;
  /** RSA-OAEP: encrypt with the public key in this process instead of the HSM (`rsa_encrypt_local`). */
  rsaEncryptLocal?: boolean | undefined;
  /** Create the key(s) when the label is not found (`generate_key`). */
  generateKey?: boolean | undefined;
  /** Accepted for Vault compatibility; sessions are always read-write. */
  forceRwSession?: boolean | undefined;
  /** Operation sessions in parallel (`max_parallel`); default: the token's limit − 1, at most 16. */
  maxParallel?: number | undefined;

  /** Values above this many bytes are envelope-encrypted (HSM-wrapped data key). Default 4096. */
  maxDirectBytes?: number | undefined;
  /** The HSM writes its own GCM IV into the IV buffer (CloudHSM): pass zeros, read it back. */
  hsmGeneratedIv?: boolean | undefined;
  /** `ulIvBits` of CK_GCM_PARAMS; default IV length × 8 (CloudHSM samples pass 0). */
  gcmIvBits?: number | undefined;
  /** Flags for C_OpenSession; CKF_SERIAL_SESSION | CKF_RW_SESSION are always set. */
  sessionFlags?: number | undefined;
  /** RSA modulus size for `generateKey` with RSA-OAEP. Default 2048. */
  rsaModulusBits?: number | undefined;
  /** Retries after a lost session/device (each after a reconnect). Default 3. */
  maxRetries?: number | undefined;
  /** First retry delay in ms (doubles per retry, with jitter). Default 25. */
  retryBaseMs?: number | undefined;
  /** Observe every PKCS#11 call (names and return values only). */
  trace?: ((event: Pkcs11TraceEvent) => void) | undefined;
}

/** Validated, normalised configuration (what the seal runs with). */
export interface ResolvedPkcs11Config {
  readonly lib: string;
  readonly slot: bigint | undefined;
  readonly tokenLabel: string | undefined;
  readonly serial: string | undefined;
  readonly pin: string;
  readonly keyLabel: string | undefined;
  readonly keyId: Buffer | undefined;
  readonly hmacKeyLabel: string | undefined;
  readonly hmacKeyId: Buffer | undefined;
  readonly defaultKeyLabel: string | undefined;
  readonly defaultHmacKeyLabel: string | undefined;
  readonly mechanism: Pkcs11Mechanism | undefined;
  readonly hmacMechanism: number;
  readonly rsaOaepHash: RsaOaepHash;
  readonly rsaEncryptLocal: boolean;
  readonly generateKey: boolean;
  readonly maxParallel: number | undefined;
  readonly maxDirectBytes: number;
  readonly hsmGeneratedIv: boolean;
  readonly gcmIvBits: number | undefined;
  readonly sessionFlags: number;
  readonly rsaModulusBits: number;
  readonly maxRetries: number;
  readonly retryBaseMs: number;
  readonly trace: ((event: Pkcs11TraceEvent) => void) | undefined;
}

const UINT64_MAX = (1n << 64n) - 1n;

function fail(field: string, message: string): never {
  throw new SealConfigError(field, message);
}

function optString(field: string, v: unknown): string | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "string") fail(field, `must be a string, got ${typeof v}`);
  return v === "" ? undefined : v;
}

/** Slot ids are CK_ULONG (64-bit on x86-64: CloudHSM uses 0x2000000000000001), so they are bigints. */
export function parseSlot(field: string, v: unknown): bigint | undefined {
  if (v === undefined || v === null || v === "") return undefined;
  let n: bigint;
  if (typeof v === "bigint") n = v;
  else if (typeof v === "number") {
    // A JSON/HCL number above 2^53 has already lost digits: the slot would silently be another one.
    if (!Number.isSafeInteger(v)) {
      fail(
        field,
        `${v} is not an exact integer; write large slot ids as a string, e.g. slot = "${String(v)}"`,
      );
    }
    n = BigInt(v);
  } else if (typeof v === "string") {
    const s = v.trim();
    if (/^0x[0-9a-f]+$/i.test(s)) n = BigInt(s);
    else if (/^[0-9]+$/.test(s)) n = BigInt(s);
    else
      fail(
        field,
        `${JSON.stringify(v)} is not a slot id; use decimal ("2305843009213693953") or hex ("0x2000000000000001")`,
      );
  } else fail(field, `must be a string or a number, got ${typeof v}`);
  if (n < 0n || n > UINT64_MAX) fail(field, `${n} is outside the 64-bit slot id range`);
  return n;
}

/** `CKA_ID` as hex (optional 0x, as in Vault's `key_id = "0x3333…"`) or bytes. */
export function parseHexId(field: string, v: unknown): Buffer | undefined {
  if (v === undefined || v === null || v === "") return undefined;
  if (v instanceof Uint8Array) {
    if (v.length === 0) return undefined;
    return Buffer.from(v);
  }
  if (typeof v !== "string") fail(field, `must be a hex string, got ${typeof v}`);
  const hex = v.trim().replace(/^0x/i, "");
  if (!/^([0-9a-f]{2})+$/i.test(hex)) {
    fail(field, `${JSON.stringify(v)} is not an even number of hex digits (CKA_ID, e.g. "0x3132" or "3132")`);
  }
  return Buffer.from(hex, "hex");
}

const MECHANISM_ALIASES: Readonly<Record<string, number>> = {
  CKM_AES_GCM,
  AES_GCM: CKM_AES_GCM,
  CKM_AES_CBC_PAD,
  AES_CBC_PAD: CKM_AES_CBC_PAD,
  CKM_AES_CBC,
  AES_CBC: CKM_AES_CBC,
  CKM_RSA_PKCS_OAEP,
  RSA_PKCS_OAEP: CKM_RSA_PKCS_OAEP,
  CKM_RSA_PKCS,
  RSA_PKCS: CKM_RSA_PKCS,
  CKM_SHA256_HMAC,
  SHA256_HMAC: CKM_SHA256_HMAC,
};

function parseNumberish(field: string, v: unknown): number | undefined {
  if (v === undefined || v === null || v === "") return undefined;
  if (typeof v === "number") {
    if (!Number.isSafeInteger(v) || v < 0) fail(field, `${v} is not a mechanism number`);
    return v;
  }
  if (typeof v !== "string") fail(field, `must be a string like "0x1087" or a number, got ${typeof v}`);
  const s = v.trim();
  if (/^0x[0-9a-f]+$/i.test(s)) return Number.parseInt(s.slice(2), 16);
  if (/^[0-9]+$/.test(s)) return Number.parseInt(s, 10);
  const alias = MECHANISM_ALIASES[s.toUpperCase()];
  if (alias !== undefined) return alias;
  return fail(
    field,
    `${JSON.stringify(v)} is not a mechanism; use "0x1087" (AES-GCM), "0x1085" (AES-CBC-PAD + HMAC) or "0x0009" (RSA-OAEP)`,
  );
}

/** Vault's `mechanism` values, limited to the ones that are safe to seal with. */
export function parseMechanism(field: string, v: unknown): Pkcs11Mechanism | undefined {
  const m = parseNumberish(field, v);
  if (m === undefined) return undefined;
  if (m === CKM_AES_GCM || m === CKM_AES_CBC_PAD || m === CKM_RSA_PKCS_OAEP) return m;
  if (m === CKM_AES_CBC) {
    fail(
      field,
      "0x1082 (CKM_AES_CBC without padding) is not supported; use 0x1085 (CKM_AES_CBC_PAD) with an HMAC key, or 0x1087 (AES-GCM)",
    );
  }
  if (m === CKM_RSA_PKCS) {
    fail(
      field,
      "0x0001 (CKM_RSA_PKCS, PKCS#1 v1.5) is not supported because it is open to padding-oracle attacks; use 0x0009 (RSA-OAEP)",
    );
  }
  return fail(
    field,
    `0x${m.toString(16)} is not supported; use 0x1087 (AES-GCM), 0x1085 (AES-CBC-PAD + HMAC) or 0x0009 (RSA-OAEP)`,
  );
}

function parseHmacMechanism(field: string, v: unknown): number {
  const m = parseNumberish(field, v);
  if (m === undefined) return CKM_SHA256_HMAC;
  if (m !== CKM_SHA256_HMAC)
    fail(field, `0x${m.toString(16)} is not supported; only 0x0251 (CKM_SHA256_HMAC)`);
  return m;
}

/**
 * A boolean setting through the settings kernel (Go's ParseBool words); an empty setting is
 * unset, as everywhere in this block.
 */
function bool(field: string, v: unknown): boolean | undefined {
  return v === "" ? undefined : parseOptionalBool(field, v);
}

function parseIntField(field: string, v: unknown, min: number, max: number): number | undefined {
  if (v === undefined || v === null || v === "") return undefined;
  const n = typeof v === "string" && /^\s*[0-9]+\s*$/.test(v) ? Number(v) : v;
  if (typeof n !== "number" || !Number.isInteger(n) || n < min || n > max) {
    fail(field, `${JSON.stringify(v)} must be an integer from ${min} to ${max}`);
  }
  return n;
}

function parseOaepHash(field: string, v: unknown): RsaOaepHash {
  if (v === undefined || v === null || v === "") return "sha256";
  const s = typeof v === "string" ? v.trim().toLowerCase().replace("-", "") : v;
  if (typeof s === "string" && Object.hasOwn(OAEP_HASHES, s)) return s as RsaOaepHash;
  return fail(
    field,
    `${JSON.stringify(v)} is not supported; use sha1, sha224, sha256, sha384 or sha512 (SoftHSM: sha1)`,
  );
}

/** One problem of a seal block: the setting to fix and what to do (without the error's prefix). */

/**
 * Checks typed options and fills defaults. Runs in the constructor, so a bad configuration fails
 * at startup with the field and the fix, not at the first encrypt.
 */
export function resolveOptions(o: Pkcs11SealOptions): ResolvedPkcs11Config {
  const problems = new SealConfigProblems();
  const resolved = resolveInto(o, problems);
  problems.throwFirst();
  return resolved as ResolvedPkcs11Config;
}

/** Every problem {@link resolveOptions} finds in typed options, in the order it checks them. */
export function checkPkcs11Options(o: Pkcs11SealOptions): SealConfigError[] {
  const problems = new SealConfigProblems();
  resolveInto(o, problems);
  return problems.list;
}

function resolveInto(o: Pkcs11SealOptions, p: SealConfigProblems): ResolvedPkcs11Config | undefined {
  if (typeof o !== "object" || o === null) {
    p.add("options", "pass { lib, pin, token_label or slot, key_label }");
    return undefined;
  }
  const lib = p.run(() => optString("lib", o.lib));
  if (lib === undefined && !p.has("lib")) {
    p.add("lib", "set lib to the path of the PKCS#11 library (SoftHSM: /usr/lib/softhsm/libsofthsm2.so)");
  }
  const slot = p.run(() => parseSlot("slot", o.slot));
  const tokenLabel = p.run(() => optString("token_label", o.tokenLabel));
  const serial = p.run(() => optString("serial", o.serial));
  if (
    slot === undefined &&
    tokenLabel === undefined &&
    serial === undefined &&
    !p.has("slot", "token_label", "serial")
  ) {
    p.add("slot", "set slot or token_label (or serial) to choose the token");
  }
  if (typeof o.pin !== "string" || o.pin === "") {
    p.add("pin", "set pin (or BULWARK_HSM_PIN / VAULT_HSM_PIN; file:// and env:// references work)");
  }
  const keyLabel = p.run(() => optString("key_label", o.keyLabel));
  const keyId = p.run(() => parseHexId("key_id", o.keyId));
  if (keyLabel === undefined && keyId === undefined && !p.has("key_label", "key_id")) {
    p.add(
      "key_label",
      "set key_label (or key_id) to name the encryption key; add generate_key = true to create it",
    );
  }
  const generateKey = p.run(() => bool("generate_key", o.generateKey)) ?? false;
  if (generateKey && keyLabel === undefined && !p.has("key_label")) {
    p.add("key_label", "generate_key needs key_label: the new key is stored under that label");
  }
  const mechanism = p.run(() => parseMechanism("mechanism", o.mechanism));
  const hmacKeyLabel = p.run(() => optString("hmac_key_label", o.hmacKeyLabel));
  const hmacKeyId = p.run(() => parseHexId("hmac_key_id", o.hmacKeyId));
  if (!p.has("hmac_key_label", "hmac_key_id")) {
    if (mechanism === CKM_AES_CBC_PAD && hmacKeyLabel === undefined && hmacKeyId === undefined) {
      p.add(
        "hmac_key_label",
        "mechanism 0x1085 (AES-CBC-PAD) needs an HMAC key: set hmac_key_label (with generate_key = true to create it)",
      );
    } else if (mechanism === CKM_AES_CBC_PAD && generateKey && hmacKeyLabel === undefined) {
      p.add("hmac_key_label", "generate_key with mechanism 0x1085 needs hmac_key_label for the new HMAC key");
    }
  }
  const maxDirectBytes =
    p.run(() => parseIntField("max_direct_bytes", o.maxDirectBytes, 0, 1 << 30)) ?? DEFAULT_MAX_DIRECT_BYTES;
  const gcmIvBits = p.run(() => parseIntField("gcmIvBits", o.gcmIvBits, 0, 1024));
  const sessionFlags = p.run(() => parseIntField("sessionFlags", o.sessionFlags, 0, 0xffffffff)) ?? 0;
  if (o.trace !== undefined && typeof o.trace !== "function") p.add("trace", "must be a function");
  // Read in the order the fields are listed below, so the first problem is always the same one.
  const defaultKeyLabel = p.run(() => optString("default_key_label", o.defaultKeyLabel));
  const defaultHmacKeyLabel = p.run(() => optString("default_hmac_key_label", o.defaultHmacKeyLabel));
  const hmacMechanism = p.run(() => parseHmacMechanism("hmac_mechanism", o.hmacMechanism));
  const rsaOaepHash = p.run(() => parseOaepHash("rsa_oaep_hash", o.rsaOaepHash));
  const rsaEncryptLocal = p.run(() => bool("rsa_encrypt_local", o.rsaEncryptLocal));
  const maxParallel = p.run(() => parseIntField("max_parallel", o.maxParallel, 1, 1024));
  const hsmGeneratedIv = p.run(() => bool("hsmGeneratedIv", o.hsmGeneratedIv));
  const rsaModulusBits = p.run(() => parseIntField("rsaModulusBits", o.rsaModulusBits, 2048, 8192));
  const maxRetries = p.run(() => parseIntField("maxRetries", o.maxRetries, 0, 20));
  const retryBaseMs = p.run(() => parseIntField("retryBaseMs", o.retryBaseMs, 0, 60_000));
  if (p.list.length > 0 || lib === undefined) return undefined;
  const resolved = {
    lib,
    slot,
    tokenLabel,
    serial,
    keyLabel,
    keyId,
    hmacKeyLabel,
    hmacKeyId,
    defaultKeyLabel,
    defaultHmacKeyLabel,
    mechanism,
    hmacMechanism: hmacMechanism ?? CKM_SHA256_HMAC,
    rsaOaepHash: rsaOaepHash ?? "sha256",
    rsaEncryptLocal: rsaEncryptLocal ?? false,
    generateKey,
    maxParallel,
    maxDirectBytes,
    hsmGeneratedIv: hsmGeneratedIv ?? false,
    gcmIvBits,
    // Read-write always: CloudHSM SDK 5 refuses read-only sessions, and generate_key needs RW.
    sessionFlags: sessionFlags | CKF_SERIAL_SESSION | CKF_RW_SESSION,
    rsaModulusBits: rsaModulusBits ?? 2048,
    maxRetries: maxRetries ?? 3,
    retryBaseMs: retryBaseMs ?? 25,
    trace: o.trace,
  };
  // Not enumerable: a logged or JSON-serialised seal (its `config`) must not show the PIN.
  Object.defineProperty(resolved, "pin", { value: o.pin, enumerable: false });
  return Object.freeze(resolved as typeof resolved & { pin: string });
}

// ---------------------------------------------------------------------------------------------
// Vault-style configuration: the `seal "pkcs11" { … }` block as a string map, plus environment.

interface FieldSpec {
  /** Vault's key in the seal block. */
  vault: string;
  /** The typed option it fills. */
  option: keyof Pkcs11SealOptions;
  /** Suffix of BULWARK_HSM_* / VAULT_HSM_*; undefined = no environment variable. */
  env?: string;
}

const FIELDS: readonly FieldSpec[] = [
  { vault: "lib", option: "lib", env: "LIB" },
  { vault: "slot", option: "slot", env: "SLOT" },
  { vault: "token_label", option: "tokenLabel", env: "TOKEN_LABEL" },
  { vault: "serial", option: "serial", env: "SERIAL" },
  { vault: "pin", option: "pin", env: "PIN" },
  { vault: "key_label", option: "keyLabel", env: "KEY_LABEL" },
  { vault: "key_id", option: "keyId", env: "KEY_ID" },
  { vault: "hmac_key_label", option: "hmacKeyLabel", env: "HMAC_KEY_LABEL" },
  { vault: "hmac_key_id", option: "hmacKeyId", env: "HMAC_KEY_ID" },
  { vault: "default_key_label", option: "defaultKeyLabel", env: "DEFAULT_KEY_LABEL" },
  // Vault's own spelling of this variable is VAULT_HSM_HMAC_DEFAULT_KEY_LABEL.
  { vault: "default_hmac_key_label", option: "defaultHmacKeyLabel", env: "HMAC_DEFAULT_KEY_LABEL" },
  { vault: "mechanism", option: "mechanism", env: "MECHANISM" },
  { vault: "hmac_mechanism", option: "hmacMechanism", env: "HMAC_MECHANISM" },
  { vault: "rsa_oaep_hash", option: "rsaOaepHash", env: "RSA_OAEP_HASH" },
  { vault: "rsa_encrypt_local", option: "rsaEncryptLocal", env: "RSA_ENCRYPT_LOCAL" },
  { vault: "generate_key", option: "generateKey", env: "GENERATE_KEY" },
  { vault: "force_rw_session", option: "forceRwSession", env: "FORCE_RW_SESSION" },
  { vault: "max_parallel", option: "maxParallel", env: "MAX_PARALLEL" },
  { vault: "max_direct_bytes", option: "maxDirectBytes", env: "MAX_DIRECT_BYTES" },
];

/** Keys of a Vault seal block that the server reads (seal migration, Seal HA), not the seal. */
const SERVER_KEYS = new Set(["disabled", "name", "priority", "type"]);

const OPTION_ONLY: ReadonlySet<string> = new Set<keyof Pkcs11SealOptions>([
  "hsmGeneratedIv",
  "gcmIvBits",
  "sessionFlags",
  "rsaModulusBits",
  "maxRetries",
  "retryBaseMs",
  "trace",
]);

const STRING_OPTIONS: ReadonlyArray<keyof Pkcs11SealOptions> = [
  "pin",
  "tokenLabel",
  "serial",
  "keyLabel",
  "hmacKeyLabel",
  "defaultKeyLabel",
  "defaultHmacKeyLabel",
];

const BY_KEY = new Map<string, FieldSpec>();
for (const f of FIELDS) {
  BY_KEY.set(f.vault, f);
  BY_KEY.set(f.option, f);
}

/**
 * `file:///path` → the file's content (trailing newline trimmed); `env://NAME` → `$NAME`: the
 * settings kernel's `resolveSecret`, throwing `SealConfigError`. Kept for callers of this export.
 */
export function resolveSecretRef(field: string, value: string, env: EnvLike): string {
  return sealSetting(() => resolveSecret(field, value, env));
}

/**
 * Parses a Vault `seal "pkcs11"` block (snake_case keys, values as strings/booleans/numbers) or
 * typed {@link Pkcs11SealOptions} into options. `BULWARK_HSM_<NAME>`, then `VAULT_HSM_<NAME>`,
 * override the setting in `config` (Vault's rule). `pin` may be `file://…` or `env://…`. Unknown
 * keys are refused (a typo would otherwise silently drop a setting).
 */
export function parsePkcs11Config(
  config: Record<string, unknown> | Pkcs11SealOptions,
  env: Record<string, string | undefined> = process.env,
): Pkcs11SealOptions {
  const { options, problems } = inspectPkcs11Config(config, env);
  const first = problems[0];
  if (first !== undefined) throw first;
  return options;
}

/** Every setting a `seal "pkcs11"` block (or a typed options object) accepts. */
export const PKCS11_CONFIG_KEYS: readonly string[] = [
  ...FIELDS.map((f) => f.vault),
  ...FIELDS.map((f) => f.option),
  ...SERVER_KEYS,
  ...OPTION_ONLY,
];

/**
 * {@link parsePkcs11Config} without stopping at the first problem: the options it could read, and
 * every problem (unknown keys, a setting given twice, an unreadable pin reference) in block order.
 */
export function inspectPkcs11Config(
  config: Record<string, unknown> | Pkcs11SealOptions,
  env: Record<string, string | undefined> = process.env,
): { options: Pkcs11SealOptions; problems: SealConfigError[] } {
  const p = new SealConfigProblems();
  if (typeof config !== "object" || config === null) {
    p.add("config", "pass the seal block as an object, e.g. { lib, pin, token_label, key_label }");
    return { options: { lib: "", pin: "" }, problems: p.list };
  }
  const values = new Map<keyof Pkcs11SealOptions, unknown>();
  const seenAs = new Map<keyof Pkcs11SealOptions, string>();
  const extra: Partial<Pkcs11SealOptions> = {};
  for (const [key, value] of Object.entries(config)) {
    if (SERVER_KEYS.has(key)) continue;
    if (OPTION_ONLY.has(key)) {
      (extra as Record<string, unknown>)[key] = value;
      continue;
    }
    const spec = BY_KEY.get(key);
    if (spec === undefined) {
      p.add(key, `unknown setting; the pkcs11 seal knows ${FIELDS.map((f) => f.vault).join(", ")}`);
      continue;
    }
    const previous = seenAs.get(spec.option);
    if (previous !== undefined) {
      p.add(key, `is given twice (also as ${previous}); keep one`);
      continue;
    }
    seenAs.set(spec.option, key);
    if (value !== undefined && value !== null && value !== "") values.set(spec.option, value);
  }
  // Vault's rule (the kernel's): this seal's own variables, BULWARK_HSM_* then VAULT_HSM_*,
  // override the block ("the environment variable will take precedence over values in the
  // configuration file").
  for (const spec of FIELDS) {
    if (spec.env === undefined) continue;
    const picked = pickSetting({
      key: spec.vault,
      block: values.get(spec.option),
      env,
      variables: [`BULWARK_HSM_${spec.env}`, `VAULT_HSM_${spec.env}`],
      role: "overrides",
    });
    if (picked !== undefined) values.set(spec.option, picked.value);
  }
  // A JSON or HCL number where Vault expects a string (pin = 1234, token_label = 7).
  for (const k of STRING_OPTIONS) {
    const v = values.get(k);
    if (typeof v === "number" && Number.isSafeInteger(v)) values.set(k, String(v));
  }
  const pin = values.get("pin");
  if (typeof pin === "string") {
    const resolved = p.run(() => resolveSecret("pin", pin, env));
    // An unreadable reference is reported once, not again as a missing pin.
    values.set("pin", resolved ?? pin);
  }
  const out = { ...extra } as Record<string, unknown>;
  for (const [k, v] of values) out[k] = v;
  if (out.pin === undefined) out.pin = "";
  if (out.lib === undefined) out.lib = "";
  return { options: out as unknown as Pkcs11SealOptions, problems: p.list };
}

/**
 * Every problem of a Vault `seal "pkcs11"` block at once — what {@link parsePkcs11Config} and the
 * seal's constructor would refuse, in the order they check — as setting + message; `[]` when
 * `createPkcs11Seal` would accept it. Loads no library and contacts no HSM.
 */
export function checkPkcs11Config(
  config: Record<string, unknown> | Pkcs11SealOptions,
  env: Record<string, string | undefined> = process.env,
): SealConfigIssue[] {
  const { options, problems } = inspectPkcs11Config(config, env);
  return [...problems, ...withoutReported(checkPkcs11Options(options), problems)].map(sealConfigIssue);
}

/** `later` without the problems about a setting `earlier` already reports (its dependants). */
export function withoutReported(later: SealConfigError[], earlier: SealConfigError[]): SealConfigError[] {
  return later.filter((e) => !earlier.some((p) => p.field === e.field));
}

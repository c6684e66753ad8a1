import { AES_256_KEY_BYTES, constantTimeEqual, SecretBytes } from "@bulwark/crypto";
import {
  ABSOLUTE_OPERATION_MAXIMUM,
  ABSOLUTE_OPERATION_MINIMUM,
  MAX_TERM,
  MINIMUM_ROTATION_INTERVAL_MS,
} from "./constants.js";
import { BarrierError } from "./errors.js";
import { GoTime } from "./go-time.js";
import { base64DecodeBytes, JsonBytesWriter, type JsonNode, member, parseJson, wipeJson } from "./json.js";

/** When the barrier rotates its data-encryption key on its own (Vault's `KeyRotationConfig`). */
export interface RotationConfig {
  /** No automatic rotation at all. */
  disabled: boolean;
  /** Rotate after this many encryptions with the active term (1,000,000 ..= 3,865,470,566). */
  maxOperations: number;
  /** Rotate when the active term is older than this; 0 = never (otherwise ≥ 24 h). */
  intervalMs: number;
}

/** One term of the keyring (Vault's `Key`). */
export interface KeyringKey {
  readonly term: number;
  /** Key format version; Vault writes 1. */
  readonly version: number;
  /** The 32-byte AES-256 key. */
  readonly value: SecretBytes;
  readonly installTime: GoTime;
  /** Encryptions recorded for this term; Vault keeps a count only for the active term. */
  encryptions: number;
}

/** Input of {@link Keyring.addKey}; `value` is copied. */
export interface NewKeyringKey {
  term: number;
  value: Uint8Array | SecretBytes;
  version?: number;
  /** Missing or Go's zero time: set to now (Vault's AddKey). */
  installTime?: GoTime | Date;
  encryptions?: number;
}

/** Plain fields of a key record, as in core/master and core/upgrade/<N>. */
export interface KeyRecord {
  term: number;
  version: number;
  value: Uint8Array;
  installTime: GoTime;
  encryptions: number;
}

interface RotationState {
  disabled: boolean;
  maxOperations: number;
  /** Go `time.Duration`: nanoseconds, kept exact. */
  intervalNs: bigint;
}

const NS_PER_MS = 1_000_000n;
const UINT64_MAX = 0xffff_ffff_ffff_ffffn;
const INT64_MAX = 0x7fff_ffff_ffff_ffffn;
const INT64_MIN = -0x8000_0000_0000_0000n;
const MIN_INTERVAL_NS = BigInt(MINIMUM_ROTATION_INTERVAL_MS) * NS_PER_MS;

function invalidKeyring(message: string, cause?: unknown): BarrierError {
  return new BarrierError("invalid_keyring", message, cause === undefined ? undefined : { cause });
}

/** Vault's `KeyRotationConfig.Sanitize`: clamp to the absolute bounds instead of failing. */
function sanitize(cfg: RotationState): RotationState {
  let max = cfg.maxOperations;
  if (max === 0 || max > ABSOLUTE_OPERATION_MAXIMUM) max = ABSOLUTE_OPERATION_MAXIMUM;
  if (max < ABSOLUTE_OPERATION_MINIMUM) max = ABSOLUTE_OPERATION_MINIMUM;
  let interval = cfg.intervalNs;
  // Go keeps a negative interval and never acts on it; 0 says the same and serialises cleanly.
  if (interval < 0n) interval = 0n;
  if (interval > 0n && interval < MIN_INTERVAL_NS) interval = MIN_INTERVAL_NS;
  return { disabled: cfg.disabled, maxOperations: max, intervalNs: interval };
}

const DEFAULT_ROTATION: RotationState = {
  disabled: false,
  maxOperations: ABSOLUTE_OPERATION_MAXIMUM,
  intervalNs: 0n,
};

function checkTerm(term: number): void {
  // Terms are Go uint32s; term 0 never names a key.
  if (!Number.isInteger(term) || term < 1 || term > MAX_TERM) {
    throw new BarrierError(
      "invalid_argument",
      `key term must be an integer in [1, ${MAX_TERM}], got ${term}`,
    );
  }
}

function checkKeyBytes(what: string, bytes: Uint8Array): void {
  if (bytes.length !== AES_256_KEY_BYTES) {
    throw new BarrierError(
      "invalid_argument",
      `${what} must be ${AES_256_KEY_BYTES} bytes (AES-256), got ${bytes.length}`,
    );
  }
}

// --------------------------------------------------------------------------------------------
// Decoding helpers: Go's encoding/json rules for the fields Vault uses.

function integerOf(node: JsonNode | undefined, field: string, min: bigint, max: bigint): bigint | undefined {
  if (node === undefined || node.kind === "null") return undefined;
  // Go refuses "1.0" or "1e3" for integer fields, and strings.
  if (node.kind !== "number" || !/^-?\d+$/.test(node.text)) {
    throw invalidKeyring(`${field} must be an integer`);
  }
  const v = BigInt(node.text);
  if (v < min || v > max) throw invalidKeyring(`${field} out of range: ${node.text}`);
  return v;
}

function safeIntegerOf(
  node: JsonNode | undefined,
  field: string,
  min: bigint,
  max: bigint,
): number | undefined {
  const v = integerOf(node, field, min, max);
  if (v === undefined) return undefined;
  if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < BigInt(Number.MIN_SAFE_INTEGER)) {
    throw invalidKeyring(`${field} ${v} is beyond what this implementation counts exactly`);
  }
  return Number(v);
}

function bytesOf(node: JsonNode | undefined, field: string): Uint8Array | undefined {
  if (node === undefined || node.kind === "null") return undefined;
  if (node.kind !== "string") throw invalidKeyring(`${field} must be a base64 string`);
  try {
    return base64DecodeBytes(node.bytes);
  } catch (cause) {
    throw invalidKeyring(`${field} is not valid base64`, cause);
  }
}

function timeOf(node: JsonNode | undefined, field: string): GoTime {
  if (node === undefined || node.kind === "null") return GoTime.ZERO;
  if (node.kind !== "string") throw invalidKeyring(`${field} must be an RFC 3339 string`);
  try {
    return GoTime.parse(new TextDecoder().decode(node.bytes));
  } catch (cause) {
    throw invalidKeyring(`${field} is not a valid time`, cause);
  }
}

function booleanOf(node: JsonNode | undefined, field: string): boolean {
  if (node === undefined || node.kind === "null") return false;
  if (node.kind !== "boolean") throw invalidKeyring(`${field} must be a boolean`);
  return node.value;
}

function parseDocument(json: Uint8Array | string, what: string): JsonNode {
  const bytes = typeof json === "string" ? new TextEncoder().encode(json) : json;
  let node: JsonNode;
  try {
    node = parseJson(bytes);
  } catch (cause) {
    throw invalidKeyring(`${what} is not valid JSON`, cause);
  }
  if (node.kind !== "object") {
    wipeJson(node);
    throw invalidKeyring(`${what} must be a JSON object`);
  }
  return node;
}

function keyRecordOf(node: JsonNode, what: string): KeyRecord {
  if (node.kind !== "object") throw invalidKeyring(`${what} must be a JSON object`);
  const term = safeIntegerOf(member(node, "Term"), `${what}.Term`, 0n, BigInt(MAX_TERM)) ?? 0;
  const version = safeIntegerOf(member(node, "Version"), `${what}.Version`, INT64_MIN, INT64_MAX) ?? 0;
  const installTime = timeOf(member(node, "InstallTime"), `${what}.InstallTime`);
  const encryptions = safeIntegerOf(member(node, "encryptions"), `${what}.encryptions`, 0n, UINT64_MAX) ?? 0;
  const value = bytesOf(member(node, "Value"), `${what}.Value`) ?? new Uint8Array(0);
  return { term, version, value, installTime, encryptions };
}

function writeKeyRecord(w: JsonBytesWriter, k: KeyRecord): void {
  // Field order and names of Go's `Key` struct; `encryptions` has `omitempty`.
  w.raw(`{"Term":${k.term},"Version":${k.version},"Value":`)
    .base64String(k.value)
    .raw(`,"InstallTime":"${k.installTime.format()}"`);
  if (k.encryptions !== 0) w.raw(`,"encryptions":${k.encryptions}`);
  w.raw("}");
}

/** Go's `json.Marshal(Key)`. The caller wipes the returned bytes after use. */
export function serializeKey(key: KeyRecord): Uint8Array {
  const w = new JsonBytesWriter();
  writeKeyRecord(w, key);
  return w.finish();
}

/**
 * Parses a key record (Vault's `DeserializeKey`), e.g. the plaintext of core/master or of an
 * upgrade entry. The returned `value` is a buffer of its own; wipe it after use.
 */
export function deserializeKey(json: Uint8Array | string): KeyRecord {
  const node = parseDocument(json, "key record");
  try {
    return keyRecordOf(node, "key record");
  } finally {
    wipeJson(node);
  }
}

/**
 * The barrier's keyring (Vault's `Keyring`): the root key, every data-encryption term (old terms
 * stay so old data remains readable; the highest term is active) and the rotation policy.
 * Pure in-memory; {@link serialize} and {@link Keyring.deserialize} speak Vault's JSON exactly.
 * Owns copies of all key material; {@link zero} wipes them.
 */
export class Keyring {
  #rootKey: SecretBytes;
  readonly #keys = new Map<number, KeyringKey>();
  #activeTerm = 0;
  #rotation: RotationState = DEFAULT_ROTATION;

  /** An empty keyring protected by `rootKey` (copied; 32 bytes). */
  constructor(rootKey: Uint8Array | SecretBytes) {
    const raw = rootKey instanceof SecretBytes ? rootKey.bytes : rootKey;
    checkKeyBytes("root key", raw);
    this.#rootKey = SecretBytes.from(raw);
  }

  /**
   * Parses Vault's keyring JSON (`{"MasterKey":…,"Keys":[…],"RotationConfig":{…}}`), applying
   * Go's decoding rules (case-insensitive names, unknown fields ignored) and Vault's rotation
   * clamps. No key material passes through a JavaScript string.
   */
  static deserialize(json: Uint8Array | string): Keyring {
    const node = parseDocument(json, "keyring");
    const decoded: Uint8Array[] = [];
    try {
      const root = bytesOf(member(node, "MasterKey"), "MasterKey");
      if (root === undefined) throw invalidKeyring("keyring has no MasterKey");
      decoded.push(root);
      if (root.length !== AES_256_KEY_BYTES) {
        throw invalidKeyring(`keyring MasterKey must be ${AES_256_KEY_BYTES} bytes, got ${root.length}`);
      }
      const ring = new Keyring(root);
      const keysNode = member(node, "Keys");
      if (keysNode !== undefined && keysNode.kind !== "null" && keysNode.kind !== "array") {
        throw invalidKeyring("keyring Keys must be an array");
      }
      const items = keysNode?.kind === "array" ? keysNode.items : [];
      for (const [i, item] of items.entries()) {
        if (item.kind === "null") continue;
        const rec = keyRecordOf(item, `Keys[${i}]`);
        decoded.push(rec.value);
        if (rec.term < 1) throw invalidKeyring(`Keys[${i}].Term must be at least 1`);
        if (rec.value.length !== AES_256_KEY_BYTES) {
          throw invalidKeyring(
            `Keys[${i}].Value must be ${AES_256_KEY_BYTES} bytes, got ${rec.value.length}`,
          );
        }
        // Go decodes into a map: a repeated term replaces the earlier one.
        ring.#keys.get(rec.term)?.value.zero();
        ring.#keys.set(rec.term, {
          term: rec.term,
          version: rec.version,
          value: SecretBytes.from(rec.value),
          installTime: rec.installTime,
          encryptions: rec.encryptions,
        });
        if (rec.term > ring.#activeTerm) ring.#activeTerm = rec.term;
      }
      if (ring.#keys.size === 0) throw invalidKeyring("keyring holds no keys");
      const rc = member(node, "RotationConfig");
      if (rc !== undefined && rc.kind !== "null" && rc.kind !== "object") {
        throw invalidKeyring("keyring RotationConfig must be an object");
      }
      const present = rc !== undefined && rc.kind === "object";
      ring.#rotation = sanitize({
        disabled: present ? booleanOf(member(rc, "Disabled"), "RotationConfig.Disabled") : false,
        maxOperations: present
          ? (safeIntegerOf(
              member(rc, "MaxOperations"),
              "RotationConfig.MaxOperations",
              INT64_MIN,
              INT64_MAX,
            ) ?? 0)
          : 0,
        intervalNs: present
          ? (integerOf(member(rc, "Interval"), "RotationConfig.Interval", INT64_MIN, INT64_MAX) ?? 0n)
          : 0n,
      });
      return ring;
    } finally {
      wipeJson(node);
      for (const d of decoded) d.fill(0);
    }
  }

  /** The root key that encrypts this keyring. */
  get rootKey(): SecretBytes {
    return this.#rootKey;
  }

  /** Replaces the root key (copied) and wipes the old one. */
  setRootKey(rootKey: Uint8Array | SecretBytes): void {
    const raw = rootKey instanceof SecretBytes ? rootKey.bytes : rootKey;
    checkKeyBytes("root key", raw);
    const old = this.#rootKey;
    this.#rootKey = SecretBytes.from(raw);
    old.zero();
  }

  /** Whether `rootKey` is this keyring's root key (constant time). */
  hasRootKey(rootKey: Uint8Array): boolean {
    return constantTimeEqual(this.#rootKey.bytes, rootKey);
  }

  /** The highest installed term; 0 when the keyring is empty. */
  get activeTerm(): number {
    return this.#activeTerm;
  }

  /** The key of the active term. */
  activeKey(): KeyringKey {
    const key = this.#keys.get(this.#activeTerm);
    if (key === undefined) throw new BarrierError("invalid_keyring", "keyring holds no keys");
    return key;
  }

  /** The key of term `n`, if installed. */
  term(n: number): KeyringKey | undefined {
    return this.#keys.get(n);
  }

  /** Installed terms, ascending. */
  terms(): number[] {
    return [...this.#keys.keys()].sort((a, b) => a - b);
  }

  /**
   * Installs a term (Vault's `AddKey`). Re-adding an identical key is a no-op (returns false); a
   * different value for an installed term is refused. The highest term becomes active, and the
   * encryption counts of all other terms reset to 0.
   */
  addKey(key: NewKeyringKey): boolean {
    checkTerm(key.term);
    const raw = key.value instanceof SecretBytes ? key.value.bytes : key.value;
    checkKeyBytes(`key for term ${key.term}`, raw);
    const existing = this.#keys.get(key.term);
    if (existing !== undefined) {
      if (!existing.value.equals(raw)) {
        throw new BarrierError(
          "key_conflict",
          `conflicting key for term ${key.term} already installed: a term's key never changes; reload the keyring from storage`,
        );
      }
      return false;
    }
    let installTime = key.installTime instanceof Date ? GoTime.fromDate(key.installTime) : key.installTime;
    if (installTime === undefined || installTime.isZero()) installTime = GoTime.fromDate(new Date());
    const encryptions = key.encryptions ?? 0;
    if (!Number.isSafeInteger(encryptions) || encryptions < 0) {
      throw new BarrierError(
        "invalid_argument",
        `encryptions must be a non-negative integer, got ${encryptions}`,
      );
    }
    this.#keys.set(key.term, {
      term: key.term,
      version: key.version ?? 1,
      value: SecretBytes.from(raw),
      installTime,
      encryptions,
    });
    if (key.term > this.#activeTerm) this.#activeTerm = key.term;
    for (const [term, k] of this.#keys) if (term !== this.#activeTerm) k.encryptions = 0;
    return true;
  }

  /** Removes (and wipes) a non-active term; returns false when it was not installed. */
  removeKey(term: number): boolean {
    if (term === this.#activeTerm) {
      throw new BarrierError(
        "active_key_removal",
        `cannot remove active key (term ${term}): rotate first so another term becomes active`,
      );
    }
    const key = this.#keys.get(term);
    if (key === undefined) return false;
    key.value.zero();
    this.#keys.delete(term);
    return true;
  }

  /** The rotation policy (already clamped to Vault's bounds). */
  rotationConfig(): RotationConfig {
    const r = this.#rotation;
    return { disabled: r.disabled, maxOperations: r.maxOperations, intervalMs: Number(r.intervalNs) / 1e6 };
  }

  /** The rotation interval as Go writes it: nanoseconds. */
  get rotationIntervalNs(): bigint {
    return this.#rotation.intervalNs;
  }

  /**
   * Updates the rotation policy (fields left out keep their value), clamped the way Vault's
   * `Sanitize` does; the barrier validates strictly before it gets here. `intervalMs` must be a
   * whole number of milliseconds.
   */
  setRotationConfig(cfg: Partial<RotationConfig>): void {
    const next = { ...this.#rotation };
    if (cfg.disabled !== undefined) next.disabled = cfg.disabled;
    if (cfg.maxOperations !== undefined) {
      if (!Number.isSafeInteger(cfg.maxOperations)) {
        throw new BarrierError(
          "invalid_rotation_config",
          `maxOperations must be an integer, got ${cfg.maxOperations}`,
        );
      }
      next.maxOperations = cfg.maxOperations;
    }
    if (cfg.intervalMs !== undefined) {
      if (!Number.isSafeInteger(cfg.intervalMs)) {
        throw new BarrierError(
          "invalid_rotation_config",
          `intervalMs must be a whole number of milliseconds, got ${cfg.intervalMs}`,
        );
      }
      next.intervalNs = BigInt(cfg.intervalMs) * NS_PER_MS;
    }
    this.#rotation = sanitize(next);
  }

  /**
   * Vault's keyring JSON, byte for byte (terms ascending; Go writes them in map order). The
   * caller wipes the returned bytes after encrypting them.
   */
  serialize(): Uint8Array {
    const w = new JsonBytesWriter();
    w.raw(`{"MasterKey":`).base64String(this.#rootKey.bytes).raw(`,"Keys":`);
    const terms = this.terms();
    if (terms.length === 0) {
      w.raw("null"); // Go marshals a nil slice as null
    } else {
      w.raw("[");
      for (const [i, term] of terms.entries()) {
        const k = this.#keys.get(term) as KeyringKey;
        if (i > 0) w.raw(",");
        writeKeyRecord(w, { ...k, value: k.value.bytes });
      }
      w.raw("]");
    }
    const r = this.#rotation;
    w.raw(
      `,"RotationConfig":{"Disabled":${r.disabled},"MaxOperations":${r.maxOperations},"Interval":${r.intervalNs}}}`,
    );
    return w.finish();
  }

  /** An independent copy with its own copies of the key material. */
  clone(): Keyring {
    const c = new Keyring(this.#rootKey);
    for (const [term, k] of this.#keys) c.#keys.set(term, { ...k, value: SecretBytes.from(k.value.bytes) });
    c.#activeTerm = this.#activeTerm;
    c.#rotation = this.#rotation;
    return c;
  }

  /** Wipes the root key and every term key; the keyring is unusable afterwards. Idempotent. */
  zero(): void {
    this.#rootKey.zero();
    for (const k of this.#keys.values()) k.value.zero();
    this.#keys.clear();
    this.#activeTerm = 0;
  }
}

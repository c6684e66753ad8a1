import { createPublicKey } from "node:crypto";
import { randomBytes } from "@bulwark/crypto";
import { SealConfigError, SealKeyNotFoundError, SealUnavailableError } from "@bulwark/seal";
import { KeyGenMechanism, KeyType, ObjectClass, type SessionObject } from "graphene-pk11";
import type { Pkcs11Calls } from "./calls.js";
import {
  CKM_AES_CBC_PAD,
  CKM_AES_GCM,
  CKM_RSA_PKCS_OAEP,
  CKM_SHA256_HMAC,
  DATA_KEY_BYTES,
  HMAC_BYTES,
  mechanismName,
  type Pkcs11Mechanism,
} from "./constants.js";
import {
  type Connection,
  type Current,
  describeSelector,
  formatKeyId,
  type ResolvedKey,
  splitKeyId,
} from "./seal-types.js";

// Keys: lookup by label and/or CKA_ID, the per-connection key cache, generation, and the choice of
// the configured key and mechanism at init.

/** CKK_SHA256_HMAC: a key type some HSMs use for HMAC keys (graphene's enum lacks it). */
const CKK_SHA256_HMAC = 0x2b;

function keyAttributes(calls: Pkcs11Calls, obj: SessionObject): { label: string; id: Buffer } {
  const attrs = calls.call("C_GetAttributeValue", () => obj.getAttribute({ label: null, id: null }));
  return { label: typeof attrs.label === "string" ? attrs.label : "", id: attrs.id ?? Buffer.alloc(0) };
}

function find(calls: Pkcs11Calls, conn: Connection, template: Record<string, unknown>): SessionObject[] {
  const found = calls.call("C_FindObjects", () => conn.login.find(template));
  const out: SessionObject[] = [];
  for (let i = 0; i < found.length; i++) out.push(found.items(i));
  return out;
}

function rsaPublic(
  calls: Pkcs11Calls,
  conn: Connection,
  priv: SessionObject,
  label: string,
  id: Buffer,
): Omit<ResolvedKey, "keyId" | "label" | "id" | "kind" | "handle"> {
  const template: Record<string, unknown> = { class: ObjectClass.PUBLIC_KEY, keyType: KeyType.RSA };
  if (id.length > 0) template.id = id;
  else if (label !== "") template.label = label;
  const pubs = find(calls, conn, template);
  const pub = pubs.length === 1 ? pubs[0] : undefined;
  // The public key's modulus and exponent are readable on both objects; prefer the public one.
  const source = pub ?? priv;
  const attrs = calls.call("C_GetAttributeValue", () =>
    source.getAttribute({ modulus: null, publicExponent: null }),
  );
  const modulus = attrs.modulus as Buffer;
  const exponent = attrs.publicExponent as Buffer;
  const needLocal = calls.config.rsaEncryptLocal || pub === undefined;
  const publicKey = needLocal
    ? createPublicKey({
        key: { kty: "RSA", n: modulus.toString("base64url"), e: exponent.toString("base64url") },
        format: "jwk",
      })
    : undefined;
  return { publicHandle: pub?.handle, publicKey, modulusBytes: modulus.length };
}

/**
 * Finds one key by label and/or CKA_ID. `purpose` "encrypt" accepts an AES secret key or an
 * RSA private key; "hmac" a generic-secret / SHA256-HMAC key. Undefined when nothing matches.
 */
function lookup(
  calls: Pkcs11Calls,
  conn: Connection,
  label: string | undefined,
  id: Buffer | undefined,
  purpose: "encrypt" | "hmac",
): ResolvedKey | undefined {
  const base: Record<string, unknown> = {};
  if (label !== undefined) base.label = label;
  if (id !== undefined) base.id = id;
  const what = describeSelector(label, id);
  if (purpose === "hmac") {
    const found = find(calls, conn, { ...base, class: ObjectClass.SECRET_KEY }).filter((o) => {
      const t = calls.call("C_GetAttributeValue", () => o.getAttribute({ keyType: null })).keyType;
      return t === KeyType.GENERIC_SECRET || t === CKK_SHA256_HMAC;
    });
    if (found.length === 0) return undefined;
    if (found.length > 1) {
      throw new SealConfigError(
        "hmac_key_label",
        `${found.length} HMAC keys are ${what}: set hmac_key_id to pick one`,
      );
    }
    const obj = found[0] as SessionObject;
    const a = keyAttributes(calls, obj);
    return {
      keyId: formatKeyId(a.label, a.id),
      ...a,
      kind: "hmac",
      handle: obj.handle,
      publicHandle: undefined,
      publicKey: undefined,
      modulusBytes: 0,
    };
  }
  const aes = find(calls, conn, { ...base, class: ObjectClass.SECRET_KEY, keyType: KeyType.AES });
  const rsa = find(calls, conn, { ...base, class: ObjectClass.PRIVATE_KEY, keyType: KeyType.RSA });
  if (aes.length + rsa.length === 0) return undefined;
  if (aes.length + rsa.length > 1) {
    throw new SealConfigError(
      "key_label",
      `${aes.length + rsa.length} keys are ${what} (${aes.length} AES, ${rsa.length} RSA private): set key_id to pick one`,
    );
  }
  const obj = (aes[0] ?? rsa[0]) as SessionObject;
  const a = keyAttributes(calls, obj);
  const keyId = formatKeyId(a.label, a.id);
  if (aes.length === 1) {
    return {
      keyId,
      ...a,
      kind: "aes",
      handle: obj.handle,
      publicHandle: undefined,
      publicKey: undefined,
      modulusBytes: 0,
    };
  }
  return { keyId, ...a, kind: "rsa", handle: obj.handle, ...rsaPublic(calls, conn, obj, a.label, a.id) };
}

/** The key a blob (or the config) names, cached per connection. */
export function keyById(
  calls: Pkcs11Calls,
  conn: Connection,
  keyId: string,
  purpose: "encrypt" | "hmac",
): ResolvedKey {
  const cached = conn.keys[purpose].get(keyId);
  if (cached !== undefined) return cached;
  const parts = keyId === "" ? undefined : splitKeyId(keyId);
  let label = parts?.label;
  let id = parts?.id;
  if (keyId === "") {
    // Blobs written before labels were recorded (Vault < 0.10.1): Vault's default_*_key_label.
    label = purpose === "hmac" ? calls.config.defaultHmacKeyLabel : calls.config.defaultKeyLabel;
    id = undefined;
  }
  if (label === undefined && id === undefined) {
    throw new SealKeyNotFoundError(
      keyId,
      keyId === ""
        ? `the blob names no ${purpose === "hmac" ? "HMAC " : ""}key; set ${purpose === "hmac" ? "default_hmac_key_label" : "default_key_label"} to the label that encrypted it`
        : `seal key ${JSON.stringify(keyId)} names neither a label nor a CKA_ID; the blob is damaged`,
    );
  }
  const key = lookup(calls, conn, label === "" && id !== undefined ? undefined : label, id, purpose);
  if (key === undefined) {
    throw new SealKeyNotFoundError(
      keyId,
      `no ${purpose === "hmac" ? "HMAC " : ""}key ${describeSelector(label, id)} on token "${conn.tokenLabel}" (seal key ${JSON.stringify(keyId)}); keep old keys on the token until every blob was rewrapped with the new one`,
    );
  }
  conn.keys[purpose].set(keyId, key);
  return key;
}

function generateRsaPair(
  calls: Pkcs11Calls,
  conn: Connection,
  common: Record<string, unknown>,
): Promise<unknown> {
  // Modulus bits only in the public template (CloudHSM makes an unusable key otherwise).
  return calls.callAsync(
    "C_GenerateKeyPair",
    [],
    () =>
      new Promise((resolve, reject) =>
        conn.login.generateKeyPair(
          KeyGenMechanism.RSA,
          {
            ...common,
            private: false,
            keyType: KeyType.RSA,
            modulusBits: calls.config.rsaModulusBits,
            publicExponent: Buffer.from([1, 0, 1]),
            encrypt: true,
            wrap: true,
          },
          {
            ...common,
            keyType: KeyType.RSA,
            sensitive: true,
            extractable: false,
            decrypt: true,
            unwrap: true,
          },
          (err, pair) => (err ? reject(err) : resolve(pair)),
        ),
      ),
  );
}

async function generate(
  calls: Pkcs11Calls,
  conn: Connection,
  mechanism: Pkcs11Mechanism,
  kind: "encrypt" | "hmac",
): Promise<ResolvedKey> {
  const cfg = calls.config;
  const label = kind === "hmac" ? cfg.hmacKeyLabel : cfg.keyLabel;
  if (label === undefined) {
    throw new SealConfigError(
      kind === "hmac" ? "hmac_key_label" : "key_label",
      "generate_key needs a label for the new key",
    );
  }
  // Vault gives generated keys a random 32-bit CKA_ID.
  const id = (kind === "hmac" ? cfg.hmacKeyId : cfg.keyId) ?? Buffer.from(randomBytes(4));
  const common = { token: true, private: true, label, id };
  if (kind === "hmac") {
    calls.call("C_GenerateKey", () =>
      conn.login.generateKey(KeyGenMechanism.GENERIC_SECRET, {
        ...common,
        keyType: KeyType.GENERIC_SECRET,
        valueLen: HMAC_BYTES,
        sensitive: true,
        extractable: false,
        sign: true,
        verify: true,
      }),
    );
  } else if (mechanism === CKM_RSA_PKCS_OAEP) {
    await generateRsaPair(calls, conn, common);
  } else {
    calls.call("C_GenerateKey", () =>
      conn.login.generateKey(KeyGenMechanism.AES, {
        ...common,
        keyType: KeyType.AES,
        valueLen: DATA_KEY_BYTES,
        sensitive: true,
        extractable: false,
        encrypt: true,
        decrypt: true,
        wrap: true,
        unwrap: true,
      }),
    );
  }
  const key = lookup(calls, conn, label, id, kind);
  if (key === undefined) {
    throw new SealUnavailableError(
      `generated a key labelled ${JSON.stringify(label)} but cannot find it again on the token`,
    );
  }
  return key;
}

/** The mechanism new blobs are written with: the configured one (checked against the key), or the key's default. */
function chooseMechanism(calls: Pkcs11Calls, conn: Connection, key: ResolvedKey): Pkcs11Mechanism {
  const cfg = calls.config;
  let mechanism: Pkcs11Mechanism;
  if (cfg.mechanism !== undefined) {
    mechanism = cfg.mechanism;
    const needs = mechanism === CKM_RSA_PKCS_OAEP ? "rsa" : "aes";
    if (key.kind !== needs) {
      throw new SealConfigError(
        "mechanism",
        `${mechanismName(mechanism)} needs an ${needs.toUpperCase()} key, but key ${JSON.stringify(key.keyId)} is ${key.kind.toUpperCase()}; change mechanism or key_label`,
      );
    }
  } else if (key.kind === "rsa") mechanism = CKM_RSA_PKCS_OAEP;
  else if (
    conn.mechanisms.has(CKM_AES_GCM) ||
    (cfg.hmacKeyLabel === undefined && cfg.hmacKeyId === undefined)
  ) {
    mechanism = CKM_AES_GCM;
  } else mechanism = CKM_AES_CBC_PAD; // "best available" without GCM, as Vault picks it
  if (!conn.mechanisms.has(mechanism)) {
    throw new SealConfigError(
      "mechanism",
      `token "${conn.tokenLabel}" does not offer ${mechanismName(mechanism)}${mechanism === CKM_AES_GCM ? '; set mechanism = "0x1085" with hmac_key_label for AES-CBC-PAD + HMAC' : ""}`,
    );
  }
  return mechanism;
}

/** Resolves (or generates) the configured key and HMAC key, and picks the mechanism. */
export async function resolveCurrent(calls: Pkcs11Calls, conn: Connection): Promise<Current> {
  const cfg = calls.config;
  let key = lookup(calls, conn, cfg.keyLabel, cfg.keyId, "encrypt");
  if (key === undefined) {
    if (!cfg.generateKey) {
      const selector = describeSelector(cfg.keyLabel, cfg.keyId);
      throw new SealKeyNotFoundError(
        cfg.keyLabel ?? `:${cfg.keyId?.toString("hex")}`,
        `no key ${selector} on token "${conn.tokenLabel}": create it (pkcs11-tool --keygen --key-type aes:32 --label ${cfg.keyLabel ?? "<label>"}) or set generate_key = true`,
      );
    }
    key = await generate(calls, conn, cfg.mechanism ?? CKM_AES_GCM, "encrypt");
  }
  const mechanism = chooseMechanism(calls, conn, key);
  conn.keys.encrypt.set(key.keyId, key);
  let hmacKeyId = "";
  if (mechanism === CKM_AES_CBC_PAD) {
    if (!conn.mechanisms.has(CKM_SHA256_HMAC)) {
      throw new SealConfigError(
        "hmac_mechanism",
        `token "${conn.tokenLabel}" does not offer CKM_SHA256_HMAC (0x0251)`,
      );
    }
    let hmac = lookup(calls, conn, cfg.hmacKeyLabel, cfg.hmacKeyId, "hmac");
    if (hmac === undefined) {
      if (!cfg.generateKey) {
        throw new SealKeyNotFoundError(
          cfg.hmacKeyLabel ?? "",
          `no HMAC key ${describeSelector(cfg.hmacKeyLabel, cfg.hmacKeyId)} on token "${conn.tokenLabel}": create a 32-byte generic secret key or set generate_key = true`,
        );
      }
      hmac = await generate(calls, conn, mechanism, "hmac");
    }
    conn.keys.hmac.set(hmac.keyId, hmac);
    hmacKeyId = hmac.keyId;
  }
  return { keyId: key.keyId, mechanism, hmacKeyId };
}

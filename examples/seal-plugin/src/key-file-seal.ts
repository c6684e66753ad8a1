/**
 * A seal whose AES-256 key encryption key lives in a file the operator provisions (a mounted
 * secret, a key dropped by a configuration-management tool, a tmpfs file filled at boot).
 *
 * It shows everything a seal plugin needs: options parsed into types with errors that name the
 * setting, the key resolved and proven in `init()` (fail fast), self-describing blobs (the key id
 * is a fingerprint of the key, so a new key file is a new key id without anyone choosing one),
 * decryption by the key id recorded in the blob (rotation: keep the old file in
 * `previous_key_files`), and key material wiped on `finalize()`.
 *
 * Security: the key sits on the same machine as the server, so this protects the data at rest
 * (storage copies, backups, a Consul snapshot), not against someone who can read the server's
 * files. An HSM or KMS seal keeps the key out of the machine entirely.
 */
import { createCipheriv, createDecipheriv, createHash, randomBytes } from "node:crypto";
import { readFile, stat } from "node:fs/promises";
import {
  BaseSeal,
  type BlobInfo,
  createBlobInfo,
  SealConfigError,
  SealDecryptError,
  type SealEncryptOptions,
  SealKeyNotFoundError,
} from "@bulwark/seal";

const KEY_BYTES = 32;
const IV_BYTES = 12;
const TAG_BYTES = 16;
const HEX_KEY = /^[0-9a-fA-F]{64}$/;
const BASE64_KEY = /^[A-Za-z0-9+/]{43}=?$/;

export interface KeyFileSealOptions {
  /** The current key: 32 bytes, as 64 hex characters, base64, or the raw bytes. Encrypts everything new. */
  keyFile: string;
  /** Files of earlier keys, still accepted for decryption after a rotation. */
  previousKeyFiles?: readonly string[];
  /** Refuse key files readable by the group or others (default true; ssh does the same). */
  strictPermissions?: boolean;
}

interface LoadedKey {
  id: string;
  bytes: Uint8Array;
}

/** `kf-` and the first 16 hex digits of SHA-256 over the key: names the key without revealing it. */
export function keyIdOf(key: Uint8Array): string {
  return `kf-${createHash("sha256").update(key).digest("hex").slice(0, 16)}`;
}

async function loadKey(field: string, path: string, strict: boolean): Promise<Uint8Array> {
  let info: Awaited<ReturnType<typeof stat>>;
  try {
    info = await stat(path);
  } catch (cause) {
    throw new SealConfigError(field, `cannot read key file ${path}: ${(cause as Error).message}`, { cause });
  }
  if (!info.isFile()) throw new SealConfigError(field, `${path} is not a file`);
  if (strict && process.platform !== "win32" && (info.mode & 0o077) !== 0) {
    throw new SealConfigError(
      field,
      `key file ${path} is readable by other users (mode ${(info.mode & 0o777).toString(8)}): run chmod 600 ${path}`,
    );
  }
  const raw = await readFile(path);
  try {
    const text = raw.toString("latin1").trim();
    let decoded: Buffer | undefined;
    if (HEX_KEY.test(text)) decoded = Buffer.from(text, "hex");
    else if (BASE64_KEY.test(text)) decoded = Buffer.from(text, "base64");
    else if (raw.length === KEY_BYTES) decoded = raw;
    if (decoded === undefined) {
      // Never echo the content: it may be a (damaged) key.
      throw new SealConfigError(
        field,
        `key file ${path} must hold ${KEY_BYTES} bytes: raw, 64 hex characters or base64 (got ${raw.length} bytes); create one with \`openssl rand -hex 32 > ${path}\``,
      );
    }
    // A copy in memory of our own (Buffer.from may hand out a slice of Node's shared pool).
    const key = new Uint8Array(KEY_BYTES);
    key.set(decoded);
    decoded.fill(0);
    return key;
  } finally {
    raw.fill(0);
  }
}

export class KeyFileSeal extends BaseSeal {
  readonly type = "keyfile";
  readonly autoUnseal = true;
  readonly supportsSealWrap = true;

  readonly #options: Required<KeyFileSealOptions>;
  /** Loaded by init(); the current key first. */
  #keys: LoadedKey[] = [];

  constructor(options: KeyFileSealOptions) {
    super();
    if (typeof options?.keyFile !== "string" || options.keyFile.trim() === "") {
      throw new SealConfigError(
        "key_file",
        'must name the key file, e.g. key_file = "/etc/bulwark/seal.key"',
      );
    }
    this.#options = {
      keyFile: options.keyFile,
      previousKeyFiles: options.previousKeyFiles ?? [],
      strictPermissions: options.strictPermissions ?? true,
    };
  }

  /** The current key's id; "" until `init()` has read the key file. */
  keyId(): string {
    return this.#keys[0]?.id ?? "";
  }

  /** Fail fast: read every key file, refuse duplicates, prove the current key with a round trip. */
  protected override async doInit(): Promise<void> {
    const strict = this.#options.strictPermissions;
    const keys: LoadedKey[] = [];
    try {
      const current = await loadKey("key_file", this.#options.keyFile, strict);
      keys.push({ id: keyIdOf(current), bytes: current });
      for (const [i, path] of this.#options.previousKeyFiles.entries()) {
        const bytes = await loadKey(`previous_key_files[${i}]`, path, strict);
        const id = keyIdOf(bytes);
        if (keys.some((k) => k.id === id)) {
          bytes.fill(0);
          throw new SealConfigError(`previous_key_files[${i}]`, `${path} holds a key already listed (${id})`);
        }
        keys.push({ id, bytes });
      }
    } catch (err) {
      for (const k of keys) k.bytes.fill(0);
      throw err;
    }
    this.#keys = keys;
    const current = keys[0] as LoadedKey;
    const probe = randomBytes(32);
    const back = this.#decryptWith(current, this.#encryptWith(current, probe, undefined), undefined);
    if (!probe.equals(back)) throw new Error("keyfile seal self-test returned a different value");
  }

  protected override async doFinalize(): Promise<void> {
    for (const k of this.#keys) k.bytes.fill(0);
    this.#keys = [];
  }

  protected async doEncrypt(plaintext: Uint8Array, opts: SealEncryptOptions): Promise<BlobInfo> {
    return this.#encryptWith(this.#keys[0] as LoadedKey, plaintext, opts.aad);
  }

  protected async doDecrypt(
    blob: BlobInfo & { keyInfo: NonNullable<BlobInfo["keyInfo"]> },
    opts: SealEncryptOptions,
  ): Promise<Uint8Array> {
    // The key comes from the blob, never from "the current key": that is what makes rotation work.
    const keyId = blob.keyInfo.keyId;
    const key = this.#keys.find((k) => k.id === keyId);
    if (key === undefined) {
      throw new SealKeyNotFoundError(
        keyId,
        `the keyfile seal has no key ${JSON.stringify(keyId)} (loaded: ${this.#keys.map((k) => k.id).join(", ")}); add its file to previous_key_files`,
      );
    }
    return this.#decryptWith(key, blob, opts.aad);
  }

  #encryptWith(key: LoadedKey, plaintext: Uint8Array, aad: Uint8Array | undefined): BlobInfo {
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv("aes-256-gcm", key.bytes, iv);
    if (aad !== undefined) cipher.setAAD(aad);
    const ciphertext = Buffer.concat([cipher.update(plaintext), cipher.final(), cipher.getAuthTag()]);
    // The blob names its key, so it can be decrypted after the current key has changed.
    return createBlobInfo({
      ciphertext: new Uint8Array(ciphertext),
      iv: new Uint8Array(iv),
      keyInfo: { keyId: key.id },
    });
  }

  #decryptWith(key: LoadedKey, blob: BlobInfo, aad: Uint8Array | undefined): Uint8Array {
    if (blob.iv.length !== IV_BYTES || blob.ciphertext.length < TAG_BYTES) {
      throw new SealDecryptError("keyfile seal: the blob's iv or ciphertext has the wrong length", {
        keyId: key.id,
      });
    }
    try {
      const decipher = createDecipheriv("aes-256-gcm", key.bytes, blob.iv);
      if (aad !== undefined) decipher.setAAD(aad);
      const body = blob.ciphertext.subarray(0, blob.ciphertext.length - TAG_BYTES);
      decipher.setAuthTag(blob.ciphertext.subarray(blob.ciphertext.length - TAG_BYTES));
      return new Uint8Array(Buffer.concat([decipher.update(body), decipher.final()]));
    } catch (cause) {
      // Wrong AAD, a changed byte or a different key: GCM cannot tell which, and neither do we.
      throw new SealDecryptError("keyfile seal: authentication failed (wrong key, AAD or damaged blob)", {
        cause,
        keyId: key.id,
      });
    }
  }
}

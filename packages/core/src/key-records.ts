import {
  RECOVERY_CONFIG_PATH,
  RECOVERY_KEY_PATH,
  SEAL_CONFIG_PATH,
  STORED_KEYS_PATH,
} from "@bulwark/barrier";
import { constantTimeEqual } from "@bulwark/crypto";
import { decodeBlobInfo, encodeBlobInfo, type Seal, type ShamirSeal } from "@bulwark/seal";
import type { Backend } from "@bulwark/storage";
import { CoreError } from "./errors.js";
import { decodeSealConfig, encodeSealConfig, type SealConfig } from "./seal-config.js";
import type { Logger } from "./types.js";
import { b64, tryKeyIdOf } from "./util.js";

/**
 * The key records kept in raw storage next to the barrier (Vault's `core/seal-config`,
 * `core/recovery-config`, stored root key and recovery key): reading and writing them, and what was
 * last read of the seal configurations. Knows the storage and nothing of the lifecycle; the
 * journal that makes a multi-record write atomic is the caller's.
 */
export class KeyRecords {
  /** The barrier seal's configuration; `undefined` while the store is not initialised. */
  config: SealConfig | undefined;
  /** The recovery key's configuration; present only when the stored seal is an auto seal. */
  recoveryConfig: SealConfig | undefined;
  /** Key id recorded in the stored root-key blob (which seal key wraps it). */
  storedKeyId: string | undefined;

  constructor(
    private readonly raw: Backend,
    private readonly log: Logger,
  ) {}

  /** Whether the stored seal is an auto seal (it has recovery keys). */
  get storedSealIsAuto(): boolean {
    return this.recoveryConfig !== undefined;
  }

  /** Re-reads both seal configurations and the stored root key's key id. */
  async load(): Promise<void> {
    const c = await this.raw.get(SEAL_CONFIG_PATH);
    this.config = c === undefined ? undefined : decodeSealConfig(c.value, SEAL_CONFIG_PATH);
    const r = await this.raw.get(RECOVERY_CONFIG_PATH);
    this.recoveryConfig = r === undefined ? undefined : decodeSealConfig(r.value, RECOVERY_CONFIG_PATH);
    const k = await this.raw.get(STORED_KEYS_PATH);
    this.storedKeyId = k === undefined ? undefined : tryKeyIdOf(k.value);
    // OpenBao ≥ 2.6 no longer writes stored_shares: what marks the legacy layout (the shares are
    // the root key itself, Vault < 1.3) is that no root key is stored, not the missing field.
    if (this.config !== undefined && this.config.stored_shares === 0 && k === undefined) {
      throw new CoreError(
        "invalid_request",
        `legacy Shamir seal: ${SEAL_CONFIG_PATH} has no stored_shares and there is no stored root key (${STORED_KEYS_PATH}), ` +
          "so the key shares are the root key itself (Vault < 1.3): rekey it once with Vault or OpenBao, which stores the root key, then open it with Bulwark",
      );
    }
  }

  async writeSealConfig(c: SealConfig): Promise<void> {
    await this.raw.put({ key: SEAL_CONFIG_PATH, value: encodeSealConfig(c) });
  }

  async writeRecoveryConfig(c: SealConfig): Promise<void> {
    await this.raw.put({ key: RECOVERY_CONFIG_PATH, value: encodeSealConfig(c) });
  }

  /** Drops the recovery key and its configuration (migrating to Shamir). */
  async deleteRecovery(): Promise<void> {
    await this.raw.delete(RECOVERY_KEY_PATH);
    await this.raw.delete(RECOVERY_CONFIG_PATH);
  }

  async putBlob(key: string, seal: Seal, plaintext: Uint8Array): Promise<void> {
    const blob = await seal.encrypt(plaintext);
    await this.raw.put({ key, value: encodeBlobInfo(blob) });
  }

  /** Stores `["<b64 root key>"]` encrypted by the seal (Vault's stored barrier keys). */
  async putStoredKeys(seal: Seal, rootKey: Uint8Array): Promise<void> {
    const json = new TextEncoder().encode(JSON.stringify([b64(rootKey)]));
    try {
      await this.putBlob(STORED_KEYS_PATH, seal, json);
    } finally {
      json.fill(0);
    }
  }

  async putRecoveryKey(seal: Seal, recoveryKey: Uint8Array): Promise<void> {
    await this.putBlob(RECOVERY_KEY_PATH, seal, recoveryKey);
  }

  async readStoredKeys(seal: Seal): Promise<Uint8Array> {
    const e = await this.raw.get(STORED_KEYS_PATH);
    if (e === undefined) {
      throw new CoreError(
        "invalid_request",
        `${STORED_KEYS_PATH} is missing: the storage holds no stored unseal keys`,
      );
    }
    const plain = await seal.decrypt(decodeBlobInfo(e.value));
    try {
      const keys: unknown = JSON.parse(new TextDecoder().decode(plain));
      if (!Array.isArray(keys) || keys.length !== 1 || typeof keys[0] !== "string") {
        throw new CoreError("invalid_request", `${STORED_KEYS_PATH} must hold exactly one key`);
      }
      // Decoded into Node's buffer pool: copy it out and wipe the pooled bytes.
      const pooled = Buffer.from(keys[0], "base64");
      const rootKey = new Uint8Array(pooled);
      pooled.fill(0);
      return rootKey;
    } finally {
      plain.fill(0);
    }
  }

  /** The root key, unwrapped with a Shamir KEK combined from unseal shares. */
  async unwrapWithKek(shamir: ShamirSeal, kek: Uint8Array): Promise<Uint8Array> {
    if (kek.length !== 32) throw new CoreError("invalid_key", "Unseal failed, invalid key");
    shamir.setKey(kek);
    return this.readStoredKeys(shamir);
  }

  async verifyRecoveryKey(seal: Seal, candidate: Uint8Array): Promise<void> {
    const e = await this.raw.get(RECOVERY_KEY_PATH);
    if (e === undefined)
      throw new CoreError("invalid_request", `${RECOVERY_KEY_PATH} is missing: no recovery key was stored`);
    const stored = await seal.decrypt(decodeBlobInfo(e.value));
    try {
      if (!constantTimeEqual(stored, candidate))
        throw new CoreError("invalid_key", "recovery key verification failed: invalid key");
    } finally {
      stored.fill(0);
    }
  }

  /**
   * Re-encrypts the stored root key and recovery key with the seal's current key when they were
   * written under an older key id. Returns the records upgraded.
   */
  async upgradeSealKeys(seal: Seal): Promise<string[]> {
    if (!seal.autoUnseal) return [];
    const upgraded: string[] = [];
    const current = seal.keyId();
    for (const key of [STORED_KEYS_PATH, RECOVERY_KEY_PATH]) {
      const e = await this.raw.get(key);
      if (e === undefined) continue;
      const blob = decodeBlobInfo(e.value);
      if (blob.keyInfo?.keyId === current) continue;
      const plain = await seal.decrypt(blob);
      try {
        await this.putBlob(key, seal, plain);
      } finally {
        plain.fill(0);
      }
      upgraded.push(key);
      this.log.info("upgraded stored key to the seal's current key", { path: key, keyId: current });
    }
    return upgraded;
  }
}

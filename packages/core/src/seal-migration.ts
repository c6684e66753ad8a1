import { type AesGcmBarrier, SHAMIR_KEK_PATH } from "@bulwark/barrier";
import { constantTimeEqual, randomBytes, SecretBytes } from "@bulwark/crypto";
import type { Seal } from "@bulwark/seal";
import { CoreError, InvalidRequestError } from "./errors.js";
import type { KeyRecords } from "./key-records.js";
import { type SealConfig, sealConfig } from "./seal-config.js";
import type { Logger } from "./types.js";
import { asShamir, initSeal, safeKeyId } from "./util.js";

/**
 * True while the data is still protected by the migration source `from`: the stored seal type is
 * the source's, or, for a migration between two seals of one type (e.g. two KMS keys), the stored
 * root key is still wrapped by the source's key.
 */
export function migrationPending(
  from: Seal | undefined,
  to: Seal,
  stored: SealConfig | undefined,
  storedKeyId: string | undefined,
): boolean {
  if (from === undefined || stored === undefined || stored.type !== from.type) return false;
  if (stored.type !== to.type) return true;
  return storedKeyId !== undefined && storedKeyId !== safeKeyId(to);
}

/**
 * Vault's implicit Shamir → auto-seal migration (`adjustForSealMigration`): the configuration names
 * only an auto seal, the data says "shamir". Without a Shamir migration source such a store could
 * not be unsealed at all.
 */
export function needsImplicitShamirSource(
  seal: Seal,
  migrationSeal: Seal | undefined,
  stored: SealConfig | undefined,
): boolean {
  return migrationSeal === undefined && seal.autoUnseal && stored?.type === "shamir";
}

/** What a seal migration needs from the store. */
export interface MigrationContext {
  /** The target seal (the configured one). */
  readonly seal: Seal;
  readonly records: KeyRecords;
  readonly barrier: Pick<AesGcmBarrier, "sealed" | "rekey" | "delete" | "shamirKek" | "setShamirKek">;
  readonly log: Logger;
  /** Whether the data is still protected by the migration source. */
  migrationPending(): boolean;
  /** Bumped by every seal(): a migration that began before it must not write on. */
  sealings(): number;
  rootKeyStep(op: string, oldRoot: Uint8Array, fn: () => Promise<void>): Promise<void>;
  reloadAfterCommit(written: () => void): Promise<void>;
}

interface PendingMigration {
  from: Seal;
  secret: SecretBytes;
  oldRoot: SecretBytes;
}

/**
 * Seal migration (OpenBao's vault/seal_migration*.go). Without HA the migration runs at the
 * migrating unseal; with HA it is deferred until this node holds the lock (as in Vault: only the
 * active node migrates), so two nodes unsealed with `migrate` cannot both write new key records.
 */
export class SealMigration {
  #pending: PendingMigration | undefined;

  constructor(private readonly ctx: MigrationContext) {}

  /** Keeps the unseal's secret and root key until this node takes over as active. */
  defer(from: Seal, secret: Uint8Array, oldRoot: Uint8Array): void {
    this.discard();
    this.#pending = { from, secret: SecretBytes.from(secret), oldRoot: SecretBytes.from(oldRoot) };
  }

  /** Drops a deferred migration and zeroes its keys (seal). */
  discard(): void {
    this.#pending?.secret.zero();
    this.#pending?.oldRoot.zero();
    this.#pending = undefined;
  }

  /** Runs a migration this node was unsealed for, now that it holds the HA lock. */
  async runPending(): Promise<void> {
    const pm = this.#pending;
    if (pm === undefined) return;
    // Detached while it runs (a seal() meanwhile must not zero the keys under the migration).
    this.#pending = undefined;
    const sealings = this.ctx.sealings();
    let retry = false;
    try {
      // Another node may have migrated (or rekeyed) meanwhile: migrate only what is still pending,
      // and only with the key that still authorises it.
      if (!this.ctx.migrationPending()) {
        this.ctx.log.info("seal migration already done by another node");
        return;
      }
      await this.#checkStillAuthorised(pm);
      try {
        await this.migrate(pm.from, pm.secret.bytes, pm.oldRoot.bytes);
      } catch (e) {
        // Rolled back (storage or seal fault, lock lost): the next takeover tries again, as Vault
        // does, instead of becoming active with the migration silently dropped.
        retry = true;
        throw e;
      }
    } finally {
      if (retry && sealings === this.ctx.sealings() && !this.ctx.barrier.sealed) this.#pending = pm;
      else {
        pm.secret.zero();
        pm.oldRoot.zero();
      }
    }
  }

  async #checkStillAuthorised(pm: PendingMigration): Promise<void> {
    if (pm.from.autoUnseal) {
      await this.ctx.records.verifyRecoveryKey(pm.from, pm.secret.bytes);
      return;
    }
    const kek = await this.ctx.barrier.shamirKek();
    try {
      if (kek === undefined || !constantTimeEqual(kek, pm.secret.bytes)) {
        throw new CoreError(
          "invalid_key",
          "the unseal key changed since this node was unsealed for migration",
        );
      }
    } finally {
      kek?.fill(0);
    }
  }

  /**
   * Seal migration (Vault semantics). Shamir → auto: the unseal key becomes the recovery key and a
   * new root key is wrapped by the new seal. Auto → Shamir: the recovery key becomes the Shamir
   * KEK (recovery shares become unseal shares). Auto → auto: the recovery key is kept and the root
   * key re-wrapped. Every case writes a new root key under the rollback journal.
   */
  async migrate(from: Seal, secret: Uint8Array, oldRoot: Uint8Array): Promise<void> {
    const to = this.ctx.seal;
    const old = this.ctx.records.config;
    if (old === undefined) throw new CoreError("not_initialized", "Bulwark is not initialized");
    this.ctx.log.info("seal migration initiated", { from: from.type, to: to.type });
    await initSeal(to);
    const newRoot = randomBytes(32);
    /** The configs the step wrote (in case re-reading them fails once it is committed). */
    let written = (): void => {};
    try {
      await this.ctx.rootKeyStep("seal-migration", oldRoot, async () => {
        if (!from.autoUnseal && to.autoUnseal) written = await this.#toAuto(to, old, secret, newRoot);
        else if (from.autoUnseal && !to.autoUnseal) written = await this.#toShamir(to, secret, newRoot);
        else if (from.autoUnseal && to.autoUnseal) written = await this.#autoToAuto(to, secret, newRoot);
        else {
          throw new InvalidRequestError(
            "migrating from Shamir to Shamir is not supported: use rekey to change unseal keys",
          );
        }
      });
    } finally {
      newRoot.fill(0);
    }
    await this.ctx.reloadAfterCommit(() => {
      written();
      this.ctx.records.storedKeyId = safeKeyId(to);
    });
    this.ctx.log.info("seal migration complete", { from: from.type, to: to.type });
  }

  /** Shamir → auto. Returns what sets the in-memory configs to what was written. */
  async #toAuto(to: Seal, old: SealConfig, secret: Uint8Array, newRoot: Uint8Array): Promise<() => void> {
    const { barrier, records } = this.ctx;
    const recovery = sealConfig("shamir", old.secret_shares, old.secret_threshold);
    await barrier.rekey(newRoot);
    await barrier.delete(SHAMIR_KEK_PATH);
    await records.putStoredKeys(to, newRoot);
    await records.putRecoveryKey(to, secret);
    await records.writeRecoveryConfig(recovery);
    await records.writeSealConfig(sealConfig(to.type, 1, 1));
    return () => {
      records.config = sealConfig(to.type, 1, 1);
      records.recoveryConfig = recovery;
    };
  }

  /** Auto → Shamir: the recovery key becomes the KEK. */
  async #toShamir(to: Seal, secret: Uint8Array, newRoot: Uint8Array): Promise<() => void> {
    const { barrier, records } = this.ctx;
    const shamir = asShamir(to);
    const rc = records.recoveryConfig ?? sealConfig("shamir", 1, 1);
    const config = sealConfig("shamir", rc.secret_shares, rc.secret_threshold);
    shamir.setKey(secret);
    await barrier.rekey(newRoot);
    await barrier.setShamirKek(secret);
    await records.putStoredKeys(shamir, newRoot);
    await records.deleteRecovery();
    await records.writeSealConfig(config);
    return () => {
      records.config = config;
      records.recoveryConfig = undefined;
    };
  }

  /** Auto → auto: the recovery key is kept, re-wrapped by the new seal. */
  async #autoToAuto(to: Seal, secret: Uint8Array, newRoot: Uint8Array): Promise<() => void> {
    const { barrier, records } = this.ctx;
    await barrier.rekey(newRoot);
    await records.putStoredKeys(to, newRoot);
    await records.putRecoveryKey(to, secret);
    await records.writeSealConfig(sealConfig(to.type, 1, 1));
    return () => {
      records.config = sealConfig(to.type, 1, 1);
    };
  }
}

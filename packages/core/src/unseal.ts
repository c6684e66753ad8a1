import { type AesGcmBarrier, BarrierInvalidKeyError } from "@bulwark/barrier";
import { type Seal, SealDecryptError } from "@bulwark/seal";
import type { AutoUnsealWait } from "./auto-unseal.js";
import { CoreError, InvalidRequestError } from "./errors.js";
import type { HaNode } from "./ha.js";
import type { KeyRecords } from "./key-records.js";
import type { SealConfig } from "./seal-config.js";
import type { SealMigration } from "./seal-migration.js";
import { parseKeyShare, type ShareCollector } from "./shares.js";
import type { Logger } from "./types.js";
import { asShamir, initSeal } from "./util.js";

/** Why a store whose data is sealed by another seal type cannot be unsealed, and the way out. */
export function foreignSealMessage(stored: string, configured: string): string {
  return (
    `storage is sealed with seal type "${stored}" but the configured seal is "${configured}": ` +
    `configure the "${stored}" seal as the migration source to migrate`
  );
}

/** What decides which seal key shares open. */
interface UnsealSourceInput {
  /** The stored seal configuration's type. */
  stored: string;
  seal: Seal;
  migrationSeal: Seal | undefined;
  migrationPending: boolean;
  /** The caller asked to migrate (`migrate: true`). */
  migrate: boolean;
  /** Set while auto-unseal waits for an unreachable seal. */
  waiting: AutoUnsealWait | undefined;
}

/**
 * The seal key shares open: the configured one, or the migration source while a migration is
 * pending. Refuses what no share can help with (a foreign stored seal, a missing or unexpected
 * `migrate`, an unreachable auto seal).
 */
function unsealSource(i: UnsealSourceInput): Seal {
  if (i.stored !== i.seal.type && i.stored !== i.migrationSeal?.type) {
    // No key share can help: the configured seals cannot open what the stored one wrapped.
    throw new InvalidRequestError(foreignSealMessage(i.stored, i.seal.type));
  }
  if (i.migrationPending && !i.migrate) {
    throw new CoreError(
      "migration",
      "the store is in seal migration mode: unseal with migrate=true (and the old unseal or recovery keys)",
    );
  }
  if (!i.migrationPending && i.migrate) {
    throw new InvalidRequestError(
      "migrate=true given but no seal migration is pending: configure the old seal as the migration source",
    );
  }
  if (i.waiting !== undefined && !i.migrationPending) {
    // Recovery shares are checked through the seal, so they cannot stand in for it.
    throw new CoreError(
      "seal_unavailable",
      `the ${i.waiting.seal} seal is unreachable (${i.waiting.lastError}): key shares cannot unseal the store without it; ` +
        "it unseals by itself once the seal is reachable (see seal-status)",
    );
  }
  return i.migrationPending && i.migrationSeal !== undefined ? i.migrationSeal : i.seal;
}

/** What unsealing with a combined secret needs from the store. */
export interface UnsealContext {
  readonly records: KeyRecords;
  readonly barrier: Pick<AesGcmBarrier, "unseal">;
  readonly log: Logger;
}

/**
 * Unwraps the root key with the combined secret (a Shamir KEK, or a recovery key checked through
 * the seal) and unseals the barrier; returns the root key for the caller to zero. A key that does
 * not fit is `invalid_key`; storage or seal outages, a damaged or foreign blob keep their own error
 * (the operator's shares may well be right). On failure `secret` is zeroed.
 */
async function unsealWithSecret(ctx: UnsealContext, source: Seal, secret: Uint8Array): Promise<Uint8Array> {
  const viaRecovery = source.autoUnseal;
  let rootKey: Uint8Array | undefined;
  try {
    await initSeal(source);
    if (viaRecovery) {
      await ctx.records.verifyRecoveryKey(source, secret);
      rootKey = await ctx.records.readStoredKeys(source);
    } else {
      rootKey = await ctx.records.unwrapWithKek(asShamir(source), secret);
    }
    await ctx.barrier.unseal(rootKey);
    return rootKey;
  } catch (e) {
    if (!viaRecovery) asShamir(source).clearKey();
    secret.fill(0);
    rootKey?.fill(0);
    const wrongKey =
      (e instanceof CoreError && e.code === "invalid_key") ||
      e instanceof BarrierInvalidKeyError ||
      (!viaRecovery && e instanceof SealDecryptError);
    if (!wrongKey) throw e;
    ctx.log.warn("unseal failed: invalid key");
    throw new CoreError("invalid_key", "Unseal failed, invalid key", { cause: e });
  }
}

/** What taking an unseal share needs from the store. */
export interface UnsealerContext extends UnsealContext {
  readonly seal: Seal;
  /** The unseal shares collected so far. */
  readonly collector: ShareCollector;
  readonly ha: HaNode;
  readonly migration: SealMigration;
  readonly barrier: Pick<AesGcmBarrier, "unseal" | "seal">;
  migrationSeal(): Seal | undefined;
  migrationPending(): boolean;
  /** Set while auto-unseal waits for an unreachable seal. */
  waiting(): AutoUnsealWait | undefined;
  clearShamirKeys(): void;
  clearSealedReason(): void;
}

/**
 * Takes one key share of a sealed, initialised store. At the threshold it unseals, migrating first
 * when a seal migration is pending (without HA; with HA the migration waits for the lock).
 */
export async function submitUnsealShare(
  ctx: UnsealerContext,
  config: SealConfig,
  keyShare: Uint8Array | string,
  migrate: boolean,
): Promise<void> {
  const source = unsealSource({
    stored: config.type,
    seal: ctx.seal,
    migrationSeal: ctx.migrationSeal(),
    migrationPending: ctx.migrationPending(),
    migrate,
    waiting: ctx.waiting(),
  });
  const threshold = source.autoUnseal
    ? (ctx.records.recoveryConfig?.secret_threshold ?? 1)
    : config.secret_threshold;
  const share = parseKeyShare(keyShare);
  // Zeroed whether it is taken or refused (wrong length, shares that do not combine).
  const secret = await ctx.collector.add(share, threshold).finally(() => share.fill(0));
  if (secret === undefined) return;
  const rootKey = await unsealWithSecret(ctx, source, secret);
  const migrating = source !== ctx.seal;
  try {
    if (migrating && !ctx.ha.enabled) await ctx.migration.migrate(source, secret, rootKey);
    else if (migrating) ctx.migration.defer(source, secret, rootKey);
    ctx.clearSealedReason();
    await ctx.ha.start();
  } catch (e) {
    // Not active either: the next unseal starts a new active term.
    ctx.ha.active = false;
    ctx.barrier.seal();
    // A failed migration or takeover leaves the store sealed: no seal may keep a KEK either.
    ctx.clearShamirKeys();
    throw e;
  } finally {
    secret.fill(0);
    rootKey.fill(0);
  }
  ctx.log.info("store unsealed", { migrated: migrating });
}

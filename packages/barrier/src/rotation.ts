/** Key rotation: installing term N+1, the automatic-rotation check and the rotation policy. */

import { AES_256_KEY_BYTES, AesGcmKey, randomBytes } from "@bulwark/crypto";
import { LEGACY_ROTATION_AGE_MS, MAX_TERM, UPGRADE_PREFIX } from "./constants.js";
import { type AutoRotateReason, type BarrierContext, installTime, type KeyStatus } from "./context.js";
import { BarrierError } from "./errors.js";
import { encryptFrame } from "./frame.js";
import { commitKeyring, persistKeyring } from "./key-records.js";
import { type Keyring, type RotationConfig, serializeKey } from "./keyring.js";

/**
 * Installs term N+1 and makes it active. Order matters for crash safety: the keyring with the
 * new term is persisted first, then `core/upgrade/<N>` (the new key encrypted with term N, for
 * standbys), which is deleted again after the grace period.
 */
export async function rotateLocked(ctx: BarrierContext): Promise<KeyStatus> {
  const { keys } = ctx;
  const { ring, epoch } = keys.current();
  const prevTerm = ring.activeTerm;
  if (prevTerm >= MAX_TERM) {
    throw new BarrierError("term_exhausted", `cannot rotate past term ${MAX_TERM} (terms are 32-bit)`);
  }
  const newTerm = prevTerm + 1;
  const next = ring.clone();
  const value = randomBytes(AES_256_KEY_BYTES);
  try {
    next.addKey({ term: newTerm, value, installTime: installTime(ctx) });
  } finally {
    value.fill(0);
  }
  const newKey = next.activeKey();
  // The count restarts with the new term; 1 for the core/master write below.
  newKey.encryptions = 1;
  try {
    await persistKeyring(ctx, next, new AesGcmKey(newKey.value), epoch);
  } catch (e) {
    next.zero();
    throw e;
  }
  keys.unaccounted = 0;
  keys.install(next);
  ctx.log.info("barrier key rotated", { term: newTerm });

  // Standbys that only know term N find term N+1 here (Vault's CreateUpgrade).
  const upgradePath = `${UPGRADE_PREFIX}${prevTerm}`;
  const record = serializeKey({
    term: newKey.term,
    version: newKey.version,
    value: newKey.value.bytes,
    installTime: newKey.installTime,
    encryptions: 0,
  });
  try {
    const prevAead = keys.aeads.get(prevTerm) as AesGcmKey;
    await ctx.storage.put({
      key: upgradePath,
      value: encryptFrame(prevAead, prevTerm, upgradePath, record),
    });
  } catch (e) {
    ctx.log.warn("rotated, but could not write the upgrade entry: standbys must reloadKeyring()", {
      term: newTerm,
      path: upgradePath,
    });
    throw e;
  } finally {
    record.fill(0);
  }
  // Sealed while the entry was written: seal() already cancelled the cleanups, so schedule none
  // (it would fire after a later unseal, e.g. on a standby, and delete what others still need).
  keys.checkEpoch(epoch);
  ctx.upgrades.schedule(upgradePath);
  return keys.status();
}

/**
 * Vault's periodic check: rotates when the active term is due and returns why; otherwise persists
 * the encryption counter and returns `undefined`.
 */
export async function checkAutoRotateLocked(ctx: BarrierContext): Promise<AutoRotateReason | undefined> {
  const { keys } = ctx;
  const { ring, epoch } = keys.current();
  const reason = autoRotateReason(ring, keys.unaccounted, ctx.now);
  if (reason !== undefined) {
    ctx.log.info("barrier key auto-rotation", { reason, term: ring.activeTerm });
    await rotateLocked(ctx);
    return reason;
  }
  if (keys.unaccounted > 0) await commitKeyring(ctx, ring.clone(), epoch, true);
  return undefined;
}

/**
 * Why the active term is due, in Vault's order: an untracked key older than a year, more than
 * `maxOperations` encryptions, or older than the interval.
 */
function autoRotateReason(ring: Keyring, unaccounted: number, now: () => Date): AutoRotateReason | undefined {
  const rc = ring.rotationConfig();
  if (rc.disabled) return undefined;
  const active = ring.activeKey();
  const ops = active.encryptions + unaccounted;
  const ageMs = now().getTime() - active.installTime.epochMs();
  if (active.encryptions === 0 && !active.installTime.isZero() && ageMs > LEGACY_ROTATION_AGE_MS) {
    return "legacy rotation";
  }
  if (ops > rc.maxOperations) return "reached max operations";
  if (ring.rotationIntervalNs > 0n && ageMs > rc.intervalMs) return "rotation interval reached";
  return undefined;
}

/** Persists a changed rotation policy (an unchanged one writes nothing). */
export async function setRotationConfigLocked(
  ctx: BarrierContext,
  cfg: Partial<RotationConfig>,
): Promise<void> {
  const { ring, epoch } = ctx.keys.current();
  const before = ring.rotationConfig();
  const next = ring.clone();
  next.setRotationConfig(cfg);
  const after = next.rotationConfig();
  if (
    after.disabled === before.disabled &&
    after.maxOperations === before.maxOperations &&
    next.rotationIntervalNs === ring.rotationIntervalNs
  ) {
    next.zero();
    return;
  }
  await commitKeyring(ctx, next, epoch, true);
  ctx.log.info("barrier rotation config changed", { ...after });
}

import type { AesGcmBarrier } from "@bulwark/barrier";
import { randomBytes, shamirSplit, validateShamirParameters } from "@bulwark/crypto";
import type { Seal } from "@bulwark/seal";
import type { AutoUnsealer } from "./auto-unsealer.js";
import { InvalidRequestError } from "./errors.js";
import type { HaNode } from "./ha.js";
import type { KeyRecords } from "./key-records.js";
import { type SealConfig, sealConfig } from "./seal-config.js";
import type { LifecycleSteps } from "./steps.js";
import type { InitRequest, InitResult, Logger } from "./types.js";
import { asShamir, b64, errText, hex, initSeal, safeKeyId } from "./util.js";

/** What init writes: the seal configuration and, for an auto seal, the recovery configuration. */
export interface InitPlan {
  config: SealConfig;
  recovery: SealConfig | undefined;
}

/** Checks an init request against the seal (Vault's rules) and returns what it will write. */
function planInit(seal: Seal, req: InitRequest): InitPlan {
  if (seal.autoUnseal) {
    // Vault: auto seals store a single key; shares/threshold other than 1 make no sense.
    for (const [name, v] of [
      ["secret_shares", req.secretShares],
      ["secret_threshold", req.secretThreshold],
    ] as const) {
      if (v !== undefined && v !== 1) {
        throw new InvalidRequestError(
          `parameter ${name} not applicable to seal type ${seal.type}: omit it or set 1`,
        );
      }
    }
    const shares = req.recoveryShares ?? 5;
    const threshold = req.recoveryThreshold ?? 3;
    validateShamirParameters(shares, threshold, {
      shares: "recovery_shares",
      threshold: "recovery_threshold",
    });
    return { config: sealConfig(seal.type, 1, 1), recovery: sealConfig("shamir", shares, threshold) };
  }
  if (req.recoveryShares !== undefined || req.recoveryThreshold !== undefined) {
    throw new InvalidRequestError(
      "parameters recovery_shares and recovery_threshold apply only to auto-unseal seals",
    );
  }
  if (req.secretShares === undefined || req.secretThreshold === undefined) {
    throw new InvalidRequestError("secret_shares and secret_threshold are required with the Shamir seal");
  }
  validateShamirParameters(req.secretShares, req.secretThreshold);
  return { config: sealConfig("shamir", req.secretShares, req.secretThreshold), recovery: undefined };
}

/** What init needs from the store. */
export interface InitContext {
  readonly seal: Seal;
  readonly records: KeyRecords;
  readonly barrier: Pick<AesGcmBarrier, "initialize" | "unseal" | "seal">;
  readonly ha: HaNode;
  readonly auto: AutoUnsealer;
  readonly log: Logger;
  readonly steps: Pick<LifecycleSteps, "step" | "reloadAfterCommit">;
  clearShamirKeys(): void;
  setSealedReason(reason: string): void;
}

/**
 * Initialises an empty store (the caller has checked that it is not initialised): a new root key,
 * the keys that protect it, the seal configuration, all in one journaled step. Like Vault, an
 * auto-sealed store then unseals itself; a Shamir store stays sealed.
 */
export async function initializeStore(ctx: InitContext, req: InitRequest): Promise<InitResult> {
  const { seal, records } = ctx;
  const plan = planInit(seal, req);
  await initSeal(seal);
  const rootKey = randomBytes(32);
  // Every key buffer made here (root key, KEK, recovery key, shares) is zeroed in the finally.
  const wipe: Uint8Array[] = [rootKey];
  let result: InitResult = { keys: [], keysBase64: [], recoveryKeys: [], recoveryKeysBase64: [] };
  try {
    await ctx.steps.step("initialize", async () => {
      result = await writeInitialKeys(ctx, plan, rootKey, wipe);
    });
    // Committed: the store is initialised with these keys, so nothing below may lose them by
    // throwing — the caller would get an error instead of the only copy of the shares.
    await ctx.steps.reloadAfterCommit(() => {
      records.config = plan.config;
      records.recoveryConfig = plan.recovery;
      records.storedKeyId = safeKeyId(seal);
    });
    ctx.log.info("store initialized", { seal: seal.type });
    if (seal.autoUnseal) await unsealAfterInit(ctx, rootKey);
  } finally {
    for (const b of wipe) b.fill(0);
    // Shamir: the store stays sealed after init, failed or not, so the seal keeps no KEK.
    if (!seal.autoUnseal) ctx.clearShamirKeys();
  }
  return result;
}

async function unsealAfterInit(ctx: InitContext, rootKey: Uint8Array): Promise<void> {
  try {
    await ctx.barrier.unseal(rootKey);
    await ctx.ha.start();
  } catch (e) {
    ctx.ha.active = false;
    ctx.barrier.seal();
    ctx.auto.rearm();
    if (ctx.auto.retryAfterInit(e)) return;
    // Recovery keys cannot help here: they are verified through the same seal.
    ctx.setSealedReason(
      `initialized, but unsealing right after init failed: ${errText(e)}; fix the seal (its key, credentials or configuration) and reopen the store (restart the server)`,
    );
    ctx.log.warn("unseal after init failed; the store stays sealed", { error: errText(e) });
  }
}

/**
 * Writes a new data set's keys for `rootKey` (inside the caller's journaled step) and returns the
 * shares to hand out. Every key buffer made here is pushed on `wipe` for the caller to zero.
 * The seal config is written last: its presence is what "initialized" means.
 */
async function writeInitialKeys(
  ctx: InitContext,
  plan: InitPlan,
  rootKey: Uint8Array,
  wipe: Uint8Array[],
): Promise<InitResult> {
  const result: InitResult = { keys: [], keysBase64: [], recoveryKeys: [], recoveryKeysBase64: [] };
  const { seal, records, barrier } = ctx;
  if (plan.recovery !== undefined) {
    await barrier.initialize(rootKey);
    await records.putStoredKeys(seal, rootKey);
    const recoveryKey = randomBytes(32);
    wipe.push(recoveryKey);
    const parts = await shamirSplit(recoveryKey, plan.recovery.secret_shares, plan.recovery.secret_threshold);
    wipe.push(...parts);
    await records.putRecoveryKey(seal, recoveryKey);
    recoveryKey.fill(0);
    await records.writeRecoveryConfig(plan.recovery);
    result.recoveryKeys = parts.map(hex);
    result.recoveryKeysBase64 = parts.map(b64);
  } else {
    const kek = randomBytes(32);
    wipe.push(kek);
    const parts = await shamirSplit(kek, plan.config.secret_shares, plan.config.secret_threshold);
    wipe.push(...parts);
    await barrier.initialize(rootKey, kek);
    asShamir(seal).setKey(kek);
    kek.fill(0);
    await records.putStoredKeys(seal, rootKey);
    result.keys = parts.map(hex);
    result.keysBase64 = parts.map(b64);
  }
  await records.writeSealConfig(plan.config);
  return result;
}

import type { AesGcmBarrier } from "@bulwark/barrier";
import { randomBytes, shamirSplit, validateShamirParameters } from "@bulwark/crypto";
import type { Seal, ShamirSeal } from "@bulwark/seal";
import { InvalidRequestError } from "./errors.js";
import type { KeyRecords } from "./key-records.js";
import { type SealConfig, sealConfig } from "./seal-config.js";
import type { InitRequest, InitResult } from "./types.js";
import { b64, hex } from "./util.js";

/** What init writes: the seal configuration and, for an auto seal, the recovery configuration. */
export interface InitPlan {
  config: SealConfig;
  recovery: SealConfig | undefined;
}

/** Checks an init request against the seal (Vault's rules) and returns what it will write. */
export function planInit(seal: Seal, req: InitRequest): InitPlan {
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

/** What writing the initial keys needs from the store. */
export interface InitContext {
  readonly seal: Seal;
  readonly records: KeyRecords;
  readonly barrier: Pick<AesGcmBarrier, "initialize">;
  shamir(seal: Seal): ShamirSeal;
}

/**
 * Writes a new data set's keys for `rootKey` (inside the caller's journaled step) and returns the
 * shares to hand out. Every key buffer made here is pushed on `wipe` for the caller to zero.
 * The seal config is written last: its presence is what "initialized" means.
 */
export async function writeInitialKeys(
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
    ctx.shamir(seal).setKey(kek);
    kek.fill(0);
    await records.putStoredKeys(seal, rootKey);
    result.keys = parts.map(hex);
    result.keysBase64 = parts.map(b64);
  }
  await records.writeSealConfig(plan.config);
  return result;
}

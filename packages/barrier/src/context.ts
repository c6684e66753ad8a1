import type { Backend } from "@bulwark/storage";
import { GoTime } from "./go-time.js";
import type { KeyState } from "./key-state.js";
import type { UpgradeCleanup } from "./upgrades.js";

/** The active term as reported by `keyStatus()` (Vault's `GET /sys/key-status`). */
export interface KeyStatus {
  term: number;
  installTime: Date;
  /**
   * The install time as Go prints it (RFC 3339 with nanoseconds, trailing zeros trimmed): what
   * Vault's key-status answers. Kept exactly, so a term OpenBao installed (ns precision) is not
   * reported rounded to the millisecond of `installTime`.
   */
  installTimeText: string;
  /** Encryptions with this term: persisted count plus those not yet persisted. */
  encryptions: number;
}

export interface BarrierLogger {
  debug(msg: string, fields?: object): void;
  info(msg: string, fields?: object): void;
  warn(msg: string, fields?: object): void;
}

/** Why `checkAutoRotate()` rotated (Vault's reasons, same strings). */
export type AutoRotateReason = "reached max operations" | "rotation interval reached" | "legacy rotation";

/**
 * What the barrier's collaborators (key records, rotation, standby reloads, upgrade entries) work
 * with: the storage below the barrier, the keys in memory, the logger, the clock and the pending
 * upgrade-entry deletions. `AesGcmBarrier` builds one and keeps the operation queue to itself:
 * every `…Locked` function expects to run inside it.
 */
export interface BarrierContext {
  readonly storage: Backend;
  readonly keys: KeyState;
  readonly log: BarrierLogger;
  readonly now: () => Date;
  readonly upgrades: UpgradeCleanup;
}

/** The install time of a term created now. */
export function installTime(ctx: BarrierContext): GoTime {
  return GoTime.fromDate(ctx.now());
}

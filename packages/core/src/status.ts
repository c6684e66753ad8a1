import type { AutoUnsealer } from "./auto-unsealer.js";
import type { KeyRecords } from "./key-records.js";
import type { ShareCollector } from "./shares.js";
import { type SealStatus, VERSION } from "./types.js";

/** What a seal status is made of. */
export interface StatusInput {
  records: KeyRecords;
  /** The configured seal's type (reported until the store is initialised). */
  sealType: string;
  sealed: boolean;
  /** The unseal shares collected so far. */
  unseal: ShareCollector;
  migration: boolean;
  storageType: string;
  haEnabled: boolean;
  active: boolean;
  sealedReason: string | undefined;
  auto: AutoUnsealer;
}

/** Vault's seal-status fields, plus Bulwark's (`haEnabled`, `active`, `sealedReason`, `autoUnseal`). */
export function sealStatus(i: StatusInput): SealStatus {
  const { records } = i;
  const auto = records.storedSealIsAuto;
  const cfg = auto ? records.recoveryConfig : records.config;
  const s: SealStatus = {
    type: records.config?.type ?? i.sealType,
    initialized: records.config !== undefined,
    sealed: i.sealed,
    t: cfg?.secret_threshold ?? 0,
    n: cfg?.secret_shares ?? 0,
    progress: i.unseal.progress,
    nonce: i.unseal.nonce,
    version: VERSION,
    migration: i.migration,
    recoverySeal: auto,
    storageType: i.storageType,
    haEnabled: i.haEnabled,
    active: i.active,
  };
  if (auto) s.recoverySealType = "shamir";
  if (i.sealedReason !== undefined && i.sealed) s.sealedReason = i.sealedReason;
  const wait = i.auto.waiting;
  const waitReason = i.auto.waitReason();
  if (wait !== undefined && waitReason !== undefined && i.sealed) {
    s.autoUnseal = {
      seal: wait.seal,
      attempts: wait.attempts,
      lastError: wait.lastError,
      lastAttemptAt: new Date(wait.lastAttemptAt),
      nextAttemptAt: new Date(wait.nextAttemptAt),
      maxDelayMs: wait.maxDelayMs,
    };
    s.sealedReason = waitReason;
  }
  return s;
}

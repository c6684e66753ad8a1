/**
 * `core/upgrade/<N>`: after a rotation to term N+1 the new key is written there encrypted with term
 * N, so standbys that only know term N catch up (Vault's CreateUpgrade / CheckUpgrade); the entries
 * are deleted again after a grace period.
 */

import type { Backend } from "@bulwark/storage";
import { UPGRADE_PREFIX } from "./constants.js";
import type { BarrierContext, BarrierLogger } from "./context.js";
import { BarrierError } from "./errors.js";
import { readKeyRecord } from "./key-records.js";
import type { KeyState } from "./key-state.js";

/** The pending deletions of upgrade entries; a seal cancels them all. */
export class UpgradeCleanup {
  readonly #storage: Backend;
  readonly #keys: KeyState;
  readonly #log: BarrierLogger;
  readonly #gracePeriodMs: number;
  readonly #timers = new Set<NodeJS.Timeout>();

  constructor(storage: Backend, keys: KeyState, log: BarrierLogger, gracePeriodMs: number) {
    this.#storage = storage;
    this.#keys = keys;
    this.#log = log;
    this.#gracePeriodMs = gracePeriodMs;
  }

  /** Deletes `path` after the grace period, unless the barrier is sealed by then. */
  schedule(path: string): void {
    const timer = setTimeout(() => {
      this.#timers.delete(timer);
      if (this.#keys.sealed) return;
      // Through a promise so a backend that throws synchronously cannot crash the timer.
      Promise.resolve()
        .then(() => this.#storage.delete(path))
        .then(
          () => this.#log.debug("upgrade entry removed", { path }),
          (e: unknown) => this.#log.warn("could not remove upgrade entry", { path, error: String(e) }),
        );
    }, this.#gracePeriodMs);
    // A pending cleanup must not keep the process alive.
    timer.unref();
    this.#timers.add(timer);
  }

  cancelAll(): void {
    for (const t of this.#timers) clearTimeout(t);
    this.#timers.clear();
  }
}

/**
 * Standby catch-up: while `core/upgrade/<active term>` exists, decrypt it with the active term
 * and install the term it carries. Returns whether any term was added.
 */
export async function checkUpgradeLocked({ storage, keys, log }: BarrierContext): Promise<boolean> {
  let upgraded = false;
  for (;;) {
    const { ring, epoch } = keys.current();
    const term = ring.activeTerm;
    const path = `${UPGRADE_PREFIX}${term}`;
    const entry = await storage.get(path);
    keys.checkEpoch(epoch);
    if (entry === undefined) return upgraded;
    const record = readKeyRecord(keys.aeads, path, entry.value);
    try {
      // An upgrade entry for term N carries term N+1; anything else would loop or go back.
      if (record.term !== term + 1) {
        throw new BarrierError(
          "invalid_keyring",
          `upgrade entry ${path} carries term ${record.term}, expected ${term + 1}; reload the keyring instead`,
        );
      }
      const next = ring.clone();
      next.addKey({
        term: record.term,
        version: record.version,
        value: record.value,
        installTime: record.installTime,
        encryptions: record.encryptions,
      });
      keys.install(next);
    } finally {
      record.value.fill(0);
    }
    upgraded = true;
    log.info("upgraded to new key term", { term: record.term });
  }
}

/**
 * Schedules deletion of every `core/upgrade/*` entry after the grace period (Vault does this
 * when a node becomes active). Returns how many were scheduled.
 */
export async function scheduleUpgradeCleanup({ storage, keys, upgrades }: BarrierContext): Promise<number> {
  keys.requireUnsealed();
  const epoch = keys.epoch;
  const names = await storage.list(UPGRADE_PREFIX);
  keys.checkEpoch(epoch);
  let n = 0;
  for (const name of names) {
    if (name.endsWith("/")) continue;
    upgrades.schedule(`${UPGRADE_PREFIX}${name}`);
    n++;
  }
  return n;
}

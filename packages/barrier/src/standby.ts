/** A standby's catch-up after the active node rekeyed or rotated: re-reading the key records. */

import { AES_256_KEY_BYTES } from "@bulwark/crypto";
import { KEYRING_PATH, OPENBAO_ROOT_KEY_PATH, ROOT_KEY_PATH } from "./constants.js";
import type { BarrierContext } from "./context.js";
import { BarrierError } from "./errors.js";
import { openKeyring, readKeyRecord } from "./key-records.js";

/** Re-reads `core/keyring` with the root key in memory (a standby after a rotate or rekey). */
export async function reloadKeyringLocked({ storage, keys, log }: BarrierContext): Promise<void> {
  const { ring, epoch } = keys.current();
  const entry = await storage.get(KEYRING_PATH);
  keys.checkEpoch(epoch);
  if (entry === undefined) {
    throw new BarrierError(
      "keyring_missing",
      "keyring unexpectedly missing from core/keyring: the storage was wiped or replaced; seal and restore it",
    );
  }
  const next = openKeyring(
    entry.value,
    ring.rootKey.bytes,
    "core/keyring no longer opens with the root key in memory: it was rekeyed; run reloadRootKey() first",
  );
  // Vault resets the counters here: this may be a leadership change.
  keys.unaccounted = 0;
  keys.install(next);
  log.info("barrier keyring reloaded", { term: next.activeTerm });
}

/**
 * Reads the root-key copy (`core/master`, or OpenBao's `core/root-key`) through the barrier
 * and adopts it when it differs from the one in memory (a standby after a rekey). Missing
 * records are ignored, as in Vault.
 */
export async function reloadRootKeyLocked({ storage, keys, log }: BarrierContext): Promise<void> {
  const { ring, epoch } = keys.current();
  let path = ROOT_KEY_PATH;
  let entry = await storage.get(path);
  if (entry === undefined) {
    path = OPENBAO_ROOT_KEY_PATH;
    entry = await storage.get(path);
  }
  keys.checkEpoch(epoch);
  if (entry === undefined) return;
  const record = readKeyRecord(keys.aeads, path, entry.value);
  try {
    if (record.value.length !== AES_256_KEY_BYTES) {
      throw new BarrierError(
        "invalid_keyring",
        `root key record at ${path} holds ${record.value.length} bytes, expected ${AES_256_KEY_BYTES}`,
      );
    }
    if (ring.hasRootKey(record.value)) return;
    const next = ring.clone();
    next.setRootKey(record.value);
    keys.install(next);
    log.info("barrier root key reloaded", { path });
  } finally {
    record.value.fill(0);
  }
}

/**
 * The two key records the barrier keeps in storage: `core/keyring` (every term key, encrypted with
 * the root key) and `core/master` (the root key, encrypted with the active term), written together
 * and put back together when the second write fails.
 */

import { AesGcmKey } from "@bulwark/crypto";
import type { Entry } from "@bulwark/storage";
import { CIPHERTEXT_OVERHEAD, INITIAL_KEY_TERM, KEYRING_PATH, ROOT_KEY_PATH } from "./constants.js";
import type { BarrierContext } from "./context.js";
import { BarrierCiphertextError, BarrierError, BarrierInvalidKeyError } from "./errors.js";
import { decryptFrame, encryptFrame, frameTerm, type TermKeys } from "./frame.js";
import { GoTime } from "./go-time.js";
import { deserializeKey, Keyring, serializeKey } from "./keyring.js";

/** Decrypts and parses a `core/keyring` ciphertext with `rootKey`. */
export function openKeyring(ciphertext: Uint8Array, rootKey: Uint8Array, wrongKeyMessage?: string): Keyring {
  // The keyring is always framed with term 1, whatever the active term (Vault: "term mis-match").
  if (ciphertext.length >= CIPHERTEXT_OVERHEAD && frameTerm(ciphertext) !== INITIAL_KEY_TERM) {
    throw new BarrierError(
      "invalid_keyring",
      `core/keyring is framed with term ${frameTerm(ciphertext)}, expected ${INITIAL_KEY_TERM}: not a barrier keyring`,
    );
  }
  const rootAead = new AesGcmKey(rootKey);
  let plain: Uint8Array;
  try {
    plain = decryptFrame(new Map([[INITIAL_KEY_TERM, rootAead]]), KEYRING_PATH, ciphertext);
  } catch (e) {
    if (e instanceof BarrierCiphertextError && e.code === "authentication_failed") {
      throw new BarrierInvalidKeyError(wrongKeyMessage, { cause: e });
    }
    throw e;
  }
  try {
    const ring = Keyring.deserialize(plain);
    if (!ring.hasRootKey(rootKey)) {
      ring.zero();
      throw new BarrierError(
        "invalid_keyring",
        "core/keyring opened with the root key but names a different MasterKey: the keyring is inconsistent",
      );
    }
    return ring;
  } finally {
    plain.fill(0);
  }
}

/**
 * Decrypts a single-key record (`core/master`, `core/upgrade/<N>`) written through the barrier at
 * `path`; the decrypted bytes are wiped once parsed. The caller wipes the record's `value`.
 */
export function readKeyRecord(
  aeads: TermKeys,
  path: string,
  ciphertext: Uint8Array,
): ReturnType<typeof deserializeKey> {
  const plain = decryptFrame(aeads, path, ciphertext);
  try {
    return deserializeKey(plain);
  } finally {
    plain.fill(0);
  }
}

/**
 * Writes `core/keyring` (root key, term-1 framing, AAD "core/keyring") and then `core/master`
 * (root-key record under the active term). Both are CSPs: flagged for seal wrap.
 *
 * All or nothing while the process lives: when `core/master` cannot be written, the two records
 * are put back as they were before and the error is rethrown; the caller then truly has changed
 * nothing (after a rekey the old root key still opens the keyring). When the barrier is sealed
 * (a new `epoch`) in between, only a root-key change is put back: a sealed node may no longer
 * be the active one, and a new keyring beside the old `core/master` still opens and reads.
 * Only a crash between the writes leaves the new keyring behind, and only a failed restore
 * reports `keyring_not_restored`.
 */
export async function persistKeyring(
  ctx: BarrierContext,
  ring: Keyring,
  activeAead: AesGcmKey,
  epoch: number | undefined,
): Promise<void> {
  const { storage, keys } = ctx;
  const current = keys.keyring;
  const changesRootKey = current !== undefined && !current.hasRootKey(ring.rootKey.bytes);
  const before = await Promise.all([storage.get(KEYRING_PATH), storage.get(ROOT_KEY_PATH)]);
  if (epoch !== undefined) keys.checkEpoch(epoch);
  const json = ring.serialize();
  let value: Uint8Array;
  try {
    value = encryptFrame(new AesGcmKey(ring.rootKey), INITIAL_KEY_TERM, KEYRING_PATH, json);
  } finally {
    json.fill(0);
  }
  await storage.put({ key: KEYRING_PATH, value, sealWrap: true });

  try {
    if (epoch !== undefined) keys.checkEpoch(epoch);
    await storage.put({ key: ROOT_KEY_PATH, value: rootKeyRecord(ring, activeAead), sealWrap: true });
    if (epoch !== undefined) keys.checkEpoch(epoch);
  } catch (e) {
    const sealed = epoch !== undefined && epoch !== keys.epoch;
    if (!sealed || changesRootKey) await restoreKeyRecords(ctx, before, e);
    throw e;
  }
}

/** `core/master`'s ciphertext: the root key as a key record under the active term. */
function rootKeyRecord(ring: Keyring, activeAead: AesGcmKey): Uint8Array {
  // Vault writes the root-key record with a zero InstallTime.
  const record = serializeKey({
    term: 1,
    version: 1,
    value: ring.rootKey.bytes,
    installTime: GoTime.ZERO,
    encryptions: 0,
  });
  try {
    return encryptFrame(activeAead, ring.activeTerm, ROOT_KEY_PATH, record);
  } finally {
    record.fill(0);
  }
}

/** Puts `core/keyring` and `core/master` back as `before` read them (absent ones are deleted). */
async function restoreKeyRecords(
  { storage, log }: BarrierContext,
  before: (Entry | undefined)[],
  cause: unknown,
): Promise<void> {
  try {
    for (const [i, key] of [KEYRING_PATH, ROOT_KEY_PATH].entries()) {
      const old = before[i];
      if (old === undefined) await storage.delete(key);
      else await storage.put({ key, value: old.value, sealWrap: true });
    }
    log.warn("keyring change failed; the previous keyring was put back", { error: String(cause) });
  } catch (restoreError) {
    throw new BarrierError(
      "keyring_not_restored",
      `core/keyring was rewritten but the change could not be completed (${String(cause)}), and putting the previous keyring back failed too (${String(restoreError)}): storage now holds the new keyring, which after a rekey opens only with the new root key — keep that key, then retry the operation`,
      { cause },
    );
  }
}

/**
 * Persists `next` with the pending encryption count folded into its active term, then makes it
 * the keyring in memory. `next` is wiped when anything fails.
 */
export async function commitKeyring(
  ctx: BarrierContext,
  next: Keyring,
  epoch: number,
  foldCount: boolean,
): Promise<void> {
  const { keys } = ctx;
  const pending = foldCount ? keys.unaccounted : 0;
  try {
    // +1: the core/master encryption the persist itself performs (as Vault counts it).
    if (foldCount) next.activeKey().encryptions += pending + 1;
    const aead = keys.aeads.get(next.activeTerm);
    if (aead === undefined) throw new BarrierError("invalid_keyring", "active term has no prepared key");
    await persistKeyring(ctx, next, aead, epoch);
  } catch (e) {
    next.zero();
    throw e;
  }
  keys.unaccounted -= pending;
  keys.install(next);
}

import { constantTimeEqual } from "@bulwark/crypto";
import { parseSealWrapped, type Seal } from "@bulwark/seal";
import { type Backend, isTransactional } from "@bulwark/storage";
import { type RewrapProgress, type RewrapResult, SealWrapBackend } from "./seal-wrap-backend.js";
import type { Logger } from "./types.js";
import { errText, walk } from "./util.js";

/**
 * Re-wraps every seal-wrapped entry in `raw` with the seal's current key (after a seal key
 * rotation or a migration). With a seal that cannot wrap (Shamir, after migrating away from an
 * auto seal), or with seal wrap disabled (`disable_sealwrap`), wrapped entries are unwrapped
 * instead: they stay barrier-encrypted.
 */
export async function rewrapAll(
  raw: Backend,
  seal: Seal,
  log: Logger,
  onProgress?: (p: RewrapProgress) => void,
  opts: { sealWrapDisabled?: boolean } = {},
): Promise<RewrapResult> {
  if (seal.supportsSealWrap)
    return new SealWrapBackend(raw, seal, { disabled: opts.sealWrapDisabled === true }).rewrap(
      "",
      onProgress,
    );
  const result: RewrapResult = { processed: 0, rewrapped: 0, failed: 0, failedKeys: [] };
  for await (const key of walk(raw, "")) {
    const e = await raw.get(key);
    if (e === undefined) continue;
    result.processed++;
    const blob = parseSealWrapped(e.value);
    if (blob !== undefined) {
      try {
        const inner = await seal.decrypt(blob);
        if (await replaceIfUnchanged(raw, key, e.value, inner)) result.rewrapped++;
      } catch (err) {
        log.warn("could not unwrap a seal-wrapped entry", { key, error: errText(err) });
        result.failed++;
        result.failedKeys.push(key);
      }
    }
    onProgress?.({ processed: result.processed, rewrapped: result.rewrapped, failed: result.failed, key });
  }
  return result;
}

/**
 * Writes `next` at `key` only if it still holds `expected`: data writes are not serialised with
 * rewrap, so a value written since it was read must not be replaced by the older one. Atomic on
 * a transactional backend; otherwise a re-read narrows the window. Returns whether it wrote.
 */
async function replaceIfUnchanged(
  raw: Backend,
  key: string,
  expected: Uint8Array,
  next: Uint8Array,
): Promise<boolean> {
  if (isTransactional(raw)) {
    try {
      await raw.transaction([
        { op: "check", key, value: expected },
        { op: "put", entry: { key, value: next } },
      ]);
      return true;
    } catch (err) {
      const now = await raw.get(key);
      if (now === undefined || !constantTimeEqual(now.value, expected)) return false;
      throw err;
    }
  }
  const now = await raw.get(key);
  if (now === undefined || !constantTimeEqual(now.value, expected)) return false;
  await raw.put({ key, value: next });
  return true;
}

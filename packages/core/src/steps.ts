import { type AesGcmBarrier, KEY_RECORD_PATHS } from "@bulwark/barrier";
import type { Journal } from "./journal.js";
import type { Logger } from "./types.js";
import { errText } from "./util.js";

/** What the journaled lifecycle steps need from the store. */
export interface StepsContext {
  readonly journal: Journal;
  readonly barrier: Pick<AesGcmBarrier, "seal" | "unseal">;
  readonly log: Logger;
  /** Bumped by every seal(): a step that began before it must not unseal the barrier again. */
  sealings(): number;
  /** Re-reads the key records (seal configurations, stored key id). */
  loadConfig(): Promise<void>;
  /** No seal may keep a KEK a failed step set once the store is left sealed. */
  clearShamirKeys(): void;
  /** Seals for good, with the reason, when memory can no longer be matched to storage. */
  sealForGood(reason: string): Promise<void>;
}

/**
 * Multi-record lifecycle steps (init, rekey, seal migration) under the rollback journal: on failure
 * the saved records are restored (at once, or at the next open if the process died) so the store
 * is always in the old or the new state, never in a mix.
 */
export class LifecycleSteps {
  constructor(private readonly ctx: StepsContext) {}

  /**
   * Rolls back a journal left by a step (or by a step whose own rollback failed). Run before every
   * step and before anything else that writes the records it saved (a rotation's keyring, an
   * upgraded stored key): a journal restored later would undo that write, and lose a key term.
   */
  async recoverJournal(): Promise<void> {
    const op = await this.ctx.journal.recover();
    if (op !== undefined) this.ctx.log.warn("rolled back an interrupted lifecycle step", { op });
  }

  /** Runs `fn` under the journal; on failure rolls back and rethrows. */
  async step(op: string, fn: () => Promise<void>): Promise<void> {
    const { journal, log } = this.ctx;
    // A journal left by an earlier step whose rollback failed is rolled back first.
    await this.recoverJournal();
    await journal.begin(op, KEY_RECORD_PATHS);
    try {
      await fn();
      // Until the journal is gone the step has not happened: a failed commit rolls back too,
      // because the caller is told the step failed.
      await journal.commit();
    } catch (e) {
      try {
        await journal.recover();
      } catch (rollbackError) {
        log.error("rollback failed; it will be retried at the next open or lifecycle step", {
          op,
          error: errText(rollbackError),
        });
      }
      throw e;
    }
  }

  /**
   * A step that replaces the root key: on failure the records are rolled back and the barrier is
   * unsealed again with the old root key so memory matches storage.
   */
  async rootKeyStep(op: string, oldRoot: Uint8Array, fn: () => Promise<void>): Promise<void> {
    const ctx = this.ctx;
    const barrier = ctx.barrier;
    const sealings = ctx.sealings();
    try {
      await this.step(op, fn);
    } catch (e) {
      barrier.seal();
      // The store was sealed meanwhile (an HA takeover's migration is not serialised with seal()):
      // it stays sealed, and no seal keeps a KEK the step set.
      if (sealings !== ctx.sealings()) {
        ctx.clearShamirKeys();
        throw e;
      }
      try {
        await barrier.unseal(oldRoot);
      } catch (unsealError) {
        // Sealed for good: step down (release the HA lock so another node can take over, stop timers).
        await ctx.sealForGood(
          `${op} failed and the store could not be restored in memory: ${errText(unsealError)}; reopen it`,
        );
      }
      throw e;
    }
  }

  /**
   * Re-reads the seal configuration after a committed step. The step has happened, so a failed
   * read must not throw (the caller would lose the new shares): `written` sets what was stored.
   */
  async reloadAfterCommit(written: () => void): Promise<void> {
    try {
      await this.ctx.loadConfig();
    } catch (e) {
      this.ctx.log.warn(
        "could not re-read the seal configuration after a committed step; using what was written",
        { error: errText(e) },
      );
      written();
    }
  }
}

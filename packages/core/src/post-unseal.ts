import type { AesGcmBarrier } from "@bulwark/barrier";
import type { Seal } from "@bulwark/seal";
import type { Backend } from "@bulwark/storage";
import type { HaNode } from "./ha.js";
import type { KeyRecords } from "./key-records.js";
import type { MigrationSeal } from "./migration-seal.js";
import { rewrapAll } from "./rewrap.js";
import type { SealMigration } from "./seal-migration.js";
import type { Logger } from "./types.js";
import { errText } from "./util.js";

/** What becoming the active node needs from the store. */
export interface PostUnsealContext {
  readonly raw: Backend;
  readonly seal: Seal;
  /** The seal the seal-wrap layer uses (the configured one, reading the migration source's too). */
  readonly wrapSeal: MigrationSeal;
  readonly records: KeyRecords;
  readonly barrier: Pick<
    AesGcmBarrier,
    "sealed" | "checkUpgrade" | "reloadRootKey" | "reloadKeyring" | "checkAutoRotate"
  >;
  readonly ha: HaNode;
  readonly migration: SealMigration;
  readonly log: Logger;
  /** How often the active node checks automatic rotation; 0 disables the timer. */
  readonly autoRotateCheckMs: number;
  /** `disable_sealwrap`: a migration's re-wrap unwraps instead. */
  readonly sealWrapDisabled: boolean;
  /** The migration source, if any (set late by an implicit migration). */
  migrationSeal(): Seal | undefined;
  recoverJournal(): Promise<void>;
  loadConfig(): Promise<void>;
  /** Runs `fn` in turn with the lifecycle steps. */
  serial<T>(fn: () => Promise<T>): Promise<T>;
}

/**
 * What a node does once it is the active one (OpenBao's postUnseal): with HA, catch up with what
 * the previous active node changed and advertise itself; then upgrade the stored keys to the seal's
 * current key, finish a seal migration's re-wrap, and run the automatic rotation check.
 */
export class PostUnseal {
  #rotateTimer: NodeJS.Timeout | undefined;

  constructor(private readonly ctx: PostUnsealContext) {}

  /**
   * `stillLeading` (HA takeover) throws once this node lost the lock or was sealed: it is checked
   * before every step that writes, so a node deposed while taking over writes nothing more.
   */
  async run(stillLeading: () => void): Promise<void> {
    const ctx = this.ctx;
    if (ctx.ha.enabled) await this.#takeOver(stillLeading);
    if (ctx.seal.autoUnseal) {
      stillLeading();
      try {
        await ctx.records.upgradeSealKeys(ctx.seal);
      } catch (e) {
        ctx.log.warn("post-unseal upgrade of seal keys failed", { error: errText(e) });
      }
    }
    if (ctx.migrationSeal() !== undefined) {
      // Finish a migration: every value wrapped by the old seal is re-wrapped (or unwrapped).
      stillLeading();
      const r = await rewrapAll(ctx.raw, ctx.wrapSeal, ctx.log, undefined, {
        sealWrapDisabled: ctx.sealWrapDisabled,
      });
      if (r.rewrapped > 0) ctx.log.info("re-wrapped seal-wrapped entries after seal migration", { ...r });
    }
    // Sealed or deposed meanwhile: no timer may outlive the session (stop() already cleared it).
    stillLeading();
    this.#startRotateTimer();
  }

  /** HA takeover: roll back, re-read and migrate what the previous active node left, advertise. */
  async #takeOver(stillLeading: () => void): Promise<void> {
    const { barrier, ha } = this.ctx;
    stillLeading();
    // A step the previous active node left unfinished is rolled back before anything else.
    await this.ctx.recoverJournal();
    await this.ctx.loadConfig();
    // Pick up what the previous active node changed: new terms (checkUpgrade follows the whole
    // chain of upgrade entries itself), a new root key.
    await barrier.checkUpgrade();
    await barrier.reloadRootKey();
    await barrier.reloadKeyring();
    stillLeading();
    await this.ctx.migration.runPending();
    stillLeading();
    await ha.advertise();
    await ha.removeStaleAdvertisements(stillLeading);
  }

  /** The active node checks automatic rotation (Vault: every 5 min); one timer per store. */
  #startRotateTimer(): void {
    const { barrier, ha, log } = this.ctx;
    // One check timer per store: each HA takeover would otherwise add another.
    this.stop();
    const every = this.ctx.autoRotateCheckMs;
    if (every <= 0) return;
    const t = setInterval(() => {
      if (barrier.sealed || !ha.active) return;
      // Through the lifecycle queue, like rotate(): a term must not land inside a rekey's step.
      this.ctx
        .serial(async () => {
          if (barrier.sealed || !ha.active) return undefined;
          await this.ctx.recoverJournal();
          return barrier.checkAutoRotate();
        })
        .then(
          (reason) => reason && log.info("automatic barrier key rotation", { reason }),
          (e: unknown) => log.warn("automatic rotation check failed", { error: errText(e) }),
        );
    }, every);
    t.unref();
    this.#rotateTimer = t;
  }

  /** Stops the rotation timer (seal). */
  stop(): void {
    if (this.#rotateTimer !== undefined) clearInterval(this.#rotateTimer);
    this.#rotateTimer = undefined;
  }
}

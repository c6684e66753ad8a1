import { randomUUID } from "node:crypto";
import type { AesGcmBarrier } from "@bulwark/barrier";
import { constantTimeEqual, randomBytes, shamirSplit, validateShamirParameters } from "@bulwark/crypto";
import type { Seal } from "@bulwark/seal";
import { CoreError, InvalidRequestError } from "./errors.js";
import type { KeyRecords } from "./key-records.js";
import { sealConfig } from "./seal-config.js";
import { parseKeyShare, ShareCollector } from "./shares.js";
import type { Logger, RekeyResult, RekeyStatus, RekeyTarget } from "./types.js";
import { asShamir, b64, hex, safeKeyId } from "./util.js";

interface RekeyOp {
  target: RekeyTarget;
  nonce: string;
  shares: number;
  threshold: number;
  collector: ShareCollector;
}

/** What a rekey needs from the store. */
export interface RekeyContext {
  readonly seal: Seal;
  readonly records: KeyRecords;
  readonly barrier: Pick<AesGcmBarrier, "sealed" | "rekey" | "shamirKek" | "setShamirKek">;
  readonly log: Logger;
  /** Runs a multi-record step under the rollback journal. */
  step(op: string, fn: () => Promise<void>): Promise<void>;
  /** A step that replaces the root key (restores the old one in memory on failure). */
  rootKeyStep(op: string, oldRoot: Uint8Array, fn: () => Promise<void>): Promise<void>;
  /** Re-reads the key records after a committed step; `written` sets them if that fails. */
  reloadAfterCommit(written: () => void): Promise<void>;
}

/**
 * Rekey (OpenBao's vault/rekey.go): the operation in progress, the shares authorising it, and the
 * step that writes the new keys — new unseal shares and root key (Shamir), a new root key (auto
 * seals), or new recovery shares. The caller serialises the calls with the other lifecycle steps
 * and checks that this node is the unsealed active node.
 */
export class Rekey {
  #op: RekeyOp | undefined;

  constructor(private readonly ctx: RekeyContext) {}

  /** Shares needed to authorise a rekey (or root generation): the current keys' threshold. */
  authThreshold(): number {
    const { records, seal } = this.ctx;
    return seal.autoUnseal
      ? (records.recoveryConfig?.secret_threshold ?? 1)
      : (records.config?.secret_threshold ?? 1);
  }

  init(req: { secretShares?: number; secretThreshold?: number; target?: RekeyTarget }): RekeyStatus {
    if (this.#op !== undefined) {
      throw new CoreError(
        "operation_in_progress",
        "a rekey is already in progress: finish it or cancel it first",
      );
    }
    const target = req.target ?? "barrier";
    const { shares, threshold } = this.#newShares(target, req);
    const op = { target, nonce: randomUUID(), shares, threshold, collector: new ShareCollector() };
    this.#op = op;
    return this.#statusOf(op);
  }

  #newShares(
    target: RekeyTarget,
    req: { secretShares?: number; secretThreshold?: number },
  ): { shares: number; threshold: number } {
    const seal = this.ctx.seal;
    if (target === "recovery" && !seal.autoUnseal) {
      throw new InvalidRequestError(
        "target recovery needs an auto seal: the Shamir seal has no recovery keys",
      );
    }
    if (target === "barrier" && seal.autoUnseal) {
      // Auto seals keep one stored key; the rekey only replaces the root key.
      if ((req.secretShares ?? 1) !== 1 || (req.secretThreshold ?? 1) !== 1) {
        throw new InvalidRequestError(
          `secret_shares and secret_threshold must be 1 with seal type ${seal.type}: use target=recovery to rekey recovery keys`,
        );
      }
      return { shares: 1, threshold: 1 };
    }
    const shares = req.secretShares ?? 0;
    const threshold = req.secretThreshold ?? 0;
    validateShamirParameters(shares, threshold);
    return { shares, threshold };
  }

  status(): RekeyStatus | undefined {
    return this.#op === undefined ? undefined : this.#statusOf(this.#op);
  }

  #statusOf(op: RekeyOp): RekeyStatus {
    return {
      started: true,
      nonce: op.nonce,
      t: op.threshold,
      n: op.shares,
      progress: op.collector.progress,
      required: this.authThreshold(),
      target: op.target,
    };
  }

  cancel(): void {
    this.#op?.collector.reset();
    this.#op = undefined;
  }

  /** Adds one current share; at the threshold, checks the key and performs the rekey. */
  async update(keyShare: Uint8Array | string, nonce: string): Promise<RekeyStatus | RekeyResult> {
    const op = this.#op;
    if (op === undefined)
      throw new CoreError("no_operation_in_progress", "no rekey is in progress: call rekey init first");
    if (nonce !== op.nonce)
      throw new CoreError("nonce_mismatch", "nonce does not match the rekey in progress");
    const share = parseKeyShare(keyShare);
    const secret = await op.collector.add(share, this.authThreshold()).finally(() => share.fill(0));
    if (secret === undefined) return this.#statusOf(op);
    try {
      await this.verifyCurrentSecret(secret);
    } finally {
      secret.fill(0);
    }
    this.#op = undefined;
    const result = await this.#perform(op);
    this.ctx.log.info("rekey complete", { target: op.target });
    return result;
  }

  /**
   * Checks, without changing anything, that `shares` combine to the current unseal key (Shamir) or
   * recovery key (auto seals). Throws `invalid_key` when they do not.
   */
  async verifyKeyShares(shares: ReadonlyArray<Uint8Array | string>): Promise<void> {
    const threshold = this.authThreshold();
    const collector = new ShareCollector();
    let secret: Uint8Array | undefined;
    for (const s of shares) {
      const share = parseKeyShare(s);
      try {
        secret = await collector.add(share, threshold);
      } catch (e) {
        collector.reset();
        throw e;
      } finally {
        share.fill(0);
      }
      if (secret !== undefined) break;
    }
    if (secret === undefined) {
      collector.reset();
      throw new InvalidRequestError(`${threshold} distinct key shares are needed, got fewer`);
    }
    try {
      await this.verifyCurrentSecret(secret);
    } finally {
      secret.fill(0);
    }
  }

  /** Checks a combined secret against the current unseal key (Shamir KEK) or recovery key. */
  async verifyCurrentSecret(secret: Uint8Array): Promise<void> {
    if (this.ctx.seal.autoUnseal) {
      await this.ctx.records.verifyRecoveryKey(this.ctx.seal, secret);
      return;
    }
    const kek = await this.ctx.barrier.shamirKek();
    try {
      if (kek === undefined || !constantTimeEqual(kek, secret)) {
        throw new CoreError(
          "invalid_key",
          "invalid key: the shares do not form the current unseal key; give a threshold of the current unseal key shares",
        );
      }
    } finally {
      kek?.fill(0);
    }
  }

  async #perform(op: RekeyOp): Promise<RekeyResult> {
    const result: RekeyResult = { complete: true, nonce: op.nonce, keys: [], keysBase64: [] };
    if (op.target === "recovery") {
      await this.#rekeyRecovery(op, result);
      return result;
    }
    const { seal, records } = this.ctx;
    const newRoot = randomBytes(32);
    const oldRoot = await records.readStoredKeys(seal);
    try {
      if (seal.autoUnseal) {
        await this.ctx.rootKeyStep("rekey", oldRoot, async () => {
          await this.ctx.barrier.rekey(newRoot);
          await records.putStoredKeys(seal, newRoot);
        });
      } else {
        await this.#rekeyShamir(op, oldRoot, newRoot, result);
      }
    } finally {
      newRoot.fill(0);
      oldRoot.fill(0);
    }
    await this.ctx.reloadAfterCommit(() => {
      if (!seal.autoUnseal) records.config = sealConfig("shamir", op.shares, op.threshold);
      records.storedKeyId = safeKeyId(seal);
    });
    return result;
  }

  /** New recovery shares (auto seals); the root key stays. */
  async #rekeyRecovery(op: RekeyOp, result: RekeyResult): Promise<void> {
    const { seal, records } = this.ctx;
    const recoveryKey = randomBytes(32);
    let parts: Uint8Array[] = [];
    try {
      parts = await shamirSplit(recoveryKey, op.shares, op.threshold);
      await this.ctx.step("rekey-recovery", async () => {
        await records.putRecoveryKey(seal, recoveryKey);
        await records.writeRecoveryConfig(sealConfig("shamir", op.shares, op.threshold));
      });
      result.keys = parts.map(hex);
      result.keysBase64 = parts.map(b64);
    } finally {
      recoveryKey.fill(0);
      for (const p of parts) p.fill(0);
    }
    await this.ctx.reloadAfterCommit(() => {
      records.recoveryConfig = sealConfig("shamir", op.shares, op.threshold);
    });
  }

  /** Shamir: a new KEK split into new unseal shares, and a new root key wrapped by it. */
  async #rekeyShamir(
    op: RekeyOp,
    oldRoot: Uint8Array,
    newRoot: Uint8Array,
    result: RekeyResult,
  ): Promise<void> {
    const { barrier, records } = this.ctx;
    const kek = randomBytes(32);
    let parts: Uint8Array[] = [];
    let oldKek: Uint8Array | undefined;
    const shamir = asShamir(this.ctx.seal);
    try {
      parts = await shamirSplit(kek, op.shares, op.threshold);
      oldKek = await barrier.shamirKek();
      await this.ctx.rootKeyStep("rekey", oldRoot, async () => {
        await barrier.rekey(newRoot);
        await barrier.setShamirKek(kek);
        shamir.setKey(kek);
        await records.putStoredKeys(shamir, newRoot);
        await records.writeSealConfig(sealConfig("shamir", op.shares, op.threshold));
      });
      result.keys = parts.map(hex);
      result.keysBase64 = parts.map(b64);
    } catch (e) {
      // Back to the old KEK while unsealed; a store left sealed keeps none.
      if (oldKek !== undefined && !barrier.sealed) shamir.setKey(oldKek);
      throw e;
    } finally {
      oldKek?.fill(0);
      kek.fill(0);
      for (const p of parts) p.fill(0);
    }
  }
}

import {
  type AesGcmBarrier,
  BarrierCiphertextError,
  INIT_LOCK_PATH,
  LEADER_PREFIX,
  LOCK_PATH,
} from "@bulwark/barrier";
import type { Entry, HABackend, Lock } from "@bulwark/storage";
import { CoreError } from "./errors.js";
import type { LeaderStatus, Logger } from "./types.js";
import { errText } from "./util.js";

const INIT_LOCK_WAIT_MS = 10_000;
/** How long a standby reuses what it learnt about the active node (lock holder and address). */
const LEADER_CACHE_MS = 1000;
/** Pause before competing for the lock again after a failed acquisition or takeover. */
const RETRY_PAUSE_MS = 1000;

/** What the HA node needs from the store. */
export interface HaContext {
  /** The lock provider; `undefined` for a single node (always active once unsealed). */
  readonly ha: HABackend | undefined;
  readonly nodeId: string;
  /** The address this node advertises while active (Vault's `api_addr`); `""` for none. */
  readonly redirectAddr: string;
  /** How often a standby checks for keyring upgrades. */
  readonly standbyPollMs: number;
  readonly log: Logger;
  readonly barrier: Pick<
    AesGcmBarrier,
    | "sealed"
    | "get"
    | "put"
    | "delete"
    | "list"
    | "checkUpgrade"
    | "reloadRootKey"
    | "reloadKeyring"
    | "keyStatus"
  >;
  /**
   * Takes over as the active node once the lock is held. `stillLeading` throws once this node lost
   * the lock or was sealed: it is checked before every step that writes.
   */
  becomeActive(stillLeading: () => void): Promise<void>;
}

/** Resolves after `ms`, or at once when `signal` aborts. */
function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise<void>((r) => {
    const t = setTimeout(r, ms);
    t.unref();
    signal.addEventListener(
      "abort",
      () => {
        clearTimeout(t);
        r();
      },
      { once: true },
    );
  });
}

/** Resolves once either signal aborts. */
function untilAborted(a: AbortSignal, b: AbortSignal): Promise<void> {
  return new Promise<void>((resolve) => {
    if (a.aborted || b.aborted) return resolve();
    a.addEventListener("abort", () => resolve(), { once: true });
    b.addEventListener("abort", () => resolve(), { once: true });
  });
}

/**
 * This node's part in HA (OpenBao's vault/ha.go): whether it is active, the leader election loop
 * (standby → active → standby when the lock is lost), the standby's keyring catch-up poll, the
 * active node's advertisement (`core/leader/<node id>`) and the answer to `sys/leader`.
 * Without a lock provider the node is active whenever it is unsealed.
 */
export class HaNode {
  #activeFlag = false;
  /** Bumped whenever this node becomes or stops being active (see {@link activeTerm}). */
  #activeChanges = 0;
  #activeSince: Date | undefined;
  /** A standby's last answer about the active node. */
  #leaderSeen: { at: number; status: LeaderStatus } | undefined;
  #lock: Lock | undefined;
  #abort: AbortController | undefined;
  #poll: NodeJS.Timeout | undefined;

  constructor(private readonly ctx: HaContext) {}

  get enabled(): boolean {
    return this.ctx.ha !== undefined;
  }

  get active(): boolean {
    return this.#activeFlag;
  }

  set active(v: boolean) {
    if (v === this.#activeFlag) return;
    this.#activeFlag = v;
    this.#activeChanges++;
    this.#activeSince = v ? new Date() : undefined;
    this.#leaderSeen = undefined;
  }

  /** See SealedStore.activeTerm: stable while active, never reused. */
  get activeTerm(): number | undefined {
    return !this.ctx.barrier.sealed && this.#activeFlag ? this.#activeChanges : undefined;
  }

  /** Who is active (Vault's `sys/leader`); the caller checks that the store is unsealed. */
  async leader(): Promise<LeaderStatus> {
    const ha = this.ctx.ha;
    if (ha === undefined || this.activeTerm !== undefined) return this.#self();
    const seen = this.#leaderSeen;
    if (seen !== undefined && Date.now() - seen.at < LEADER_CACHE_MS) return seen.status;
    const holder = await ha.lockWith(LOCK_PATH, this.ctx.nodeId).value();
    const status: LeaderStatus = { haEnabled: true, isSelf: false, leaderAddress: "" };
    // This node holding the lock but not active yet is a takeover in progress: no address yet.
    if (
      holder.held &&
      holder.value !== undefined &&
      holder.value !== "" &&
      holder.value !== this.ctx.nodeId
    ) {
      status.leaderNodeId = holder.value;
      status.leaderAddress = await this.#advertisedAddress(holder.value);
    }
    // Only a complete answer is reused: during a failover (no holder yet, or a holder that has not
    // advertised yet) the next call looks again, instead of reporting "no address" for a second.
    if (status.leaderAddress !== "") this.#leaderSeen = { at: Date.now(), status };
    return status;
  }

  #self(): LeaderStatus {
    const s: LeaderStatus = {
      haEnabled: this.ctx.ha !== undefined,
      isSelf: true,
      leaderAddress: this.ctx.redirectAddr,
      leaderNodeId: this.ctx.nodeId,
    };
    if (this.#activeSince !== undefined) s.activeTime = this.#activeSince;
    return s;
  }

  async #advertisedAddress(nodeId: string): Promise<string> {
    const e = await this.ctx.barrier.get(`${LEADER_PREFIX}${nodeId}`);
    if (e === undefined) return "";
    try {
      const adv: unknown = JSON.parse(new TextDecoder().decode(e.value));
      if (typeof adv === "object" && adv !== null && "redirect_addr" in adv) {
        const addr = adv.redirect_addr;
        if (typeof addr === "string") return addr;
      }
    } catch {
      this.ctx.log.warn("unreadable active-node advertisement", { nodeId });
    }
    return "";
  }

  /**
   * A barrier read. A standby learns of the active node's key rotations by polling (every
   * `standbyPollMs`); a value written under a term it has not picked up yet makes it catch up
   * first instead of failing the read.
   */
  async read(key: string): Promise<Entry | undefined> {
    const barrier = this.ctx.barrier;
    try {
      return await barrier.get(key);
    } catch (e) {
      if (!(e instanceof BarrierCiphertextError) || e.code !== "unknown_term" || this.#activeFlag) throw e;
      if (!(await barrier.checkUpgrade())) {
        // Upgrade entries are kept for a grace period only: read the whole keyring instead (after
        // the root key, if the active node also rekeyed).
        try {
          await barrier.reloadKeyring();
        } catch {
          await barrier.reloadRootKey();
          await barrier.reloadKeyring();
        }
      }
      return barrier.get(key);
    }
  }

  /** Whether another node holds the HA lock (its lifecycle step may be in progress). */
  async lockHeldElsewhere(): Promise<boolean> {
    if (this.ctx.ha === undefined) return false;
    const holder = await this.ctx.ha.lockWith(LOCK_PATH, this.ctx.nodeId).value();
    return holder.held && holder.value !== this.ctx.nodeId;
  }

  /**
   * With HA, nodes initialise one at a time (Vault's init lock): two concurrent inits would
   * interleave their key records (and roll back each other's journal), leaving shares that open
   * nothing. `undefined` without HA.
   */
  async acquireInitLock(): Promise<Lock | undefined> {
    if (this.ctx.ha === undefined) return undefined;
    const lock = this.ctx.ha.lockWith(INIT_LOCK_PATH, this.ctx.nodeId);
    const wait = new AbortController();
    const timer = setTimeout(() => wait.abort(), INIT_LOCK_WAIT_MS);
    timer.unref();
    try {
      await lock.acquire(wait.signal);
    } catch (e) {
      if (!wait.signal.aborted) throw e;
      throw new CoreError(
        "operation_in_progress",
        `another node is initializing the store (${INIT_LOCK_PATH} held for ${INIT_LOCK_WAIT_MS / 1000} s): check the seal status, then retry if it is still uninitialized`,
        { cause: e },
      );
    } finally {
      clearTimeout(timer);
    }
    return lock;
  }

  /** Tells the standbys where to send requests (Vault's active-node advertisement). */
  async advertise(): Promise<void> {
    await this.ctx.barrier.put({
      key: `${LEADER_PREFIX}${this.ctx.nodeId}`,
      value: new TextEncoder().encode(JSON.stringify({ redirect_addr: this.ctx.redirectAddr })),
    });
  }

  /**
   * Deletes the advertisements of nodes that lost the lock without stepping down (Vault's
   * `cleanLeaderPrefix`); otherwise one is left behind per such node for good. Best effort.
   */
  async removeStaleAdvertisements(stillLeading: () => void): Promise<void> {
    const { barrier, log, nodeId } = this.ctx;
    let stale: string[];
    try {
      stale = (await barrier.list(LEADER_PREFIX)).filter((id) => id !== nodeId && !id.endsWith("/"));
    } catch (e) {
      log.warn("could not list active-node advertisements", { error: errText(e) });
      return;
    }
    for (const id of stale) {
      stillLeading();
      await barrier.delete(`${LEADER_PREFIX}${id}`).catch((e: unknown) => {
        log.warn("could not remove a stale active-node advertisement", { nodeId: id, error: errText(e) });
      });
    }
  }

  /** After an unseal: active at once without HA; with HA, a standby competing for the lock. */
  async start(): Promise<void> {
    if (this.ctx.ha === undefined) {
      this.active = true;
      await this.ctx.becomeActive(() => {});
      return;
    }
    this.active = false;
    this.#startElection(this.ctx.ha);
  }

  /**
   * Steps down (seal): ends the election, withdraws this node's advertisement while it still holds
   * the lock and releases the lock. Call while the barrier is still unsealed.
   */
  async stop(): Promise<void> {
    if (this.#poll !== undefined) clearInterval(this.#poll);
    this.#poll = undefined;
    this.#abort?.abort();
    this.#abort = undefined;
    // An active node that steps down on purpose withdraws its advertisement while it still holds
    // the lock (a deposed node's delete would be fenced; the next active node advertises anyway).
    if (this.ctx.ha !== undefined && this.#activeFlag && !this.ctx.barrier.sealed) {
      await this.ctx.barrier.delete(`${LEADER_PREFIX}${this.ctx.nodeId}`).catch(() => undefined);
    }
    // Released even when not active: a backend that lost the lock (e.g. Consul fencing) keeps
    // refusing writes through this lock until it is released or re-acquired.
    if (this.#lock !== undefined) await this.#lock.release().catch(() => undefined);
    this.#lock = undefined;
    this.active = false;
  }

  #startElection(ha: HABackend): void {
    const abort = new AbortController();
    this.#abort = abort;
    const lock = ha.lockWith(LOCK_PATH, this.ctx.nodeId);
    this.#lock = lock;
    this.#startStandbyPoll();
    void this.#electionLoop(lock, abort.signal);
  }

  /** A standby follows the active node's key rotations and rekeys (Vault: every 10 s). */
  #startStandbyPoll(): void {
    const { barrier, log } = this.ctx;
    const poll = setInterval(() => {
      if (this.#activeFlag || barrier.sealed) return;
      // One chain with one catch: a failure in either step (storage down, the store sealed or
      // closed meanwhile) is logged, never left as an unhandled rejection.
      (async () => {
        if (await barrier.checkUpgrade())
          log.info("standby upgraded to a new key term", { term: barrier.keyStatus().term });
        await barrier.reloadRootKey();
      })().catch((e: unknown) => log.debug("standby upgrade check failed", { error: errText(e) }));
    }, this.ctx.standbyPollMs);
    poll.unref();
    if (this.#poll !== undefined) clearInterval(this.#poll);
    this.#poll = poll;
  }

  async #electionLoop(lock: Lock, sealed: AbortSignal): Promise<void> {
    const { log, nodeId } = this.ctx;
    while (!sealed.aborted) {
      let leadership: AbortSignal;
      try {
        leadership = await lock.acquire(sealed);
      } catch (e) {
        if (sealed.aborted) return;
        log.warn("HA lock acquisition failed; retrying", { error: errText(e) });
        await pause(RETRY_PAUSE_MS, sealed);
        continue;
      }
      const outcome = await this.#takeOver(lock, sealed, leadership);
      if (outcome === "sealed") return;
      if (outcome === "failed") continue;
      await untilAborted(leadership, sealed);
      // After a seal, stop() has already stepped down; `active` may belong to a newer session.
      if (sealed.aborted) return;
      this.active = false;
      log.warn("lost the HA lock; stepping down to standby", { nodeId });
    }
  }

  /** The lock is held: become active, or release it and pause on failure. */
  async #takeOver(
    lock: Lock,
    sealed: AbortSignal,
    leadership: AbortSignal,
  ): Promise<"active" | "failed" | "sealed"> {
    const stillLeading = () => {
      if (sealed.aborted || leadership.aborted) {
        throw new CoreError(
          "standby",
          sealed.aborted
            ? "sealed while taking over as active node"
            : "lost the HA lock while taking over as active node",
        );
      }
    };
    try {
      await this.ctx.becomeActive(stillLeading);
      // Sealed while taking over: this session is over (a later unseal runs its own).
      if (sealed.aborted) return "sealed";
      stillLeading();
      this.active = true;
      this.ctx.log.info("this node is now active", { nodeId: this.ctx.nodeId });
      return "active";
    } catch (e) {
      if (sealed.aborted) {
        // Sealed meanwhile: release this session's handle too (the lock may have been taken after
        // stop() released it); a later unseal holds its own handle.
        await lock.release().catch(() => undefined);
        return "sealed";
      }
      this.ctx.log.error("could not take over as active node; releasing the lock", { error: errText(e) });
      await lock.release().catch(() => undefined);
      // Back off before competing again: an immediate retry would spin on the same failure.
      await pause(RETRY_PAUSE_MS, sealed);
      return "failed";
    }
  }
}

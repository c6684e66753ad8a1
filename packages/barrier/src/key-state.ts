import { AesGcmKey } from "@bulwark/crypto";
import type { KeyStatus } from "./context.js";
import { BarrierSealedError } from "./errors.js";
import type { Keyring } from "./keyring.js";

/**
 * The keys in memory: the keyring (`undefined` = sealed), one prepared AES key per term, and the
 * seal epoch. Async operations read the epoch before they await and compare it after, so an
 * operation that was waiting on storage when the barrier sealed installs nothing.
 */
export class KeyState {
  #keyring: Keyring | undefined;
  /** One prepared AES key per term, so the hot path never re-imports a key. */
  #aeads = new Map<number, AesGcmKey>();
  #activeTerm = 0;
  #activeAead: AesGcmKey | undefined;
  /** Bumped by every seal; async operations compare it after each await. */
  #epoch = 0;
  /** Encryptions with the active term not yet written to the keyring (Vault's UnaccountedEncryptions). */
  unaccounted = 0;

  get sealed(): boolean {
    return this.#keyring === undefined;
  }

  get keyring(): Keyring | undefined {
    return this.#keyring;
  }

  get aeads(): Map<number, AesGcmKey> {
    return this.#aeads;
  }

  get activeTerm(): number {
    return this.#activeTerm;
  }

  get activeAead(): AesGcmKey | undefined {
    return this.#activeAead;
  }

  get epoch(): number {
    return this.#epoch;
  }

  requireUnsealed(): Keyring {
    const ring = this.#keyring;
    if (ring === undefined) throw new BarrierSealedError();
    return ring;
  }

  current(): { ring: Keyring; epoch: number } {
    return { ring: this.requireUnsealed(), epoch: this.#epoch };
  }

  checkEpoch(epoch: number): void {
    if (epoch !== this.#epoch || this.#keyring === undefined) throw new BarrierSealedError();
  }

  /** The active term, its install time and its encryption count. */
  status(): KeyStatus {
    const ring = this.requireUnsealed();
    const active = ring.activeKey();
    return {
      term: active.term,
      installTime: active.installTime.toDate(),
      installTimeText: active.installTime.format(),
      encryptions: active.encryptions + this.unaccounted,
    };
  }

  /** Makes `ring` the keyring in memory, reusing prepared keys of unchanged terms; wipes the old one. */
  install(ring: Keyring): void {
    const old = this.#keyring;
    const aeads = new Map<number, AesGcmKey>();
    for (const term of ring.terms()) {
      const key = ring.term(term);
      if (key === undefined) continue;
      const prev = this.#aeads.get(term);
      const same = prev !== undefined && old?.term(term)?.value.equals(key.value.bytes) === true;
      aeads.set(term, same ? prev : new AesGcmKey(key.value));
    }
    this.#keyring = ring;
    this.#aeads = aeads;
    this.#activeTerm = ring.activeTerm;
    this.#activeAead = aeads.get(ring.activeTerm);
    if (old !== undefined && old !== ring) old.zero();
  }

  /** Starts a new epoch and wipes every key; returns whether there was a keyring to wipe. */
  seal(): boolean {
    this.#epoch++;
    const ring = this.#keyring;
    this.#keyring = undefined;
    this.#aeads = new Map();
    this.#activeAead = undefined;
    this.#activeTerm = 0;
    if (ring === undefined) return false;
    ring.zero();
    return true;
  }
}

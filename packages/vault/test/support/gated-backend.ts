import { MemoryBackend } from "@bulwark/storage-memory";

/**
 * A memory backend whose next `get` of a chosen key reads at once but answers only after
 * `release()`: a read that is in flight while something else happens (a write, a revoke).
 */
export class GatedBackend extends MemoryBackend {
  #gate: { key: string; opened: Promise<void> } | undefined;
  hold(key: string): () => void {
    let release = () => {};
    const opened = new Promise<void>((r) => {
      release = r;
    });
    this.#gate = { key, opened };
    return release;
  }
  override async get(key: string) {
    const value = await super.get(key);
    const gate = this.#gate;
    if (gate !== undefined && gate.key === key) {
      this.#gate = undefined;
      await gate.opened;
    }
    return value;
  }
}

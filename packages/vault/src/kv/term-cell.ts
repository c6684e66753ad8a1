/**
 * One value read from storage and reused for up to `ttlMs` while the store's active term is
 * unchanged: another node may change it while this one is not active (a new term), and on a
 * standby (`undefined` term) it is re-read once the bound passes.
 *
 * Writes go through {@link write}, which brackets the store: a {@link get} whose load overlapped
 * a write caches nothing, so a slow read can never put back what a concurrent write replaced.
 */
export class TermCell<T> {
  readonly #ttlMs: number;
  readonly #term: () => number | undefined;
  #cached: { value: T; at: number; term: number | undefined } | undefined;
  /** Changes at the start and at the end of every write. */
  #seq = 0;

  constructor(ttlMs: number, term: () => number | undefined) {
    this.#ttlMs = ttlMs;
    this.#term = term;
  }

  /** The cached value when it is fresh, else what `load` reads (cached if no write overlapped). */
  async get(load: () => Promise<T>): Promise<T> {
    const c = this.#cached;
    if (c !== undefined && Date.now() - c.at < this.#ttlMs && c.term === this.#term()) return c.value;
    const seq = this.#seq;
    const term = this.#term();
    const value = await load();
    if (seq === this.#seq && term === this.#term()) this.#cached = { value, at: Date.now(), term };
    return value;
  }

  /** The last value cached, fresh or not (`undefined`: none). */
  peek(): T | undefined {
    return this.#cached?.value;
  }

  /** Forgets the cached value: the next {@link get} reads storage. */
  clear(): void {
    this.#cached = undefined;
  }

  /** Stores `value` with `put`; cached when it succeeds, forgotten when it fails (outcome unknown). */
  async write(value: T, put: () => Promise<void>): Promise<void> {
    this.#seq++;
    try {
      await put();
      this.#cached = { value, at: Date.now(), term: this.#term() };
    } catch (e) {
      this.#cached = undefined;
      throw e;
    } finally {
      this.#seq++;
    }
  }
}

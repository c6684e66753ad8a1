/**
 * A cache of decoded KV v2 metadata records (OpenBao's protobuf KeyMetadata) on the active node,
 * so a read of a secret costs one barrier decryption (the version) instead of two, and no metadata
 * path encryption or protobuf decoding.
 *
 * Only the active node writes, and every metadata write of a mount goes through its engine, so
 * what this node wrote or read back stays true for as long as it stays active. Entries are
 * tagged with the store's `activeTerm` and count only while it is unchanged: on a standby, on a
 * sealed store, and after any step-down or seal nothing cached is used. (As with Vault's own
 * caches, a node that has lost the HA lock but not yet noticed can serve a stale read until it
 * does; its writes are fenced by the storage backend.)
 *
 * Writers bracket each change with {@link beginWrite}/{@link endWrite}; a reader that loaded a
 * record from storage stores it ({@link fill}) only if no write began or ended meanwhile, so a
 * slow read can never put back what a concurrent write replaced. Cached records are frozen (their
 * maps too): writers change a {@link cloneMetadata} copy.
 */

import type { KeyMetadata, VersionMeta } from "./v2-records.js";

/** A copy a writer may change (cached records are frozen). */
export function cloneMetadata(m: KeyMetadata): KeyMetadata {
  const versions = new Map<number, VersionMeta>();
  for (const [n, v] of m.versions) versions.set(n, { ...v });
  return { ...m, versions, custom_metadata: new Map(m.custom_metadata) };
}

function readOnly(): never {
  throw new TypeError("a cached KV v2 metadata record is read-only: change a cloneMetadata() copy");
}

/** Freezes a Map: Object.freeze alone leaves set/delete/clear working. */
function freezeMap<K, V>(m: Map<K, V>): void {
  Object.defineProperties(m, {
    set: { value: readOnly },
    delete: { value: readOnly },
    clear: { value: readOnly },
  });
  Object.freeze(m);
}

function freeze(m: KeyMetadata): KeyMetadata {
  for (const v of m.versions.values()) Object.freeze(v);
  freezeMap(m.versions);
  freezeMap(m.custom_metadata);
  return Object.freeze(m);
}

interface Cached {
  term: number;
  meta: KeyMetadata;
}

export const DEFAULT_METADATA_CACHE_ENTRIES = 10_000;

export class MetadataCache {
  readonly #term: () => number | undefined;
  readonly #max: number;
  readonly #entries = new Map<string, Cached>();
  /** Changes at the start and at the end of every write. */
  #seq = 0;

  /**
   * @param term the store's `activeTerm` (`undefined` = not active: nothing is cached or used).
   * @param maxEntries bound on cached records; the oldest insertions go first.
   */
  constructor(term: () => number | undefined, maxEntries = DEFAULT_METADATA_CACHE_ENTRIES) {
    if (!Number.isSafeInteger(maxEntries) || maxEntries < 1)
      throw new RangeError(`maxEntries must be a positive integer, got ${String(maxEntries)}`);
    this.#term = term;
    this.#max = maxEntries;
  }

  get size(): number {
    return this.#entries.size;
  }

  /** The cached record of `key` (frozen), if it is valid in the current active term. */
  get(key: string): KeyMetadata | undefined {
    const c = this.#entries.get(key);
    if (c === undefined) return undefined;
    if (c.term === this.#term()) return c.meta;
    this.#entries.delete(key);
    return undefined;
  }

  /** What a reader captures before it loads from storage, for {@link fill}. */
  snapshot(): { seq: number; term: number | undefined } {
    return { seq: this.#seq, term: this.#term() };
  }

  /**
   * Caches what a reader loaded (`undefined`: nothing stored) when no write began or ended and
   * the term did not change since its snapshot. Returns the record to use (frozen when cached).
   */
  fill(
    key: string,
    meta: KeyMetadata | undefined,
    at: { seq: number; term: number | undefined },
  ): KeyMetadata | undefined {
    if (meta === undefined || at.term === undefined || at.seq !== this.#seq || at.term !== this.#term())
      return meta;
    this.#set(key, at.term, meta);
    return meta;
  }

  /** A write of `key` starts: its cached record is dropped, in-flight reads will not cache. */
  beginWrite(key: string): void {
    this.#seq++;
    this.#entries.delete(key);
  }

  /**
   * A write of `key` ended. `stored` is the record now in storage when the write succeeded
   * (`undefined`: deleted, or the outcome is unknown after a failure): it is cached, frozen.
   */
  endWrite(key: string, stored: KeyMetadata | undefined, termAtBegin: number | undefined): void {
    this.#seq++;
    this.#entries.delete(key);
    if (stored !== undefined && termAtBegin !== undefined && termAtBegin === this.#term())
      this.#set(key, termAtBegin, stored);
  }

  #set(key: string, term: number, meta: KeyMetadata): void {
    if (this.#entries.size >= this.#max) {
      const oldest = this.#entries.keys().next();
      if (oldest.done !== true) this.#entries.delete(oldest.value);
    }
    this.#entries.set(key, { term, meta: freeze(meta) });
  }
}

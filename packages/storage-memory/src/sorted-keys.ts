/**
 * Keys kept in ascending UTF-16 code-unit order (the order of `Array.prototype.sort()` and of
 * `<` on strings, which is what `directChildren` and every backend's `list` use).
 *
 * Inserts and removals are recorded in two small sets and merged into the sorted array only when
 * a listing needs it: a put of a new key or a delete costs a hash-set update (plus a binary
 * search to keep both idempotent), not a `splice` that moves every later key — with thousands of
 * keys and a write stream that creates and deletes keys (KV v2 versions), the splice dominated a
 * put. A listing after changes pays one merge, O(n + a log a) for `a` added keys.
 */
export class SortedKeys {
  /** Sorted; may still hold keys listed in #removed. */
  #sorted: string[] = [];
  /** Keys of #sorted that were removed since the last merge. */
  readonly #removed = new Set<string>();
  /** Keys added since the last merge (never in #sorted unless also in #removed). */
  readonly #added = new Set<string>();

  get size(): number {
    return this.#sorted.length - this.#removed.size + this.#added.size;
  }

  insert(key: string): void {
    if (this.#added.has(key) || this.#removed.delete(key)) return;
    if (!this.#inSorted(key)) this.#added.add(key);
  }

  remove(key: string): void {
    if (this.#added.delete(key)) return;
    if (this.#inSorted(key)) this.#removed.add(key);
  }

  /**
   * Direct children of `prefix`: key names, and sub-folder names with a trailing `/`, sorted and
   * unique. After a sub-folder is found the scan jumps past all of its keys: every key that
   * starts with `folder/` sorts before `folder0` (`'0'` is the code unit after `'/'`), so the
   * cost is one binary search per child rather than one step per key below it.
   */
  children(prefix: string): string[] {
    const keys = this.#merged();
    const out: string[] = [];
    let i = lowerBound(keys, prefix);
    while (i < keys.length) {
      const key = keys[i] as string;
      if (!key.startsWith(prefix)) break;
      const slash = key.indexOf("/", prefix.length);
      if (slash === -1) {
        out.push(key.slice(prefix.length));
        i++;
      } else {
        out.push(key.slice(prefix.length, slash + 1));
        i = lowerBound(keys, `${key.slice(0, slash)}0`);
      }
    }
    return out;
  }

  #inSorted(key: string): boolean {
    return this.#sorted[lowerBound(this.#sorted, key)] === key;
  }

  /** The sorted array with pending changes applied. */
  #merged(): string[] {
    if (this.#added.size === 0 && this.#removed.size === 0) return this.#sorted;
    const added = [...this.#added].sort();
    const removed = this.#removed;
    const old = this.#sorted;
    const out: string[] = new Array(old.length - removed.size + added.length);
    let i = 0;
    let j = 0;
    let n = 0;
    while (i < old.length || j < added.length) {
      const a = old[i];
      if (a !== undefined && removed.has(a)) {
        i++;
        continue;
      }
      const b = added[j];
      if (b === undefined || (a !== undefined && a < b)) {
        out[n++] = a as string;
        i++;
      } else {
        out[n++] = b;
        j++;
      }
    }
    this.#sorted = out;
    this.#added.clear();
    this.#removed.clear();
    return out;
  }
}

/** Index of the first key of `keys` (sorted) that is `>= target`. */
function lowerBound(keys: readonly string[], target: string): number {
  let lo = 0;
  let hi = keys.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((keys[mid] as string) < target) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * Keys kept in ascending UTF-16 code-unit order (the order of `Array.prototype.sort()` and of
 * `<` on strings, which is what `directChildren` and every backend's `list` use). Inserts are a
 * binary search plus one `splice`; that is a memmove of pointers, cheap for the tens of
 * thousands of keys a memory backend holds, and it keeps `list` a range scan.
 */
export class SortedKeys {
  readonly #keys: string[] = [];

  get size(): number {
    return this.#keys.length;
  }

  /** Index of the first key that is `>= target`. */
  lowerBound(target: string): number {
    let lo = 0;
    let hi = this.#keys.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((this.#keys[mid] as string) < target) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  insert(key: string): void {
    const i = this.lowerBound(key);
    if (this.#keys[i] !== key) this.#keys.splice(i, 0, key);
  }

  remove(key: string): void {
    const i = this.lowerBound(key);
    if (this.#keys[i] === key) this.#keys.splice(i, 1);
  }

  /**
   * Direct children of `prefix`: key names, and sub-folder names with a trailing `/`, sorted and
   * unique. After a sub-folder is found the scan jumps past all of its keys: every key that
   * starts with `folder/` sorts before `folder0` (`'0'` is the code unit after `'/'`), so the
   * cost is one binary search per child rather than one step per key below it.
   */
  children(prefix: string): string[] {
    const out: string[] = [];
    let i = this.lowerBound(prefix);
    while (i < this.#keys.length) {
      const key = this.#keys[i] as string;
      if (!key.startsWith(prefix)) break;
      const slash = key.indexOf("/", prefix.length);
      if (slash === -1) {
        out.push(key.slice(prefix.length));
        i++;
      } else {
        out.push(key.slice(prefix.length, slash + 1));
        i = this.lowerBound(`${key.slice(0, slash)}0`);
      }
    }
    return out;
  }
}

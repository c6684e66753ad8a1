import type { Backend, Entry } from "@bulwark/storage";
import { MemoryBackend } from "@bulwark/storage-memory";

/**
 * Test double around a real MemoryBackend: records every write (with its sealWrap flag, which a
 * backend does not keep), can fail chosen writes (to stop an operation half way, like a crash)
 * and can delay reads (to interleave operations).
 */
export class RecordingBackend implements Backend {
  readonly inner = new MemoryBackend();
  readonly puts: Entry[] = [];
  readonly deletes: string[] = [];
  failPut: ((key: string) => boolean) | undefined;
  /** When it returns a promise, the put waits for it (to seal or fail something mid-operation). */
  holdPut: ((key: string) => Promise<void> | undefined) | undefined;
  getDelayMs = 0;

  async get(key: string): Promise<Entry | undefined> {
    if (this.getDelayMs > 0) await new Promise((r) => setTimeout(r, this.getDelayMs));
    return this.inner.get(key);
  }

  async put(entry: Entry): Promise<void> {
    const hold = this.holdPut?.(entry.key);
    if (hold !== undefined) await hold;
    if (this.failPut?.(entry.key) === true) throw new Error(`injected failure writing ${entry.key}`);
    this.puts.push({ ...entry, value: new Uint8Array(entry.value) });
    await this.inner.put(entry);
  }

  async delete(key: string): Promise<void> {
    this.deletes.push(key);
    await this.inner.delete(key);
  }

  list(prefix: string): Promise<string[]> {
    return this.inner.list(prefix);
  }

  /** Raw stored bytes at `key`. */
  async raw(key: string): Promise<Uint8Array | undefined> {
    return (await this.inner.get(key))?.value;
  }
}

export function seq(start: number, n: number): Uint8Array {
  return Uint8Array.from({ length: n }, (_, i) => (start + i) & 0xff);
}

export function hex(b: Uint8Array): string {
  return Buffer.from(b).toString("hex");
}

export function utf8(s: string): Uint8Array {
  return new TextEncoder().encode(s);
}

export function text(b: Uint8Array): string {
  return new TextDecoder().decode(b);
}

/** Polls `cond` until true or the timeout passes. */
export async function eventually(cond: () => Promise<boolean>, timeoutMs = 2000): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (await cond()) return true;
    await new Promise((r) => setTimeout(r, 5));
  }
  return cond();
}

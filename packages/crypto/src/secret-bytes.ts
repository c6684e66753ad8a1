import { inspect } from "node:util";
import { CryptoError } from "./errors.js";

const REDACTED = "SecretBytes(<redacted>)";

/**
 * Holds key material in an ArrayBuffer of its own (never a slice of Node's shared Buffer pool),
 * so `zero()` really wipes it and nothing else aliases it. Printing, logging or serialising a
 * SecretBytes never shows the bytes.
 */
export class SecretBytes {
  #bytes: Uint8Array;
  #zeroed = false;

  private constructor(bytes: Uint8Array) {
    this.#bytes = bytes;
  }

  /** Copies `bytes` into a fresh ArrayBuffer; the caller may (and should) wipe its own copy. */
  static from(bytes: Uint8Array): SecretBytes {
    const own = new Uint8Array(new ArrayBuffer(bytes.length));
    own.set(bytes);
    return new SecretBytes(own);
  }

  /** Takes ownership of `bytes` without copying: only for buffers nothing else references. */
  static adopt(bytes: Uint8Array): SecretBytes {
    if (bytes.byteOffset !== 0 || bytes.byteLength !== bytes.buffer.byteLength) {
      // A view into a larger (possibly pooled) buffer cannot be owned: copy instead.
      return SecretBytes.from(bytes);
    }
    return new SecretBytes(bytes);
  }

  get length(): number {
    return this.#bytes.length;
  }

  get isZeroed(): boolean {
    return this.#zeroed;
  }

  /** The live bytes. Do not keep the reference past the holder's lifetime. */
  get bytes(): Uint8Array {
    if (this.#zeroed)
      throw new CryptoError("key_zeroed", "key material was zeroed (the store was sealed); unseal again");
    return this.#bytes;
  }

  /** A copy the caller owns (for handing to code that may keep it). */
  copy(): Uint8Array {
    return new Uint8Array(this.bytes);
  }

  equals(other: SecretBytes | Uint8Array): boolean {
    const b = other instanceof SecretBytes ? other.bytes : other;
    return constantTimeEqual(this.bytes, b);
  }

  /** Overwrites the bytes with zeros; every later access throws `key_zeroed`. Idempotent. */
  zero(): void {
    this.#bytes.fill(0);
    this.#zeroed = true;
  }

  toString(): string {
    return REDACTED;
  }

  toJSON(): string {
    return REDACTED;
  }

  [inspect.custom](): string {
    return REDACTED;
  }
}

/** Compares two byte arrays in time that depends only on their lengths. */
export function constantTimeEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= (a[i] as number) ^ (b[i] as number);
  return diff === 0;
}

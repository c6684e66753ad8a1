import { randomUUID } from "node:crypto";
import { constantTimeEqual, shamirCombine } from "@bulwark/crypto";
import { CoreError, InvalidRequestError } from "./errors.js";

/** Copies a decoded share out of Node's shared buffer pool and wipes the pooled bytes. */
function unpooled(b: Buffer): Uint8Array {
  const out = new Uint8Array(b);
  b.fill(0);
  return out;
}

/** Parses an unseal/recovery key share given as hex or base64 (as Vault accepts). */
export function parseKeyShare(input: Uint8Array | string, field = "key"): Uint8Array {
  if (typeof input !== "string") return new Uint8Array(input);
  const s = input.trim();
  if (s.length === 0) throw new InvalidRequestError(`${field} is empty: give one key share in hex or base64`);
  if (/^[0-9a-fA-F]+$/.test(s) && s.length % 2 === 0) return unpooled(Buffer.from(s, "hex"));
  if (/^[A-Za-z0-9+/_-]+={0,2}$/.test(s)) {
    const b = Buffer.from(s, s.includes("-") || s.includes("_") ? "base64url" : "base64");
    if (b.length > 0) return unpooled(b);
  }
  throw new InvalidRequestError(`${field} must be a key share in hex or base64`);
}

/**
 * Collects key shares until the threshold is reached (Vault's unseal/rekey progress): a UUID
 * nonce is created with the first share, duplicates are ignored (constant-time compare), and
 * `reset()` discards everything.
 */
export class ShareCollector {
  #parts: Uint8Array[] = [];
  #nonce = "";

  get progress(): number {
    return this.#parts.length;
  }

  get nonce(): string {
    return this.#nonce;
  }

  /** Adds a share; returns the combined secret once `threshold` distinct shares are in. */
  async add(share: Uint8Array, threshold: number): Promise<Uint8Array | undefined> {
    // Vault: a share is the 32-byte key (plus one x byte when split); anything else is not a share.
    if (share.length < 16 || share.length > 33) {
      throw new InvalidRequestError(`key share must be 16 to 33 bytes, got ${share.length}`);
    }
    if (this.#parts.length === 0) this.#nonce = randomUUID();
    if (!this.#parts.some((p) => constantTimeEqual(p, share))) this.#parts.push(new Uint8Array(share));
    if (this.#parts.length < threshold) return undefined;
    // Hand the parts to combine and start a fresh round (they are zeroed once combined).
    const parts = this.#parts;
    this.#parts = [];
    this.#nonce = "";
    try {
      return threshold === 1 ? new Uint8Array(parts[0] as Uint8Array) : await shamirCombine(parts);
    } catch (cause) {
      // Shares that cannot even be combined (two with one x coordinate, x = 0, mixed lengths) are
      // a wrong key like any other: the round is over and nothing was used.
      throw new CoreError("invalid_key", "Unseal failed, invalid key: the key shares do not combine", {
        cause,
      });
    } finally {
      for (const p of parts) p.fill(0);
    }
  }

  reset(): void {
    for (const p of this.#parts) p.fill(0);
    this.#parts = [];
    this.#nonce = "";
  }
}

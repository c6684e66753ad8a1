/**
 * Random ids and hashes shared by the token store, the mount table and the KV engines (none of
 * them borrows from another: each imports this module).
 */
import * as nodeCrypto from "node:crypto";
import { randomBytes } from "@bulwark/crypto";

const BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/** `n` uniformly random base62 characters (rejection sampling: no modulo bias). */
export function randomBase62(n: number): string {
  let out = "";
  while (out.length < n) {
    const buf = randomBytes(n * 2);
    for (const b of buf) {
      // 248 = 4 × 62: bytes at or above it would bias the first characters.
      if (b >= 248) continue;
      out += BASE62[b % 62];
      if (out.length === n) break;
    }
    buf.fill(0);
  }
  return out;
}

type OneShotHash = (algorithm: string, data: string, encoding: "hex") => string;
/** Node ≥ 20.12 has a one-shot `crypto.hash` (about 3× faster than createHash for short input). */
const oneShot = (nodeCrypto as { hash?: OneShotHash }).hash;

/** Hex SHA-256 of a UTF-8 string. */
export function sha256Hex(s: string): string {
  return oneShot !== undefined
    ? oneShot("sha256", s, "hex")
    : nodeCrypto.createHash("sha256").update(s, "utf8").digest("hex");
}

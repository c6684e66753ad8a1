import { endianness } from "node:os";

const LE = endianness() === "LE";

/**
 * pkcs11js hands out CK_ULONG handles (slot ids, sessions, objects) as Buffers in native byte
 * order: 8 bytes on 64-bit Linux, 4 on Windows. Slot ids can use all 64 bits (CloudHSM:
 * 0x2000000000000001), so they are compared as bigints, never as JS numbers.
 */
export function handleToBigInt(h: Buffer): bigint {
  if (h.length === 8) return LE ? h.readBigUInt64LE(0) : h.readBigUInt64BE(0);
  if (h.length === 4) return BigInt(LE ? h.readUInt32LE(0) : h.readUInt32BE(0));
  let n = 0n;
  const bytes = LE ? [...h].reverse() : [...h];
  for (const b of bytes) n = (n << 8n) | BigInt(b);
  return n;
}

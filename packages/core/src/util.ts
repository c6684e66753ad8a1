import { decodeBlobInfo, type Seal } from "@bulwark/seal";
import type { Backend } from "@bulwark/storage";

// Views, not copies: Buffer.from(bytes) copies small inputs into Node's shared pool, where a key
// or share would outlive the zeroing of `b`.
const view = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.byteLength);
export const hex = (b: Uint8Array): string => view(b).toString("hex");
export const b64 = (b: Uint8Array): string => view(b).toString("base64");
export const errText = (e: unknown): string => (e instanceof Error ? e.message : String(e));

/** The seal's key id, or `undefined` when it has none yet (not initialised, Shamir without a key). */
export function safeKeyId(seal: Seal): string | undefined {
  try {
    return seal.keyId();
  } catch {
    return undefined;
  }
}

/** The key id recorded in a stored BlobInfo, or `undefined` when it names none or does not parse. */
export function tryKeyIdOf(blob: Uint8Array): string | undefined {
  try {
    return decodeBlobInfo(blob).keyInfo?.keyId;
  } catch {
    return undefined;
  }
}

/** Every key below `prefix`, depth first. */
export async function* walk(storage: Backend, prefix: string): AsyncGenerator<string> {
  for (const name of await storage.list(prefix)) {
    if (name.endsWith("/")) yield* walk(storage, prefix + name);
    else yield prefix + name;
  }
}

import { decodeBlobInfo, type Seal, ShamirSeal } from "@bulwark/seal";
import type { Backend } from "@bulwark/storage";
import { CoreError } from "./errors.js";

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

/** The seal as the Shamir seal that key shares open; any other seal is `seal_unavailable`. */
export function asShamir(seal: Seal): ShamirSeal {
  if (!(seal instanceof ShamirSeal)) {
    throw new CoreError("seal_unavailable", `seal type ${seal.type} cannot be unsealed with key shares`);
  }
  return seal;
}

/** Initialises a seal; a failure is `seal_unavailable` naming the seal. */
export async function initSeal(seal: Seal, signal?: AbortSignal): Promise<void> {
  try {
    await seal.init(signal);
  } catch (e) {
    throw new CoreError("seal_unavailable", `seal ${seal.type} could not be initialized: ${errText(e)}`, {
      cause: e,
    });
  }
}

// Test support shared by the core test files (not exported from the package).
import { randomBytes } from "@bulwark/crypto";
import { StaticKeySeal } from "@bulwark/seal";
import type { Backend, HABackend } from "@bulwark/storage";
import { type InitResult, SealedStore, type SealedStoreOptions } from "./sealed-store.js";

export const enc = (s: string) => new TextEncoder().encode(s);
export const dec = (b: Uint8Array | undefined) => (b === undefined ? undefined : new TextDecoder().decode(b));

const keyA = randomBytes(32);
const keyB = randomBytes(32);
/** A static seal with key "key-a". */
export const staticA = () => new StaticKeySeal({ key: keyA, keyId: "key-a" });
/** A static seal with key "key-b", optionally still able to decrypt "key-a" blobs. */
export const staticB = (withA = true) =>
  new StaticKeySeal({
    key: keyB,
    keyId: "key-b",
    ...(withA ? { previousKeys: [{ keyId: "key-a", key: keyA }] } : {}),
  });

/** Every raw record under `prefix`, hex-encoded, for before/after comparisons. */
export async function snapshot(storage: Backend, prefix = ""): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const name of await storage.list(prefix)) {
    if (name.endsWith("/")) {
      for (const [k, v] of await snapshot(storage, prefix + name)) out.set(k, v);
    } else {
      const e = await storage.get(prefix + name);
      out.set(prefix + name, Buffer.from(e?.value ?? []).toString("hex"));
    }
  }
  return out;
}

/** The rejection's `code`, or "resolved". */
export async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    return (e as { code?: string }).code ?? `no code: ${String(e)}`;
  }
  return "resolved";
}

export async function unsealWith(store: SealedStore, keys: string[], opts: { migrate?: boolean } = {}) {
  let s = store.status();
  for (const k of keys) s = await store.unseal(k, opts);
  return s;
}

export async function waitFor(cond: () => boolean, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** An HA node on `storage` (also its lock provider) with the "key-a" static seal; `opts` adds to or overrides those options. */
export function haOpen(
  storage: Backend & HABackend,
  nodeId: string,
  opts: Partial<SealedStoreOptions> = {},
): Promise<SealedStore> {
  return SealedStore.open({ storage, seal: staticA(), ha: storage, nodeId, ...opts });
}

/** An HA node on `storage` (also its lock provider) with the "key-a" static seal, advertising https://<nodeId>:8200. */
export function haNode(storage: Backend & HABackend, nodeId: string): Promise<SealedStore> {
  return haOpen(storage, nodeId, { redirectAddr: `https://${nodeId}:8200` });
}

/** `haOpen`, initialised with one recovery share, once it has become active. */
export async function activeHaNode(
  storage: Backend & HABackend,
  nodeId: string,
  opts: Partial<SealedStoreOptions> = {},
): Promise<{ node: SealedStore; init: InitResult }> {
  const node = await haOpen(storage, nodeId, opts);
  const init = await node.initialize({ recoveryShares: 1, recoveryThreshold: 1 });
  await waitFor(() => node.status().active);
  return { node, init };
}

/**
 * Initialises `storage` under the "key-a" static seal with one recovery share, runs `before` (if any)
 * on the unsealed store, and closes it.
 */
export async function initStaticA(
  storage: Backend,
  before?: (store: SealedStore) => Promise<void>,
): Promise<InitResult> {
  const first = await SealedStore.open({ storage, seal: staticA() });
  const init = await first.initialize({ recoveryShares: 1, recoveryThreshold: 1 });
  await before?.(first);
  await first.close();
  return init;
}

/**
 * The per-store services of Vault's logical layer: token store, policies, mount table, cluster
 * identity, root-token generation state, and `handle` (request routing). One set per SealedStore
 * (shared by every listener of that store), so caches and in-progress operations are never split
 * between listeners.
 */
import { randomBytes, randomUUID } from "node:crypto";
import { CLUSTER_PATH } from "@bulwark/barrier";
import type { SealedStore } from "@bulwark/core";
import { PolicyStore } from "./auth/policy-store.js";
import { TokenStore } from "./auth/tokens.js";
import { VaultStateError } from "./errors.js";
import { GenerateRoot } from "./generate-root.js";
import { type MountEntry, MountTable } from "./kv/mounts.js";
import { type Auth, authenticate, handle, type VaultRequest, type VaultResponse } from "./router.js";

export interface ClusterInfo {
  cluster_id: string;
  cluster_name: string;
}

export interface Services {
  store: SealedStore;
  tokens: TokenStore;
  policies: PolicyStore;
  mounts: MountTable;
  generateRoot: GenerateRoot;
  /**
   * Cluster name and id (created by the active node on first use); `undefined` while sealed, and on
   * a standby until the active node has stored them.
   */
  cluster(configuredName: string): Promise<ClusterInfo | undefined>;
  /** The caller behind `token` (sealed → `sealed`; a bad token → `permission_denied`). */
  authenticate(token: string | undefined): Promise<Auth>;
  /** Serves one logical request (token → ACL → mount → engine); see router.ts. */
  handle(request: VaultRequest): Promise<VaultResponse>;
}

const byStore = new WeakMap<SealedStore, Services>();
const enc = new TextEncoder();
const dec = new TextDecoder();

export function servicesFor(store: SealedStore): Services {
  let s = byStore.get(store);
  if (s !== undefined) return s;
  const storage = store.storage;
  let cluster: ClusterInfo | undefined;
  /** The load (or creation) in progress: concurrent first callers share it, so one id is made. */
  let loading: Promise<ClusterInfo | undefined> | undefined;
  const load = async (): Promise<ClusterInfo | undefined> => {
    const e = await storage.get(CLUSTER_PATH);
    if (e !== undefined) return JSON.parse(dec.decode(e.value)) as ClusterInfo;
    if (!store.status().active) return undefined; // a standby does not create it
    const fresh = {
      cluster_id: randomUUID(),
      cluster_name: `bulwark-cluster-${randomBytes(4).toString("hex")}`,
    };
    await storage.put({ key: CLUSTER_PATH, value: enc.encode(JSON.stringify(fresh)) });
    return fresh;
  };
  const parts = {
    store,
    tokens: new TokenStore(storage, { activeTerm: () => store.activeTerm }),
    policies: new PolicyStore(storage, { activeTerm: () => store.activeTerm }),
    mounts: new MountTable(storage, { activeTerm: () => store.activeTerm }),
  };
  s = {
    ...parts,
    generateRoot: new GenerateRoot(),
    authenticate: (token) => authenticate(parts, token),
    handle: (request) => handle(parts, request),
    async cluster(configuredName) {
      if (store.sealed) return undefined;
      if (cluster === undefined) {
        loading ??= load().finally(() => {
          loading = undefined;
        });
        const loaded = await loading;
        // Not created yet and this node is a standby: no id to report (a made-up one would differ
        // on every answer and from the one the active node stores).
        if (loaded === undefined) return undefined;
        cluster = loaded;
      }
      return { cluster_id: cluster.cluster_id, cluster_name: configuredName || cluster.cluster_name };
    },
  };
  byStore.set(store, s);
  return s;
}

/** Resolves once the store is unsealed and active (writable), or throws after `timeoutMs`. */
export async function waitActive(store: SealedStore, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!store.status().active) {
    if (store.sealed) throw new VaultStateError("sealed", "the store is sealed");
    if (Date.now() > deadline)
      throw new VaultStateError(
        "not_active",
        "this node did not become active: another node holds the HA lock",
      );
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * Creates a root token in an unsealed, active store and returns it (init, generate-root, and the
 * CLI's `server -dev`). The token is stored only as its SHA-256 hash.
 */
export async function createRootToken(store: SealedStore, id?: string): Promise<string> {
  await waitActive(store);
  return (await servicesFor(store).tokens.createRoot(id)).token;
}

/**
 * The root token of a fresh init, as Vault creates it during init. With Shamir the store stays
 * sealed after init, so — as Vault does internally — it is unsealed with the first `threshold` of
 * the new `keys` just long enough to store the token, then sealed again (also when that fails).
 */
export async function rootTokenAfterInit(
  store: SealedStore,
  keys: readonly string[],
  threshold: number,
): Promise<string> {
  if (!store.sealed) return createRootToken(store);
  for (const k of keys.slice(0, threshold)) await store.unseal(k);
  try {
    return await createRootToken(store);
  } finally {
    await store.seal();
  }
}

/**
 * Mounts a KV engine (what `vault secrets enable` does), e.g. `secret/` as kv v2 for dev mode.
 * Returns the existing mount when one with the same path and version is there already.
 */
export async function mountKv(
  store: SealedStore,
  path: string,
  opts: { version: 1 | 2; sealWrap?: boolean; description?: string },
): Promise<MountEntry> {
  await waitActive(store);
  const mounts = servicesFor(store).mounts;
  const existing = (await mounts.all()).find((m) => m.path === `${path.replace(/\/+$/, "")}/`);
  if (existing !== undefined && existing.options.version === String(opts.version)) return existing;
  return mounts.mount(path, {
    type: "kv",
    options: { version: String(opts.version) },
    sealWrap: opts.sealWrap ?? false,
    description: opts.description ?? "key/value secret storage",
  });
}

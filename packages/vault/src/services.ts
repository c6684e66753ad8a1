/**
 * The per-store services of Vault's logical layer: token store, policies, mount table, cluster
 * identity, root-token generation state, and `handle` (request routing). One set per SealedStore
 * (shared by every listener of that store), so caches and in-progress operations are never split
 * between listeners.
 *
 * `setup()` does what OpenBao does when a node becomes active: it ensures the records OpenBao
 * creates at init (required mounts, the token auth method, empty audit tables, built-in policies,
 * the cluster identity) without touching anything else, and opens the audit devices of the term.
 * It runs once per active term, before the first request of the term is served.
 */
import { randomBytes, randomUUID } from "node:crypto";
import { CLUSTER_INFO_PATH } from "@bulwark/barrier";
import type { SealedStore } from "@bulwark/core";
import { StoreAuditBroker } from "./audit/broker.js";
import { AUDIT_DEVICE_FACTORIES } from "./audit/devices/index.js";
import type { AuditBroker, AuditDeviceFactory } from "./audit/types.js";
import { PolicyStore } from "./auth/policy-store.js";
import { TokenStore } from "./auth/tokens.js";
import { VaultError, VaultStateError } from "./errors.js";
import { GenerateRoot } from "./generate-root.js";
import { type MountEntry, MountTable } from "./kv/mounts.js";
import { type Auth, authenticate, handle, type VaultRequest, type VaultResponse } from "./router.js";

export interface ClusterInfo {
  cluster_id: string;
  cluster_name: string;
}

/** What the services log: the server's pino logger fits. */
export interface ServicesLogger {
  info(obj: Record<string, unknown>, msg: string): void;
  /** A device that failed to record (the audit broker); `info` when absent. */
  warn?(obj: Record<string, unknown>, msg: string): void;
  /** A device that cannot be opened, audit config that cannot be applied; `info` when absent. */
  error?(obj: Record<string, unknown>, msg: string): void;
}

export interface ServicesOptions {
  /**
   * Where `setup()` says which mounts are carried without being served (once per active term),
   * and where the audit broker reports its devices.
   */
  logger?: ServicesLogger;
  /**
   * The audit device types, by name (default: AUDIT_DEVICE_FACTORIES — file, socket, syslog).
   * Taken when the services of the store are made (the first call): tests inject their own.
   */
  auditFactories?: Readonly<Record<string, AuditDeviceFactory>>;
}

export interface Services {
  store: SealedStore;
  tokens: TokenStore;
  policies: PolicyStore;
  mounts: MountTable;
  generateRoot: GenerateRoot;
  /** The audit devices (Vault's audit broker and table): see audit/broker.ts. */
  audit: AuditBroker;
  /**
   * Ensures the records OpenBao creates at init (see the module comment); once per active term,
   * concurrent callers share one run. Does nothing on a sealed store or a standby.
   */
  setup(): Promise<void>;
  /**
   * Starts (or joins) the store's token expiration poll — Vault's expiration manager: on the active
   * node, tokens whose lease ran out are revoked with their children, leases and indexes, whether
   * or not anyone presents them again. Returns the release; the poll stops when every holder has
   * released it. The HTTP server holds it while it runs.
   */
  keepExpiring(): () => Promise<void>;
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

/**
 * The services of `store`, made on first use. `opts.logger` is taken from the first caller that
 * gives one (the HTTP server does).
 */
export function servicesFor(store: SealedStore, opts: ServicesOptions = {}): Services {
  let s = byStore.get(store);
  if (s !== undefined) {
    if (opts.logger !== undefined) loggers.set(s, loggers.get(s) ?? opts.logger);
    return s;
  }
  const storage = store.storage;
  let cluster: ClusterInfo | undefined;
  /** The load (or creation) in progress: concurrent first callers share it, so one id is made. */
  let loading: Promise<ClusterInfo | undefined> | undefined;
  const load = async (): Promise<ClusterInfo | undefined> => {
    const e = await storage.get(CLUSTER_INFO_PATH);
    if (e !== undefined) return parseClusterInfo(e.value);
    if (!store.status().active) return undefined; // a standby does not create it
    // Vault's `Cluster` record: json.Marshal of {name, id}, uncompressed. The generated name is
    // Bulwark's (Vault's is `vault-cluster-<8 hex>`); either server reads the other's.
    const fresh = { name: `bulwark-cluster-${randomBytes(4).toString("hex")}`, id: randomUUID() };
    await storage.put({ key: CLUSTER_INFO_PATH, value: enc.encode(JSON.stringify(fresh)) });
    return { cluster_name: fresh.name, cluster_id: fresh.id };
  };
  const mounts = new MountTable(storage, { activeTerm: () => store.activeTerm });
  const parts = {
    store,
    tokens: new TokenStore(storage, {
      activeTerm: () => store.activeTerm,
      // A revocation destroys the token's cubbyhole, as Vault's does (the table is cached per term).
      cubbyholeUuid: async () => (await mounts.all()).find((m) => m.type === "cubbyhole")?.uuid,
      decryptBatch: (ciphertext) => store.openBarrierValue("", ciphertext),
    }),
    policies: new PolicyStore(storage, { activeTerm: () => store.activeTerm }),
    mounts,
    audit: new StoreAuditBroker(store, {
      factories: opts.auditFactories ?? AUDIT_DEVICE_FACTORIES,
      logger: () => {
        const l = s === undefined ? undefined : loggers.get(s);
        if (l === undefined) return undefined;
        const info = l.info.bind(l);
        return { info, warn: l.warn?.bind(l) ?? info, error: l.error?.bind(l) ?? info };
      },
    }),
  };
  /** The active term setup() last completed for, and the run in progress. */
  let setupTerm: number | undefined;
  let settingUp: { term: number; run: Promise<void> } | undefined;
  const runSetup = async (term: number): Promise<void> => {
    const result = await parts.mounts.setup();
    await parts.policies.setup();
    // OpenBao's setupAudits: the audit table is loaded (created when missing) and its devices
    // opened as the node becomes active, and the server config's audit blocks applied.
    await parts.audit.enabled();
    await clusterInfo(); // OpenBao stores the cluster identity when it becomes active
    if (store.activeTerm !== term) return; // stepped down meanwhile: the next term runs it again
    setupTerm = term;
    const logger = s === undefined ? undefined : loggers.get(s);
    if (logger !== undefined && result.carried.length > 0) {
      logger.info(
        { carried: result.carried.map((c) => `${c.path} (${c.type})`) },
        `carrying ${result.carried.length} OpenBao/Vault mount(s) or auth method(s) Bulwark does not serve: their records are kept unchanged and requests under them are refused`,
      );
    }
  };
  const setup = async (): Promise<void> => {
    const term = store.activeTerm;
    if (term === undefined || setupTerm === term) return; // sealed, standby, or done this term
    if (settingUp?.term !== term) {
      const run = runSetup(term).finally(() => {
        if (settingUp?.run === run) settingUp = undefined;
      });
      settingUp = { term, run };
    }
    await settingUp.run;
  };
  const clusterInfo = async (): Promise<ClusterInfo | undefined> => {
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
    return cluster;
  };
  /** The one expiration poll of this store, while at least one holder keeps it (see keepExpiring). */
  let expiration: { holders: number; stop: () => Promise<void> } | undefined;
  const keepExpiring = (): (() => Promise<void>) => {
    if (expiration === undefined) {
      const logger = () => (s === undefined ? undefined : loggers.get(s));
      const stop = parts.tokens.startExpiration({
        // Only the active node revokes (Vault's expiration manager runs there), once it is set up.
        isActive: () => store.activeTerm !== undefined && setupTerm === store.activeTerm,
        onRevoked: (count) => logger()?.info({ count }, "revoked tokens whose lease expired"),
        onError: (err) =>
          logger()?.info(
            { error: err instanceof Error ? err.message : String(err) },
            "token expiration sweep failed; retrying on the next poll",
          ),
      });
      expiration = { holders: 0, stop };
    }
    const held = expiration;
    held.holders++;
    let released = false;
    return async () => {
      if (released) return;
      released = true;
      held.holders--;
      if (held.holders === 0 && expiration === held) {
        expiration = undefined;
        await held.stop();
      }
    };
  };
  s = {
    ...parts,
    generateRoot: new GenerateRoot(),
    setup,
    keepExpiring,
    // The cheap check (`setupTerm === activeTerm`) runs on every request; setup itself once a term.
    authenticate: async (token) => {
      await setup();
      return authenticate(parts, token);
    },
    handle: async (request) => {
      await setup();
      return handle(parts, request);
    },
    async cluster(configuredName) {
      if (store.sealed) return undefined;
      const c = await clusterInfo();
      if (c === undefined) return undefined;
      return { cluster_id: c.cluster_id, cluster_name: configuredName || c.cluster_name };
    },
  };
  byStore.set(store, s);
  if (opts.logger !== undefined) loggers.set(s, opts.logger);
  return s;
}

const loggers = new WeakMap<Services, ServicesLogger>();

/** Vault's `core/cluster/local/info`: `{"name":…,"id":…}`. */
function parseClusterInfo(value: Uint8Array): ClusterInfo {
  let doc: unknown;
  try {
    doc = JSON.parse(dec.decode(value));
  } catch (e) {
    throw new VaultError("internal", `${CLUSTER_INFO_PATH} is not valid JSON: ${(e as Error).message}`, {
      cause: e,
    });
  }
  const c = doc as { name?: unknown; id?: unknown };
  if (typeof c?.id !== "string" || c.id === "")
    throw new VaultError("internal", `${CLUSTER_INFO_PATH} has no cluster id: the record is damaged`);
  return { cluster_id: c.id, cluster_name: typeof c.name === "string" ? c.name : "" };
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
 * CLI's `server -dev`). Stored as Vault's token store stores it: under its salted id, no lease.
 */
export async function createRootToken(store: SealedStore, id?: string): Promise<string> {
  await waitActive(store);
  const services = servicesFor(store);
  await services.setup();
  return (await services.tokens.createRoot(id)).token;
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
  const services = servicesFor(store);
  await services.setup();
  const mounts = services.mounts;
  const existing = (await mounts.all()).find((m) => m.path === `${path.replace(/\/+$/, "")}/`);
  if (existing !== undefined && existing.options?.version === String(opts.version)) return existing;
  return mounts.mount(path, {
    type: "kv",
    options: { version: String(opts.version) },
    sealWrap: opts.sealWrap ?? false,
    description: opts.description ?? "key/value secret storage",
  });
}

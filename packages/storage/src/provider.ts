/**
 * The provider module: how a storage backend is made from a `storage "<type>" { … }` block. Every
 * backend the server can build — the built-in ones and plugins alike — is one of these, held in
 * the server's table of providers by `type`. The shape is `ProviderModule` from
 * `@bulwark/settings`, which `@bulwark/seal`'s `SealProvider` shares.
 *
 * A module never sees the config file: it gets the block's settings as written (strings, numbers,
 * booleans, lists; `plugin` removed), the process environment, and a context from the host that
 * reads settings with Vault's weak typing, logs, and puts the block's name and file position in
 * front of its warnings. An error with a `field` property (e.g. one from `context.settings`) is
 * reported at that setting's line.
 */
import type { ProviderContext, ProviderModule } from "@bulwark/settings";
import type { Backend } from "./types.js";

/** What the host gives a storage module's `check` and `create`. */
export type StorageProviderContext = ProviderContext;

/** A storage backend's provider module: `create` returns the backend, ready for use (the server probes it). */
export interface StorageProvider extends ProviderModule<Backend> {
  /** Whether the backend's HA lock is used when the block does not say `ha_enabled` (default: when it has one). */
  readonly haByDefault?: boolean;
}

export {
  fieldIssues,
  type ProviderClaim,
  type ProviderConfig,
  type ProviderEnv,
  type ProviderIssue,
  type ProviderLogger,
  type ProviderSettings,
} from "@bulwark/settings";

/**
 * Vault storage-block settings about the cluster, not the storage: accepted by the built-in
 * backends with a warning (`settings.ignore(VAULT_CLUSTER_KEYS, "there is no cluster port")`).
 */
export const VAULT_CLUSTER_KEYS = ["redirect_addr", "cluster_addr", "disable_clustering"] as const;

/**
 * The system backend's answers that are Vault formats rather than HTTP: a mount table entry as
 * sys/mounts lists it, the built-in `sys/` and `auth/token/` entries, the capabilities answer,
 * the policy text as sys/policy accepts it, and sys/seal-status. The HTTP routes parse the request and wrap these in
 * Vault's envelope; what they contain is decided here, with no server in sight.
 */
import { createHash } from "node:crypto";
import type { Acl } from "./auth/acl.js";
import type { MountEntry } from "./kv/mounts.js";
import { formatGoDuration } from "./request/fields.js";
import type { Services } from "./services.js";

/** A mount as sys/mounts and sys/mounts/<path> describe it (Vault's `MountOutput`). */
export function mountInfo(m: MountEntry): Record<string, unknown> {
  return {
    accessor: m.accessor,
    config: { ...m.config },
    description: m.description,
    external_entropy_access: m.external_entropy_access,
    local: m.local,
    options: { ...m.options },
    plugin_version: "",
    running_plugin_version: "",
    running_sha256: "",
    seal_wrap: m.seal_wrap,
    type: m.type,
    uuid: m.uuid,
  };
}

/** The fields every built-in table entry (sys/, auth/token/) has with the same values. */
const BUILTIN_ENTRY = {
  external_entropy_access: false,
  local: false,
  options: null,
  plugin_version: "",
  running_plugin_version: "",
  running_sha256: "",
} as const;

/** The `sys/` entry of the mount table (Vault lists its system backend too). */
export const SYSTEM_MOUNT = {
  ...BUILTIN_ENTRY,
  accessor: "system_bulwark",
  config: { default_lease_ttl: 0, force_no_cache: false, max_lease_ttl: 0 },
  description: "system endpoints used for control, policy and debugging",
  seal_wrap: true,
  type: "system",
  uuid: "00000000-0000-0000-0000-000000000000",
};

/**
 * The `token/` entry of the auth table: Bulwark's one auth method. Its accessor and UUID are
 * stable per cluster (derived from the cluster id, "" while there is none), as a mount's are in
 * Vault.
 */
export function tokenAuthMount(clusterId: string) {
  const h = createHash("sha256").update(`auth/token/:${clusterId}`).digest("hex");
  return {
    ...BUILTIN_ENTRY,
    accessor: `auth_token_${h.slice(0, 8)}`,
    config: {
      default_lease_ttl: 0,
      force_no_cache: false,
      max_lease_ttl: 0,
      token_type: "default-service",
    },
    description: "token based credentials",
    seal_wrap: false,
    type: "token",
    uuid: `${h.slice(8, 16)}-${h.slice(16, 20)}-${h.slice(20, 24)}-${h.slice(24, 28)}-${h.slice(28, 40)}`,
  };
}

/**
 * The sys/capabilities(-self) answer: each path's capabilities under `acl` (a leading '/' is
 * ignored), and `capabilities` — Vault's single-path answer, kept for older clients — those of
 * the first path. `paths` must not be empty.
 */
export function capabilitiesOf(acl: Acl, paths: readonly string[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const p of paths) out[p] = acl.describe(p.replace(/^\/+/, ""));
  out.capabilities = out[paths[0] ?? ""];
  return out;
}

/**
 * A policy document as given to sys/policy: Vault also accepts it base64-encoded. Text that is
 * valid base64 and decodes to something with a `path` keyword is taken decoded; anything else
 * as written.
 */
export function policyText(raw: string): string {
  const t = raw.trim();
  if (/^[A-Za-z0-9+/]+={0,2}$/.test(t) && t.length % 4 === 0) {
    const decoded = Buffer.from(t, "base64").toString("utf8");
    if (/\bpath\b/.test(decoded)) return decoded;
  }
  return raw;
}

/**
 * sys/seal-status (also the answer of sys/unseal): Vault's fields from the store's status, the
 * cluster's name and id once unsealed (`configuredName` overrides the stored name), the reason a
 * store sealed itself as a warning, and Bulwark's `bulwark_auto_unseal` while an auto seal waits.
 */
export async function sealStatusData(
  services: Pick<Services, "store" | "cluster">,
  configuredName: string,
): Promise<Record<string, unknown>> {
  const st = services.store.status();
  const body: Record<string, unknown> = {
    type: st.type,
    initialized: st.initialized,
    sealed: st.sealed,
    t: st.t,
    n: st.n,
    progress: st.progress,
    nonce: st.nonce,
    version: st.version,
    build_date: "",
    migration: st.migration,
    recovery_seal: st.recoverySeal,
    storage_type: st.storageType,
  };
  if (st.recoverySealType !== undefined) body.recovery_seal_type = st.recoverySealType;
  if (!st.sealed) {
    const c = await services.cluster(configuredName).catch(() => undefined);
    if (c !== undefined) {
      body.cluster_name = c.cluster_name;
      body.cluster_id = c.cluster_id;
    }
  }
  if (st.sealedReason !== undefined) body.warnings = [st.sealedReason];
  // Bulwark's own key (Vault has no such field; Vault's fields above stay as they are): an
  // auto-sealed store waiting for its HSM/KMS says what it waits for and when it tries again.
  const wait = st.autoUnseal;
  if (wait !== undefined) {
    body.bulwark_auto_unseal = {
      waiting_for: wait.seal,
      attempts: wait.attempts,
      last_error: wait.lastError,
      last_attempt: wait.lastAttemptAt.toISOString(),
      next_attempt: wait.nextAttemptAt.toISOString(),
      max_retry_interval: formatGoDuration(wait.maxDelayMs),
    };
  }
  return body;
}

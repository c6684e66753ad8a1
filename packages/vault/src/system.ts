/**
 * The system backend's answers that are Vault formats rather than HTTP: a mount or auth table
 * entry as sys/mounts and sys/auth list it, the capabilities answer,
 * the policy text as sys/policy accepts it, and sys/seal-status. The HTTP routes parse the request and wrap these in
 * Vault's envelope; what they contain is decided here, with no server in sight.
 */
import type { Acl } from "./auth/acl.js";
import { leaseTtls, type MountEntry, nsToSeconds } from "./kv/mounts.js";
import { formatGoDuration } from "./request/fields.js";
import type { Services } from "./services.js";

/** logical.TokenType names (mount config `token_type`). */
const TOKEN_TYPES = ["default", "service", "batch", "default-service", "default-batch"];

/**
 * Types OpenBao registers no deprecation status for (its singletons: not in the builtin plugin
 * registry); every other builtin answers `deprecation_status: "supported"`.
 */
const NO_DEPRECATION_STATUS = new Set([
  "system",
  "identity",
  "cubbyhole",
  "token",
  "ns_system",
  "ns_identity",
  "ns_cubbyhole",
  "ns_token",
]);

/** Keys in Go's map order (sorted), as Vault's JSON answers have them. */
function sorted(o: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(o).sort()) out[k] = o[k];
  return out;
}

/**
 * A mount or auth method as sys/mounts, sys/mounts/<path>, sys/auth and sys/internal/ui/mounts
 * describe it (OpenBao's `mountInfo`): TTLs in seconds, the header lists and listing visibility
 * when set, `token_type` by name for auth methods (0 reads as default-service, as OpenBao's token
 * and userpass entries answer), `deprecation_status` for built-in plugins.
 */
export function mountInfo(m: MountEntry): Record<string, unknown> {
  const c = m.config ?? {};
  const { defaultLeaseTtl, maxLeaseTtl } = leaseTtls(m);
  const config: Record<string, unknown> = {
    default_lease_ttl: defaultLeaseTtl,
    max_lease_ttl: maxLeaseTtl,
    force_no_cache: c.force_no_cache === true,
  };
  for (const k of [
    "audit_non_hmac_request_keys",
    "audit_non_hmac_response_keys",
    "passthrough_request_headers",
    "allowed_response_headers",
  ] as const) {
    const v = c[k];
    if (Array.isArray(v) && v.length > 0) config[k] = [...v];
  }
  if (typeof c.listing_visibility === "string" && c.listing_visibility !== "")
    config.listing_visibility = c.listing_visibility;
  if (m.table === "auth") config.token_type = TOKEN_TYPES[c.token_type || 3] ?? "default-service";
  const lockout = c.user_lockout_config as Record<string, unknown> | undefined;
  if (typeof lockout === "object" && lockout !== null) {
    config.user_lockout_config = {
      user_lockout_counter_reset_duration: nsToSeconds(lockout.lockout_counter_reset),
      user_lockout_threshold: typeof lockout.lockout_threshold === "number" ? lockout.lockout_threshold : 0,
      user_lockout_duration: nsToSeconds(lockout.lockout_duration),
      user_lockout_disable: lockout.disable_lockout === true,
    };
  }
  const info: Record<string, unknown> = {
    accessor: m.accessor,
    config: sorted(config),
    description: m.description,
    external_entropy_access: m.external_entropy_access === true,
    local: m.local === true,
    options: m.options === null || m.options === undefined ? null : { ...m.options },
    plugin_version: m.plugin_version ?? "",
    running_plugin_version: m.running_plugin_version ?? "",
    running_sha256: m.running_sha256 ?? "",
    seal_wrap: m.seal_wrap === true,
    type: m.type,
    uuid: m.uuid,
  };
  // External plugins (a running_sha256) have no builtin deprecation status.
  if (!NO_DEPRECATION_STATUS.has(m.type) && (m.running_sha256 ?? "") === "")
    info.deprecation_status = "supported";
  return sorted(info);
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

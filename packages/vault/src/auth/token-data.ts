/**
 * A token as the token auth method answers it: the `auth` block of create and renew (Vault's
 * `logical.Auth` as the API shows it), and the `data` of lookup, lookup-self and lookup-accessor —
 * built as OpenBao 2.6.2 builds them, from the token entry and its lease.
 */
import { goTime } from "./token-records.js";
import { remainingTtl, type TokenEntry } from "./tokens.js";

/** The `auth` block of auth/token/create and renew* for `token` (`""` when only its accessor was given). */
export function tokenAuthData(token: string, e: TokenEntry): Record<string, unknown> {
  return {
    client_token: token,
    accessor: e.accessor,
    policies: e.policies,
    token_policies: e.policies,
    metadata: e.meta,
    // The TTL the create or renewal granted (`auth.lease`), not what is left of it.
    lease_duration: e.lease_ttl,
    renewable: e.renewable && e.lease_ttl > 0,
    entity_id: e.entity_id,
    token_type: e.type,
    orphan: e.parent === "",
    mfa_requirement: null,
    // OpenBao answers the lease's auth.num_uses: the uses the token was created with.
    num_uses: typeof e.lease?.auth?.num_uses === "number" ? e.lease.auth.num_uses : e.num_uses,
  };
}

/** The `data` of auth/token/lookup* (`id` is `""` when looked up by accessor). */
export function tokenLookupData(id: string, e: TokenEntry, nowMs = Date.now()): Record<string, unknown> {
  // OpenBao reports expire_time, issue_time, renewal times and renewable from the token's lease
  // (its own text, as stored); the root tokens made by init and generate-root have none.
  const l = e.lease;
  if (e.type === "batch") {
    // A batch token's "lease" is its own creation_time + ttl (OpenBao's FetchLeaseTimesByToken).
    return {
      accessor: "",
      ...(e.bound_cidrs.length > 0 ? { bound_cidrs: e.bound_cidrs } : {}),
      creation_time: e.creation_time,
      creation_ttl: e.creation_ttl,
      display_name: e.display_name,
      entity_id: e.entity_id,
      expire_time: goTime(e.expire_time),
      explicit_max_ttl: 0,
      id,
      issue_time: e.issue_time,
      meta: e.meta,
      num_uses: 0,
      orphan: e.parent === "",
      path: e.path,
      policies: e.policies,
      renewable: false,
      ...(e.role !== "" ? { role: e.role } : {}),
      ttl: remainingTtl(e, nowMs),
      type: "batch",
    };
  }
  const expires = l !== undefined && l.expire !== 0;
  return {
    accessor: e.accessor,
    ...(e.bound_cidrs.length > 0 ? { bound_cidrs: e.bound_cidrs } : {}),
    creation_time: e.creation_time,
    creation_ttl: e.creation_ttl,
    display_name: e.display_name,
    entity_id: e.entity_id,
    expire_time: expires ? l.expire_time : null,
    explicit_max_ttl: e.explicit_max_ttl,
    id,
    ...(l !== undefined ? { issue_time: l.issue_time } : {}),
    ...(l !== undefined && l.lastRenewal !== 0
      ? { last_renewal: l.last_renewal_time, last_renewal_time: Math.floor(l.lastRenewal / 1000) }
      : {}),
    meta: e.meta,
    num_uses: e.num_uses,
    orphan: e.parent === "",
    path: e.path,
    ...(e.period > 0 ? { period: e.period } : {}),
    policies: e.policies,
    // `leaseEntry.renewable()`: an expiry, not past it, not irrevocable, and auth.renewable.
    ...(l !== undefined
      ? { renewable: expires && l.expire > nowMs && l.revokeErr === "" && l.renewable }
      : {}),
    ...(e.role !== "" ? { role: e.role } : {}),
    ttl: expires ? remainingTtl(e, nowMs) : 0,
    type: e.type,
  };
}

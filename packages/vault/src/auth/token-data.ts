/**
 * A token as the token auth method answers it: the `auth` block of create and renew (Vault's
 * `logical.Auth` as the API shows it), and the `data` of lookup, lookup-self and lookup-accessor.
 */
import { remainingTtl, type TokenEntry } from "./tokens.js";

/** The `auth` block of auth/token/create and renew* for `token` (`""` when only its accessor was given). */
export function tokenAuthData(token: string, e: TokenEntry): Record<string, unknown> {
  return {
    client_token: token,
    accessor: e.accessor,
    policies: e.policies,
    token_policies: e.policies,
    metadata: e.meta,
    lease_duration: remainingTtl(e),
    renewable: e.renewable && e.expire_time !== 0,
    entity_id: "",
    token_type: "service",
    orphan: e.parent === "",
    mfa_requirement: null,
    num_uses: e.num_uses,
  };
}

/** The `data` of auth/token/lookup* (`id` is `""` when looked up by accessor). */
export function tokenLookupData(id: string, e: TokenEntry): Record<string, unknown> {
  // Vault reports issue_time and renewable from the token's lease; the root tokens made by init
  // and generate-root (path auth/token/root) have none, so OpenBao leaves both out for them.
  const leased = e.path !== "auth/token/root";
  return {
    accessor: e.accessor,
    creation_time: e.creation_time,
    creation_ttl: e.creation_ttl,
    display_name: e.display_name,
    entity_id: "",
    expire_time: e.expire_time === 0 ? null : new Date(e.expire_time).toISOString(),
    explicit_max_ttl: e.explicit_max_ttl,
    id,
    ...(leased ? { issue_time: e.issue_time } : {}),
    ...(e.last_renewal_time === undefined
      ? {}
      : {
          last_renewal: new Date(e.last_renewal_time * 1000).toISOString(),
          last_renewal_time: e.last_renewal_time,
        }),
    meta: e.meta,
    num_uses: e.num_uses,
    orphan: e.parent === "",
    path: e.path,
    ...(e.period > 0 ? { period: e.period } : {}),
    policies: e.policies,
    ...(leased ? { renewable: e.renewable && e.expire_time !== 0 } : {}),
    ttl: remainingTtl(e),
    type: "service",
  };
}

import { describe, expect, it } from "vitest";
import { tokenAuthData, tokenLookupData } from "./token-data.js";
import type { TokenEntry } from "./tokens.js";

const NOW = Date.now();

function entry(over: Partial<TokenEntry> = {}): TokenEntry {
  return {
    hash: "h",
    accessor: "acc",
    parent: "p",
    policies: ["default", "ops"],
    meta: { team: "a" },
    display_name: "token",
    num_uses: 0,
    creation_time: 1_700_000_000,
    creation_ttl: 3600,
    expire_time: NOW + 3_600_000,
    explicit_max_ttl: 0,
    period: 0,
    renewable: true,
    path: "auth/token/create",
    issue_time: "2023-11-14T22:13:20Z",
    ...over,
  };
}

describe("a token as the token auth method answers it", () => {
  it("the auth block: renewable only with an expiry, orphan without a parent, the remaining ttl", () => {
    const a = tokenAuthData("hvs.x", entry());
    expect(a).toMatchObject({
      client_token: "hvs.x",
      accessor: "acc",
      policies: ["default", "ops"],
      token_policies: ["default", "ops"],
      metadata: { team: "a" },
      renewable: true,
      token_type: "service",
      orphan: false,
      mfa_requirement: null,
    });
    expect(a.lease_duration).toBeGreaterThan(3590);
    expect(a.lease_duration).toBeLessThanOrEqual(3600);
    const b = tokenAuthData("", entry({ expire_time: 0, parent: "" }));
    expect(b).toMatchObject({ client_token: "", renewable: false, orphan: true, lease_duration: 0 });
  });

  it("lookup data of a leased token: issue_time, renewable, expire_time as RFC 3339, no period or renewal unless set", () => {
    const e = entry();
    const d = tokenLookupData("hvs.x", e);
    expect(d).toMatchObject({
      id: "hvs.x",
      issue_time: e.issue_time,
      renewable: true,
      expire_time: new Date(e.expire_time).toISOString(),
      orphan: false,
      type: "service",
      entity_id: "",
    });
    expect(d).not.toHaveProperty("period");
    expect(d).not.toHaveProperty("last_renewal");
    const renewed = tokenLookupData("", entry({ last_renewal_time: 1_700_000_100, period: 60 }));
    expect(renewed).toMatchObject({
      id: "",
      period: 60,
      last_renewal_time: 1_700_000_100,
      last_renewal: new Date(1_700_000_100_000).toISOString(),
    });
  });

  it("lookup data of a root token (auth/token/root) leaves out issue_time and renewable, as OpenBao", () => {
    const d = tokenLookupData("r", entry({ path: "auth/token/root", expire_time: 0, parent: "" }));
    expect(d).not.toHaveProperty("issue_time");
    expect(d).not.toHaveProperty("renewable");
    expect(d).toMatchObject({ expire_time: null, ttl: 0, orphan: true, path: "auth/token/root" });
  });
});

import { MemoryBackend } from "@bulwark/storage-memory";
import { describe, expect, it } from "vitest";
import { tokenAuthData, tokenLookupData } from "./token-data.js";
import { goTime } from "./token-records.js";
import { TokenStore } from "./tokens.js";

const START = 1_700_000_000_000;

async function store() {
  let now = START;
  const tokens = new TokenStore(new MemoryBackend(), { now: () => now, cacheMs: 0 });
  const root = await tokens.createRoot();
  return { tokens, root, advance: (ms: number) => (now += ms), now: () => now };
}

describe("a token as the token auth method answers it", () => {
  it("the auth block: the granted TTL, renewable only with an expiry, orphan without a parent", async () => {
    const { tokens, root } = await store();
    const t = await tokens.create(
      root.entry,
      { policies: ["ops"], meta: { team: "a" }, ttl: 3600 },
      { sudo: false },
    );
    expect(tokenAuthData(t.token, t.entry)).toEqual({
      client_token: t.token,
      accessor: t.entry.accessor,
      policies: ["default", "ops"],
      token_policies: ["default", "ops"],
      metadata: { team: "a" },
      lease_duration: 3600,
      renewable: true,
      entity_id: "",
      token_type: "service",
      orphan: false,
      mfa_requirement: null,
      num_uses: 0,
    });
    expect(tokenAuthData("", root.entry)).toMatchObject({
      client_token: "",
      renewable: false,
      orphan: true,
      lease_duration: 0,
    });
  });

  it("lookup data of a leased token: the lease's times as stored, renewable, no period or renewal unless set", async () => {
    const { tokens, root, advance, now } = await store();
    const t = await tokens.create(root.entry, { policies: ["ops"], ttl: 3600 }, { sudo: false });
    advance(10_400);
    const d = tokenLookupData(t.token, t.entry, now());
    expect(d).toMatchObject({
      id: t.token,
      issue_time: goTime(START),
      renewable: true,
      expire_time: goTime(START + 3_600_000),
      creation_ttl: 3600,
      // Vault: expiry minus now rounded to the second, truncated.
      ttl: 3590,
      orphan: false,
      type: "service",
      entity_id: "",
    });
    expect(d).not.toHaveProperty("period");
    expect(d).not.toHaveProperty("last_renewal");
    const p = await tokens.create(root.entry, { period: 60 }, { sudo: true });
    advance(5_000);
    const r = await tokens.renew(p.entry);
    expect(tokenLookupData("", r.entry, now())).toMatchObject({
      id: "",
      period: 60,
      last_renewal_time: Math.floor(now() / 1000),
      last_renewal: goTime(now()),
    });
  });

  it("a limited token: lookups show the uses left, create and renew answers the uses it was created with (as OpenBao)", async () => {
    const { tokens, root } = await store();
    const t = await tokens.create(root.entry, { numUses: 3, ttl: 600 }, { sudo: false });
    expect(tokenAuthData(t.token, t.entry).num_uses).toBe(3);
    const seen = await tokens.authenticate(t.token);
    expect(tokenLookupData(t.token, seen as NonNullable<typeof seen>).num_uses).toBe(2);
    const renewed = await tokens.renew(seen as NonNullable<typeof seen>);
    expect(tokenAuthData(t.token, renewed.entry).num_uses).toBe(3);
    expect(tokenLookupData(t.token, renewed.entry).num_uses).toBe(2);
  });

  it("lookup data of an expired lease is not renewable", async () => {
    const { tokens, root, now } = await store();
    const t = await tokens.create(root.entry, { ttl: 10 }, { sudo: false });
    expect(tokenLookupData(t.token, t.entry, now() + 10_000)).toMatchObject({ renewable: false, ttl: 0 });
  });

  it("lookup data of a root token (auth/token/root) leaves out issue_time and renewable, as OpenBao", async () => {
    const { root } = await store();
    const d = tokenLookupData("r", root.entry);
    expect(d).not.toHaveProperty("issue_time");
    expect(d).not.toHaveProperty("renewable");
    expect(d).toMatchObject({ expire_time: null, ttl: 0, orphan: true, path: "auth/token/root" });
  });
});

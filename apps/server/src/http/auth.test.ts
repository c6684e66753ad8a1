import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { initAndUnseal, type TestApp, testApp } from "../../test/helpers/app.js";

let t: TestApp;
let root: string;

beforeAll(async () => {
  t = await testApp();
  root = (await initAndUnseal(t, 1, 1)).root;
  await t.call("POST", "/v1/sys/mounts/secret", {
    token: root,
    body: { type: "kv", options: { version: "2" } },
  });
  await t.call("POST", "/v1/sys/mounts/kv", { token: root, body: { type: "kv", options: { version: "1" } } });
});
afterAll(async () => {
  await t.close();
});

async function tokenWith(policies: string[], extra: Record<string, unknown> = {}): Promise<string> {
  const r = await t.call("POST", "/v1/auth/token/create", { token: root, body: { policies, ...extra } });
  expect(r.statusCode).toBe(200);
  return r.json().auth.client_token;
}

describe("token headers", () => {
  it("accepts X-Vault-Token and Authorization: Bearer; refuses missing and unknown tokens with 403", async () => {
    expect((await t.call("GET", "/v1/auth/token/lookup-self", { token: root })).statusCode).toBe(200);
    expect(
      (await t.call("GET", "/v1/auth/token/lookup-self", { headers: { authorization: `Bearer ${root}` } }))
        .statusCode,
    ).toBe(200);
    const none = await t.call("GET", "/v1/auth/token/lookup-self");
    expect(none.statusCode).toBe(403);
    expect(none.json()).toEqual({ errors: ["permission denied"] });
    expect(
      (await t.call("GET", "/v1/auth/token/lookup-self", { token: "hvs.000000000000000000000000" }))
        .statusCode,
    ).toBe(403);
  });
});

describe("auth/token/*", () => {
  it("create → lookup-self → renew-self → revoke-self", async () => {
    const r = await t.call("POST", "/v1/auth/token/create", {
      token: root,
      body: { policies: ["reader"], ttl: "1h", meta: { team: "a" }, display_name: "ci" },
    });
    const auth = r.json().auth;
    expect(auth).toMatchObject({
      policies: ["default", "reader"],
      renewable: true,
      lease_duration: 3600,
      orphan: false,
      token_type: "service",
    });
    expect(auth.accessor).toMatch(/^[0-9A-Za-z]{24}$/);
    const me = (await t.call("GET", "/v1/auth/token/lookup-self", { token: auth.client_token })).json().data;
    expect(me).toMatchObject({
      id: auth.client_token,
      display_name: "token-ci",
      meta: { team: "a" },
      policies: ["default", "reader"],
    });
    expect(me.ttl).toBeGreaterThan(3590);
    const renewed = (
      await t.call("POST", "/v1/auth/token/renew-self", {
        token: auth.client_token,
        body: { increment: "2h" },
      })
    ).json();
    expect(renewed.auth.lease_duration).toBeGreaterThan(7190);
    expect(
      (await t.call("POST", "/v1/auth/token/revoke-self", { token: auth.client_token })).statusCode,
    ).toBe(204);
    expect((await t.call("GET", "/v1/auth/token/lookup-self", { token: auth.client_token })).statusCode).toBe(
      403,
    );
  });

  it("lookup, lookup-accessor, renew, revoke, revoke-accessor of other tokens", async () => {
    const other = (
      await t.call("POST", "/v1/auth/token/create", { token: root, body: { policies: ["x"], ttl: 600 } })
    ).json().auth;
    const byToken = (
      await t.call("POST", "/v1/auth/token/lookup", { token: root, body: { token: other.client_token } })
    ).json();
    expect(byToken.data.accessor).toBe(other.accessor);
    const byAccessor = (
      await t.call("POST", "/v1/auth/token/lookup-accessor", {
        token: root,
        body: { accessor: other.accessor },
      })
    ).json();
    expect(byAccessor.data.id).toBe("");
    expect(byAccessor.data.policies).toEqual(["default", "x"]);
    expect(
      (
        await t.call("POST", "/v1/auth/token/renew", {
          token: root,
          body: { token: other.client_token, increment: 60 },
        })
      ).json().auth.lease_duration,
    ).toBeLessThanOrEqual(60);
    await t.call("POST", "/v1/auth/token/revoke-accessor", {
      token: root,
      body: { accessor: other.accessor },
    });
    expect(
      (await t.call("POST", "/v1/auth/token/lookup", { token: root, body: { token: other.client_token } }))
        .statusCode,
    ).toBe(403);
    const third = await tokenWith(["x"]);
    expect(
      (await t.call("POST", "/v1/auth/token/revoke", { token: root, body: { token: third } })).statusCode,
    ).toBe(204);
    expect((await t.call("GET", "/v1/auth/token/lookup-self", { token: third })).statusCode).toBe(403);
  });

  it("revoke-accessor, revoke-orphan and renew of an unknown token are a 400 naming it, as in Vault (not a silent success)", async () => {
    const gone = await tokenWith(["x"]);
    const acc = (await t.call("GET", "/v1/auth/token/lookup-self", { token: gone })).json().data.accessor;
    await t.call("POST", "/v1/auth/token/revoke", { token: root, body: { token: gone } });
    const ra = await t.call("POST", "/v1/auth/token/revoke-accessor", {
      token: root,
      body: { accessor: acc },
    });
    expect(ra.statusCode).toBe(400);
    expect(ra.json().errors[0]).toMatch(/invalid accessor/);
    const ro = await t.call("POST", "/v1/auth/token/revoke-orphan", { token: root, body: { token: gone } });
    expect(ro.statusCode).toBe(400);
    expect(ro.json().errors[0]).toMatch(/token to revoke not found/);
    const rn = await t.call("POST", "/v1/auth/token/renew", { token: root, body: { token: gone } });
    expect(rn.statusCode).toBe(400);
    expect(rn.json().errors[0]).toMatch(/token not found/);
    // Revoking an unknown token by its id stays a no-op (Vault: 204).
    expect(
      (await t.call("POST", "/v1/auth/token/revoke", { token: root, body: { token: gone } })).statusCode,
    ).toBe(204);
  });

  it("a token's children die with it", async () => {
    await t.call("PUT", "/v1/sys/policy/creator", {
      token: root,
      body: { policy: 'path "auth/token/create" { capabilities = ["update"] }' },
    });
    const parent = await tokenWith(["creator"]);
    const child = (await t.call("POST", "/v1/auth/token/create", { token: parent, body: {} })).json().auth
      .client_token;
    expect((await t.call("GET", "/v1/auth/token/lookup-self", { token: child })).statusCode).toBe(200);
    await t.call("POST", "/v1/auth/token/revoke", { token: root, body: { token: parent } });
    expect((await t.call("GET", "/v1/auth/token/lookup-self", { token: child })).statusCode).toBe(403);
  });

  it("a non-root token cannot mint broader policies; orphans need create-orphan or sudo", async () => {
    await t.call("PUT", "/v1/sys/policy/creator2", {
      token: root,
      body: { policy: 'path "auth/token/create*" { capabilities = ["update"] }' },
    });
    const parent = await tokenWith(["creator2"]);
    const broader = await t.call("POST", "/v1/auth/token/create", {
      token: parent,
      body: { policies: ["admin"] },
    });
    expect(broader.statusCode).toBe(400);
    expect(
      (await t.call("POST", "/v1/auth/token/create", { token: parent, body: { no_parent: true } }))
        .statusCode,
    ).toBe(400);
    const orphan = await t.call("POST", "/v1/auth/token/create-orphan", { token: parent, body: {} });
    expect(orphan.json().auth.orphan).toBe(true);
    expect(
      (await t.call("POST", "/v1/auth/token/create", { token: parent, body: { type: "batch" } })).statusCode,
    ).toBe(400);
    expect(
      (await t.call("POST", "/v1/auth/token/create", { token: parent, body: { role_name: "r" } })).statusCode,
    ).toBe(400);
  });

  it("a token naming a policy that cannot exist still works with its other policies (Vault: it grants nothing)", async () => {
    const r = await t.call("POST", "/v1/auth/token/create", {
      token: root,
      body: { policies: ["my policy", "x/y"] },
    });
    expect(r.statusCode).toBe(200);
    const tok = r.json().auth.client_token;
    expect((await t.call("GET", "/v1/auth/token/lookup-self", { token: tok })).statusCode).toBe(200);
    expect((await t.call("GET", "/v1/kv/anything", { token: tok })).statusCode).toBe(403);
  });

  it("an expired token is refused", async () => {
    const short = (await t.call("POST", "/v1/auth/token/create", { token: root, body: { ttl: "1s" } })).json()
      .auth.client_token;
    expect((await t.call("GET", "/v1/auth/token/lookup-self", { token: short })).statusCode).toBe(200);
    await new Promise((r) => setTimeout(r, 1100));
    expect((await t.call("GET", "/v1/auth/token/lookup-self", { token: short })).statusCode).toBe(403);
  });

  it("answers as OpenBao 2.6.2: s. tokens, a child's TTL not capped by its parent's, renewals default to the lease's TTL", async () => {
    const created = (
      await t.call("POST", "/v1/auth/token/create", {
        token: root,
        body: { ttl: "1h", policies: ["default"] },
      })
    ).json();
    expect(created.auth.client_token).toMatch(/^s\.[0-9A-Za-z]{24}$/);
    expect(created.auth.lease_duration).toBe(3600);
    const parent = await tokenWith(["default"], { ttl: "10m" });
    await t.call("PUT", "/v1/sys/policies/acl/minter", {
      token: root,
      body: { policy: 'path "auth/token/create" { capabilities = ["update"] }' },
    });
    const minter = await tokenWith(["minter", "default"], { ttl: "10m" });
    const child = (
      await t.call("POST", "/v1/auth/token/create", { token: minter, body: { ttl: "2h" } })
    ).json();
    expect(child.auth.lease_duration).toBe(7200);
    expect(child.warnings).toBeNull();
    const renew1 = await t.call("POST", "/v1/auth/token/renew", {
      token: root,
      body: { token: parent, increment: "5m" },
    });
    expect(renew1.json().auth.lease_duration).toBe(300);
    const renew2 = await t.call("POST", "/v1/auth/token/renew", { token: root, body: { token: parent } });
    expect(renew2.json().auth.lease_duration).toBe(300);
    const lookup = (
      await t.call("POST", "/v1/auth/token/lookup", { token: root, body: { token: parent } })
    ).json().data;
    expect(lookup.last_renewal).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/);
    expect(
      (await t.call("POST", "/v1/auth/token/renew", { token: root, body: { token: root } })).json(),
    ).toEqual({
      errors: ["invalid lease ID"],
    });
  });

  it("a limited token's own request sees its uses as OpenBao's (one fewer, -1 on the last); renew answers the uses it was created with", async () => {
    const two = await tokenWith(["default"], { num_uses: 3 });
    expect((await t.call("GET", "/v1/auth/token/lookup-self", { token: two })).json().data.num_uses).toBe(2);
    expect((await t.call("POST", "/v1/auth/token/renew-self", { token: two })).json().auth.num_uses).toBe(3);
    expect((await t.call("GET", "/v1/auth/token/lookup-self", { token: two })).json().data.num_uses).toBe(-1);
    expect((await t.call("GET", "/v1/auth/token/lookup-self", { token: two })).statusCode).toBe(403);
  });

  it("num_uses limits how often a token works", async () => {
    const once = await tokenWith(["default"], { num_uses: 1 });
    expect((await t.call("GET", "/v1/auth/token/lookup-self", { token: once })).statusCode).toBe(200);
    expect((await t.call("GET", "/v1/auth/token/lookup-self", { token: once })).statusCode).toBe(403);
  });
});

describe("ACL enforcement", () => {
  it("a read-only policy on secret/data/app/* reads there and gets 403 elsewhere and on writes", async () => {
    await t.call("POST", "/v1/secret/data/app/db", { token: root, body: { data: { password: "p1" } } });
    await t.call("POST", "/v1/secret/data/other", { token: root, body: { data: { x: "1" } } });
    await t.call("PUT", "/v1/sys/policies/acl/app-read", {
      token: root,
      body: { policy: 'path "secret/data/app/*" { capabilities = ["read"] }' },
    });
    const reader = await tokenWith(["app-read"]);
    const ok = await t.call("GET", "/v1/secret/data/app/db", { token: reader });
    expect(ok.statusCode).toBe(200);
    expect(ok.json().data.data).toEqual({ password: "p1" });
    expect((await t.call("GET", "/v1/secret/data/other", { token: reader })).statusCode).toBe(403);
    expect(
      (await t.call("POST", "/v1/secret/data/app/db", { token: reader, body: { data: { password: "x" } } }))
        .statusCode,
    ).toBe(403);
    expect((await t.call("DELETE", "/v1/secret/data/app/db", { token: reader })).statusCode).toBe(403);
    expect((await t.call("GET", "/v1/secret/metadata/app?list=true", { token: reader })).statusCode).toBe(
      403,
    );
    expect((await t.call("GET", "/v1/sys/mounts", { token: reader })).statusCode).toBe(403);
    // The default policy still lets it look itself up.
    expect((await t.call("GET", "/v1/auth/token/lookup-self", { token: reader })).statusCode).toBe(200);
    // Nothing changed.
    expect(
      (await t.call("GET", "/v1/secret/data/app/db", { token: root })).json().data.metadata.version,
    ).toBe(1);
  });

  it("create vs update follows existence (kv v1 and v2)", async () => {
    await t.call("PUT", "/v1/sys/policy/creator-only", {
      token: root,
      body: {
        policy:
          'path "kv/*" { capabilities = ["create"] }\npath "secret/data/*" { capabilities = ["create"] }',
      },
    });
    const c = await tokenWith(["creator-only"]);
    expect((await t.call("PUT", "/v1/kv/new", { token: c, body: { a: "1" } })).statusCode).toBe(204);
    expect((await t.call("PUT", "/v1/kv/new", { token: c, body: { a: "2" } })).statusCode).toBe(403);
    expect(
      (await t.call("POST", "/v1/secret/data/fresh", { token: c, body: { data: { a: 1 } } })).statusCode,
    ).toBe(200);
    expect(
      (await t.call("POST", "/v1/secret/data/fresh", { token: c, body: { data: { a: 2 } } })).statusCode,
    ).toBe(403);
  });

  it("deny beats a broader grant; LIST is checked on the folder path", async () => {
    await t.call("PUT", "/v1/sys/policy/mixed", {
      token: root,
      body: {
        policy: `path "kv/*" { capabilities = ["read", "list"] }
                 path "kv/private/*" { capabilities = ["deny"] }`,
      },
    });
    await t.call("PUT", "/v1/kv/private/x", { token: root, body: { a: "1" } });
    const m = await tokenWith(["mixed"]);
    expect((await t.call("GET", "/v1/kv/new", { token: m })).statusCode).toBe(200);
    expect((await t.call("GET", "/v1/kv/private/x", { token: m })).statusCode).toBe(403);
    expect((await t.call("GET", "/v1/kv/?list=true", { token: m })).statusCode).toBe(200);
    expect((await t.call("GET", "/v1/kv/private?list=true", { token: m })).statusCode).toBe(403);
  });

  it("a LIST is checked as Vault does: on 'p/', and by an exact rule for 'p' (deny included)", async () => {
    await t.call("PUT", "/v1/sys/policy/listers", {
      token: root,
      body: {
        policy: `path "kv/*" { capabilities = ["read", "list"] }
                 path "kv/hidden" { capabilities = ["deny"] }
                 path "kv/shown" { capabilities = ["list"] }
                 path "sys/policies/acl/*" { capabilities = ["list"] }`,
      },
    });
    await t.call("PUT", "/v1/kv/hidden/x", { token: root, body: { a: "1" } });
    await t.call("PUT", "/v1/kv/shown/x", { token: root, body: { a: "1" } });
    const l = await tokenWith(["listers"]);
    expect((await t.call("GET", "/v1/kv/hidden?list=true", { token: l })).statusCode).toBe(403);
    expect((await t.call("GET", "/v1/kv/shown?list=true", { token: l })).statusCode).toBe(200);
    expect((await t.call("GET", "/v1/sys/policies/acl?list=true", { token: l })).statusCode).toBe(200);
  });

  it("capabilities-self reports per path", async () => {
    const reader = await tokenWith(["app-read"]);
    const r = (
      await t.call("POST", "/v1/sys/capabilities-self", {
        token: reader,
        body: { paths: ["secret/data/app/x", "secret/data/zzz"] },
      })
    ).json();
    expect(r["secret/data/app/x"]).toEqual(["read"]);
    expect(r["secret/data/zzz"]).toEqual(["deny"]);
    // OpenBao adds `capabilities` only when one path was asked.
    expect(r.capabilities).toBeUndefined();
    const rootCaps = (
      await t.call("POST", "/v1/sys/capabilities-self", { token: root, body: { path: "anything" } })
    ).json();
    expect(rootCaps.capabilities).toEqual(["root"]);
    const other = (
      await t.call("POST", "/v1/sys/capabilities", {
        token: root,
        body: { token: reader, path: "secret/data/app/y" },
      })
    ).json();
    expect(other.capabilities).toEqual(["read"]);
  });
});

describe("policies CRUD", () => {
  it("sys/policy and sys/policies/acl read, write, list, delete; root and default are protected", async () => {
    const doc = 'path "secret/data/ops/*" {\n  capabilities = ["read", "update"]\n}\n';
    expect(
      (await t.call("PUT", "/v1/sys/policies/acl/ops", { token: root, body: { policy: doc } })).statusCode,
    ).toBe(204);
    // OpenBao's fields: the CAS version, when it was written, the identity template flags.
    expect((await t.call("GET", "/v1/sys/policies/acl/ops", { token: root })).json().data).toEqual({
      name: "ops",
      policy: doc,
      version: 1,
      cas_required: false,
      modified: expect.stringMatching(/^\d{4}-\d\d-\d\dT[\d:.]+Z$/),
      allow_wildcards_in_identity_templates: false,
      allow_slashes_in_identity_templates: false,
    });
    expect((await t.call("GET", "/v1/sys/policy/ops", { token: root })).json()).toMatchObject({
      name: "ops",
      rules: doc,
    });
    const list = (await t.call("GET", "/v1/sys/policies/acl?list=true", { token: root })).json().data.keys;
    expect(list).toContain("ops");
    expect(list).toContain("default");
    // Vault lists root here too (it cannot be read, changed or deleted).
    expect(list).toContain("root");
    expect((await t.call("GET", "/v1/sys/policy", { token: root })).json().policies).toContain("root");
    // The folder spellings list too, as in Vault (`LIST sys/policies/acl/`).
    const slashed = await t.call("GET", "/v1/sys/policies/acl/?list=true", { token: root });
    expect(slashed.statusCode).toBe(200);
    expect(slashed.json().data.keys).toContain("ops");
    expect((await t.call("GET", "/v1/sys/policy/", { token: root })).json().policies).toContain("root");
    const json = JSON.stringify({ path: { "kv/*": { capabilities: ["read"] } } });
    // The deprecated `rules` still works, with OpenBao's warning (a 200 then).
    const viaRules = await t.call("PUT", "/v1/sys/policy/jsonpol", {
      token: root,
      body: { name: "jsonpol", rules: json },
    });
    expect(viaRules.statusCode).toBe(200);
    expect(viaRules.json().warnings).toEqual(["'rules' is deprecated, please use 'policy' instead"]);
    const b64 = Buffer.from('path "a/*" { capabilities = ["read"] }').toString("base64");
    expect(
      (await t.call("PUT", "/v1/sys/policies/acl/b64", { token: root, body: { policy: b64 } })).statusCode,
    ).toBe(204);
    expect((await t.call("GET", "/v1/sys/policies/acl/b64", { token: root })).json().data.policy).toContain(
      'path "a/*"',
    );
    expect(
      (
        await t.call("PUT", "/v1/sys/policies/acl/bad", {
          token: root,
          body: { policy: 'path "a" { capabilities = ["fly"] }' },
        })
      ).statusCode,
    ).toBe(400);
    expect(
      (await t.call("PUT", "/v1/sys/policies/acl/root", { token: root, body: { policy: doc } })).statusCode,
    ).toBe(400);
    expect((await t.call("DELETE", "/v1/sys/policies/acl/default", { token: root })).statusCode).toBe(400);
    expect((await t.call("DELETE", "/v1/sys/policies/acl/ops", { token: root })).statusCode).toBe(204);
    expect((await t.call("GET", "/v1/sys/policies/acl/ops", { token: root })).statusCode).toBe(404);
    expect(
      (await t.call("GET", "/v1/sys/policies/acl/default", { token: root })).json().data.policy,
    ).toContain("lookup-self");
  });

  it("a policy change takes effect for existing tokens", async () => {
    await t.call("PUT", "/v1/sys/policies/acl/flip", {
      token: root,
      body: { policy: 'path "kv/flip" { capabilities = ["read"] }' },
    });
    await t.call("PUT", "/v1/kv/flip", { token: root, body: { a: "1" } });
    const tok = await tokenWith(["flip"]);
    expect((await t.call("GET", "/v1/kv/flip", { token: tok })).statusCode).toBe(200);
    await t.call("PUT", "/v1/sys/policies/acl/flip", {
      token: root,
      body: { policy: 'path "kv/flip" { capabilities = ["deny"] }' },
    });
    expect((await t.call("GET", "/v1/kv/flip", { token: tok })).statusCode).toBe(403);
  });
});

describe("mounts", () => {
  it("lists, reads, tunes and removes mounts; refuses overlapping and unknown types", async () => {
    const list = (await t.call("GET", "/v1/sys/mounts", { token: root })).json();
    expect(list["secret/"]).toMatchObject({ type: "kv", options: { version: "2" }, seal_wrap: false });
    expect(list.data["kv/"]).toMatchObject({ type: "kv", options: { version: "1" } });
    expect(list.data["sys/"].type).toBe("system");
    expect(
      (
        await t.call("POST", "/v1/sys/mounts/team/a", {
          token: root,
          body: { type: "kv-v2", description: "team a", seal_wrap: true },
        })
      ).statusCode,
    ).toBe(204);
    expect((await t.call("GET", "/v1/sys/mounts/team/a", { token: root })).json().data).toMatchObject({
      description: "team a",
      seal_wrap: true,
    });
    expect(
      (await t.call("POST", "/v1/sys/mounts/team/a/tune", { token: root, body: { default_lease_ttl: "1h" } }))
        .statusCode,
    ).toBe(204);
    expect(
      (await t.call("GET", "/v1/sys/mounts/team/a/tune", { token: root })).json().default_lease_ttl,
    ).toBe(3600);
    expect(
      (await t.call("POST", "/v1/sys/mounts/team", { token: root, body: { type: "kv" } })).statusCode,
    ).toBe(400);
    expect(
      (await t.call("POST", "/v1/sys/mounts/pki", { token: root, body: { type: "pki" } })).statusCode,
    ).toBe(400);
    expect(
      (await t.call("POST", "/v1/sys/mounts/m", { token: root, body: { type: "kv", mount_point: "other" } }))
        .statusCode,
    ).toBe(400);
    const ui = (await t.call("GET", "/v1/sys/internal/ui/mounts/team/a/data/x", { token: root })).json();
    expect(ui.data).toMatchObject({ path: "team/a/", type: "kv", options: { version: "2" } });
    await t.call("POST", "/v1/team/a/data/x", { token: root, body: { data: { a: 1 } } });
    expect((await t.call("DELETE", "/v1/sys/mounts/team/a", { token: root })).statusCode).toBe(204);
    expect((await t.call("GET", "/v1/team/a/data/x", { token: root })).statusCode).toBe(404);
  });

  it("unknown sys paths are 404, known ones with the wrong method 405", async () => {
    expect((await t.call("GET", "/v1/sys/nothing-here", { token: root })).statusCode).toBe(404);
    expect((await t.call("DELETE", "/v1/sys/seal-status", { token: root })).statusCode).toBe(405);
    expect((await t.call("GET", "/v1/nomount/x", { token: root })).statusCode).toBe(404);
    expect((await t.call("GET", "/v2/sys/health")).statusCode).toBe(404);
  });

  it("refuses response wrapping and namespaces", async () => {
    expect(
      (await t.call("GET", "/v1/kv/new", { token: root, headers: { "x-vault-wrap-ttl": "60s" } })).statusCode,
    ).toBe(400);
    expect(
      (await t.call("GET", "/v1/kv/new", { token: root, headers: { "x-vault-namespace": "team" } }))
        .statusCode,
    ).toBe(400);
  });
});

describe("ACL on normalised names", () => {
  it("a deny on a policy name holds for upper-case and padded spellings of it", async () => {
    const rules =
      'path "sys/policy/*" { capabilities = ["create", "read", "update", "delete"] }\npath "sys/policy/guarded" { capabilities = ["deny"] }\npath "sys/policies/acl/*" { capabilities = ["create", "read", "update", "delete"] }\npath "sys/policies/acl/guarded" { capabilities = ["deny"] }';
    expect(
      (await t.call("PUT", "/v1/sys/policy/policy-admin", { token: root, body: { policy: rules } }))
        .statusCode,
    ).toBe(204);
    const guarded = 'path "secret/data/guarded" { capabilities = ["read"] }';
    expect(
      (await t.call("PUT", "/v1/sys/policy/guarded", { token: root, body: { policy: guarded } })).statusCode,
    ).toBe(204);
    const admin = await tokenWith(["policy-admin"]);
    const evil = 'path "*" { capabilities = ["create", "read", "update", "delete", "list", "sudo"] }';
    for (const url of [
      "/v1/sys/policy/guarded",
      "/v1/sys/policy/GUARDED",
      "/v1/sys/policy/%20guarded",
      "/v1/sys/policies/acl/Guarded",
    ]) {
      expect((await t.call("PUT", url, { token: admin, body: { policy: evil } })).statusCode, url).toBe(403);
      expect((await t.call("DELETE", url, { token: admin })).statusCode, url).toBe(403);
    }
    const still = await t.call("GET", "/v1/sys/policy/guarded", { token: root });
    expect(still.json().rules).toBe(guarded);
    // The same admin still manages other policies, whatever the spelling.
    const other = await t.call("PUT", "/v1/sys/policy/Other", { token: admin, body: { policy: guarded } });
    expect(other.statusCode).toBe(200);
    expect(other.json().warnings).toEqual(["policy name was converted to other"]);
  });

  it("a deny on a mount path holds for its trailing-slash and double-slash spellings", async () => {
    const rules =
      'path "sys/mounts/*" { capabilities = ["create", "read", "update", "delete"] }\npath "sys/mounts/secret" { capabilities = ["deny"] }\npath "sys/mounts/secret/tune" { capabilities = ["deny"] }';
    expect(
      (await t.call("PUT", "/v1/sys/policy/mount-admin", { token: root, body: { policy: rules } }))
        .statusCode,
    ).toBe(204);
    const admin = await tokenWith(["mount-admin"]);
    for (const url of ["/v1/sys/mounts/secret/", "/v1/sys/mounts//secret", "/v1/sys/mounts/secret//"]) {
      expect((await t.call("DELETE", url, { token: admin })).statusCode, url).toBe(403);
    }
    expect(
      (await t.call("POST", "/v1/sys/mounts/secret//tune", { token: admin, body: { description: "x" } }))
        .statusCode,
    ).toBe(403);
    expect((await t.call("GET", "/v1/sys/mounts/secret", { token: root })).statusCode).toBe(200);
    // Mounts the policy does not deny still work for the admin.
    expect(
      (await t.call("POST", "/v1/sys/mounts/team/", { token: admin, body: { type: "kv" } })).statusCode,
    ).toBe(204);
    expect((await t.call("DELETE", "/v1/sys/mounts/team/", { token: admin })).statusCode).toBe(204);
  });
});

describe("sys/internal/ui/mounts", () => {
  it("tells a token about a mount only when its policies reach into that mount (Vault's hasMountAccess)", async () => {
    expect(
      (
        await t.call("PUT", "/v1/sys/policy/kv-only", {
          token: root,
          body: { policy: 'path "kv/app/*" { capabilities = ["read"] }' },
        })
      ).statusCode,
    ).toBe(204);
    const tok = await tokenWith(["kv-only"]);
    expect((await t.call("GET", "/v1/sys/internal/ui/mounts/kv/app/x", { token: tok })).statusCode).toBe(200);
    expect((await t.call("GET", "/v1/sys/internal/ui/mounts/kv", { token: tok })).statusCode).toBe(200);
    const other = await t.call("GET", "/v1/sys/internal/ui/mounts/secret/data/x", { token: tok });
    expect(other.statusCode).toBe(403);
    expect(other.body).not.toContain("secret/");
  });
});

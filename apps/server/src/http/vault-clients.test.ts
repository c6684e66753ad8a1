/**
 * In-process checks of what the stock bao/vault CLI sends and expects (issue 14): the request
 * bodies captured from `bao` 2.6.2, Vault's sealed text, OpenBao 2.x's paths, `?help=1`, root in
 * the ACL policy list, and client errors without paths or storage ids. The same sequence through
 * the real CLI is apps/server/test/bao-cli.test.ts.
 */
import { StorageError } from "@bulwark/storage";
import { afterEach, describe, expect, it } from "vitest";
import { initAndUnseal, type TestApp, testApp } from "../../test/helpers/app.js";
import { redact, toHttpError } from "./errors.js";

let t: TestApp | undefined;
afterEach(async () => {
  await t?.close();
  t = undefined;
});

/** `PUT sys/init` exactly as `bao operator init -key-shares=5 -key-threshold=3` sends it. */
const BAO_INIT = {
  secret_shares: 5,
  secret_threshold: 3,
  pgp_keys: null,
  recovery_shares: 0,
  recovery_threshold: 0,
  recovery_pgp_keys: null,
  root_token_pgp_key: "",
};

describe("bodies the bao CLI sends", () => {
  it("sys/init with recovery_shares/threshold 0 and null pgp keys initialises a Shamir store", async () => {
    t = await testApp();
    const r = await t.call("PUT", "/v1/sys/init", { body: BAO_INIT });
    expect(r.statusCode).toBe(200);
    expect(r.json().keys).toHaveLength(5);
    // A non-zero recovery config on a Shamir seal is still refused.
    const t2 = await testApp();
    try {
      const bad = await t2.call("PUT", "/v1/sys/init", { body: { ...BAO_INIT, recovery_shares: 3 } });
      expect(bad.statusCode).toBe(400);
    } finally {
      await t2.close();
    }
  });

  it("sys/mounts with config.options null (secrets enable -version=2); a typo in config is still a 400", async () => {
    t = await testApp();
    const { root } = await initAndUnseal(t);
    const body = {
      type: "kv",
      description: "",
      config: { options: null, default_lease_ttl: "0s", max_lease_ttl: "0s", force_no_cache: false },
      local: false,
      seal_wrap: false,
      external_entropy_access: false,
      options: { version: "2" },
    };
    expect((await t.call("POST", "/v1/sys/mounts/secret", { token: root, body })).statusCode).toBe(204);
    const v1 = { ...body, options: null };
    expect((await t.call("POST", "/v1/sys/mounts/kv1", { token: root, body: v1 })).statusCode).toBe(204);
    const mounts = (await t.call("GET", "/v1/sys/mounts", { token: root })).json().data;
    expect(mounts["secret/"].options).toEqual({ version: "2" });
    expect(mounts["kv1/"].options).toBeNull(); // as OpenBao stores and answers it (= version 1)
    // `bao secrets tune -default-lease-ttl=1h secret`: the TTL not set comes as "".
    const tune = await t.call("POST", "/v1/sys/mounts/secret/tune", {
      token: root,
      body: { options: null, default_lease_ttl: "1h0m0s", max_lease_ttl: "", force_no_cache: false },
    });
    expect(tune.statusCode).toBe(204);
    expect((await t.call("GET", "/v1/sys/mounts/secret/tune", { token: root })).json().data).toMatchObject({
      default_lease_ttl: 3600,
    });
    // `bao auth tune -default-lease-ttl=768h token/` goes through sys/mounts/auth/token/tune.
    const authTune = await t.call("POST", "/v1/sys/mounts/auth/token/tune", {
      token: root,
      body: { options: null, default_lease_ttl: "768h0m0s", max_lease_ttl: "", force_no_cache: false },
    });
    expect(authTune.statusCode).toBe(204);
    const typo = await t.call("POST", "/v1/sys/mounts/x", {
      token: root,
      body: { ...body, config: { default_lease_tl: "1h" } },
    });
    expect(typo.statusCode).toBe(400);
    expect(typo.json().errors[0]).toContain('"default_lease_tl"');
    const unsupported = await t.call("POST", "/v1/sys/mounts/y", {
      token: root,
      body: { ...body, config: { audit_non_hmac_request_keys: ["a"] } },
    });
    expect(unsupported.statusCode).toBe(400);
    expect(unsupported.json().errors[0]).toContain("config.audit_non_hmac_request_keys is not supported");
  });

  it("`bao kv enable-versioning` (tune options.version 1 → 2) upgrades a kv v1 mount with OpenBao's warning; a downgrade is a 400", async () => {
    t = await testApp();
    const { root } = await initAndUnseal(t);
    expect(
      (await t.call("POST", "/v1/sys/mounts/up", { token: root, body: { type: "kv" } })).statusCode,
    ).toBe(204);
    await t.call("PUT", "/v1/up/a/b", { token: root, body: { k: "v" } });
    // The body `bao kv enable-versioning up` sends.
    const tune = await t.call("POST", "/v1/sys/mounts/up/tune", {
      token: root,
      body: { options: { version: "2" } },
    });
    expect(tune.statusCode).toBe(200);
    expect(tune.json().warnings).toEqual([
      "Upgrading mount from version 0 to version 2. This mount will be unavailable for a brief period and will resume service shortly.",
    ]);
    expect((await t.call("GET", "/v1/sys/mounts/up", { token: root })).json().data.options).toEqual({
      version: "2",
    });
    const read = await t.call("GET", "/v1/up/data/a/b", { token: root });
    expect(read.json().data).toMatchObject({ data: { k: "v" }, metadata: { version: 1 } });
    const down = await t.call("POST", "/v1/sys/mounts/up/tune", {
      token: root,
      body: { options: { version: "1" } },
    });
    expect(down.statusCode).toBe(400);
    expect(down.json().errors).toEqual(["cannot downgrade mount from version 2"]);
  });

  it("`bao kv patch`: PATCH data/<path> with application/merge-patch+json makes a merged new version", async () => {
    t = await testApp();
    const { root } = await initAndUnseal(t);
    await t.call("POST", "/v1/sys/mounts/secret", {
      token: root,
      body: { type: "kv", options: { version: "2" } },
    });
    await t.call("PUT", "/v1/secret/data/app", { token: root, body: { data: { a: "1", b: "2" } } });
    const headers = { "content-type": "application/merge-patch+json" };
    const p = await t.call("PATCH", "/v1/secret/data/app", {
      token: root,
      headers,
      body: { data: { b: null, c: "3" }, options: {} },
    });
    expect(p.statusCode).toBe(200);
    expect(p.json().data).toMatchObject({ version: 2 });
    const read = await t.call("GET", "/v1/secret/data/app", { token: root });
    expect(read.json().data.data).toEqual({ a: "1", c: "3" });
  });

  it("sys/mounts lists OpenBao's built-in mounts from the table; a request under one is a 404 naming its engine", async () => {
    t = await testApp();
    const { root } = await initAndUnseal(t);
    const mounts = (await t.call("GET", "/v1/sys/mounts", { token: root })).json().data;
    expect(Object.keys(mounts).sort()).toEqual(["cubbyhole/", "identity/", "sys/"]);
    expect(mounts["cubbyhole/"]).toMatchObject({
      type: "cubbyhole",
      local: true,
      description: "per-token private secret storage",
    });
    expect(mounts["sys/"]).toMatchObject({
      type: "system",
      seal_wrap: true,
      config: { passthrough_request_headers: ["Accept"] },
    });
    const r = await t.call("PUT", "/v1/cubbyhole/mine", { token: root, body: { v: "1" } });
    expect(r.statusCode).toBe(404);
    expect(r.json().errors[0]).toContain(
      "cubbyhole/ is an OpenBao/Vault `cubbyhole` mount Bulwark keeps but does not serve",
    );
    expect((await t.call("DELETE", "/v1/sys/mounts/identity", { token: root })).statusCode).toBe(400);
  });
});

describe("Vault's texts and OpenBao 2.x paths", () => {
  it("sealed: 503 with Vault's exact text (the CLI matches on it)", async () => {
    t = await testApp();
    const { root } = await initAndUnseal(t);
    await t.call("PUT", "/v1/sys/seal", { token: root });
    const r = await t.call("GET", "/v1/secret/data/x", { token: root });
    expect(r.statusCode).toBe(503);
    expect(r.json()).toEqual({ errors: ["Vault is sealed"] });
    // Without HA storage sys/leader has nothing to look up, sealed or not (OpenBao's answer).
    const leader = await t.call("GET", "/v1/sys/leader");
    expect(leader.statusCode).toBe(200);
    expect(leader.json()).toEqual({ ha_enabled: false });
  });

  it("sys/rotate/keyring and sys/rotate/keyring/config (bao operator rotate)", async () => {
    t = await testApp();
    const { root } = await initAndUnseal(t);
    expect((await t.call("POST", "/v1/sys/rotate/keyring", { token: root })).statusCode).toBe(204);
    expect((await t.call("GET", "/v1/sys/key-status", { token: root })).json().term).toBe(2);
    expect((await t.call("POST", "/v1/sys/rotate/keyring")).statusCode).toBe(403);
    const c = await t.call("GET", "/v1/sys/rotate/keyring/config", { token: root });
    expect(c.statusCode).toBe(200);
    expect(c.json().data).toMatchObject({ enabled: true });
  });

  it("sys/generate-root-token/*: token needed, answers in the envelope's data", async () => {
    t = await testApp();
    const { keys, root } = await initAndUnseal(t);
    expect((await t.call("GET", "/v1/sys/generate-root-token/attempt")).statusCode).toBe(403);
    const st = await t.call("GET", "/v1/sys/generate-root-token/attempt", { token: root });
    expect(st.json().data).toMatchObject({ started: false, required: 3, progress: 0 });
    const init = (
      await t.call("PUT", "/v1/sys/generate-root-token/attempt", {
        token: root,
        body: { otp: "", pgp_key: "" },
      })
    ).json().data;
    expect(init.otp).toHaveLength(init.otp_length);
    let last: Record<string, unknown> = {};
    for (const key of keys.slice(0, 3)) {
      last = (
        await t.call("PUT", "/v1/sys/generate-root-token/update", {
          token: root,
          body: { key, nonce: init.nonce },
        })
      ).json().data;
    }
    expect(last).toMatchObject({ complete: true });
    expect(last.encoded_token).not.toBe("");
    expect((await t.call("DELETE", "/v1/sys/generate-root-token/attempt", { token: root })).statusCode).toBe(
      204,
    );
  });

  it("sys/rotate/root/*: OpenBao 2.x's authenticated rekey, answers in the envelope's data", async () => {
    t = await testApp();
    const { keys, root } = await initAndUnseal(t);
    expect((await t.call("GET", "/v1/sys/rotate/root/init")).statusCode).toBe(403);
    const init = await t.call("PUT", "/v1/sys/rotate/root/init", {
      token: root,
      body: { secret_shares: 3, secret_threshold: 2 },
    });
    expect(init.statusCode).toBe(200);
    const { nonce } = init.json().data;
    expect(init.json().data).toMatchObject({ started: true, n: 3, t: 2, required: 3 });
    let last: Record<string, unknown> = {};
    for (const key of keys.slice(0, 3)) {
      last = (await t.call("PUT", "/v1/sys/rotate/root/update", { token: root, body: { key, nonce } })).json()
        .data;
    }
    expect(last).toMatchObject({ complete: true });
    expect(last.keys).toHaveLength(3);
    expect((await t.call("GET", "/v1/sys/seal-status")).json()).toMatchObject({ t: 2, n: 3 });
  });

  it("sys/auth lists token/ with Vault's fields; sys/auth/token/tune reads, accepts no-op writes, refuses changes", async () => {
    t = await testApp();
    const { root } = await initAndUnseal(t);
    const a = await t.call("GET", "/v1/sys/auth", { token: root });
    expect(a.statusCode).toBe(200);
    const tok = a.json().data["token/"];
    expect(tok).toMatchObject({ type: "token", description: "token based credentials", options: null });
    expect(tok.accessor).toMatch(/^auth_token_[0-9a-f]{8}$/);
    expect(a.json()["token/"]).toEqual(tok);
    // Stable across reads.
    expect((await t.call("GET", "/v1/sys/auth", { token: root })).json().data["token/"].uuid).toBe(tok.uuid);
    const tune = await t.call("GET", "/v1/sys/auth/token/tune", { token: root });
    expect(tune.json().data).toEqual({
      default_lease_ttl: 2764800,
      description: "token based credentials",
      force_no_cache: false,
      max_lease_ttl: 2764800,
      token_type: "default-service",
    });
    const same = await t.call("POST", "/v1/sys/auth/token/tune", {
      token: root,
      body: { default_lease_ttl: "768h", options: null },
    });
    expect(same.statusCode).toBe(204);
    const change = await t.call("POST", "/v1/sys/auth/token/tune", {
      token: root,
      body: { default_lease_ttl: "1h" },
    });
    expect(change.statusCode).toBe(400);
    expect(change.json().errors[0]).toContain("default_lease_ttl");
    const enable = await t.call("POST", "/v1/sys/auth/userpass", { token: root, body: { type: "userpass" } });
    expect(enable.statusCode).toBe(400);
    expect(enable.json().errors[0]).toContain("not supported");
  });

  it("sys/audit lists no devices (enabling one through the API is OpenBao 2.6's 400 by default); the plugin catalog has kv; tune reads the TTLs in force", async () => {
    t = await testApp();
    const { root } = await initAndUnseal(t);
    const a = await t.call("GET", "/v1/sys/audit", { token: root });
    expect(a.statusCode).toBe(200);
    expect(a.json().data).toEqual({});
    const enable = await t.call("PUT", "/v1/sys/audit/file", {
      token: root,
      body: { type: "file", options: { file_path: "discard" } },
    });
    expect(enable.statusCode).toBe(400);
    expect(enable.json().errors).toEqual([
      "cannot enable audit device via API; use declarative, config-based audit device management instead",
    ]);
    expect((await t.call("GET", "/v1/sys/plugins/catalog", { token: root })).json().data.secret).toEqual([
      "kv",
    ]);
    await t.call("POST", "/v1/sys/mounts/kv1", { token: root, body: { type: "kv" } });
    const tune = (await t.call("GET", "/v1/sys/mounts/kv1/tune", { token: root })).json().data;
    expect(tune).toMatchObject({ default_lease_ttl: 2764800, max_lease_ttl: 2764800 });
    const ui = (await t.call("GET", "/v1/sys/internal/ui/mounts/kv1", { token: root })).json().data;
    expect(ui.deprecation_status).toBe("supported");
  });

  it("token lookup: the init root token has no issue_time/renewable (no lease in Vault); created tokens have both", async () => {
    t = await testApp();
    const { root } = await initAndUnseal(t);
    const self = (await t.call("GET", "/v1/auth/token/lookup-self", { token: root })).json().data;
    expect(self.path).toBe("auth/token/root");
    expect(self).not.toHaveProperty("issue_time");
    expect(self).not.toHaveProperty("renewable");
    const child = (await t.call("POST", "/v1/auth/token/create", { token: root, body: { ttl: "1h" } })).json()
      .auth.client_token;
    const c = (await t.call("POST", "/v1/auth/token/lookup", { token: root, body: { token: child } })).json()
      .data;
    expect(c).toHaveProperty("issue_time");
    expect(c.renewable).toBe(true);
  });

  it("LIST sys/policies/acl includes root, as Vault's does", async () => {
    t = await testApp();
    const { root } = await initAndUnseal(t);
    const r = await t.call("GET", "/v1/sys/policies/acl?list=true", { token: root });
    expect(r.json().data.keys).toEqual(["default", "root"]);
  });

  it("?help=1 answers Vault's help shape on sys/ and mount paths; needs a token", async () => {
    t = await testApp();
    const { root } = await initAndUnseal(t);
    await t.call("POST", "/v1/sys/mounts/secret", {
      token: root,
      body: { type: "kv", options: { version: "2" } },
    });
    for (const p of ["sys/mounts", "secret", "secret/data/a", "auth/token/create", "sys/policies/acl"]) {
      const r = await t.call("GET", `/v1/${p}?help=1`, { token: root });
      expect(r.statusCode, p).toBe(200);
      const body = r.json();
      expect(Object.keys(body).sort(), p).toEqual(["help", "openapi", "see_also"]);
      expect(body.help.length, p).toBeGreaterThan(20);
    }
    expect((await t.call("GET", "/v1/secret?help=1", { token: root })).json().help).toContain("version 2");
    expect((await t.call("GET", "/v1/nope?help=1", { token: root })).statusCode).toBe(404);
    expect((await t.call("GET", "/v1/sys/mounts?help=1")).statusCode).toBe(403);
    // The unauthenticated endpoints' help is public, as in OpenBao.
    const pub = await t.call("GET", "/v1/sys/seal-status?help=1");
    expect(pub.statusCode).toBe(200);
    expect(pub.json().help).toContain("seal");
  });

  it("a sys/ path Bulwark does not serve: 404 to a valid token, 403 without one (as Vault)", async () => {
    t = await testApp();
    const { root } = await initAndUnseal(t);
    expect((await t.call("GET", "/v1/sys/remount")).statusCode).toBe(403);
    expect((await t.call("GET", "/v1/sys/remount", { token: "nope" })).statusCode).toBe(403);
    expect((await t.call("GET", "/v1/sys/remount", { token: root })).statusCode).toBe(404);
  });
});

describe("client errors never show file system paths, storage ids or stack frames", () => {
  it("redact() takes out absolute paths, UUIDs and stack lines", () => {
    const msg =
      "file backend: failed to write /var/lib/bulwark/data/logical/0b6f9f6a-1c2d-4e5f-8a9b-0c1d2e3f4a5b/_coll: ENOTDIR\n    at write (/app/dist/index.js:1:2)";
    const out = redact(msg);
    expect(out).toBe("file backend: failed to write <path>: ENOTDIR");
    expect(redact('field "x" must be a string')).toBe('field "x" must be a string');
  });

  it("a storage error reaches the client redacted, with the request id; the detail is kept for the log", () => {
    const e = new StorageError(
      "io",
      "file backend: failed to read /srv/data/logical/0b6f9f6a-1c2d-4e5f-8a9b-0c1d2e3f4a5b/x: EIO",
    );
    const h = toHttpError(e, "req-7");
    expect(h.status).toBe(500);
    expect(h.errors[0]).toBe(
      "storage: file backend: failed to read <path>: EIO (request id req-7: details in the server log)",
    );
    expect(h.detail).toContain("/srv/data/logical/0b6f9f6a");
    const unexpected = toHttpError(new TypeError("cannot read x of undefined at /app/dist/index.js"));
    expect(unexpected.errors[0]).not.toContain("/app/dist");
  });
});

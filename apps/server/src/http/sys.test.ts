import { SealedStore } from "@bulwark/core";
import { MemoryBackend } from "@bulwark/storage-memory";
import { decodeRootToken, mountKv } from "@bulwark/vault";
import { afterEach, describe, expect, it } from "vitest";
import { initAndUnseal, type TestApp, testApp } from "../../test/helpers/app.js";
import { createLogger } from "../logging.js";
import { buildApp, createRootToken } from "./server.js";

let t: TestApp | undefined;
afterEach(async () => {
  await t?.close();
  t = undefined;
});

describe("sys/init, seal-status, unseal, seal", () => {
  it("init (Shamir 5/3) returns shares and a working root token; the store stays sealed", async () => {
    t = await testApp();
    expect((await t.call("GET", "/v1/sys/init")).json()).toEqual({ initialized: false });
    const r = await t.call("PUT", "/v1/sys/init", { body: { secret_shares: 5, secret_threshold: 3 } });
    expect(r.statusCode).toBe(200);
    const init = r.json();
    expect(init.keys).toHaveLength(5);
    expect(init.keys_base64).toHaveLength(5);
    expect(init.root_token).toMatch(/^s\.[0-9A-Za-z]{24}$/);
    expect((await t.call("GET", "/v1/sys/init")).json()).toEqual({ initialized: true });
    const st = (await t.call("GET", "/v1/sys/seal-status")).json();
    expect(st).toMatchObject({ type: "shamir", initialized: true, sealed: true, t: 3, n: 5, progress: 0 });
    // Sealed: data and authenticated routes answer 503.
    const sealed = await t.call("GET", "/v1/sys/mounts", { token: init.root_token });
    expect(sealed.statusCode).toBe(503);
    expect(sealed.json()).toEqual({ errors: ["Vault is sealed"] });
    // Unseal with 3 shares; progress and nonce along the way; base64 accepted.
    const u1 = (await t.call("PUT", "/v1/sys/unseal", { body: { key: init.keys[0] } })).json();
    expect(u1).toMatchObject({ sealed: true, progress: 1 });
    expect(u1.nonce).toMatch(/^[0-9a-f-]{36}$/);
    await t.call("PUT", "/v1/sys/unseal", { body: { key: init.keys_base64[1] } });
    const u3 = (await t.call("PUT", "/v1/sys/unseal", { body: { key: init.keys[2] } })).json();
    expect(u3).toMatchObject({ sealed: false, progress: 0, cluster_name: "test-cluster" });
    expect(
      (await t.call("GET", "/v1/auth/token/lookup-self", { token: init.root_token })).json().data.policies,
    ).toEqual(["root"]);
    // Second init → 400.
    expect(
      (await t.call("PUT", "/v1/sys/init", { body: { secret_shares: 1, secret_threshold: 1 } })).statusCode,
    ).toBe(400);
  });

  it("unseal: a wrong key is a 400, reset clears progress, no key and no reset is a 400", async () => {
    t = await testApp();
    const init = (
      await t.call("PUT", "/v1/sys/init", { body: { secret_shares: 3, secret_threshold: 2 } })
    ).json();
    expect((await t.call("PUT", "/v1/sys/unseal", { body: {} })).statusCode).toBe(400);
    expect((await t.call("PUT", "/v1/sys/unseal", { body: { key: "not a key!" } })).statusCode).toBe(400);
    await t.call("PUT", "/v1/sys/unseal", { body: { key: init.keys[0] } });
    const reset = (await t.call("PUT", "/v1/sys/unseal", { body: { reset: true } })).json();
    expect(reset.progress).toBe(0);
    await t.call("PUT", "/v1/sys/unseal", { body: { key: init.keys[0] } });
    const wrong = await t.call("PUT", "/v1/sys/unseal", { body: { key: "ab".repeat(33) } });
    expect(wrong.statusCode).toBe(400);
    expect(wrong.json().errors[0]).toMatch(/invalid key/);
  });

  it("unseal before init answers as Vault: 400 not initialized", async () => {
    t = await testApp();
    const r = await t.call("PUT", "/v1/sys/unseal", { body: { key: "ab".repeat(33) } });
    expect(r.statusCode).toBe(400);
    expect(r.json().errors[0]).toMatch(/not initialized/);
  });

  it("seal needs sudo; sealing keeps data and unseal brings it back", async () => {
    t = await testApp();
    const { keys, root } = await initAndUnseal(t);
    await t.call("POST", "/v1/sys/mounts/kv", { token: root, body: { type: "kv" } });
    await t.call("PUT", "/v1/kv/a", { token: root, body: { v: "1" } });
    await t.call("PUT", "/v1/sys/policy/sealer", {
      token: root,
      body: { policy: 'path "sys/seal" { capabilities = ["update"] }' },
    });
    const weak = (
      await t.call("POST", "/v1/auth/token/create", { token: root, body: { policies: ["sealer"] } })
    ).json().auth.client_token;
    expect((await t.call("PUT", "/v1/sys/seal", { token: weak })).statusCode).toBe(403);
    expect((await t.call("PUT", "/v1/sys/seal")).statusCode).toBe(403);
    expect((await t.call("PUT", "/v1/sys/seal", { token: root })).statusCode).toBe(204);
    expect((await t.call("GET", "/v1/sys/seal-status")).json().sealed).toBe(true);
    for (const k of keys.slice(2, 5)) await t.call("PUT", "/v1/sys/unseal", { body: { key: k } });
    expect((await t.call("GET", "/v1/kv/a", { token: root })).json().data).toEqual({ v: "1" });
  });

  it("auto seal: init returns recovery keys, the store is unsealed, seal-status shows the recovery seal", async () => {
    t = await testApp({ seal: "static" });
    const r = await t.call("PUT", "/v1/sys/init", { body: { recovery_shares: 3, recovery_threshold: 2 } });
    expect(r.statusCode).toBe(200);
    const init = r.json();
    expect(init.keys).toEqual([]);
    expect(init.recovery_keys).toHaveLength(3);
    expect(init.recovery_keys_base64).toHaveLength(3);
    const st = (await t.call("GET", "/v1/sys/seal-status")).json();
    expect(st).toMatchObject({
      type: "static",
      sealed: false,
      recovery_seal: true,
      recovery_seal_type: "shamir",
      t: 2,
      n: 3,
    });
    expect((await t.call("GET", "/v1/sys/mounts", { token: init.root_token })).statusCode).toBe(200);
  });
});

describe("sys/health and sys/leader", () => {
  it("uses Vault's codes and query overrides", async () => {
    t = await testApp();
    let r = await t.call("GET", "/v1/sys/health");
    expect(r.statusCode).toBe(501);
    // Vault reports a sealed (or uninitialised) node as standby: only an unsealed node can be active.
    expect(r.json()).toMatchObject({ initialized: false, sealed: true, standby: true });
    expect((await t.call("GET", "/v1/sys/health?uninitcode=200")).statusCode).toBe(200);
    expect((await t.call("GET", "/v1/sys/health?uninitcode=abc")).statusCode).toBe(400);
    expect((await t.call("GET", "/v1/sys/health?sealedcode=99")).statusCode).toBe(400);
    const init = (
      await t.call("PUT", "/v1/sys/init", { body: { secret_shares: 1, secret_threshold: 1 } })
    ).json();
    r = await t.call("GET", "/v1/sys/health");
    expect(r.statusCode).toBe(503);
    expect(r.json()).toMatchObject({ initialized: true, sealed: true, standby: true });
    expect((await t.call("GET", "/v1/sys/health?sealedcode=299")).statusCode).toBe(299);
    expect((await t.call("HEAD", "/v1/sys/health")).statusCode).toBe(503);
    await t.call("PUT", "/v1/sys/unseal", { body: { key: init.keys[0] } });
    r = await t.call("GET", "/v1/sys/health");
    expect(r.statusCode).toBe(200);
    expect(r.json()).toMatchObject({
      initialized: true,
      sealed: false,
      standby: false,
      cluster_name: "test-cluster",
    });
    expect((await t.call("GET", "/v1/sys/health?activecode=204")).statusCode).toBe(204);
    const head = await t.call("HEAD", "/v1/sys/health");
    expect(head.statusCode).toBe(200);
    expect(head.body).toBe("");
    const leader = (await t.call("GET", "/v1/sys/leader")).json();
    expect(leader).toMatchObject({ ha_enabled: false, is_self: true });
  });
});

describe("cluster identity", () => {
  it("concurrent first requests after the first unseal all report the one cluster_id that is stored", async () => {
    t = await testApp();
    const init = (
      await t.call("PUT", "/v1/sys/init", { body: { secret_shares: 1, secret_threshold: 1 } })
    ).json();
    await t.store.unseal(init.keys[0]);
    const app = t;
    const ids = (
      await Promise.all([
        app.call("GET", "/v1/sys/seal-status"),
        app.call("GET", "/v1/sys/health"),
        app.call("GET", "/v1/sys/seal-status"),
        app.call("GET", "/v1/sys/health"),
      ])
    ).map((r) => r.json().cluster_id as string);
    expect(new Set(ids).size).toBe(1);
    // Vault's record: core/cluster/local/info = {"name":…,"id":…}.
    const stored = JSON.parse(
      Buffer.from((await t.store.storage.get("core/cluster/local/info"))?.value ?? []).toString("utf8"),
    ) as { id: string };
    expect(stored.id).toBe(ids[0]);
  });
});

describe("keyring: key-status, rotate, rotate/config", () => {
  it("rotates the barrier key and configures automatic rotation", async () => {
    t = await testApp();
    const { root } = await initAndUnseal(t, 1, 1);
    const ks = (await t.call("GET", "/v1/sys/key-status", { token: root })).json();
    expect(ks.term).toBe(1);
    expect(ks.data.term).toBe(1);
    expect(new Date(ks.install_time).getTime()).toBeGreaterThan(0);
    expect((await t.call("PUT", "/v1/sys/rotate", { token: root })).statusCode).toBe(204);
    expect((await t.call("GET", "/v1/sys/key-status", { token: root })).json().term).toBe(2);
    const cfg0 = (await t.call("GET", "/v1/sys/rotate/config", { token: root })).json();
    expect(cfg0).toMatchObject({ enabled: true, interval: 0 });
    expect(
      (
        await t.call("POST", "/v1/sys/rotate/config", {
          token: root,
          body: { max_operations: 2000000, interval: "48h", enabled: true },
        })
      ).statusCode,
    ).toBe(204);
    expect((await t.call("GET", "/v1/sys/rotate/config", { token: root })).json()).toMatchObject({
      max_operations: 2000000,
      interval: "48h0m0s",
      enabled: true,
    });
    // Errors name the API fields and their units, not the library's option names.
    const short = await t.call("POST", "/v1/sys/rotate/config", { token: root, body: { interval: "1h" } });
    expect(short.statusCode).toBe(400);
    expect(short.json().errors[0]).toBe(
      "interval must be 0 (no time-based rotation) or at least 24h0m0s, got 1h0m0s",
    );
    const few = await t.call("POST", "/v1/sys/rotate/config", { token: root, body: { max_operations: 5 } });
    expect(few.statusCode).toBe(400);
    expect(few.json().errors[0]).toMatch(
      /^max_operations must be between \d+ and \d+ \(AES-GCM's safe limit per key\), got 5$/,
    );
  });
});

describe("sys/rekey", () => {
  it("with the listener's disable_unauthed_* on (OpenBao 2.6's default), the unauthenticated paths answer as OpenBao's", async () => {
    t = await testApp({ listenerDisablesUnauthedRekey: true, listenerDisablesUnauthedGenerateRoot: true });
    // Sealed: OpenBao answers its sealed 503 first.
    const sealed = await t.call("GET", "/v1/sys/rekey/init");
    expect(sealed.statusCode).toBe(503);
    expect(sealed.json().errors[0]).toMatch(/sealed/i);
    const { keys, root } = await initAndUnseal(t, 3, 2);
    const init = { secret_shares: 3, secret_threshold: 2 };
    // Measured against bao 2.6: 405 for sys/rekey/* and sys/generate-root/*, 404 for
    // sys/rekey-recovery-key/*, with or without a token.
    const cases: [string, string, unknown, number, string][] = [
      ["GET", "/v1/sys/rekey/init", undefined, 405, "unsupported operation"],
      ["PUT", "/v1/sys/rekey/init", init, 405, "unsupported operation"],
      ["DELETE", "/v1/sys/rekey/init", undefined, 405, "unsupported operation"],
      ["PUT", "/v1/sys/rekey/update", { key: keys[0], nonce: "n" }, 405, "unsupported operation"],
      ["PUT", "/v1/sys/rekey-recovery-key/init", init, 404, "unsupported path"],
      ["GET", "/v1/sys/rekey-recovery-key/init", undefined, 404, "unsupported path"],
      ["GET", "/v1/sys/generate-root/attempt", undefined, 405, "unsupported operation"],
      ["PUT", "/v1/sys/generate-root/attempt", {}, 405, "unsupported operation"],
      ["PUT", "/v1/sys/generate-root/update", { key: keys[0], nonce: "n" }, 405, "unsupported operation"],
    ];
    for (const [method, url, body, status, error] of cases) {
      for (const token of [undefined, root]) {
        const r = await t.call(method, url, {
          ...(body === undefined ? {} : { body }),
          ...(token === undefined ? {} : { token }),
        });
        expect([method, url, token !== undefined, r.statusCode, r.json()]).toEqual([
          method,
          url,
          token !== undefined,
          status,
          { errors: [error] },
        ]);
      }
    }
    expect(t.store.rekeyStatus()).toBeUndefined();
    // The authenticated replacements work.
    const started = (await t.call("PUT", "/v1/sys/rotate/root/init", { body: init, token: root })).json();
    expect(started.data).toMatchObject({ started: true, required: 2 });
    const gen = (
      await t.call("PUT", "/v1/sys/generate-root-token/attempt", { body: {}, token: root })
    ).json();
    expect(gen.data).toMatchObject({ started: true, required: 2 });
  });

  it("with the listener's disable_unauthed_* = false the unauthenticated paths work (Vault's flow)", async () => {
    t = await testApp({ listenerDisablesUnauthedRekey: false, listenerDisablesUnauthedGenerateRoot: false });
    const { keys } = await initAndUnseal(t, 3, 2);
    const started = (
      await t.call("PUT", "/v1/sys/rekey/init", { body: { secret_shares: 3, secret_threshold: 2 } })
    ).json();
    expect(started).toMatchObject({ started: true, required: 2 });
    expect(
      (await t.call("PUT", "/v1/sys/rekey/update", { body: { key: keys[0], nonce: started.nonce } })).json()
        .progress,
    ).toBe(1);
    const gen = await t.call("PUT", "/v1/sys/generate-root/attempt", { body: {} });
    expect(gen.statusCode).toBe(200);
    expect(gen.json()).toMatchObject({ started: true, required: 2 });
  });

  it("with disable_unauthed_rekey_endpoints the shares alone are not enough: a sudo token is needed", async () => {
    t = await testApp({ disableUnauthedRekeyEndpoints: true });
    const { keys, root } = await initAndUnseal(t, 3, 2);
    expect((await t.call("GET", "/v1/sys/rekey/init")).statusCode).toBe(403);
    const init = { secret_shares: 3, secret_threshold: 2 };
    expect((await t.call("PUT", "/v1/sys/rekey/init", { body: init })).statusCode).toBe(403);
    expect(t.store.rekeyStatus()).toBeUndefined();
    const started = (await t.call("PUT", "/v1/sys/rekey/init", { body: init, token: root })).json();
    expect(started).toMatchObject({ started: true, required: 2 });
    const update = { key: keys[0], nonce: started.nonce };
    expect((await t.call("PUT", "/v1/sys/rekey/update", { body: update })).statusCode).toBe(403);
    expect(t.store.rekeyStatus()?.progress).toBe(0);
    expect((await t.call("PUT", "/v1/sys/rekey/update", { body: update, token: root })).json().progress).toBe(
      1,
    );
    // A token without sudo on sys/rekey is refused too.
    const policy = 'path "sys/rekey/*" { capabilities = ["update", "read"] }';
    await t.call("PUT", "/v1/sys/policies/acl/rekeyer", { body: { policy }, token: root });
    const child = (
      await t.call("POST", "/v1/auth/token/create", { body: { policies: ["rekeyer"] }, token: root })
    ).json().auth.client_token;
    expect((await t.call("GET", "/v1/sys/rekey/init", { token: child })).statusCode).toBe(403);
  });

  it("rekeys Shamir shares: old shares stop working, new ones unseal", async () => {
    t = await testApp();
    const { keys, root } = await initAndUnseal(t, 3, 2);
    const st0 = (await t.call("GET", "/v1/sys/rekey/init")).json();
    expect(st0).toMatchObject({ started: false, required: 2 });
    const started = (
      await t.call("PUT", "/v1/sys/rekey/init", { body: { secret_shares: 4, secret_threshold: 2 } })
    ).json();
    expect(started).toMatchObject({ started: true, t: 2, n: 4, progress: 0, required: 2 });
    expect(
      (await t.call("PUT", "/v1/sys/rekey/update", { body: { key: keys[0], nonce: "wrong" } })).statusCode,
    ).toBe(400);
    const p1 = (
      await t.call("PUT", "/v1/sys/rekey/update", { body: { key: keys[0], nonce: started.nonce } })
    ).json();
    expect(p1.progress).toBe(1);
    const done = (
      await t.call("PUT", "/v1/sys/rekey/update", { body: { key: keys[1], nonce: started.nonce } })
    ).json();
    expect(done.complete).toBe(true);
    expect(done.keys).toHaveLength(4);
    await t.call("PUT", "/v1/sys/seal", { token: root });
    await t.call("PUT", "/v1/sys/unseal", { body: { key: keys[0] } });
    const old = await t.call("PUT", "/v1/sys/unseal", { body: { key: keys[1] } });
    expect(old.statusCode).toBe(400);
    expect((await t.call("GET", "/v1/sys/seal-status")).json().sealed).toBe(true);
    for (const k of done.keys.slice(1, 3)) await t.call("PUT", "/v1/sys/unseal", { body: { key: k } });
    expect((await t.call("GET", "/v1/sys/seal-status")).json().sealed).toBe(false);
  });

  it("cancel, verification refused, recovery rekey needs an auto seal", async () => {
    t = await testApp();
    await initAndUnseal(t, 3, 2);
    expect(
      (
        await t.call("PUT", "/v1/sys/rekey/init", {
          body: { secret_shares: 3, secret_threshold: 2, require_verification: true },
        })
      ).statusCode,
    ).toBe(400);
    expect((await t.call("GET", "/v1/sys/rekey/verify")).json().errors[0]).toMatch(/not supported/);
    await t.call("PUT", "/v1/sys/rekey/init", { body: { secret_shares: 3, secret_threshold: 2 } });
    expect((await t.call("GET", "/v1/sys/rekey/init")).json().started).toBe(true);
    expect((await t.call("DELETE", "/v1/sys/rekey/init")).statusCode).toBe(204);
    expect((await t.call("GET", "/v1/sys/rekey/init")).json().started).toBe(false);
    expect(
      (
        await t.call("PUT", "/v1/sys/rekey-recovery-key/init", {
          body: { secret_shares: 3, secret_threshold: 2 },
        })
      ).statusCode,
    ).toBe(400);
  });

  it("rekeys recovery keys with an auto seal", async () => {
    t = await testApp({ seal: "static" });
    const { keys } = await initAndUnseal(t, 3, 2);
    const s = (
      await t.call("PUT", "/v1/sys/rekey-recovery-key/init", {
        body: { secret_shares: 5, secret_threshold: 3 },
      })
    ).json();
    await t.call("PUT", "/v1/sys/rekey-recovery-key/update", { body: { key: keys[0], nonce: s.nonce } });
    const done = (
      await t.call("PUT", "/v1/sys/rekey-recovery-key/update", { body: { key: keys[2], nonce: s.nonce } })
    ).json();
    expect(done.complete).toBe(true);
    expect(done.keys).toHaveLength(5);
    expect((await t.call("GET", "/v1/sys/seal-status")).json()).toMatchObject({ t: 3, n: 5 });
  });
});

describe("sys/generate-root", () => {
  it("Shamir: a threshold of unseal keys yields an OTP-encoded root token that works", async () => {
    t = await testApp();
    const { keys } = await initAndUnseal(t, 3, 2);
    expect((await t.call("GET", "/v1/sys/generate-root/attempt")).json()).toMatchObject({
      started: false,
      required: 2,
      otp_length: 26,
    });
    const a = (await t.call("PUT", "/v1/sys/generate-root/attempt", { body: {} })).json();
    expect(a.otp).toMatch(/^[0-9A-Za-z]{26}$/);
    expect((await t.call("PUT", "/v1/sys/generate-root/attempt", { body: {} })).statusCode).toBe(400);
    const p = (
      await t.call("PUT", "/v1/sys/generate-root/update", { body: { key: keys[0], nonce: a.nonce } })
    ).json();
    expect(p).toMatchObject({ progress: 1, complete: false });
    const done = (
      await t.call("PUT", "/v1/sys/generate-root/update", { body: { key: keys[2], nonce: a.nonce } })
    ).json();
    expect(done.complete).toBe(true);
    const token = decodeRootToken(done.encoded_token, a.otp);
    expect(token).toMatch(/^s\./);
    expect((await t.call("GET", "/v1/auth/token/lookup-self", { token })).json().data.policies).toEqual([
      "root",
    ]);
  });

  it("Shamir: wrong shares are a 400 that resets the progress (Vault keeps the attempt) and create nothing", async () => {
    t = await testApp();
    const { keys } = await initAndUnseal(t, 3, 2);
    const a = (await t.call("PUT", "/v1/sys/generate-root/attempt", { body: {} })).json();
    await t.call("PUT", "/v1/sys/generate-root/update", { body: { key: "11".repeat(33), nonce: a.nonce } });
    const dup = await t.call("PUT", "/v1/sys/generate-root/update", {
      body: { key: "11".repeat(33), nonce: a.nonce },
    });
    expect(dup.statusCode).toBe(400);
    expect(dup.json().errors[0]).toMatch(/already been provided/);
    const r = await t.call("PUT", "/v1/sys/generate-root/update", {
      body: { key: "22".repeat(33), nonce: a.nonce },
    });
    expect(r.statusCode).toBe(400);
    expect((await t.call("GET", "/v1/sys/generate-root/attempt")).json()).toMatchObject({
      started: true,
      nonce: a.nonce,
      progress: 0,
    });
    // The operators go on with the right keys under the same nonce and OTP.
    await t.call("PUT", "/v1/sys/generate-root/update", { body: { key: keys[0], nonce: a.nonce } });
    const done = (
      await t.call("PUT", "/v1/sys/generate-root/update", { body: { key: keys[1], nonce: a.nonce } })
    ).json();
    expect(done.complete).toBe(true);
    expect(decodeRootToken(done.encoded_token, a.otp)).toMatch(/^s\./);
    expect((await t.call("GET", "/v1/sys/generate-root/attempt")).json().started).toBe(false);
    expect(
      (await t.call("PUT", "/v1/sys/generate-root/attempt", { body: { pgp_key: "x" } })).statusCode,
    ).toBe(400);
    expect(
      (await t.call("PUT", "/v1/sys/generate-root/attempt", { body: { otp: "short" } })).statusCode,
    ).toBe(400);
    const b = (await t.call("PUT", "/v1/sys/generate-root/attempt", { body: {} })).json();
    expect((await t.call("DELETE", "/v1/sys/generate-root/attempt")).statusCode).toBe(204);
    expect(
      (
        await t.call("PUT", "/v1/sys/generate-root/update", {
          body: { key: "11".repeat(33), nonce: b.nonce },
        })
      ).statusCode,
    ).toBe(400);
  });

  it("auto seal: recovery keys generate a root token; wrong recovery keys do not", async () => {
    t = await testApp({ seal: "static" });
    const { keys } = await initAndUnseal(t, 3, 2);
    const bad = (await t.call("PUT", "/v1/sys/generate-root/attempt", { body: {} })).json();
    await t.call("PUT", "/v1/sys/generate-root/update", { body: { key: "11".repeat(33), nonce: bad.nonce } });
    expect(
      (
        await t.call("PUT", "/v1/sys/generate-root/update", {
          body: { key: "22".repeat(33), nonce: bad.nonce },
        })
      ).statusCode,
    ).toBe(400);
    // The failed attempt stays (progress reset), as in Vault; cancel it to start another.
    expect((await t.call("DELETE", "/v1/sys/generate-root/attempt")).statusCode).toBe(204);
    const a = (await t.call("PUT", "/v1/sys/generate-root/attempt", { body: {} })).json();
    await t.call("PUT", "/v1/sys/generate-root/update", { body: { key: keys[1], nonce: a.nonce } });
    const done = (
      await t.call("PUT", "/v1/sys/generate-root/update", { body: { key: keys[2], nonce: a.nonce } })
    ).json();
    expect(done.complete).toBe(true);
    const token = decodeRootToken(done.encoded_token, a.otp);
    expect((await t.call("GET", "/v1/sys/mounts", { token })).statusCode).toBe(200);
    expect((await t.call("GET", "/v1/sys/seal-status")).json().sealed).toBe(false);
  });
});

describe("sys/metrics", () => {
  it("serves Prometheus text with request counts and seal gauges", async () => {
    t = await testApp();
    const { root } = await initAndUnseal(t, 1, 1);
    await t.call("GET", "/v1/sys/seal-status");
    const r = await t.call("GET", "/v1/sys/metrics?format=prometheus", { token: root });
    expect(r.statusCode).toBe(200);
    expect(r.headers["content-type"]).toMatch(/text\/plain/);
    expect(r.body).toMatch(
      /bulwark_http_requests_total\{method="GET",route="\/v1\/sys\/seal-status",code="200"\} 1/,
    );
    expect(r.body).toMatch(/bulwark_core_unsealed 1/);
    expect(r.body).toMatch(/bulwark_http_request_duration_seconds_bucket\{.*le="\+Inf"\}/);
    expect((await t.call("GET", "/v1/sys/metrics")).statusCode).toBe(403);
    expect((await t.call("GET", "/v1/sys/metrics?format=xml", { token: root })).statusCode).toBe(400);
  });
});

/** Resolves once `s` is the active node (fails the test after 5 s). */
async function waitActive(s: SealedStore): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!s.status().active && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  expect(s.status().active).toBe(true);
}

/** Two HA nodes on one memory storage, both unsealed with the one Shamir key; `a` is active. */
async function twoNodes(): Promise<{ storage: MemoryBackend; a: SealedStore; b: SealedStore }> {
  const storage = new MemoryBackend();
  const open = () => SealedStore.open({ storage, ha: storage, autoRotateCheckMs: 0, standbyPollMs: 50 });
  const a = await open();
  const init = await a.initialize({ secretShares: 1, secretThreshold: 1 });
  await a.unseal(init.keys[0] as string);
  await waitActive(a);
  const b = await open();
  await b.unseal(init.keys[0] as string);
  return { storage, a, b };
}

describe("HA standby", () => {
  it("health says 429 (or 200 with standbyok), leader is not self, writes are refused with 503", async () => {
    const { a, b } = await twoNodes();
    const logger = createLogger({ level: "error" });
    const appA = buildApp({ store: a, logger, apiAddr: "http://a:8200" });
    const appB = buildApp({ store: b, logger });
    try {
      const rootRes = await appA.inject({ method: "GET", url: "/v1/sys/leader" });
      expect(rootRes.json()).toMatchObject({
        ha_enabled: true,
        is_self: true,
        leader_address: "http://a:8200",
      });
      expect((await appA.inject({ method: "GET", url: "/v1/sys/health" })).statusCode).toBe(200);
      const h = await appB.inject({ method: "GET", url: "/v1/sys/health" });
      expect(h.statusCode).toBe(429);
      expect(h.json()).toMatchObject({ standby: true, sealed: false });
      expect((await appB.inject({ method: "GET", url: "/v1/sys/health?standbyok=true" })).statusCode).toBe(
        200,
      );
      expect((await appB.inject({ method: "GET", url: "/v1/sys/health?standbycode=299" })).statusCode).toBe(
        299,
      );
      expect((await appB.inject({ method: "GET", url: "/v1/sys/leader" })).json()).toMatchObject({
        is_self: false,
      });
      const token = await createRootToken(a);
      const w = await appB.inject({
        method: "PUT",
        url: "/v1/sys/rotate",
        headers: { "x-vault-token": token },
      });
      expect(w.statusCode).toBe(503);
      expect(w.json().errors[0]).toMatch(/standby/);
    } finally {
      await appA.close();
      await appB.close();
      await b.close();
      await a.close();
    }
  });
  it("sys/seal on a standby is refused as in Vault (restart it instead); the active node stays unsealed", async () => {
    const { a, b } = await twoNodes();
    const appB = buildApp({ store: b, logger: createLogger({ level: "error" }) });
    try {
      const token = await createRootToken(a);
      const r = await appB.inject({
        method: "PUT",
        url: "/v1/sys/seal",
        headers: { "x-vault-token": token },
      });
      expect(r.statusCode).toBe(500);
      expect(r.json().errors[0]).toMatch(/cannot seal when in standby mode; please restart instead/);
      expect(b.status()).toMatchObject({ sealed: false, active: false });
      expect(a.status()).toMatchObject({ sealed: false, active: true });
    } finally {
      await appB.close();
      await b.close();
      await a.close();
    }
  });
  it("KV v2 reads follow the active node: no cached metadata outlives a step-down", async () => {
    const { storage, a, b } = await twoNodes();
    const logger = createLogger({ level: "error" });
    const appA = buildApp({ store: a, logger });
    const appB = buildApp({ store: b, logger });
    try {
      await mountKv(a, "secret", { version: 2 });
      const token = await createRootToken(a);
      const headers = { "x-vault-token": token };
      const write = (app: typeof appA, v: string) =>
        app.inject({ method: "POST", url: "/v1/secret/data/app", headers, payload: { data: { v } } });
      const readV = async (app: typeof appA) =>
        (await app.inject({ method: "GET", url: "/v1/secret/data/app", headers })).json().data.data.v;
      expect((await write(appA, "from a")).statusCode).toBe(200);
      expect(await readV(appA)).toBe("from a");
      // a loses the lock; b takes over and writes a new version.
      expect(storage.forceRelease("core/lock")).toBe(true);
      await waitActive(b);
      expect((await write(appB, "from b")).statusCode).toBe(200);
      expect(await readV(appA)).toBe("from b");
      // b leaves; a is active again and must not serve what it cached in its earlier term.
      await appB.close();
      await b.close();
      await waitActive(a);
      expect(await readV(appA)).toBe("from b");
    } finally {
      await appA.close();
      await appB.close();
      await b.close();
      await a.close();
    }
  });
});

describe("paths nothing serves", () => {
  it("answer 404 with the caller's own path word for word, a UUID in it included (not redacted)", async () => {
    t = await testApp();
    const { root } = await initAndUnseal(t);
    const id = "0b5e2c1a-7d3f-4e6a-9c21-5f8b0d4e3a17";
    const unmounted = await t.call("GET", `/v1/${id}/app`, { token: root });
    expect([unmounted.statusCode, unmounted.json()]).toEqual([
      404,
      { errors: [`no handler for route "${id}/app": nothing is mounted there`] },
    ]);
    const unserved = await t.call("GET", `/v1/sys/${id}`, { token: root });
    expect([unserved.statusCode, unserved.json()]).toEqual([
      404,
      { errors: [`unsupported path "sys/${id}"`] },
    ]);
  });
});

import { SealedStore } from "@bulwark/core";
import { StaticKeySeal } from "@bulwark/seal";
import { MemoryBackend } from "@bulwark/storage-memory";
import { decodeRootToken } from "@bulwark/vault";
import { afterEach, describe, expect, it } from "vitest";
import { freePort } from "../../test/helpers/server-process.js";
import type { RunningServer } from "../contracts.js";
import { createLogger } from "../logging.js";
import { FORWARDED_HEADER } from "./forward.js";
import { createRootToken, mountKv, startHttpServer } from "./server.js";

// biome-ignore lint/suspicious/noExplicitAny: JSON response bodies, checked field by field
type Json = any;
const json = async (r: Response): Promise<Json> => r.json();
const seal = () => new StaticKeySeal({ key: new Uint8Array(32).fill(7), keyId: "k" });
const logger = createLogger({ level: "error" });
const cleanup: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanup.reverse()) await c().catch(() => undefined);
  cleanup.length = 0;
});

async function waitFor(cond: () => boolean, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Two HA nodes on one storage, each with a listener; `a` is active. */
async function cluster(opts: { advertiseA?: boolean } = {}) {
  const storage = new MemoryBackend();
  const [portA, portB] = [await freePort(), await freePort()];
  const node = async (id: string, port: number, advertise: boolean) => {
    const store = await SealedStore.open({
      storage,
      seal: seal(),
      ha: storage,
      nodeId: id,
      autoRotateCheckMs: 0,
      ...(advertise ? { redirectAddr: `http://127.0.0.1:${port}` } : {}),
    });
    cleanup.push(() => store.close());
    return store;
  };
  const a = await node("a", portA, opts.advertiseA ?? true);
  const init = await a.initialize({ recoveryShares: 1, recoveryThreshold: 1 });
  await waitFor(() => a.status().active);
  const b = await node("b", portB, true);
  await new Promise((r) => setTimeout(r, 30));
  expect(b.status()).toMatchObject({ sealed: false, active: false });
  const listen = async (store: SealedStore, port: number): Promise<RunningServer> => {
    const s = await startHttpServer({
      store,
      // These tests forward Vault's unauthenticated sys/generate-root/* and sys/rekey*: turned
      // on here, as OpenBao 2.6's listener settings allow (they are off by default).
      listener: {
        address: `127.0.0.1:${port}`,
        tlsDisable: true,
        maxRequestSize: 1 << 20,
        disableUnauthedRekeyEndpoints: false,
        disableUnauthedGenerateRootEndpoints: false,
      },
      clusterName: "",
      logger,
    });
    cleanup.push(() => s.close());
    return s;
  };
  const [httpA, httpB] = [await listen(a, portA), await listen(b, portB)];
  await mountKv(a, "secret", { version: 2 });
  const token = await createRootToken(a);
  return { a, b, httpA, httpB, token, recoveryKey: init.recoveryKeys[0] as string };
}

describe("request forwarding from a standby", () => {
  it("a write sent to the standby is answered by the active node; sys/leader names it", async () => {
    const { httpA, httpB, token } = await cluster();
    const headers = { "x-vault-token": token, "content-type": "application/json" };
    const w = await fetch(`${httpB.address}/v1/secret/data/app`, {
      method: "POST",
      headers,
      body: JSON.stringify({ data: { password: "via-standby" } }),
    });
    expect(w.status).toBe(200);
    expect(w.headers.get("content-type")).toMatch(/application\/json/);
    expect((await json(w)).data.version).toBe(1);
    const r = await fetch(`${httpA.address}/v1/secret/data/app`, { headers });
    expect((await json(r)).data.data).toEqual({ password: "via-standby" });
    // A token created through the standby works on both nodes.
    const t = await fetch(`${httpB.address}/v1/auth/token/create`, { method: "POST", headers, body: "{}" });
    expect(t.status).toBe(200);
    const child = (await json(t)).auth.client_token as string;
    const self = await fetch(`${httpB.address}/v1/auth/token/lookup-self`, {
      headers: { "x-vault-token": child },
    });
    expect(self.status).toBe(200);
    const leader = await json(await fetch(`${httpB.address}/v1/sys/leader`));
    expect(leader).toMatchObject({ ha_enabled: true, is_self: false, leader_address: httpA.address });
    const own = await json(await fetch(`${httpA.address}/v1/sys/leader`));
    expect(own).toMatchObject({ is_self: true, leader_address: httpA.address });
    expect(own.active_time).not.toBe("0001-01-01T00:00:00Z");
  });

  it("generate-root through the standby runs on the active node and yields a working root token", async () => {
    const { httpA, httpB, recoveryKey } = await cluster();
    const started = await fetch(`${httpB.address}/v1/sys/generate-root/attempt`, {
      method: "PUT",
      body: "{}",
    });
    expect(started.status).toBe(200);
    const { nonce, otp } = await json(started);
    // The attempt lives where the token will be made: the active node sees it too.
    expect((await json(await fetch(`${httpA.address}/v1/sys/generate-root/attempt`))).nonce).toBe(nonce);
    const done = await fetch(`${httpB.address}/v1/sys/generate-root/update`, {
      method: "PUT",
      body: JSON.stringify({ key: recoveryKey, nonce }),
    });
    expect(done.status).toBe(200);
    const body = await json(done);
    expect(body.complete).toBe(true);
    const root = decodeRootToken(body.encoded_token, otp);
    const self = await fetch(`${httpA.address}/v1/auth/token/lookup-self`, {
      headers: { "x-vault-token": root },
    });
    expect(self.status).toBe(200);
  }, 40_000);

  it("rekey status and cancel through the standby act on the active node's rekey", async () => {
    const { httpA, httpB } = await cluster();
    const started = await fetch(`${httpB.address}/v1/sys/rekey-recovery-key/init`, {
      method: "PUT",
      body: JSON.stringify({ secret_shares: 3, secret_threshold: 2 }),
    });
    expect(started.status).toBe(200);
    const { nonce } = await json(started);
    const viaStandby = await json(await fetch(`${httpB.address}/v1/sys/rekey-recovery-key/init`));
    expect(viaStandby).toMatchObject({ started: true, nonce });
    expect(
      (await fetch(`${httpB.address}/v1/sys/rekey-recovery-key/init`, { method: "DELETE" })).status,
    ).toBe(204);
    expect((await json(await fetch(`${httpA.address}/v1/sys/rekey-recovery-key/init`))).started).toBe(false);
  });

  it("a standby never makes up a cluster id: none until the active node stores one, then that one", async () => {
    const { a, httpA, httpB } = await cluster();
    const statusOf = async (addr: string) => json(await fetch(`${addr}/v1/sys/seal-status`));
    // The active node stores Vault's core/cluster/local/info when it sets up (as OpenBao does on
    // becoming active). Without the record the standby has no id to report (it used to answer a
    // new random one on every request).
    const record = await a.storage.get("core/cluster/local/info");
    expect(record).toBeDefined();
    await a.storage.delete("core/cluster/local/info");
    const [first, second] = [await statusOf(httpB.address), await statusOf(httpB.address)];
    expect(first.cluster_id).toBeUndefined();
    expect(second.cluster_id).toBeUndefined();
    await a.storage.put({ key: "core/cluster/local/info", value: record?.value ?? new Uint8Array() });
    const active = await statusOf(httpA.address);
    expect(active.cluster_id).toMatch(/^[0-9a-f-]{36}$/);
    expect((await statusOf(httpB.address)).cluster_id).toBe(active.cluster_id);
    expect((await statusOf(httpB.address)).cluster_name).toBe(active.cluster_name);
  });

  it("is never forwarded twice: a forwarded request reaching a standby is a 503", async () => {
    const { httpB, token } = await cluster();
    const res = await fetch(`${httpB.address}/v1/secret/data/loop`, {
      method: "POST",
      headers: { "x-vault-token": token, [FORWARDED_HEADER]: "x" },
      body: JSON.stringify({ data: { a: 1 } }),
    });
    expect(res.status).toBe(503);
    expect((await json(res)).errors[0]).toMatch(/already forwarded/);
  });

  it("an active node that advertises no address: the standby says to set api_addr", async () => {
    const { httpB, token } = await cluster({ advertiseA: false });
    const res = await fetch(`${httpB.address}/v1/secret/data/x`, {
      method: "POST",
      headers: { "x-vault-token": token },
      body: JSON.stringify({ data: { a: 1 } }),
    });
    expect(res.status).toBe(503);
    expect((await json(res)).errors[0]).toMatch(/advertises no address.*set api_addr/);
  });

  it("an active node that does not answer: 503 naming its address, nothing written", async () => {
    const { a, httpA, httpB, token } = await cluster();
    await httpA.close(); // still active (holds the lock), but no longer listening
    const res = await fetch(`${httpB.address}/v1/secret/data/x`, {
      method: "POST",
      headers: { "x-vault-token": token },
      body: JSON.stringify({ data: { a: 1 } }),
    });
    expect(res.status).toBe(503);
    expect((await json(res)).errors[0]).toContain(`active node at ${httpA.address} did not answer`);
    expect(await a.storage.list("logical/")).toEqual([]); // no secret in any mount
  });
});

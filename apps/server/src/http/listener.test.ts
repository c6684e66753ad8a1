/** The real listener: LIST over a socket, TLS, the body limit on the wire, graceful close. */
import http from "node:http";
import { SealedStore } from "@bulwark/core";
import { MemoryBackend } from "@bulwark/storage-memory";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LogSink } from "../../test/helpers/app.js";
import { request } from "../../test/helpers/http.js";
import { makeCert } from "../../test/helpers/tls.js";
import type { ListenerConfig, RunningServer } from "../contracts.js";
import { createLogger } from "../logging.js";
import { parseListRequest } from "./list-method.js";
import { createRootToken, mountKv, startHttpServer } from "./server.js";

const listener = (over: Partial<ListenerConfig> = {}): ListenerConfig => ({
  address: "127.0.0.1:0",
  tlsDisable: true,
  maxRequestSize: 32 * 1024 * 1024,
  ...over,
});

async function devStore(): Promise<{ store: SealedStore; root: string }> {
  const store = await SealedStore.open({ storage: new MemoryBackend(), autoRotateCheckMs: 0 });
  const init = await store.initialize({ secretShares: 1, secretThreshold: 1 });
  await store.unseal(init.keys[0] as string);
  const root = await createRootToken(store);
  await mountKv(store, "secret", { version: 2 });
  await mountKv(store, "kv", { version: 1 });
  return { store, root };
}

describe("plain HTTP listener", () => {
  let server: RunningServer;
  let store: SealedStore;
  let root: string;

  beforeAll(async () => {
    ({ store, root } = await devStore());
    server = await startHttpServer({
      store,
      listener: listener({ maxRequestSize: 1024 }),
      clusterName: "c",
      logger: createLogger({ level: "error", destination: new LogSink() }),
    });
  });
  afterAll(async () => {
    await server.close();
    await store.close();
  });

  it("reports the URL clients use", () => {
    expect(server.address).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
  });

  it("serves the LIST method (which Node's parser rejects) as a list, on a fresh and on a reused connection", async () => {
    const h = { "x-vault-token": root };
    await request(`${server.address}/v1/secret/data/a/b`, {
      method: "POST",
      headers: h,
      body: JSON.stringify({ data: { x: 1 } }),
    });
    await request(`${server.address}/v1/kv/one`, {
      method: "PUT",
      headers: h,
      body: JSON.stringify({ x: "1" }),
    });
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      expect((await request(`${server.address}/v1/sys/health`, { agent })).status).toBe(200);
      const r = await request(`${server.address}/v1/secret/metadata/`, { method: "LIST", headers: h, agent });
      expect(r.status).toBe(200);
      expect(r.json<{ data: { keys: string[] } }>().data.keys).toEqual(["a/"]);
      expect(r.headers.connection).toBe("close");
      const v1 = await request(`${server.address}/v1/kv`, { method: "LIST", headers: h, agent });
      expect(v1.json<{ data: { keys: string[] } }>().data.keys).toEqual(["one"]);
      expect((await request(`${server.address}/v1/secret/metadata/`, { method: "LIST", agent })).status).toBe(
        403,
      );
      expect((await request(`${server.address}/v1/sys/health`, { agent })).status).toBe(200);
    } finally {
      agent.destroy();
    }
  });

  it("other unknown methods get a Vault-style 400", async () => {
    const r = await request(`${server.address}/v1/sys/health`, { method: "FROB" });
    expect(r.status).toBe(400);
    expect(r.json()).toEqual({ errors: ["malformed HTTP request"] });
  });

  it("bodies over max_request_size are a 413 on the wire, and nothing is written", async () => {
    const r = await request(`${server.address}/v1/kv/big`, {
      method: "PUT",
      headers: { "x-vault-token": root },
      body: JSON.stringify({ v: "x".repeat(2000) }),
    });
    expect(r.status).toBe(413);
    expect(r.json()).toEqual({ errors: ["http: request body too large"] });
    expect(
      (await request(`${server.address}/v1/kv/big`, { headers: { "x-vault-token": root } })).status,
    ).toBe(404);
  });

  it("'..' in a raw request path is refused, not resolved", async () => {
    const u = new URL(server.address);
    for (const path of ["/v1/kv/a/../one", "/v1/kv/a/%2E%2E/one"]) {
      // node:http with an explicit path sends it verbatim (a URL object would normalise it).
      const status = await new Promise<number>((resolve, reject) => {
        const req = http.request(
          { host: u.hostname, port: u.port, path, method: "PUT", headers: { "x-vault-token": root } },
          (res) => {
            res.resume();
            resolve(res.statusCode ?? 0);
          },
        );
        req.on("error", reject);
        req.end(JSON.stringify({ x: "2" }));
      });
      expect(status, path).toBe(400);
    }
    expect(
      (await request(`${server.address}/v1/kv/one`, { headers: { "x-vault-token": root } })).json(),
    ).toMatchObject({
      data: { x: "1" },
    });
  });
});

describe("TLS listener", () => {
  it("serves HTTPS with the configured certificate and minimum version", async () => {
    const cert = makeCert();
    const { store } = await devStore();
    const server = await startHttpServer({
      store,
      listener: listener({
        tlsDisable: false,
        tlsCertFile: cert.certFile,
        tlsKeyFile: cert.keyFile,
        tlsMinVersion: "tls13",
      }),
      clusterName: "c",
      logger: createLogger({ level: "error", destination: new LogSink() }),
    });
    try {
      expect(server.address).toMatch(/^https:\/\//);
      const r = await request(`${server.address}/v1/sys/seal-status`, { ca: cert.cert });
      expect(r.status).toBe(200);
      expect(r.json()).toMatchObject({ sealed: false });
      await expect(request(`${server.address}/v1/sys/seal-status`)).rejects.toThrow();
    } finally {
      await server.close();
      await store.close();
    }
  });

  it("refuses to start TLS without certificate files", async () => {
    const { store } = await devStore();
    await expect(
      startHttpServer({
        store,
        listener: listener({ tlsDisable: false }),
        clusterName: "c",
        logger: createLogger({ level: "error" }),
      }),
    ).rejects.toThrow(/tls_cert_file/);
    await store.close();
  });

  it("the missing certificate files are a ConfigError (domain config, invalid_config), message as before", async () => {
    const { store } = await devStore();
    await expect(
      startHttpServer({
        store,
        listener: listener({ tlsDisable: false }),
        clusterName: "c",
        logger: createLogger({ level: "error" }),
      }),
    ).rejects.toMatchObject({
      name: "ConfigError",
      domain: "config",
      code: "invalid_config",
      message: "listener: tls_cert_file and tls_key_file are required unless tls_disable = true",
    });
    await store.close();
  });
});

describe("graceful close", () => {
  it("drains an in-flight request, then refuses new connections", async () => {
    const { store, root } = await devStore();
    const server = await startHttpServer({
      store,
      listener: listener(),
      clusterName: "c",
      logger: createLogger({ level: "error", destination: new LogSink() }),
    });
    // Hold a request in flight by delaying the barrier read it needs.
    const original = store.storage.get.bind(store.storage);
    let release: () => void = () => {};
    const gate = new Promise<void>((r) => {
      release = r;
    });
    (store.storage as { get: typeof original }).get = async (k: string) => {
      if (k.startsWith("logical/")) await gate;
      return original(k);
    };
    const inflight = request(`${server.address}/v1/kv/missing`, { headers: { "x-vault-token": root } });
    await new Promise((r) => setTimeout(r, 100));
    const closing = server.close();
    await new Promise((r) => setTimeout(r, 50));
    release();
    expect((await inflight).status).toBe(404);
    await closing;
    await expect(request(`${server.address}/v1/sys/health`)).rejects.toThrow();
    await store.close();
  });
});

describe("parseListRequest", () => {
  it("turns a raw LIST request into a GET with list=true and drops body framing", () => {
    const p = parseListRequest(
      Buffer.from("LIST /v1/kv/?x=1 HTTP/1.1\r\nHost: h\r\nX-Vault-Token: t\r\nContent-Length: 0\r\n\r\n"),
    );
    expect(p).toEqual({ url: "/v1/kv/?x=1&list=true", headers: { host: "h", "x-vault-token": "t" } });
    expect(parseListRequest(Buffer.from("LIST /v1/kv HTTP/1.1\r\nHost: h\r\n"))).toBeUndefined();
    expect(parseListRequest(Buffer.from("GET /v1/kv HTTP/1.1\r\n\r\n"))).toBeUndefined();
  });
});

/** Binding a listener before the store exists: errors name the setting, early requests wait. */
import { createServer } from "node:net";
import { SealedStore } from "@bulwark/core";
import { MemoryBackend } from "@bulwark/storage-memory";
import { describe, expect, it } from "vitest";
import { LogSink } from "../../test/helpers/app.js";
import { request } from "../../test/helpers/http.js";
import type { ListenerConfig } from "../contracts.js";
import { createLogger } from "../logging.js";
import { bindListener, ListenerError, startHttpServer } from "./server.js";

const listener = (over: Partial<ListenerConfig> = {}): ListenerConfig => ({
  address: "127.0.0.1:0",
  tlsDisable: true,
  maxRequestSize: 1024,
  ...over,
});
const logger = () => createLogger({ level: "error", destination: new LogSink() });

describe("bindListener", () => {
  it("a port in use is a ListenerError on `address` that says what to do", async () => {
    const taken = createServer();
    await new Promise<void>((r) => taken.listen(0, "127.0.0.1", () => r()));
    const port = (taken.address() as { port: number }).port;
    try {
      const err = await bindListener(listener({ address: `127.0.0.1:${port}` })).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ListenerError);
      expect(err).toMatchObject({ setting: "address", code: "EADDRINUSE", value: `127.0.0.1:${port}` });
      expect((err as Error).message).toBe(
        `listener "tcp" address 127.0.0.1:${port} is in use: another server is running there? stop it or choose another address`,
      );
    } finally {
      await new Promise((r) => taken.close(r));
    }
  });

  it("an address of another machine, and an unreadable certificate, name their setting", async () => {
    const remote = await bindListener(listener({ address: "192.0.2.1:8200" })).catch((e: unknown) => e);
    expect(remote).toMatchObject({ setting: "address", code: "EADDRNOTAVAIL" });
    expect((remote as Error).message).toMatch(/not an address of this machine/);
    const tls = await bindListener(
      listener({
        tlsDisable: false,
        tlsCertFile: "/nonexistent/cert.pem",
        tlsKeyFile: "/nonexistent/key.pem",
      }),
    ).catch((e: unknown) => e);
    expect(tls).toMatchObject({ setting: "tls_cert_file", code: "ENOENT", value: "/nonexistent/cert.pem" });
  });

  it("a request that arrives before the store is open waits and is then served", async () => {
    const bound = await bindListener(listener());
    const early = request(`${bound.address}/v1/sys/seal-status`);
    await new Promise((r) => setTimeout(r, 100));
    const store = await SealedStore.open({ storage: new MemoryBackend(), autoRotateCheckMs: 0 });
    const server = await startHttpServer({
      store,
      listener: bound.listener,
      bound,
      clusterName: "c",
      logger: logger(),
    });
    try {
      const res = await early;
      expect(res.status).toBe(200);
      expect(res.json()).toMatchObject({ initialized: false, sealed: true });
      expect(server.address).toBe(bound.address);
    } finally {
      await server.close();
      await store.close();
    }
  });

  it("closing a listener that never got its app answers waiting requests with a 503", async () => {
    const bound = await bindListener(listener());
    const early = request(`${bound.address}/v1/sys/health`);
    await new Promise((r) => setTimeout(r, 100));
    await bound.close();
    const res = await early;
    expect(res.status).toBe(503);
    expect(res.json()).toEqual({ errors: ["Bulwark did not start"] });
  });
});

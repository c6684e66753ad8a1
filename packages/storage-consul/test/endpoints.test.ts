import { rmSync } from "node:fs";
import { afterAll, beforeAll, expect, it } from "vitest";
import { ConsulBackend, createConsulBackend } from "../src/index.js";
import { ConsulAgent, makeConsulCerts } from "./consul-agent.js";
import { describeConsul } from "./gate.js";

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array | undefined) => (b === undefined ? undefined : new TextDecoder().decode(b));

describeConsul("addresses: host:port, unix socket, https with tls_* (consul -dev)", () => {
  let agent: ConsulAgent;
  let certs: ReturnType<typeof makeConsulCerts>;
  const run = `endpoints-${process.pid}-${Date.now()}`;

  beforeAll(async () => {
    certs = makeConsulCerts();
    agent = await ConsulAgent.start({ tls: certs, unixSocket: true });
  }, 60_000);
  afterAll(async () => {
    await agent?.stop();
    if (certs) rmSync(certs.dir, { recursive: true, force: true });
  });

  /** Writes through `b`, reads back through a plain-HTTP backend on the same path. */
  async function roundTrip(b: ConsulBackend, key: string): Promise<void> {
    try {
      await b.put({ key, value: enc(`via ${b.address}`) });
      const check = new ConsulBackend({ address: agent.address, path: b.path });
      expect(dec((await check.get(key))?.value)).toBe(`via ${b.address}`);
      expect(await b.list("")).toContain(key);
      const lock = b.lockWith("core/lock", key);
      await lock.acquire();
      expect(await check.lockWith("core/lock", "x").value()).toEqual({ held: true, value: key });
      await lock.release();
      await check.close();
    } finally {
      await b.close();
    }
  }

  it("CONSUL_HTTP_ADDR and CONSUL_HTTP_TOKEN apply through createConsulBackend", async () => {
    const b = createConsulBackend(
      { path: run },
      { CONSUL_HTTP_ADDR: agent.address, CONSUL_HTTP_TOKEN: "anything" },
    );
    expect(b.address).toBe(agent.url);
    expect(b.path).toBe(`${run}/`);
    await roundTrip(b, "env");
  });

  it("unix:// addresses reach the agent's socket", async () => {
    const b = createConsulBackend({ address: `unix://${agent.socketPath}`, path: run }, {});
    await roundTrip(b, "unix");
  });

  it("https with tls_ca_file verifies the server; without it the error names TLS", async () => {
    const b = createConsulBackend(
      { address: agent.httpsUrl, path: run, tls_ca_file: certs.caFile, tls_min_version: "tls12" },
      {},
    );
    await roundTrip(b, "https");
    const untrusted = createConsulBackend({ address: agent.httpsUrl, path: run, retry_budget: "0s" }, {});
    try {
      await expect(untrusted.get("https")).rejects.toMatchObject({
        name: "StorageUnavailableError",
        message: expect.stringMatching(
          /^get "https": request to Consul at https:\/\/127\.0\.0\.1:\d+ failed: .*certificate/,
        ),
      });
    } finally {
      await untrusted.close();
    }
  });

  it("scheme = https with host:port, and tls_skip_verify", async () => {
    const port = String(agent.ports.https);
    const b = createConsulBackend(
      { address: `127.0.0.1:${port}`, scheme: "https", path: run, tls_skip_verify: "true" },
      {},
    );
    expect(b.address).toBe(`https://127.0.0.1:${port}`);
    await roundTrip(b, "skip-verify");
  });
});

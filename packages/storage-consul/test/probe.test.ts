import { createServer, type Server } from "node:http";
import { createServer as createTcpServer } from "node:net";
import { StorageProbeError } from "@bulwark/storage";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ConsulBackend } from "../src/index.js";
import { ConsulAgent } from "./consul-agent.js";
import { describeConsul } from "./gate.js";

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createTcpServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const a = s.address();
      const port = typeof a === "object" && a !== null ? a.port : 0;
      s.close(() => resolve(port));
    });
  });
}

async function probeError(backend: ConsulBackend): Promise<StorageProbeError> {
  try {
    const err = await backend
      .probe()
      .then(() => undefined)
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StorageProbeError);
    return err as StorageProbeError;
  } finally {
    await backend.close();
  }
}

describe("ConsulBackend.probe() without an agent", () => {
  it("nothing listening at address: names `address`, the agent and the fix", {
    timeout: 20_000,
  }, async () => {
    const port = await freePort();
    const err = await probeError(new ConsulBackend({ address: `127.0.0.1:${port}`, retryBudgetMs: 300 }));
    expect(err.setting).toBe("address");
    expect(err.code).toBe("unavailable");
    expect(err.message).toContain(`cannot reach the Consul agent at http://127.0.0.1:${port}`);
    expect(err.message).toMatch(/ECONNREFUSED/);
    expect(err.fix).toMatch(/start the Consul agent, or set address/);
  });

  describe("an HTTP server that is not Consul", () => {
    let server: Server;
    let port: number;
    beforeAll(async () => {
      server = createServer((_req, res) => {
        res.statusCode = 404;
        res.end("404 page not found\n");
      });
      await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
      const a = server.address();
      port = typeof a === "object" && a !== null ? a.port : 0;
    });
    afterAll(async () => {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    });

    it("is told apart from an empty Consul (no X-Consul-Index)", { timeout: 20_000 }, async () => {
      const err = await probeError(new ConsulBackend({ address: `127.0.0.1:${port}`, retryBudgetMs: 300 }));
      expect(err.setting).toBe("address");
      expect(err.message).toMatch(/answered, but not as a Consul agent/);
    });
  });
});

describeConsul("ConsulBackend.probe() against a consul -dev agent", () => {
  let agent: ConsulAgent | undefined;
  beforeAll(async () => {
    agent = await ConsulAgent.start();
  }, 60_000);
  afterAll(async () => {
    await agent?.stop();
  });

  it("resolves and writes nothing", { timeout: 20_000 }, async () => {
    const a = agent as ConsulAgent;
    const path = `probe-${process.pid}-${Date.now()}/`;
    const backend = new ConsulBackend({ address: a.address, path });
    try {
      await backend.probe();
      expect(await backend.list("")).toEqual([]);
      const res = await fetch(`${a.url}/v1/kv/${path}?recurse`);
      expect(res.status).toBe(404);
    } finally {
      await backend.close();
    }
  });
});

import { runBackendConformance } from "@bulwark/storage/testing";
import { afterAll, beforeAll } from "vitest";
import { ConsulBackend } from "../src/index.js";
import { ConsulAgent } from "./consul-agent.js";
import { describeConsul } from "./gate.js";

let agent: ConsulAgent | undefined;
let n = 0;
const run = `conf-${process.pid}-${Date.now()}`;

async function destroyHolderSession(backend: ConsulBackend, key: string): Promise<void> {
  const url = (agent as ConsulAgent).url;
  const res = await fetch(`${url}/v1/kv/${backend.path}${key}`);
  const [pair] = (await res.json()) as { Session?: string }[];
  if (pair?.Session === undefined) throw new Error(`breakLock: ${key} is not held`);
  const d = await fetch(`${url}/v1/session/destroy/${pair.Session}`, { method: "PUT" });
  if (!d.ok) throw new Error(`breakLock: destroying session failed: ${d.status}`);
}

describeConsul("ConsulBackend against a consul -dev agent", () => {
  beforeAll(async () => {
    agent = await ConsulAgent.start();
  }, 60_000);
  afterAll(async () => {
    await agent?.stop();
  });

  type WithPeer = ConsulBackend & { peer: ConsulBackend };
  const options = () => ({
    address: (agent as ConsulAgent).address,
    path: `${run}/${++n}/`,
    sessionTtlMs: 10_000,
    lockWaitTimeMs: 2000,
    // Consul's lock-delay would hold a broken lock for 15 s; the suite waits at most a few seconds.
    lockDelayMs: 1000,
  });

  runBackendConformance<WithPeer>(
    "ConsulBackend",
    async () => {
      const opts = options();
      const backend = new ConsulBackend(opts);
      const peer = new ConsulBackend(opts);
      return {
        backend: Object.assign(backend, { peer }) as WithPeer,
        cleanup: async () => {
          await Promise.all([backend.close(), peer.close()]);
          await fetch(`${(agent as ConsulAgent).url}/v1/kv/${opts.path}?recurse`, { method: "DELETE" });
        },
      };
    },
    {
      maxValueSize: 512 * 1024,
      emptyValue: "stored",
      transactional: true,
      probe: true,
      concurrency: 200,
      ha: (b) => ({
        backend: b,
        peer: b.peer,
        breakLock: (key) => destroyHolderSession(b, key),
        handoverTimeoutMs: 5000,
      }),
    },
  );
});

import { randomBytes } from "@bulwark/crypto";
import { ConsulBackend } from "@bulwark/storage-consul";
import { ConsulAgent } from "../../../../packages/storage-consul/test/consul-agent.js";
import type { Comparison } from "../harness.js";

/**
 * ConsulBackend against the same HTTP calls made with Node's `fetch`, on one `consul agent -dev`
 * started (on free loopback ports) for this suite and stopped in the last teardown. Both sides do
 * the full job: the baseline decodes the JSON and base64 a `get` returns and strips/sorts a list.
 */
export async function suite(): Promise<Comparison[]> {
  const agent = await ConsulAgent.start();
  const url = agent.url;
  const value = randomBytes(1024);
  const ours = new ConsulBackend({ address: agent.address, path: "bench/ours/", lockDelayMs: 0 });
  const fenced = new ConsulBackend({ address: agent.address, path: "bench/fenced/", lockDelayMs: 0 });
  await fenced.lockWith("core/lock", "bench").acquire();
  const rawPrefix = "bench/raw/";
  const keys = 32;
  // Same data on both sides for get and list: 32 keys of 1 KiB plus a folder of 50 keys.
  for (let i = 0; i < keys; i++) {
    await ours.put({ key: `get/k${i}`, value });
    await fetch(`${url}/v1/kv/${rawPrefix}get/k${i}`, { method: "PUT", body: value });
  }
  for (let i = 0; i < 50; i++) {
    await ours.put({ key: `list/k${String(i).padStart(2, "0")}`, value: value.subarray(0, 16) });
    await fetch(`${url}/v1/kv/${rawPrefix}list/k${String(i).padStart(2, "0")}`, {
      method: "PUT",
      body: value.subarray(0, 16),
    });
  }
  let i = 0;
  const next = () => i++ % keys;

  const rawPut = async (key: string): Promise<void> => {
    const res = await fetch(`${url}/v1/kv/${rawPrefix}${key}`, { method: "PUT", body: value });
    if ((await res.text()).trim() !== "true") throw new Error(`raw put failed: ${res.status}`);
  };
  const rawGet = async (key: string): Promise<Uint8Array> => {
    const res = await fetch(`${url}/v1/kv/${rawPrefix}${key}`);
    const [pair] = (await res.json()) as { Value: string | null }[];
    return new Uint8Array(Buffer.from(pair?.Value ?? "", "base64"));
  };
  const rawList = async (prefix: string): Promise<string[]> => {
    const res = await fetch(`${url}/v1/kv/${rawPrefix}${prefix}?keys&separator=/`);
    const all = (await res.json()) as string[];
    return all.map((k) => k.slice(rawPrefix.length + prefix.length)).sort();
  };

  const CONCURRENCY = 16;
  return [
    {
      name: "consul put 1 KiB (c16) vs fetch PUT /v1/kv",
      target: 0.8,
      ops: 1000,
      rounds: 5,
      ours: {
        name: "ConsulBackend.put",
        concurrency: CONCURRENCY,
        op: () => ours.put({ key: `put/k${next()}`, value }),
      },
      baseline: { name: "fetch PUT", concurrency: CONCURRENCY, op: () => rawPut(`put/k${next()}`) },
    },
    {
      name: "consul get 1 KiB (c16) vs fetch GET /v1/kv + JSON/base64 decode",
      target: 0.8,
      ops: 2000,
      rounds: 5,
      ours: {
        name: "ConsulBackend.get",
        concurrency: CONCURRENCY,
        op: async () => {
          if ((await ours.get(`get/k${next()}`))?.value.length !== 1024) throw new Error("bad get");
        },
      },
      baseline: {
        name: "fetch GET",
        concurrency: CONCURRENCY,
        op: async () => {
          if ((await rawGet(`get/k${next()}`)).length !== 1024) throw new Error("bad raw get");
        },
      },
    },
    {
      name: "consul list 50 keys (c16) vs fetch GET ?keys&separator=/",
      target: 0.8,
      ops: 1000,
      rounds: 5,
      ours: {
        name: "ConsulBackend.list",
        concurrency: CONCURRENCY,
        op: async () => {
          if ((await ours.list("list/")).length !== 50) throw new Error("bad list");
        },
      },
      baseline: {
        name: "fetch keys",
        concurrency: CONCURRENCY,
        op: async () => {
          if ((await rawList("list/")).length !== 50) throw new Error("bad raw list");
        },
      },
    },
    {
      // Informational: the price of fencing (a /v1/txn with check-session instead of a KV PUT).
      name: "consul fenced put 1 KiB (c1) vs plain put",
      ops: 500,
      rounds: 5,
      ours: { name: "fenced put (lock held)", op: () => fenced.put({ key: `put/k${next()}`, value }) },
      baseline: { name: "plain put", op: () => ours.put({ key: `put/k${next()}`, value }) },
    },
    {
      name: "consul fenced put 1 KiB (c16) vs plain put",
      ops: 1000,
      rounds: 5,
      ours: {
        name: "fenced put (lock held)",
        concurrency: CONCURRENCY,
        op: () => fenced.put({ key: `put/k${next()}`, value }),
      },
      baseline: {
        name: "plain put",
        concurrency: CONCURRENCY,
        op: () => ours.put({ key: `put/k${next()}`, value }),
        teardown: async () => {
          await Promise.all([ours.close(), fenced.close()]);
          await agent.stop();
        },
      },
    },
  ];
}

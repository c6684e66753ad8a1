import { AesGcmBarrier } from "@bulwark/barrier";
import { SealedStore } from "@bulwark/core";
import { randomBytes } from "@bulwark/crypto";
import { StaticKeySeal } from "@bulwark/seal";
import { MemoryBackend } from "@bulwark/storage-memory";
import type { Comparison } from "../harness.js";

async function shamirStore(): Promise<SealedStore> {
  const store = await SealedStore.open({ storage: new MemoryBackend() });
  const init = await store.initialize({ secretShares: 1, secretThreshold: 1 });
  await store.unseal(init.keys[0] as string);
  return store;
}

export async function suite(): Promise<Comparison[]> {
  const value = randomBytes(1024);
  const store = await shamirStore();
  const barrier = new AesGcmBarrier(new MemoryBackend());
  const root = randomBytes(32);
  await barrier.initialize(root);
  await barrier.unseal(root);
  const wrapped = await SealedStore.open({
    storage: new MemoryBackend(),
    seal: new StaticKeySeal({ key: randomBytes(32), keyId: "bench" }),
  });
  await wrapped.initialize({ recoveryShares: 1, recoveryThreshold: 1 });
  let a = 0;
  let b = 0;
  let c = 0;
  let d = 0;
  return [
    {
      name: "SealedStore put+get 1 KiB (memory, Shamir) vs barrier put+get",
      target: 0.9,
      ops: 20_000,
      ours: {
        name: "SealedStore put+get",
        op: async () => {
          const k = `secret/k${a++ % 256}`;
          await store.put(k, value);
          await store.get(k);
        },
      },
      baseline: {
        name: "AesGcmBarrier put+get",
        op: async () => {
          const k = `secret/k${b++ % 256}`;
          await barrier.put({ key: k, value });
          await barrier.get(k);
        },
      },
    },
    {
      // Reported, no target: seal wrap adds a second AES-GCM pass and a protobuf envelope.
      name: "seal-wrapped put+get 1 KiB (StaticKeySeal) vs plain put+get",
      ops: 10_000,
      ours: {
        name: "put+get sealWrap",
        op: async () => {
          const k = `secret/w${c++ % 256}`;
          await wrapped.put(k, value, { sealWrap: true });
          await wrapped.get(k);
        },
      },
      baseline: {
        name: "put+get plain",
        op: async () => {
          const k = `secret/p${d++ % 256}`;
          await wrapped.put(k, value);
          await wrapped.get(k);
        },
      },
    },
  ];
}

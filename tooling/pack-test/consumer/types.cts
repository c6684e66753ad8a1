// The strict TypeScript consumer from a CommonJS module: under node16/nodenext resolution these
// imports compile to require() and resolve the `require` condition (dist/index.d.cts).
import { SealedStore, type SealedStoreOptions } from "@bulwark/core";
import { type Seal, SealError, StaticKeySeal } from "@bulwark/seal";
import { configError } from "@bulwark/seal/testing";
import { startServer } from "@bulwark/server";
import type { Backend } from "@bulwark/storage";
import { FileBackend } from "@bulwark/storage-file";
import { MemoryBackend } from "@bulwark/storage-memory";

export async function usageCjs(): Promise<boolean> {
  const storage: Backend = new MemoryBackend();
  const seal: Seal = new StaticKeySeal({ key: StaticKeySeal.generateKey(), keyId: "k" });
  const options: SealedStoreOptions = { storage, seal };
  const store = await SealedStore.open(options);
  // @ts-expect-error put takes bytes, not a string
  await store.put("secret/x", "text");
  const file: Backend = new FileBackend({ path: "./data", fsync: false });
  const err: unknown = new SealError("invalid_config", "x");
  void [file, configError, startServer];
  return err instanceof SealError && store.sealed;
}

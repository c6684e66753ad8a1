import { runBackendConformance } from "@bulwark/storage/testing";
import { MemoryBackend } from "./memory-backend.js";

const haTarget = (backend: MemoryBackend) => ({
  backend,
  breakLock: async (key: string) => {
    backend.forceRelease(key);
  },
});

runBackendConformance("MemoryBackend", async () => ({ backend: new MemoryBackend() }), {
  emptyValue: "stored",
  transactional: true,
  ha: haTarget,
});

runBackendConformance(
  "MemoryBackend with maxValueSize and small transaction limits",
  async () => ({
    backend: new MemoryBackend({
      maxValueSize: 512 * 1024,
      transactionLimits: { maxEntries: 8, maxBytes: 4096 },
    }),
  }),
  { maxValueSize: 512 * 1024, emptyValue: "stored", transactional: true, ha: haTarget },
);

import { withFaults, withPermitPool } from "@bulwark/storage";
import { runBackendConformance } from "@bulwark/storage/testing";
import { MemoryBackend } from "./memory-backend.js";

const haTarget = (memory: MemoryBackend) => ({
  backend: memory,
  breakLock: async (key: string) => {
    memory.forceRelease(key);
  },
});

runBackendConformance("MemoryBackend", async () => ({ backend: new MemoryBackend() }), {
  emptyValue: "stored",
  transactional: true,
  // Memory is always usable: nothing to probe.
  probe: false,
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
  { maxValueSize: 512 * 1024, emptyValue: "stored", transactional: true, probe: false, ha: haTarget },
);

// The wrappers from @bulwark/storage must not change a backend's semantics.
runBackendConformance(
  "withPermitPool(MemoryBackend, 4)",
  async () => {
    const memory = new MemoryBackend();
    return { backend: Object.assign(withPermitPool(memory, 4), { memory }) };
  },
  {
    emptyValue: "stored",
    transactional: true,
    probe: false,
    ha: (b) => haTarget(b.memory),
  },
);

runBackendConformance(
  "withFaults(MemoryBackend) with no faults and 1 ms put latency",
  async () => {
    const memory = new MemoryBackend();
    return { backend: Object.assign(withFaults(memory, { latencyMs: { put: 1 } }), { memory }) };
  },
  {
    emptyValue: "stored",
    transactional: true,
    probe: false,
    ha: (b) => haTarget(b.memory),
  },
);

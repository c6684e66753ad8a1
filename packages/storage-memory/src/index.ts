export { MemoryBackend, type MemoryBackendOptions } from "./memory-backend.js";
export { MemoryLock } from "./memory-lock.js";
export { memoryStorageProvider } from "./provider.js";

export { MAX_VALUE_BYTES } from "./codec.js";
export { CorruptEntryError, FileBackendConfigError } from "./errors.js";
export { createFileBackend, FileBackend, type FileBackendOptions } from "./file-backend.js";
export { fileStorageProvider } from "./provider.js";

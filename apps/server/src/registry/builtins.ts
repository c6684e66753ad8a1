/**
 * The provider modules built into the server, in the order the registry lists them. Each comes
 * from its package; those with heavy or native dependencies are loaded when a block needs them,
 * so a server with file storage and Shamir starts without loading PKCS#11, the AWS SDK or Consul.
 * What a module does with its block (settings, claims, HA) is the package's business.
 */
import { type SealProvider, shamirSealProvider, staticSealProvider } from "@bulwark/seal";
import type { StorageProvider } from "@bulwark/storage";
import { fileStorageProvider } from "@bulwark/storage-file";
import { memoryStorageProvider } from "@bulwark/storage-memory";
import type { LazyProvider } from "./provider-table.js";

export const BUILTIN_STORAGE: ReadonlyArray<StorageProvider | LazyProvider<StorageProvider>> = [
  fileStorageProvider,
  memoryStorageProvider,
  {
    type: "consul",
    load: async () => (await import("@bulwark/storage-consul")).consulStorageProvider,
  },
];

export const BUILTIN_SEALS: ReadonlyArray<SealProvider | LazyProvider<SealProvider>> = [
  shamirSealProvider,
  { type: "pkcs11", load: async () => (await import("@bulwark/seal-pkcs11")).pkcs11SealProvider },
  {
    type: "cloudhsm",
    claims: "pkcs11",
    load: async () => (await import("@bulwark/seal-cloudhsm")).cloudHsmSealProvider,
  },
  { type: "awskms", load: async () => (await import("@bulwark/seal-awskms")).awsKmsSealProvider },
  staticSealProvider,
];

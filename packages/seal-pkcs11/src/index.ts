export {
  checkPkcs11Config,
  checkPkcs11Options,
  inspectPkcs11Config,
  PKCS11_CONFIG_KEYS,
  type Pkcs11SealOptions,
  type Pkcs11TraceEvent,
  parsePkcs11Config,
  type ResolvedPkcs11Config,
  resolveOptions as resolvePkcs11Options,
  resolveSecretRef,
  withoutReported,
} from "./config.js";
export {
  CKM_AES_CBC_PAD,
  CKM_AES_GCM,
  CKM_RSA_PKCS_OAEP,
  CKM_SHA256_HMAC,
  DEFAULT_MAX_DIRECT_BYTES,
  FLAG_ENVELOPE,
  type Pkcs11Mechanism,
  type RsaOaepHash,
} from "./constants.js";
export { ckrName, Pkcs11CallError } from "./errors.js";
export { loadedModuleCount } from "./module-registry.js";
export {
  createPkcs11Seal,
  type Pkcs11Capabilities,
  type Pkcs11HealthDetails,
  Pkcs11Seal,
} from "./pkcs11-seal.js";
export { pkcs11SealProvider } from "./provider.js";
export type { SessionPoolStats } from "./session-pool.js";

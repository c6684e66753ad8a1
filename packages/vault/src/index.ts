/**
 * @bulwark/vault: Vault's logical layer over a `SealedStore` — token store, policies and ACL,
 * the mount table, the KV v1/v2 engines and request routing — usable without HTTP.
 */

export {
  AUDIT_FORMATTER,
  type AuditBrokerLogger,
  type AuditBrokerOptions,
  type AuditRecordFormatter,
  type AuditStore,
  StoreAuditBroker,
} from "./audit/broker.js";
export { AUDIT_DEVICE_FACTORIES, fileDevice, socketDevice, syslogDevice } from "./audit/devices/index.js";
export { formatRequestRecord, formatResponseRecord, parseFormatOptions } from "./audit/format.js";
export { clientIdOf, hashData, hasherFor, identifiedHmac } from "./audit/hash.js";
export { toJsonx } from "./audit/jsonx.js";
export {
  API_AUDIT_TABLE,
  AUDIT_VIEW_PREFIX,
  auditSaltKey,
  CONFIG_AUDIT_TABLE,
  readAuditTables,
} from "./audit/table.js";
// Audit devices (Vault's audit broker, formats and devices).
export type {
  AuditAuthInput,
  AuditBroker,
  AuditDevice,
  AuditDeviceContext,
  AuditDeviceFactory,
  AuditDeviceInfo,
  AuditPolicyInfo,
  AuditRequestInput,
  AuditResponseInput,
  AuditSettings,
  ConfigAuditDevice,
  EnableAuditRequest,
  FormatConfig,
  Hasher,
  LogInput,
} from "./audit/types.js";
export { AuditOptionError } from "./audit/types.js";
// Tokens, policies, ACL.
export { Acl, type Operation } from "./auth/acl.js";
export {
  CAPABILITIES,
  type Capability,
  normalizePolicyName,
  type PathRule,
  type Policy,
  parsePolicy,
} from "./auth/policy.js";
export { DEFAULT_POLICY, PolicyStore } from "./auth/policy-store.js";
export { tokenAuthData, tokenLookupData } from "./auth/token-data.js";
export { plausibleToken, TOKEN_LENGTH, TOKEN_PREFIX, TOKEN_RANDOM_LENGTH } from "./auth/token-id.js";
export {
  type CreateTokenRequest,
  type IssuedToken,
  remainingTtl,
  SYSTEM_MAX_TTL_S,
  type TokenEntry,
  TokenStore,
} from "./auth/tokens.js";
export { type Compression, compressJson, decompressRecord } from "./encoding/compression.js";
// Errors (every code in VAULT_ERROR_CODES).
export {
  BadRequestError,
  GenerateRootError,
  type GenerateRootErrorCode,
  KvError,
  type KvErrorCode,
  PermissionDeniedError,
  PolicyError,
  RouteError,
  type RouteErrorCode,
  TokenError,
  type TokenErrorCode,
  VAULT_ERROR_CODES,
  VAULT_ERROR_STATUS,
  VaultError,
  type VaultErrorCode,
  VaultStateError,
} from "./errors.js";
// Per-store services and root-token generation.
export {
  decodeRootToken,
  encodeRootToken,
  GenerateRoot,
  type GenerateRootStatus,
} from "./generate-root.js";
export { randomBase62, sha256Hex } from "./ids.js";
// KV's value semantics: JSON whose numbers keep their exact text.
export {
  goFloat,
  hasJsonNumber,
  JsonNumber,
  JsonRefusedError,
  type NumberScan,
  parseJson,
  parseLossless,
  scanNumbers,
  stringify,
} from "./json/lossless.js";
// Secrets engines and the mount table.
export type { KvEngine, KvOperation, KvRequest, KvResponse } from "./kv/common.js";
export { KvV1 } from "./kv/kv-v1.js";
export { KvV2 } from "./kv/kv-v2.js";
export { DEFAULT_METADATA_CACHE_ENTRIES } from "./kv/metadata-cache.js";
export {
  BUILTIN_RUNNING_VERSION,
  decodeTable,
  encodeTable,
  leaseTtls,
  type MountEntry,
  type MountRequest,
  MountTable,
  normalizeMountPath,
  type SetupResult,
  type StoredMountConfig,
  serves,
  type TunePatch,
} from "./kv/mounts.js";
// Request fields (Vault's field decoder).
export {
  bodyObject,
  type Fields,
  type FieldType,
  formatGoDuration,
  MAX_DURATION_S,
  parseDuration,
  parseField,
  parseFields,
  type Spec,
} from "./request/fields.js";
export {
  type Auth,
  type AuthorizedRequest,
  aclPath,
  authenticate,
  authorize,
  handle,
  type RouterServices,
  SEALED_MESSAGE,
  type VaultRequest,
  type VaultResponse,
} from "./router.js";
export {
  type ClusterInfo,
  createRootToken,
  mountKv,
  rootTokenAfterInit,
  type Services,
  type ServicesLogger,
  type ServicesOptions,
  servicesFor,
  waitActive,
} from "./services.js";
export {
  capabilitiesOf,
  mountInfo,
  policyText,
  sealStatusData,
} from "./system.js";

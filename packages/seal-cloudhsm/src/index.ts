export {
  type CloudHsmHealthDetails,
  CloudHsmSeal,
  createCloudHsmSeal,
} from "./cloudhsm-seal.js";
export type { CloudHsmApiClient, CloudHsmClusterStatus, CloudHsmHsmStatus } from "./cluster.js";
export {
  CLOUDHSM_CONFIG_KEYS,
  CLOUDHSM_DEFAULT_CLUSTER_TIMEOUT_MS,
  CLOUDHSM_DEFAULT_LIB,
  CLOUDHSM_DEFAULT_RETRY_BASE_MS,
  CLOUDHSM_FIRST_SLOT,
  CLOUDHSM_GCM_MAX_BYTES,
  type CloudHsmSealLogger,
  type CloudHsmSealOptions,
  checkCloudHsmConfig,
  cloudHsmProfileProblems,
  parseCloudHsmConfig,
  splitCloudHsmPin,
} from "./config.js";
export { cloudHsmSealProvider, isCloudHsmLibrary } from "./provider.js";

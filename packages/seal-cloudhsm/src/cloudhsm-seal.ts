import { SealConfigError, type SealHealth, SealUnavailableError } from "@bulwark/seal";
import {
  Pkcs11CallError,
  type Pkcs11HealthDetails,
  Pkcs11Seal,
  type Pkcs11SealOptions,
} from "@bulwark/seal-pkcs11";
import { type CloudHsmClusterStatus, ClusterMonitor } from "./cluster.js";
import {
  CLOUDHSM_DEFAULT_LIB,
  type CloudHsmSealOptions,
  cloudHsmProfileProblems,
  parseCloudHsmConfig,
  type ResolvedProfile,
  resolveCloudHsmOptions,
} from "./config.js";

const CKR_ATTRIBUTE_VALUE_INVALID = 0x13;
const CKR_PIN_INCORRECT = 0xa0;
const CKR_PIN_LOCKED = 0xa4;

/** `health().details` of a CloudHSM seal: the PKCS#11 details plus the profile's. */
export interface CloudHsmHealthDetails extends Pkcs11HealthDetails {
  profile: "cloudhsm";
  /** The crypto user the seal logs in as (never the password). */
  cryptoUser: string;
  /** The DescribeClusters check made with this health call; undefined without `cluster_id`. */
  cluster: CloudHsmClusterStatus | undefined;
}

function callErrorIn(err: unknown): Pkcs11CallError | undefined {
  if (err instanceof Pkcs11CallError) return err;
  const cause = err instanceof Error ? err.cause : undefined;
  return cause instanceof Pkcs11CallError ? cause : undefined;
}

/**
 * The AWS CloudHSM (Client SDK 5) profile of the PKCS#11 seal. Everything PKCS#11 — token and
 * key lookup, session pool, reconnect-and-retry, blob format — is {@link Pkcs11Seal}'s; the
 * profile sets what CloudHSM needs and checks the cluster:
 *
 * - library `/opt/cloudhsm/lib/libcloudhsm_pkcs11.so`, token by label or 64-bit slot id (default
 *   the first cluster's slot, 0x2000000000000001);
 * - PIN `"<crypto user>:<password>"` (or `user` + `password`), checked when configured;
 * - read-write sessions; AES-GCM with the HSM-generated IV (a zeroed 12-byte IV in, the HSM's IV
 *   read back after the single-part C_Encrypt and stored in the blob); at most 16 KiB per GCM call,
 *   larger values through an HSM-wrapped data key; generated keys non-extractable with a random
 *   CKA_ID (CloudHSM refuses a duplicate CKA_ID);
 * - optional cluster check (DescribeClusters) at init and in health(): a cluster that is not
 *   ACTIVE, or has no ACTIVE HSM, is a warning — or an error with `requireActiveCluster`.
 *
 * The abort signal of `encrypt`/`decrypt` works as on {@link Pkcs11Seal}: it ends the wait for a
 * session and the retry backoff; a call already inside the CloudHSM library runs to its end and
 * its result is discarded.
 *
 * `type` stays "pkcs11": the blobs and keys are those of the PKCS#11 seal, and Vault stores a
 * CloudHSM-sealed data set as seal type "pkcs11", so such data opens without a seal migration.
 * {@link profile} says "cloudhsm".
 */
export class CloudHsmSeal extends Pkcs11Seal {
  /** The PKCS#11 profile: "cloudhsm". (`type` is "pkcs11", see the class comment.) */
  readonly profile = "cloudhsm" as const;
  readonly #settings: ResolvedProfile;
  readonly #monitor: ClusterMonitor | undefined;
  #reportedProblem: string | undefined;

  constructor(options: CloudHsmSealOptions) {
    const resolved = resolveCloudHsmOptions(options);
    super(resolved.pkcs11);
    // The profile's rules live in one place (also used by the config check that lists every problem).
    const [refused] = cloudHsmProfileProblems(this.config);
    if (refused !== undefined) throw refused;
    this.#settings = resolved.profile;
    this.#monitor = resolved.profile.cluster ? new ClusterMonitor(resolved.profile.cluster) : undefined;
  }

  /**
   * Parses a Vault `seal "pkcs11"` block for CloudHSM plus the CloudHSM keys (see
   * {@link parseCloudHsmConfig}), or typed options, with environment fallbacks.
   */
  static override fromConfig<T extends Pkcs11Seal>(
    this: new (
      options: CloudHsmSealOptions,
    ) => T,
    config: Record<string, unknown> | CloudHsmSealOptions | Pkcs11SealOptions,
    env: Record<string, string | undefined> = process.env,
  ): T {
    return new this(parseCloudHsmConfig(config, env));
  }

  /** The crypto user this seal logs in as. */
  get cryptoUser(): string {
    return this.#settings.user;
  }

  /** The last cluster check (init or health), if a cluster is configured. */
  clusterStatus(): CloudHsmClusterStatus | undefined {
    return this.#monitor?.last;
  }

  protected override async doInit(signal: AbortSignal | undefined): Promise<void> {
    const monitor = this.#monitor;
    const cluster = this.#settings.cluster;
    try {
      if (monitor !== undefined && cluster !== undefined) {
        const status = await monitor.check();
        signal?.throwIfAborted();
        if (status.problem !== undefined) {
          if (cluster.requireActive) {
            throw new SealUnavailableError(
              `CloudHSM cluster check failed: ${status.problem}. The seal did not start because require_active_cluster = true; wait until the cluster and at least one HSM are ACTIVE`,
            );
          }
          this.#warn(status, "at init; continuing (set require_active_cluster = true to refuse)");
        }
      }
      await super.doInit(signal);
    } catch (err) {
      // A failed init may be retried; until then no API client (and its sockets) stays open.
      monitor?.close();
      throw this.#initError(err);
    }
  }

  protected override async doFinalize(): Promise<void> {
    try {
      await super.doFinalize();
    } finally {
      this.#monitor?.close();
    }
  }

  protected override async doHealth(): Promise<SealHealth> {
    const [base, cluster] = await Promise.all([super.doHealth(), this.#monitor?.check()]);
    const details: CloudHsmHealthDetails = {
      ...(base.details as unknown as Pkcs11HealthDetails),
      profile: "cloudhsm",
      cryptoUser: this.#settings.user,
      cluster,
    };
    const out: SealHealth = { ...base, details: details as unknown as Record<string, unknown> };
    const problem = cluster?.problem;
    if (cluster !== undefined) {
      if (problem !== undefined && problem !== this.#reportedProblem) this.#warn(cluster, "in health check");
      else if (problem === undefined && this.#reportedProblem !== undefined) {
        this.#settings.logger.info?.("CloudHSM cluster is ACTIVE again", {
          clusterId: cluster.clusterId,
          activeHsms: cluster.activeHsms,
        });
      }
      this.#reportedProblem = problem;
    }
    if (problem === undefined) return out;
    if (this.#settings.cluster?.requireActive) {
      out.healthy = false;
      out.message = base.healthy
        ? `CloudHSM cluster: ${problem}`
        : `${base.message}; CloudHSM cluster: ${problem}`;
    } else {
      out.message = base.healthy ? `warning: ${problem}` : `${base.message}; warning: ${problem}`;
    }
    return out;
  }

  #warn(status: CloudHsmClusterStatus, when: string): void {
    this.#reportedProblem = status.problem;
    this.#settings.logger.warn(`CloudHSM cluster check ${when}: ${status.problem}`, {
      clusterId: status.clusterId,
      state: status.state,
      hsmCount: status.hsmCount,
      activeHsms: status.activeHsms,
    });
  }

  /** Turns PKCS#11 failures CloudHSM users meet into messages in CloudHSM's terms. */
  #initError(err: unknown): unknown {
    const call = callErrorIn(err);
    if (call?.call === "C_GenerateKey" && call.rv === CKR_ATTRIBUTE_VALUE_INVALID) {
      const keyId = this.config.keyId?.toString("hex");
      return this.#settings.keyIdConfigured
        ? new SealConfigError(
            "key_id",
            `CloudHSM refused to create the key with CKA_ID 0x${keyId} (${call.message}): another key already has that CKA_ID, and CloudHSM requires CKA_ID to be unique — choose another key_id, or remove key_id to get a random one`,
            { cause: err },
          )
        : new SealUnavailableError(
            `CloudHSM refused to create the key (${call.message}); the random CKA_ID may have collided with an existing key's — try again`,
            { cause: err },
          );
    }
    if (
      err instanceof SealConfigError &&
      err.field === "pin" &&
      (call?.rv === CKR_PIN_INCORRECT || call?.rv === CKR_PIN_LOCKED)
    ) {
      return new SealConfigError(
        "pin",
        `CloudHSM refused the login of crypto user ${JSON.stringify(this.#settings.user)} (${call.message}): check the user name and password (PIN "<user>:<password>"). No further attempt was made: repeated failures lock the crypto user`,
        { cause: err },
      );
    }
    if (err instanceof SealConfigError && err.field === "lib" && this.config.lib === CLOUDHSM_DEFAULT_LIB) {
      return new SealConfigError(
        "lib",
        `the CloudHSM PKCS#11 library is not at ${CLOUDHSM_DEFAULT_LIB}: install the AWS CloudHSM Client SDK 5 PKCS#11 library and run configure-pkcs11, or set lib (${err.message})`,
        { cause: err },
      );
    }
    return err;
  }
}

/**
 * The server's factory for CloudHSM: a Vault `seal "pkcs11"` block written for CloudHSM plus the
 * CloudHSM keys (`user`, `password`, `cluster_id`, `region`, `endpoint`, `access_key`,
 * `secret_key`, `session_token`, `require_active_cluster`), or typed options. Environment
 * fallbacks as in {@link parseCloudHsmConfig}. Throws `SealConfigError` (with `field`).
 */
export function createCloudHsmSeal(
  config: Record<string, unknown> | CloudHsmSealOptions,
  env: Record<string, string | undefined> = process.env,
): CloudHsmSeal {
  return CloudHsmSeal.fromConfig(config, env);
}

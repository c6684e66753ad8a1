import type { DescribeClustersCommand, DescribeClustersCommandOutput } from "@aws-sdk/client-cloudhsm-v2";
import type { ResolvedClusterConfig } from "./config.js";

/**
 * What the seal needs of a `CloudHSMV2Client`: `send(DescribeClustersCommand)`. A structural type,
 * so tests and callers can pass their own client (custom middleware, a recorded fake).
 */
export interface CloudHsmApiClient {
  send(
    command: DescribeClustersCommand,
    options?: { abortSignal?: AbortSignal },
  ): Promise<DescribeClustersCommandOutput>;
  destroy?(): void;
}

/** One HSM of the cluster, as DescribeClusters reports it. */
export interface CloudHsmHsmStatus {
  hsmId: string;
  /** CREATE_IN_PROGRESS, ACTIVE, DEGRADED, DELETE_IN_PROGRESS, DELETED (compared as strings). */
  state: string;
  stateMessage?: string;
  availabilityZone?: string;
  eniIp?: string;
}

/** The result of one cluster check (`health().details.cluster`). */
export interface CloudHsmClusterStatus {
  clusterId: string;
  /** ACTIVE, DEGRADED, UPDATE_IN_PROGRESS, …; "UNKNOWN" when the check itself failed. */
  state: string;
  stateMessage?: string;
  hsms: CloudHsmHsmStatus[];
  hsmCount: number;
  activeHsms: number;
  checkedAt: string;
  /** Why the cluster is not fit to serve the seal; undefined when ACTIVE with an ACTIVE HSM. */
  problem?: string;
}

function errorText(err: unknown): string {
  if (err instanceof Error) {
    const status = (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
    return `${err.name}${status !== undefined ? ` (HTTP ${status})` : ""}: ${err.message}`;
  }
  return String(err);
}

/**
 * Asks the CloudHSMV2 API (DescribeClusters, filtered by cluster id) whether the cluster and its
 * HSMs are ACTIVE. Never throws: a failed call is a status with state "UNKNOWN" and a problem.
 */
export class ClusterMonitor {
  readonly #cfg: ResolvedClusterConfig;
  #client: CloudHsmApiClient | undefined;
  #ownsClient = false;
  #last: CloudHsmClusterStatus | undefined;

  constructor(cfg: ResolvedClusterConfig) {
    this.#cfg = cfg;
    this.#client = cfg.client;
  }

  /** The last check's result. */
  get last(): CloudHsmClusterStatus | undefined {
    return this.#last;
  }

  async #clientOrCreate(): Promise<CloudHsmApiClient> {
    if (this.#client !== undefined) return this.#client;
    // Loaded only when a cluster is configured: the SDK is not needed for the PKCS#11 path.
    const { CloudHSMV2Client } = await import("@aws-sdk/client-cloudhsm-v2");
    const cfg = this.#cfg;
    const client = new CloudHSMV2Client({
      region: cfg.region,
      ...(cfg.endpoint !== undefined ? { endpoint: cfg.endpoint } : {}),
      ...(cfg.credentials !== undefined ? { credentials: cfg.credentials } : {}),
      // A health check wants a prompt answer: one retry for a dropped connection or a 5xx, not
      // the SDK's default three attempts with backoff.
      maxAttempts: 2,
    });
    this.#client = client;
    this.#ownsClient = true;
    return client;
  }

  async check(): Promise<CloudHsmClusterStatus> {
    const cfg = this.#cfg;
    const base = { clusterId: cfg.clusterId, checkedAt: new Date().toISOString() };
    const unknown = (problem: string): CloudHsmClusterStatus => ({
      ...base,
      state: "UNKNOWN",
      hsms: [],
      hsmCount: 0,
      activeHsms: 0,
      problem,
    });
    let status: CloudHsmClusterStatus;
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), cfg.timeoutMs);
    try {
      const client = await this.#clientOrCreate();
      const { DescribeClustersCommand } = await import("@aws-sdk/client-cloudhsm-v2");
      const out = await client.send(
        new DescribeClustersCommand({ Filters: { clusterIds: [cfg.clusterId] } }),
        { abortSignal: controller.signal },
      );
      const cluster = (out.Clusters ?? []).find((c) => c.ClusterId === cfg.clusterId);
      if (cluster === undefined) {
        status = unknown(
          `cluster ${cfg.clusterId} was not found${cfg.region ? ` in ${cfg.region}` : ""}; check cluster_id, region and the credentials' account`,
        );
      } else {
        const hsms: CloudHsmHsmStatus[] = (cluster.Hsms ?? []).map((h) => ({
          hsmId: h.HsmId ?? "",
          state: String(h.State ?? "UNKNOWN"),
          ...(h.StateMessage ? { stateMessage: h.StateMessage } : {}),
          ...(h.AvailabilityZone ? { availabilityZone: h.AvailabilityZone } : {}),
          ...(h.EniIp ? { eniIp: h.EniIp } : {}),
        }));
        const state = String(cluster.State ?? "UNKNOWN");
        const activeHsms = hsms.filter((h) => h.state === "ACTIVE").length;
        const summary = hsms.length === 0 ? "no HSMs" : hsms.map((h) => `${h.hsmId} ${h.state}`).join(", ");
        let problem: string | undefined;
        if (state !== "ACTIVE") {
          problem = `cluster ${cfg.clusterId} is ${state}${cluster.StateMessage ? ` (${cluster.StateMessage})` : ""}, not ACTIVE; HSMs: ${summary}`;
        } else if (activeHsms === 0) {
          problem = `cluster ${cfg.clusterId} has no ACTIVE HSM (${summary}); the PKCS#11 library has nothing to connect to`;
        }
        status = {
          ...base,
          state,
          ...(cluster.StateMessage ? { stateMessage: cluster.StateMessage } : {}),
          hsms,
          hsmCount: hsms.length,
          activeHsms,
          ...(problem !== undefined ? { problem } : {}),
        };
      }
    } catch (err) {
      const why = controller.signal.aborted ? `no answer within ${cfg.timeoutMs} ms` : errorText(err);
      status = unknown(
        `cannot describe cluster ${cfg.clusterId} through the CloudHSM API (${why}); check region, endpoint and credentials (cloudhsm:DescribeClusters)`,
      );
    } finally {
      clearTimeout(timer);
    }
    this.#last = status;
    return status;
  }

  close(): void {
    if (this.#ownsClient) this.#client?.destroy?.();
    this.#client = this.#cfg.client;
    this.#ownsClient = false;
  }
}

/**
 * Cluster awareness against a local CloudHSMV2 API double (awsJson1_1 on loopback) and the
 * PKCS#11 side through cloudhsm-sim: ACTIVE → fine; DEGRADED or no ACTIVE HSM → a warning, or an
 * error with require_active_cluster; the API's own failures; health() reporting HSM count and
 * states as they change.
 */

import { SealUnavailableError } from "@bulwark/seal";
import type { Pkcs11TraceEvent } from "@bulwark/seal-pkcs11";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import {
  type CloudHsmHealthDetails,
  type CloudHsmSeal,
  type CloudHsmSealLogger,
  createCloudHsmSeal,
} from "../src/index.js";
import { activeHsms, CloudHsmApiDouble } from "./cloudhsm-api.js";
import { SIM_LIB, type SimToken, type SoftHsm, simAvailable, startSoftHsm } from "./sim.js";

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = "true";

const available = simAvailable();
const CLUSTER = "cluster-jxhlf7644ne";
let hsm: SoftHsm;
let token: SimToken;
if (available) {
  hsm = startSoftHsm();
  token = hsm.createToken("cavium");
}
const api = new CloudHsmApiDouble();
const seals: CloudHsmSeal[] = [];

interface Recorded {
  warnings: Array<{ msg: string; fields: Record<string, unknown> | undefined }>;
  infos: string[];
  logger: CloudHsmSealLogger;
}
function recorder(): Recorded {
  const r: Recorded = {
    warnings: [],
    infos: [],
    logger: {
      warn: (msg, fields) => r.warnings.push({ msg, fields }),
      info: (msg) => r.infos.push(msg),
    },
  };
  return r;
}

function make(
  block: Record<string, unknown> = {},
  extra: { logger?: CloudHsmSealLogger; trace?: (e: Pkcs11TraceEvent) => void } = {},
): CloudHsmSeal {
  const seal = createCloudHsmSeal(
    {
      lib: SIM_LIB,
      token_label: "cavium",
      key_label: "cluster-key",
      generate_key: "true",
      cluster_id: CLUSTER,
      region: "us-east-1",
      endpoint: api.url,
      access_key: "AKIDBULWARKTEST",
      secret_key: "env://TEST_SECRET",
      ...block,
      ...extra,
    },
    {
      TEST_SECRET: "bulwark-test-secret",
      BULWARK_CLOUDHSM_PASSWORD: token.password,
      BULWARK_CLOUDHSM_USER: "crypto_user",
    },
  );
  seals.push(seal);
  return seal;
}

const details = async (seal: CloudHsmSeal) => {
  const h = await seal.health();
  return { ...h, details: h.details as unknown as CloudHsmHealthDetails };
};

beforeAll(async () => {
  await api.start();
});
beforeEach(() => {
  api.setCluster(CLUSTER, "ACTIVE", activeHsms(CLUSTER));
  api.failures.length = 0;
  api.requests.length = 0;
  api.delayMs = 0;
});
afterEach(async () => {
  await Promise.all(seals.splice(0).map((s) => s.finalize()));
});
afterAll(async () => {
  await api.stop();
  hsm?.stop();
});

describe.skipIf(!available)("CloudHSM cluster checks (CloudHSMV2 API double + cloudhsm-sim)", () => {
  it("ACTIVE cluster with ACTIVE HSMs: init without warnings; health reports the HSMs", async () => {
    const log = recorder();
    const seal = make({}, { logger: log.logger });
    await seal.init();
    expect(log.warnings).toEqual([]);
    expect(seal.clusterStatus()).toMatchObject({
      clusterId: CLUSTER,
      state: "ACTIVE",
      hsmCount: 2,
      activeHsms: 2,
    });
    const h = await details(seal);
    expect(h.healthy).toBe(true);
    expect(h.message).toBeUndefined();
    expect(h.details.cluster).toMatchObject({
      clusterId: CLUSTER,
      state: "ACTIVE",
      hsmCount: 2,
      activeHsms: 2,
      hsms: [
        { state: "ACTIVE", availabilityZone: "us-east-1a", eniIp: "10.0.0.10" },
        { state: "ACTIVE", availabilityZone: "us-east-1b" },
      ],
    });
    expect(h.details.cluster?.problem).toBeUndefined();
    // The SDK spoke awsJson1_1, signed with the configured key, filtered by the cluster id.
    expect(api.requests.length).toBeGreaterThanOrEqual(2);
    const first = api.requests[0];
    expect(first?.target).toBe("BaldrApiService.DescribeClusters");
    expect(first?.body).toEqual({ Filters: { clusterIds: [CLUSTER] } });
    expect(first?.authorization).toMatch(
      /^AWS4-HMAC-SHA256 Credential=AKIDBULWARKTEST\/\d{8}\/us-east-1\/cloudhsm\/aws4_request/,
    );
  });

  it("DEGRADED cluster: a warning at init, healthy with a warning in health()", async () => {
    api.setCluster(CLUSTER, "DEGRADED", activeHsms(CLUSTER, ["ACTIVE", "DEGRADED"]), "HSM hsm-1 unreachable");
    const log = recorder();
    const seal = make({}, { logger: log.logger });
    await seal.init();
    expect(log.warnings).toHaveLength(1);
    expect(log.warnings[0]?.msg).toMatch(
      /cluster-jxhlf7644ne is DEGRADED \(HSM hsm-1 unreachable\), not ACTIVE/,
    );
    expect(log.warnings[0]?.fields).toMatchObject({ state: "DEGRADED", hsmCount: 2, activeHsms: 1 });
    const h = await details(seal);
    expect(h.healthy).toBe(true);
    expect(h.message).toMatch(/^warning: cluster cluster-jxhlf7644ne is DEGRADED/);
    expect(h.details.cluster).toMatchObject({ state: "DEGRADED", activeHsms: 1, hsmCount: 2 });
    // The same problem is not logged again on every health check.
    expect(log.warnings).toHaveLength(1);
    expect(await seal.decrypt(await seal.encrypt(new Uint8Array([1])))).toEqual(new Uint8Array([1]));
  });

  it("DEGRADED with require_active_cluster: init fails before any PKCS#11 call", async () => {
    api.setCluster(CLUSTER, "DEGRADED", activeHsms(CLUSTER, ["ACTIVE", "DEGRADED"]));
    const events: Pkcs11TraceEvent[] = [];
    const seal = make({ require_active_cluster: "true" }, { trace: (e) => events.push(e) });
    const err = await seal.init().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SealUnavailableError);
    expect((err as Error).message).toMatch(
      /CloudHSM cluster check failed: cluster cluster-jxhlf7644ne is DEGRADED.*require_active_cluster = true/,
    );
    expect(events).toEqual([]);
    // Once the cluster recovers, a retried init succeeds.
    api.setCluster(CLUSTER, "ACTIVE", activeHsms(CLUSTER));
    await seal.init();
    expect((await details(seal)).healthy).toBe(true);
  });

  it("ACTIVE cluster without an ACTIVE HSM: warning, or error when required", async () => {
    api.setCluster(CLUSTER, "ACTIVE", activeHsms(CLUSTER, ["CREATE_IN_PROGRESS", "DELETED"]));
    const log = recorder();
    const lenient = make({}, { logger: log.logger });
    await lenient.init();
    expect(log.warnings[0]?.msg).toMatch(
      /has no ACTIVE HSM \(hsm-\w+0 CREATE_IN_PROGRESS, hsm-\w+1 DELETED\)/,
    );
    const strict = make({ require_active_cluster: true });
    await expect(strict.init()).rejects.toThrow(/has no ACTIVE HSM/);
    api.setCluster(CLUSTER, "ACTIVE", []);
    const empty = make({ require_active_cluster: true });
    await expect(empty.init()).rejects.toThrow(/has no ACTIVE HSM \(no HSMs\)/);
  });

  it("health() follows the cluster: ACTIVE → DEGRADED (unhealthy when required) → ACTIVE again", async () => {
    const log = recorder();
    const seal = make({ require_active_cluster: "true" }, { logger: log.logger });
    await seal.init();
    expect((await details(seal)).healthy).toBe(true);
    api.setCluster(CLUSTER, "UPDATE_IN_PROGRESS", activeHsms(CLUSTER, ["DEGRADED", "DELETE_IN_PROGRESS"]));
    const down = await details(seal);
    expect(down.healthy).toBe(false);
    expect(down.message).toMatch(/^CloudHSM cluster: cluster cluster-jxhlf7644ne is UPDATE_IN_PROGRESS/);
    expect(down.details.cluster).toMatchObject({ state: "UPDATE_IN_PROGRESS", activeHsms: 0, hsmCount: 2 });
    expect(down.details.roundTripMs).toBeGreaterThan(0); // the PKCS#11 round trip still ran
    expect(log.warnings).toHaveLength(1);
    api.setCluster(CLUSTER, "ACTIVE", activeHsms(CLUSTER, ["ACTIVE", "ACTIVE", "ACTIVE"]));
    const up = await details(seal);
    expect(up.healthy).toBe(true);
    expect(up.details.cluster).toMatchObject({ hsmCount: 3, activeHsms: 3 });
    expect(log.infos).toEqual(["CloudHSM cluster is ACTIVE again"]);
  });

  it("API failures: unknown cluster, service errors, timeouts, nothing listening → warning, or error when required", async () => {
    const log = recorder();
    const unknown = make({ cluster_id: "cluster-doesnotexist" }, { logger: log.logger });
    await unknown.init();
    expect(log.warnings[0]?.msg).toMatch(/cluster cluster-doesnotexist was not found in us-east-1/);

    // Access denied is not retried by the SDK.
    api.failures.push({ status: 400, type: "CloudHsmAccessDeniedException", message: "not authorized" });
    const strict = make({ require_active_cluster: "true" });
    await expect(strict.init()).rejects.toThrow(
      /cannot describe cluster cluster-jxhlf7644ne through the CloudHSM API \(CloudHsmAccessDeniedException \(HTTP 400\): not authorized\)/,
    );

    expect(api.failures).toEqual([]);

    // A 5xx is retried by the SDK: one failure is absorbed; a lasting one fails after a bounded
    // number of requests (maxAttempts 2 — this SDK build makes up to 3 requests for it).
    const internal = { status: 500, type: "CloudHsmInternalFailureException", message: "try later" };
    api.failures.push(internal);
    const retried = make({ require_active_cluster: "true" });
    await retried.init();
    expect(retried.clusterStatus()?.state).toBe("ACTIVE");
    api.failures.push(...Array.from({ length: 10 }, () => internal));
    api.requests.length = 0;
    const lasting = make({ require_active_cluster: "true" });
    await expect(lasting.init()).rejects.toThrow(/CloudHsmInternalFailureException \(HTTP 500\): try later/);
    expect(api.requests.length).toBeGreaterThanOrEqual(2);
    expect(api.requests.length).toBeLessThanOrEqual(3);
    api.failures.length = 0;

    api.delayMs = 500;
    const slow = createCloudHsmSeal(
      {
        lib: SIM_LIB,
        pin: token.pin,
        key_label: "cluster-key",
        cluster_id: CLUSTER,
        region: "us-east-1",
        endpoint: api.url,
        access_key: "A",
        secret_key: "S",
        require_active_cluster: "true",
        clusterTimeoutMs: 100,
      },
      {},
    );
    seals.push(slow);
    await expect(slow.init()).rejects.toThrow(/no answer within 100 ms/);
    api.delayMs = 0;

    const log2 = recorder();
    const nowhere = make({ endpoint: "http://127.0.0.1:9" }, { logger: log2.logger });
    await nowhere.init();
    expect(log2.warnings[0]?.msg).toMatch(/cannot describe cluster .* through the CloudHSM API/);
    const h = await details(nowhere);
    expect(h.healthy).toBe(true);
    expect(h.details.cluster?.state).toBe("UNKNOWN");
  });

  it("no cluster_id: no API calls at all", async () => {
    const seal = createCloudHsmSeal({ lib: SIM_LIB, pin: token.pin, key_label: "cluster-key" }, {});
    seals.push(seal);
    await seal.init();
    const h = await details(seal);
    expect(h.healthy).toBe(true);
    expect(h.details.cluster).toBeUndefined();
    expect(api.requests).toEqual([]);
  });
});

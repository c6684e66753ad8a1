import { runSealConformance } from "@bulwark/seal/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AwsKmsSeal } from "../src/index.js";
import { type FaultProxy, startFaultProxy } from "./fault-proxy.js";
import { type LocalKms, localKmsAvailability, localSealOptions, startLocalKms } from "./local-kms.js";

const { available } = localKmsAvailability();

describe.skipIf(!available)("AwsKmsSeal against local-kms", () => {
  let kms: LocalKms;
  // For the abort tests: KMS calls counted, and held back (a slow KMS), by a proxy in front.
  let proxy: FaultProxy;
  beforeAll(async () => {
    kms = await startLocalKms();
    proxy = await startFaultProxy(kms.endpoint);
  }, 30_000);
  afterAll(async () => {
    await proxy?.stop();
    await kms?.stop();
  });

  const factory =
    (extra: { encryptionContext?: Record<string, string> } = {}) =>
    async () => ({
      seal: new AwsKmsSeal(localSealOptions(kms, extra)),
    });

  it("local-kms is up and the alias resolves to the primary key", async () => {
    const seal = await factory()().then((f) => f.seal);
    await seal.init();
    expect(seal.keyId()).toBe(kms.primary.arn);
    await seal.finalize();
  });

  // Envelope mode: every size goes through one KMS Encrypt of the 32-byte data key.
  runSealConformance("AwsKmsSeal (alias, local-kms)", factory());
  runSealConformance(
    "AwsKmsSeal (alias, local-kms behind a proxy)",
    async () => ({
      seal: new AwsKmsSeal(localSealOptions(kms, { endpoint: proxy.endpoint })),
      provider: {
        calls: () => proxy.calls.length,
        stall: async () => {
          proxy.inject("*", { kind: "delay", ms: 60_000 }, Number.POSITIVE_INFINITY);
          return async () => proxy.clear();
        },
      },
    }),
    { maxPlaintext: 1024, concurrency: 8 },
  );
  runSealConformance(
    "AwsKmsSeal (key ARN, encryption context, local-kms)",
    async () => ({
      seal: new AwsKmsSeal(
        localSealOptions(kms, {
          kmsKeyId: kms.secondary.arn,
          encryptionContext: { cluster: "bulwark-test", purpose: "seal" },
        }),
      ),
    }),
    { maxPlaintext: 64 * 1024, concurrency: 16 },
  );
});

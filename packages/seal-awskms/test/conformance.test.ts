import { runSealConformance } from "@bulwark/seal/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AwsKmsSeal } from "../src/index.js";
import { LOCAL_CREDENTIALS, type LocalKms, localKmsAvailability, startLocalKms } from "./local-kms.js";

const { available } = localKmsAvailability();

describe.skipIf(!available)("AwsKmsSeal against local-kms", () => {
  let kms: LocalKms;
  beforeAll(async () => {
    kms = await startLocalKms();
  }, 30_000);
  afterAll(async () => {
    await kms?.stop();
  });

  const factory =
    (extra: { encryptionContext?: Record<string, string> } = {}) =>
    async () => ({
      seal: new AwsKmsSeal({
        kmsKeyId: kms.alias,
        region: kms.region,
        endpoint: kms.endpoint,
        ...LOCAL_CREDENTIALS,
        healthCheckIntervalMs: 0,
        ...extra,
      }),
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
    "AwsKmsSeal (key ARN, encryption context, local-kms)",
    async () => ({
      seal: new AwsKmsSeal({
        kmsKeyId: kms.secondary.arn,
        region: kms.region,
        endpoint: kms.endpoint,
        ...LOCAL_CREDENTIALS,
        encryptionContext: { cluster: "bulwark-test", purpose: "seal" },
        healthCheckIntervalMs: 0,
      }),
    }),
    { maxPlaintext: 64 * 1024, concurrency: 16 },
  );
});

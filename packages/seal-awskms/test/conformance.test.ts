import { runSealConformance } from "@bulwark/seal/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AwsKmsSeal } from "../src/index.js";
import { type LocalKms, localKmsAvailability, localSealOptions, startLocalKms } from "./local-kms.js";

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

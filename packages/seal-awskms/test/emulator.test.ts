/** Behaviour against a real KMS emulator (local-kms): key states, aliases, contexts, bad config. */
import { createServer } from "node:net";
import { EnableKeyCommand, EncryptCommand, UpdateAliasCommand } from "@aws-sdk/client-kms";
import { createBlobInfo, SealConfigError } from "@bulwark/seal";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import {
  AWSKMS_MECHANISM_DIRECT,
  AwsKmsDecryptError,
  AwsKmsKeyNotFoundError,
  AwsKmsKeyStateError,
  AwsKmsSeal,
  type AwsKmsSealOptions,
  AwsKmsUnavailableError,
  createAwsKmsSeal,
} from "../src/index.js";
import { rejection } from "./helpers.js";
import {
  LOCAL_CREDENTIALS,
  type LocalKms,
  localKmsAvailability,
  localSealOptions,
  startLocalKms,
} from "./local-kms.js";

const { available } = localKmsAvailability();
const utf8 = (s: string) => new TextEncoder().encode(s);
const text = (b: Uint8Array) => new TextDecoder().decode(b);

/** A loopback port with nothing listening on it. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address() as { port: number };
  await new Promise<void>((r) => server.close(() => r()));
  return port;
}

describe.skipIf(!available)("AwsKmsSeal against local-kms: keys, aliases, contexts, config", () => {
  let kms: LocalKms;
  const open: AwsKmsSeal[] = [];
  const seal = (extra: Partial<AwsKmsSealOptions> = {}) => {
    const s = new AwsKmsSeal(localSealOptions(kms, extra));
    open.push(s);
    return s;
  };

  beforeAll(async () => {
    kms = await startLocalKms();
  }, 30_000);
  afterAll(async () => {
    for (const s of open) await s.finalize();
    await kms?.stop();
  });

  it("alias re-pointed with UpdateAlias: new blobs carry the new ARN, old blobs still decrypt", async () => {
    const s = seal();
    await s.init();
    expect(s.keyId()).toBe(kms.primary.arn);
    const old = await s.encrypt(utf8("before"));
    expect(old.keyInfo?.keyId).toBe(kms.primary.arn);
    await kms.admin.send(new UpdateAliasCommand({ AliasName: kms.alias, TargetKeyId: kms.secondary.id }));
    try {
      const fresh = await s.encrypt(utf8("after"));
      expect(fresh.keyInfo?.keyId).toBe(kms.secondary.arn);
      expect(s.keyId()).toBe(kms.secondary.arn);
      expect(text(await s.decrypt(old))).toBe("before");
      expect(text(await s.decrypt(fresh))).toBe("after");
      // A new seal resolves the alias to the new key at init.
      const again = seal();
      await again.init();
      expect(again.keyId()).toBe(kms.secondary.arn);
      expect(text(await again.decrypt(old))).toBe("before");
    } finally {
      await kms.admin.send(new UpdateAliasCommand({ AliasName: kms.alias, TargetKeyId: kms.primary.id }));
    }
  });

  it("a disabled key fails init with a clear message; enabled again, init succeeds", async () => {
    const s = seal({ kmsKeyId: kms.disabled.id });
    const err = await rejection(s.init());
    expect(err).toBeInstanceOf(AwsKmsKeyStateError);
    expect(err.message).toContain(`KMS key ${kms.disabled.arn} (kms_key_id ${kms.disabled.id}) is disabled`);
    await kms.admin.send(new EnableKeyCommand({ KeyId: kms.disabled.id }));
    await s.init();
    expect(s.keyId()).toBe(kms.disabled.arn);
  });

  it("decrypting a blob whose key was disabled since says the key is disabled", async () => {
    const s = seal({ kmsKeyId: kms.secondary.arn });
    await s.init();
    const blob = await s.encrypt(utf8("x"));
    const { DisableKeyCommand } = await import("@aws-sdk/client-kms");
    await kms.admin.send(new DisableKeyCommand({ KeyId: kms.secondary.id }));
    try {
      const err = await rejection(s.decrypt(blob));
      // Real KMS answers DisabledException; local-kms answers AccessDeniedException, which the
      // seal then explains with one DescribeKey of the blob's key.
      expect(err).toBeInstanceOf(AwsKmsKeyStateError);
      expect((err as AwsKmsKeyStateError).keyState).toBe("Disabled");
      expect(["DisabledException", "AccessDeniedException"]).toContain(
        (err as AwsKmsKeyStateError).kms?.awsErrorName,
      );
      expect(err.message).toContain(`KMS key ${kms.secondary.arn} is disabled`);
    } finally {
      await kms.admin.send(new EnableKeyCommand({ KeyId: kms.secondary.id }));
    }
    expect(text(await s.decrypt(blob))).toBe("x");
  });

  it("a wrong encryption context is InvalidCiphertextException, surfaced as AwsKmsDecryptError", async () => {
    const a = seal({ encryptionContext: { tenant: "a" } });
    const b = seal({ encryptionContext: { tenant: "b" } });
    const none = seal();
    await Promise.all([a.init(), b.init(), none.init()]);
    const blob = await a.encrypt(utf8("for tenant a"));
    for (const other of [b, none]) {
      const err = await rejection(other.decrypt(blob));
      expect(err).toBeInstanceOf(AwsKmsDecryptError);
      expect((err as AwsKmsDecryptError).kms.awsErrorName).toBe("InvalidCiphertextException");
      expect(err.message).toMatch(/encryption context differs/);
    }
    expect(text(await a.decrypt(blob))).toBe("for tenant a");
  });

  it("the encryption context from a Vault-style block reaches KMS", async () => {
    const fromConfig = createAwsKmsSeal(
      {
        kms_key_id: kms.alias,
        region: kms.region,
        endpoint: kms.endpoint,
        access_key: LOCAL_CREDENTIALS.accessKeyId,
        secret_key: LOCAL_CREDENTIALS.secretAccessKey,
        encryption_context: "tenant=a",
        health_check_enabled: "false",
      },
      {},
    );
    open.push(fromConfig);
    const typed = seal({ encryptionContext: { tenant: "a" } });
    await Promise.all([fromConfig.init(), typed.init()]);
    expect(text(await typed.decrypt(await fromConfig.encrypt(utf8("same context"))))).toBe("same context");
  });

  it("reads mechanism 0 blobs made by a raw KMS Encrypt (Vault's WithoutEnvelope)", async () => {
    const s = seal();
    await s.init();
    const raw = await kms.admin.send(new EncryptCommand({ KeyId: kms.alias, Plaintext: utf8("direct") }));
    const blob = createBlobInfo({
      ciphertext: raw.CiphertextBlob ?? new Uint8Array(0),
      keyInfo: { mechanism: AWSKMS_MECHANISM_DIRECT, keyId: raw.KeyId ?? "" },
    });
    expect(raw.KeyId).toBe(kms.primary.arn);
    expect(text(await s.decrypt(blob))).toBe("direct");
  });

  it("an unknown key is a key-not-found error at init", async () => {
    const err = await rejection(seal({ kmsKeyId: "alias/does-not-exist" }).init());
    expect(err).toBeInstanceOf(AwsKmsKeyNotFoundError);
    expect(err.message).toMatch(
      /KMS key alias\/does-not-exist not found \(endpoint http:\/\/127\.0\.0\.1:\d+, region eu-west-2\)/,
    );
  });

  it("bad config: missing key id and unknown region format fail when the seal is built", () => {
    const missing = (() => {
      try {
        createAwsKmsSeal({ region: kms.region, endpoint: kms.endpoint }, {});
      } catch (e) {
        return e;
      }
    })();
    expect(missing).toBeInstanceOf(SealConfigError);
    expect((missing as SealConfigError).field).toBe("kms_key_id");
    expect(() => createAwsKmsSeal({ kms_key_id: kms.alias, region: "EU West 2" }, {})).toThrow(
      /invalid seal configuration `region`: "EU West 2" is not an AWS region name/,
    );
  });

  it("bad config: an unreachable endpoint fails init with a clear error after the bounded retries", async () => {
    const port = await closedPort();
    const s = seal({ endpoint: `http://127.0.0.1:${port}`, maxRetries: 1, retryBaseDelayMs: 10 });
    const err = await rejection(s.init());
    expect(err).toBeInstanceOf(AwsKmsUnavailableError);
    expect((err as AwsKmsUnavailableError).kms).toMatchObject({
      operation: "DescribeKey",
      awsErrorName: "ECONNREFUSED",
      attempts: 2,
    });
    expect(err.message).toContain(
      `cannot reach AWS KMS (endpoint http://127.0.0.1:${port}, region eu-west-2) for DescribeKey`,
    );
    expect(err.message).not.toContain(LOCAL_CREDENTIALS.secretAccessKey);
  });

  it("without a configured region: the SDK's AWS_REGION, else us-east-1", async () => {
    const regionless = () => {
      const s = new AwsKmsSeal({
        kmsKeyId: kms.alias,
        endpoint: kms.endpoint,
        ...LOCAL_CREDENTIALS,
        healthCheckIntervalMs: 0,
      });
      open.push(s);
      return s;
    };
    try {
      vi.stubEnv("AWS_REGION", "ap-south-1");
      const fromEnv = regionless();
      await fromEnv.init();
      expect(fromEnv.metadata().region).toBe("ap-south-1");
      vi.stubEnv("AWS_REGION", undefined);
      vi.stubEnv("AWS_CONFIG_FILE", "/nonexistent/bulwark-aws-config");
      vi.stubEnv("AWS_PROFILE", undefined);
      const fallback = regionless();
      await fallback.init();
      expect(fallback.metadata().region).toBe("us-east-1");
    } finally {
      vi.unstubAllEnvs();
    }
  });

  it("health() after init is healthy, and checkHealth() reaches KMS", async () => {
    const s = seal({ healthCheckIntervalMs: 600_000 });
    await s.init();
    expect(await s.health()).toMatchObject({ healthy: true, keyId: kms.primary.arn });
    const fresh = await s.checkHealth();
    expect(fresh.healthy).toBe(true);
    expect(fresh.details).toMatchObject({ region: kms.region, endpoint: kms.endpoint, kmsCallsPerDay: 288 });
  });
});

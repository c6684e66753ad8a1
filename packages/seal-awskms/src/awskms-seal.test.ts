import { inspect } from "node:util";
import {
  createBlobInfo,
  decodeBlobInfo,
  encodeBlobInfo,
  SealDecryptError,
  SealKeyNotFoundError,
  SealUnavailableError,
} from "@bulwark/seal";
import { afterEach, describe, expect, it, vi } from "vitest";
import { awsError, FakeKms, hang, networkError } from "../test/fake-kms.js";
import { rejection } from "../test/helpers.js";
import {
  AWSKMS_MECHANISM_DIRECT,
  AwsKmsAccessDeniedError,
  AwsKmsDecryptError,
  AwsKmsError,
  AwsKmsKeyNotFoundError,
  AwsKmsKeyStateError,
  AwsKmsSeal,
  type AwsKmsSealOptions,
  AwsKmsUnavailableError,
  createAwsKmsSeal,
  healthCheckCallsPerDay,
} from "./index.js";
import { backoffDelayMs } from "./retry.js";

const PRIMARY = "11111111-2222-4333-8444-555555555555";
const SECONDARY = "66666666-7777-4888-9999-000000000000";
const SECRET = "FAKE-SECRET-ACCESS-KEY-do-not-print";
const utf8 = (s: string) => new TextEncoder().encode(s);

function logger() {
  return { debug: vi.fn(), info: vi.fn(), warn: vi.fn(), error: vi.fn() };
}

function setup(options: Partial<AwsKmsSealOptions> = {}) {
  const kms = new FakeKms();
  const primary = kms.addKey(PRIMARY);
  const secondary = kms.addKey(SECONDARY);
  kms.setAlias("alias/vault", PRIMARY);
  const log = logger();
  const seal = new AwsKmsSeal({
    kmsKeyId: "alias/vault",
    region: "us-west-2",
    accessKeyId: "AKIDFAKE",
    secretAccessKey: SECRET,
    client: kms,
    logger: log,
    retryBaseDelayMs: 1,
    retryMaxDelayMs: 4,
    healthCheckIntervalMs: 0,
    ...options,
  });
  return { kms, seal, primary, secondary, log };
}

const seals: AwsKmsSeal[] = [];
afterEach(async () => {
  for (const s of seals.splice(0)) await s.finalize();
});

describe("init", () => {
  it("resolves the alias to the key ARN with DescribeKey, then proves Encrypt and Decrypt (3 KMS calls)", async () => {
    const { seal, kms, primary } = setup();
    seals.push(seal);
    expect(seal.keyId()).toBe("alias/vault");
    await seal.init();
    expect(seal.keyId()).toBe(primary);
    expect([kms.count("describeKey"), kms.count("encrypt"), kms.count("decrypt")]).toEqual([1, 1, 1]);
    expect(seal.metadata()).toMatchObject({
      configuredKeyId: "alias/vault",
      keyArn: primary,
      region: "us-west-2",
    });
    expect(JSON.stringify(seal.metadata())).not.toContain(SECRET);
  });

  it("a disabled key fails fast: the message says it is disabled and how to enable it", async () => {
    const { seal, kms, primary } = setup();
    kms.setState(PRIMARY, "Disabled");
    const err = await rejection(seal.init());
    expect(err).toBeInstanceOf(AwsKmsKeyStateError);
    expect(err).toBeInstanceOf(SealUnavailableError);
    expect((err as AwsKmsKeyStateError).keyState).toBe("Disabled");
    expect(err.message).toContain(`KMS key ${primary} (kms_key_id alias/vault) is disabled`);
    expect(err.message).toContain("aws kms enable-key");
    expect(kms.count("encrypt")).toBe(0);
  });

  it("a key pending deletion names the date and the way back", async () => {
    const { seal, kms } = setup();
    kms.setState(PRIMARY, "PendingDeletion");
    const key = [...kms.keys.values()][0];
    if (key) key.metadata.DeletionDate = new Date("2031-01-02T03:04:05Z");
    const err = await rejection(seal.init());
    expect(err.message).toMatch(/scheduled for deletion on 2031-01-02T03:04:05.000Z/);
    expect(err.message).toMatch(/cancel-key-deletion/);
  });

  it("other unusable states and key kinds are refused with the reason", async () => {
    for (const [meta, pattern] of [
      [{ KeyState: "PendingImport", Enabled: false }, /import-key-material/],
      [{ KeyState: "Unavailable", Enabled: false }, /custom key store/],
      [{ KeySpec: "RSA_2048" }, /RSA_2048 key.*SYMMETRIC_DEFAULT/],
      [{ KeyUsage: "GENERATE_VERIFY_MAC" }, /GENERATE_VERIFY_MAC.*ENCRYPT_DECRYPT/],
    ] as const) {
      const kms = new FakeKms();
      kms.addKey(PRIMARY, meta);
      const seal = new AwsKmsSeal({
        kmsKeyId: PRIMARY,
        region: "us-west-2",
        client: kms,
        healthCheckIntervalMs: 0,
      });
      const err = await rejection(seal.init());
      expect(err).toBeInstanceOf(AwsKmsKeyStateError);
      expect(err.message).toMatch(pattern);
    }
  });

  it("an unknown key is a key-not-found error with the AWS error name and request id", async () => {
    const { seal } = setup({ kmsKeyId: "alias/missing" });
    const err = await rejection(seal.init());
    expect(err).toBeInstanceOf(AwsKmsKeyNotFoundError);
    expect(err).toBeInstanceOf(SealKeyNotFoundError);
    const details = (err as AwsKmsKeyNotFoundError).kms;
    expect(details.awsErrorName).toBe("NotFoundException");
    expect(err.message).toContain(`request id ${details.requestId}`);
    expect(err.message).toMatch(/check kms_key_id, the region and the account/);
  });

  it("AccessDenied on DescribeKey names the permission and the fix, and is not retried", async () => {
    const { seal, kms } = setup();
    kms.fail(
      "describeKey",
      awsError("AccessDeniedException", "User: arn:aws:iam::123456789012:user/x is not authorized"),
    );
    const err = await rejection(seal.init());
    expect(err).toBeInstanceOf(AwsKmsAccessDeniedError);
    expect(err.message).toMatch(/^kms:DescribeKey denied for alias\/vault/);
    expect(err.message).toContain("grant kms:DescribeKey, kms:Encrypt and kms:Decrypt");
    expect(kms.count("describeKey")).toBe(1);
  });

  it("AccessDenied on the self-test's Encrypt is caught at init (no half-initialised seal)", async () => {
    const { seal, kms } = setup();
    kms.fail("encrypt", awsError("AccessDeniedException"));
    const err = await rejection(seal.init());
    expect(err.message).toMatch(/^kms:Encrypt denied/);
    await expect(seal.encrypt(utf8("x"))).rejects.toThrow(/not initialized/);
  });

  it("a failed init can be retried once the key is fixed", async () => {
    const { seal, kms, primary } = setup();
    seals.push(seal);
    kms.setState(PRIMARY, "Disabled");
    await rejection(seal.init());
    kms.setState(PRIMARY, "Enabled");
    await seal.init();
    expect(seal.keyId()).toBe(primary);
  });

  it("aborting init stops a hanging DescribeKey with the caller's reason", async () => {
    const { seal, kms } = setup({ requestTimeoutMs: 60_000 });
    kms.fail("describeKey", hang);
    const ac = new AbortController();
    const p = seal.init(ac.signal);
    setTimeout(() => ac.abort(new Error("shutting down")), 20);
    await expect(p).rejects.toThrow("shutting down");
  });

  it("malformed KMS answers are errors, not a seal with no key", async () => {
    const a = setup();
    const key = [...a.kms.keys.values()][0];
    if (key) key.metadata.Arn = "";
    expect((await rejection(a.seal.init())).message).toMatch(/returned no key ARN/);

    const b = setup();
    b.kms.mutateEncrypt = (out) => {
      out.KeyId = undefined;
    };
    const err = await rejection(b.seal.init());
    expect(err).toBeInstanceOf(AwsKmsError);
    expect(err.message).toMatch(/returned no ciphertext or key id/);
  });
});

describe("encrypt and decrypt", () => {
  it("writes Vault's envelope: mechanism 1, 12-byte IV, ARN key id, KMS-wrapped data key", async () => {
    const { seal, kms, primary } = setup();
    seals.push(seal);
    await seal.init();
    const blob = await seal.encrypt(utf8("root key"));
    expect(blob.keyInfo).toMatchObject({ mechanism: 1, keyId: primary });
    expect(blob.iv.length).toBe(12);
    expect(blob.ciphertext.length).toBe(8 + 16);
    expect(blob.keyInfo?.wrappedKey.length).toBeGreaterThan(32);
    const sent = kms.calls.filter((c) => c.op === "encrypt").at(-1)?.input as { KeyId: string };
    expect(sent.KeyId).toBe("alias/vault");
    expect(new TextDecoder().decode(await seal.decrypt(blob))).toBe("root key");
    // Decrypt lets KMS find the key from the ciphertext (no KeyId), as Vault does.
    const dec = kms.calls.filter((c) => c.op === "decrypt").at(-1)?.input as { KeyId?: string };
    expect(dec.KeyId).toBeUndefined();
  });

  it("follows an alias re-pointed to another key: new blobs carry the new ARN, old ones still decrypt", async () => {
    const { seal, kms, primary, secondary, log } = setup();
    seals.push(seal);
    await seal.init();
    const old = await seal.encrypt(utf8("old"));
    kms.setAlias("alias/vault", SECONDARY);
    expect(seal.keyId()).toBe(primary);
    const fresh = await seal.encrypt(utf8("new"));
    expect(fresh.keyInfo?.keyId).toBe(secondary);
    expect(seal.keyId()).toBe(secondary);
    expect(log.info).toHaveBeenCalledWith("AWS KMS seal key changed", { from: primary, to: secondary });
    expect(new TextDecoder().decode(await seal.decrypt(old))).toBe("old");
  });

  it("concurrent encrypts during an alias re-point (KMS answers old and new key in turn) all succeed", async () => {
    const { seal, kms, primary, secondary } = setup();
    seals.push(seal);
    await seal.init();
    // KMS alias updates are eventually consistent: answers name the new and the old key in turn.
    const fake = kms.encrypt.bind(kms);
    const answers: Array<() => void> = [];
    let n = 0;
    kms.encrypt = async (input, options) => {
      const out = await fake({ ...input, KeyId: n++ % 2 === 0 ? SECONDARY : PRIMARY }, options);
      // Hold every answer until all have arrived, then deliver them together.
      await new Promise<void>((resolve) => {
        answers.push(resolve);
        if (answers.length === 4) for (const r of answers) r();
      });
      return out;
    };
    const blobs = await Promise.all(["a", "b", "c", "d"].map((v) => seal.encrypt(utf8(v))));
    expect(blobs.map((b) => b.keyInfo?.keyId).sort()).toEqual(
      [primary, primary, secondary, secondary].sort(),
    );
    const back = await Promise.all(blobs.map((b) => seal.decrypt(b)));
    expect(back.map((b) => new TextDecoder().decode(b))).toEqual(["a", "b", "c", "d"]);
  });

  it("a blob whose key id was swapped for another existing key is refused", async () => {
    const { seal, secondary } = setup();
    seals.push(seal);
    await seal.init();
    const blob = decodeBlobInfo(encodeBlobInfo(await seal.encrypt(utf8("x"))));
    if (blob.keyInfo) blob.keyInfo.keyId = secondary;
    const err = await rejection(seal.decrypt(blob));
    expect(err).toBeInstanceOf(SealDecryptError);
    expect(err.message).toMatch(/records KMS key .* but its ciphertext belongs to/);
  });

  it("a multi-Region key's replica in this Region decrypts what the primary Region wrote (DR restore), but not another key", async () => {
    const MRK = "mrk-0123456789abcdef0123456789abcdef";
    const { seal, kms } = setup({ kmsKeyId: MRK });
    kms.addKey(MRK);
    kms.addKey("mrk-ffffffffffffffffffffffffffffffff");
    seals.push(seal);
    await seal.init();
    // Written in us-east-1 with the primary key; this node runs in us-west-2 with its replica,
    // which KMS Decrypt reports under the replica's own ARN.
    const blob = decodeBlobInfo(encodeBlobInfo(await seal.encrypt(utf8("replicated"))));
    if (blob.keyInfo) blob.keyInfo.keyId = `arn:aws:kms:us-east-1:123456789012:key/${MRK}`;
    expect(new TextDecoder().decode(await seal.decrypt(blob))).toBe("replicated");
    for (const other of [
      "arn:aws:kms:us-east-1:123456789012:key/mrk-ffffffffffffffffffffffffffffffff",
      `arn:aws:kms:us-east-1:999999999999:key/${MRK}`,
    ]) {
      if (blob.keyInfo) blob.keyInfo.keyId = other;
      expect(await rejection(seal.decrypt(blob)), other).toBeInstanceOf(SealDecryptError);
    }
  });

  it("reads mechanism 0 (direct KMS encryption) blobs, and refuses AAD for them", async () => {
    const { seal, kms, primary } = setup();
    seals.push(seal);
    await seal.init();
    const direct = await kms.encrypt(
      { KeyId: primary, Plaintext: utf8("direct") },
      { abortSignal: new AbortController().signal },
    );
    const blob = createBlobInfo({
      ciphertext: direct.CiphertextBlob ?? new Uint8Array(0),
      keyInfo: { mechanism: AWSKMS_MECHANISM_DIRECT, keyId: primary },
    });
    expect(new TextDecoder().decode(await seal.decrypt(blob))).toBe("direct");
    const err = await rejection(seal.decrypt(blob, { aad: utf8("path") }));
    expect(err.message).toMatch(/mechanism 0.*no AAD binding/);
  });

  it("unknown mechanisms and damaged envelopes are decrypt errors", async () => {
    const { seal, primary } = setup();
    seals.push(seal);
    await seal.init();
    const blob = await seal.encrypt(utf8("x"));
    type Blob = ReturnType<typeof decodeBlobInfo>;
    type KeyInfo = NonNullable<Blob["keyInfo"]>;
    const bad = (edit: (b: Blob, k: KeyInfo) => void) => {
      const copy = decodeBlobInfo(encodeBlobInfo(blob));
      if (copy.keyInfo === undefined) throw new Error("blob without keyInfo");
      edit(copy, copy.keyInfo);
      return seal.decrypt(copy);
    };
    const mechanism = await rejection(
      bad((_, k) => {
        k.mechanism = 7;
      }),
    );
    expect(mechanism.message).toMatch(/invalid mechanism 7/);
    const iv = await rejection(
      bad((b) => {
        b.iv = new Uint8Array(16);
      }),
    );
    expect(iv.message).toMatch(/16-byte IV/);
    const empty = await rejection(
      bad((_, k) => {
        k.wrappedKey = new Uint8Array(0);
      }),
    );
    expect(empty.message).toMatch(/no wrapped data key/);
    const wrong = await rejection(
      bad((_, k) => {
        k.wrappedKey = k.wrappedKey.map((x, i, all) => (i === all.length - 1 ? x ^ 1 : x));
      }),
    );
    expect(wrong).toBeInstanceOf(AwsKmsDecryptError);
    expect((wrong as AwsKmsDecryptError).keyId).toBe(primary);
  });

  it("another encryption context cannot decrypt: InvalidCiphertext surfaces as AwsKmsDecryptError", async () => {
    const kms = new FakeKms();
    kms.addKey(PRIMARY);
    const a = new AwsKmsSeal({
      kmsKeyId: PRIMARY,
      client: kms,
      encryptionContext: { tenant: "a" },
      healthCheckIntervalMs: 0,
    });
    const b = new AwsKmsSeal({
      kmsKeyId: PRIMARY,
      client: kms,
      encryptionContext: { tenant: "b" },
      healthCheckIntervalMs: 0,
    });
    seals.push(a, b);
    await a.init();
    await b.init();
    const blob = await a.encrypt(utf8("tenant a"));
    const sent = kms.calls.filter((c) => c.op === "encrypt").at(-1)?.input as { EncryptionContext?: unknown };
    expect(sent.EncryptionContext).toEqual({ tenant: "a" });
    const err = await rejection(b.decrypt(blob));
    expect(err).toBeInstanceOf(AwsKmsDecryptError);
    expect(err.code).toBe("decrypt_failed");
    expect((err as AwsKmsDecryptError).kms.awsErrorName).toBe("InvalidCiphertextException");
    expect(err.message).toMatch(/encryption context differs/);
  });

  it("the DescribeKey that explains an AccessDenied has a deadline even when the client ignores its signal", async () => {
    const { seal, kms } = setup({ requestTimeoutMs: 50 });
    seals.push(seal);
    await seal.init();
    const blob = await seal.encrypt(utf8("x"));
    kms.fail("decrypt", awsError("AccessDeniedException", "denied"));
    kms.fail(
      "describeKey",
      (() => new Promise<never>(() => undefined)) as (s: AbortSignal) => Promise<never>,
    );
    const started = performance.now();
    const err = await rejection(seal.decrypt(blob));
    expect(err).toBeInstanceOf(AwsKmsAccessDeniedError);
    expect(performance.now() - started).toBeLessThan(2_000);
  }, 5_000);

  it("AccessDenied on Decrypt for a key that is not Enabled is explained by one DescribeKey", async () => {
    const { seal, kms, primary } = setup();
    seals.push(seal);
    await seal.init();
    const blob = await seal.encrypt(utf8("x"));
    kms.setState(PRIMARY, "PendingDeletion");
    kms.fail(
      "decrypt",
      awsError("AccessDeniedException", "The ciphertext refers to a key that does not exist"),
    );
    const before = kms.count("describeKey");
    const err = await rejection(seal.decrypt(blob));
    expect(err).toBeInstanceOf(AwsKmsKeyStateError);
    expect((err as AwsKmsKeyStateError).keyState).toBe("PendingDeletion");
    expect((err as AwsKmsKeyStateError).kms?.awsErrorName).toBe("AccessDeniedException");
    expect(err.message).toContain(`KMS key ${primary} is scheduled for deletion`);
    expect(kms.count("describeKey") - before).toBe(1);
    // DescribeKey denied too: the Decrypt error stands.
    kms.fail("decrypt", awsError("AccessDeniedException"));
    kms.fail("describeKey", awsError("AccessDeniedException"));
    expect(await rejection(seal.decrypt(blob))).toBeInstanceOf(AwsKmsAccessDeniedError);
  });

  it("a data key of the wrong length from KMS is refused", async () => {
    const { seal, kms, primary } = setup();
    seals.push(seal);
    await seal.init();
    const short = await kms.encrypt(
      { KeyId: primary, Plaintext: new Uint8Array(16) },
      { abortSignal: new AbortController().signal },
    );
    const blob = createBlobInfo({
      ciphertext: new Uint8Array(20),
      iv: new Uint8Array(12),
      keyInfo: { mechanism: 1, keyId: primary, wrappedKey: short.CiphertextBlob ?? new Uint8Array(0) },
    });
    expect((await rejection(seal.decrypt(blob))).message).toMatch(/16-byte data key, expected 32/);
  });
});

describe("retries", () => {
  it("retries throttling, KMS internal errors and connection errors, then succeeds", async () => {
    const { seal, kms } = setup({ maxRetries: 5 });
    seals.push(seal);
    await seal.init();
    const before = kms.count("encrypt");
    kms.fail(
      "encrypt",
      awsError("ThrottlingException", "Rate exceeded"),
      awsError("KMSInternalException"),
      awsError("KeyUnavailableException"),
      awsError("DependencyTimeoutException"),
      networkError("ECONNRESET"),
    );
    const blob = await seal.encrypt(utf8("eventually"));
    expect(kms.count("encrypt") - before).toBe(6);
    expect(new TextDecoder().decode(await seal.decrypt(blob))).toBe("eventually");
  });

  it("gives up after max_retries + 1 attempts with a clear, typed error", async () => {
    const { seal, kms } = setup({ maxRetries: 2 });
    seals.push(seal);
    await seal.init();
    const before = kms.count("decrypt");
    const blob = await seal.encrypt(utf8("x"));
    kms.fail("decrypt", ...Array.from({ length: 3 }, () => awsError("ThrottlingException", "Rate exceeded")));
    const err = await rejection(seal.decrypt(blob));
    expect(err).toBeInstanceOf(AwsKmsUnavailableError);
    expect(err.code).toBe("unavailable");
    expect((err as AwsKmsUnavailableError).kms).toMatchObject({
      operation: "Decrypt",
      awsErrorName: "ThrottlingException",
      attempts: 3,
    });
    expect(err.message).toMatch(
      /KMS Decrypt kept failing transiently \(ThrottlingException, request id req-[0-9a-f]+, 3 attempts\)/,
    );
    expect(err.message).toMatch(/raise max_retries/);
    expect(kms.count("decrypt") - before).toBe(3);
  });

  it("a request that never answers times out and is retried", async () => {
    const { seal, kms } = setup({ requestTimeoutMs: 50, maxRetries: 1 });
    seals.push(seal);
    await seal.init();
    kms.fail("encrypt", hang);
    const started = performance.now();
    await seal.encrypt(utf8("after a timeout"));
    expect(performance.now() - started).toBeGreaterThanOrEqual(45);
    kms.fail("encrypt", hang, hang);
    const err = await rejection(seal.encrypt(utf8("two timeouts")));
    expect(err.message).toMatch(/KMS Encrypt timed out \(region us-west-2\) \(Timeout, 2 attempts\)/);
  });

  it("an injected client that ignores the abort signal still times out (the backstop is a deadline, not a hint)", async () => {
    const { seal, kms } = setup({ requestTimeoutMs: 50, maxRetries: 1 });
    seals.push(seal);
    await seal.init();
    const deaf = () => new Promise<never>(() => undefined);
    kms.fail("encrypt", deaf);
    await seal.encrypt(utf8("after one deaf attempt"));
    kms.fail("encrypt", deaf, deaf);
    const started = performance.now();
    const err = await rejection(seal.encrypt(utf8("two deaf attempts")));
    expect(err).toBeInstanceOf(AwsKmsUnavailableError);
    expect(err.message).toMatch(/KMS Encrypt timed out \(region us-west-2\) \(Timeout, 2 attempts\)/);
    expect(performance.now() - started).toBeLessThan(2_000);
  }, 5_000);

  it("an injected client may answer synchronously (a KmsApi written without async)", async () => {
    const { seal, kms } = setup();
    seals.push(seal);
    await seal.init();
    const blob = await seal.encrypt(utf8("sync"));
    const answer = await kms.decrypt({ CiphertextBlob: blob.keyInfo?.wrappedKey as Uint8Array }, {});
    kms.decrypt = (() => answer) as unknown as typeof kms.decrypt;
    expect(new TextDecoder().decode(await seal.decrypt(blob))).toBe("sync");
  });

  it("does not retry what retrying cannot fix", async () => {
    for (const [name, cls] of [
      ["AccessDeniedException", AwsKmsAccessDeniedError],
      ["DisabledException", AwsKmsKeyStateError],
      ["KMSInvalidStateException", AwsKmsKeyStateError],
      ["NotFoundException", AwsKmsKeyNotFoundError],
      ["InvalidCiphertextException", AwsKmsDecryptError],
      ["IncorrectKeyException", AwsKmsDecryptError],
      ["ValidationException", AwsKmsError],
      ["UnrecognizedClientException", AwsKmsAccessDeniedError],
    ] as const) {
      const { seal, kms } = setup({ maxRetries: 5 });
      seals.push(seal);
      await seal.init();
      const blob = await seal.encrypt(utf8("x"));
      const before = kms.count("decrypt");
      kms.fail("decrypt", awsError(name));
      const err = await rejection(seal.decrypt(blob));
      expect(err, name).toBeInstanceOf(cls);
      expect(kms.count("decrypt") - before, name).toBe(1);
      expect(err.message, name).toContain(name);
    }
  });

  it("backoff is exponential, capped and jittered within [ceiling/2, ceiling]", () => {
    const policy = {
      maxRetries: 5,
      requestTimeoutMs: 1000,
      baseDelayMs: 100,
      maxDelayMs: 1000,
      backstop: false,
    };
    expect(backoffDelayMs(1, policy, () => 0)).toBe(50);
    expect(backoffDelayMs(1, policy, () => 1)).toBe(100);
    expect(backoffDelayMs(3, policy, () => 1)).toBe(400);
    expect(backoffDelayMs(10, policy, () => 1)).toBe(1000);
    expect(backoffDelayMs(10, policy, () => 0)).toBe(500);
  });
});

describe("health checks", () => {
  it("health() reports the last check without new KMS calls; checkHealth() runs one (2 calls)", async () => {
    const { seal, kms, primary } = setup({ healthCheckIntervalMs: 600_000 });
    seals.push(seal);
    await seal.init();
    const calls = kms.calls.length;
    const h = await seal.health();
    expect(h).toMatchObject({ healthy: true, keyId: primary });
    expect(h.details).toMatchObject({ kmsCallsPerCheck: 2, kmsCallsPerDay: 288, checkIntervalMs: 600_000 });
    expect(kms.calls.length).toBe(calls);
    await seal.checkHealth();
    expect(kms.calls.length).toBe(calls + 2);
  });

  it("with periodic checks off, every health() is a check", async () => {
    const { seal, kms } = setup({ healthCheckIntervalMs: 0 });
    seals.push(seal);
    await seal.init();
    const calls = kms.calls.length;
    const h = await seal.health();
    expect(h.healthy).toBe(true);
    expect(h.details).toMatchObject({ kmsCallsPerDay: 0 });
    expect(kms.calls.length).toBe(calls + 2);
  });

  it("the periodic check notices an outage, checks more often, and notices recovery", async () => {
    const { seal, kms, log } = setup({
      healthCheckIntervalMs: 40,
      healthCheckUnhealthyIntervalMs: 10,
      maxRetries: 0,
    });
    seals.push(seal);
    await seal.init();
    kms.fail("encrypt", ...Array.from({ length: 1000 }, () => awsError("AccessDeniedException", "denied")));
    await vi.waitFor(async () => expect((await seal.health()).healthy).toBe(false), {
      timeout: 10_000,
      interval: 5,
    });
    const failing = kms.count("encrypt");
    await vi.waitFor(() => expect(kms.count("encrypt")).toBeGreaterThanOrEqual(failing + 3), {
      timeout: 10_000,
      interval: 5,
    });
    const down = await seal.health();
    expect(down.healthy).toBe(false);
    expect(down.message).toMatch(/KMS health check failed: kms:Encrypt denied/);
    expect(down.details).toMatchObject({ checkIntervalMs: 10, kmsCallsPerDay: 17_280_000 });
    kms.clearFailures();
    await vi.waitFor(async () => expect((await seal.health()).healthy).toBe(true), {
      timeout: 10_000,
      interval: 5,
    });
    expect(log.warn).toHaveBeenCalledTimes(1);
    expect(log.warn.mock.calls[0]?.[0]).toMatch(/health check failed/);
    expect(log.info).toHaveBeenCalledWith("AWS KMS seal is healthy again", expect.any(Object));
  });

  it("finalize stops the periodic check", async () => {
    const { seal, kms } = setup({ healthCheckIntervalMs: 10 });
    await seal.init();
    await new Promise((r) => setTimeout(r, 40));
    await seal.finalize();
    const calls = kms.calls.length;
    await new Promise((r) => setTimeout(r, 60));
    expect(kms.calls.length).toBe(calls);
    expect(kms.destroyed, "a client passed in is the caller's to destroy").toBe(0);
  });

  it("a periodic check cut short by finalize() is not reported as an outage", async () => {
    const { seal, kms, log } = setup({ healthCheckIntervalMs: 20 });
    await seal.init();
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const before = kms.count("encrypt");
    kms.fail("encrypt", (() => gate) as unknown as (signal: AbortSignal) => Promise<never>);
    await vi.waitFor(() => expect(kms.count("encrypt")).toBe(before + 1), { timeout: 5_000, interval: 2 });
    const finalized = seal.finalize();
    release();
    await finalized;
    expect(log.warn).not.toHaveBeenCalled();
  });

  it("a logger that throws inside a periodic check neither stops the checks nor leaves an unhandled rejection", async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (e: unknown) => unhandled.push(e);
    process.on("unhandledRejection", onUnhandled);
    try {
      const { seal, kms, log } = setup({
        healthCheckIntervalMs: 10,
        healthCheckUnhealthyIntervalMs: 10,
        maxRetries: 0,
      });
      seals.push(seal);
      log.warn.mockImplementation(() => {
        throw new Error("log sink is broken");
      });
      await seal.init();
      kms.fail("encrypt", ...Array.from({ length: 1000 }, () => awsError("AccessDeniedException", "denied")));
      await vi.waitFor(() => expect(log.warn).toHaveBeenCalled(), { timeout: 5_000, interval: 2 });
      const after = kms.count("encrypt");
      await vi.waitFor(() => expect(kms.count("encrypt")).toBeGreaterThanOrEqual(after + 2), {
        timeout: 5_000,
        interval: 2,
      });
      expect((await seal.health()).healthy).toBe(false);
      await new Promise((r) => setTimeout(r, 20));
      expect(unhandled).toEqual([]);
    } finally {
      process.off("unhandledRejection", onUnhandled);
    }
  });

  it("the documented cost: 288 KMS calls a day at 10 minutes, 2 880 at 1 minute", () => {
    expect(healthCheckCallsPerDay(600_000)).toBe(288);
    expect(healthCheckCallsPerDay(60_000)).toBe(2880);
    expect(healthCheckCallsPerDay(0)).toBe(0);
  });
});

describe("secrets stay out of errors, logs and inspection", () => {
  it("no error, log line or inspect output carries the secret key or a data key", async () => {
    const { seal, kms, log } = setup({ maxRetries: 1 });
    seals.push(seal);
    await seal.init();
    const blob = await seal.encrypt(utf8("x"));
    kms.fail("decrypt", awsError("ThrottlingException"), awsError("ThrottlingException"));
    const err = await rejection(seal.decrypt(blob));
    kms.fail("encrypt", awsError("AccessDeniedException"));
    const err2 = await rejection(seal.encrypt(utf8("y")));
    const text = [
      inspect(err, { depth: 10 }),
      inspect(err2, { depth: 10 }),
      inspect(seal, { depth: 10 }),
      JSON.stringify(log.debug.mock.calls),
      JSON.stringify(log.info.mock.calls),
      JSON.stringify(log.warn.mock.calls),
    ].join("\n");
    expect(text).not.toContain(SECRET);
    expect(kms.calls.some((c) => JSON.stringify(c.input).includes("redacted"))).toBe(true);
  });
});

describe("createAwsKmsSeal", () => {
  it("builds a seal from a Vault block and the environment", async () => {
    const kms = new FakeKms();
    const arn = kms.addKey(PRIMARY);
    const seal = createAwsKmsSeal(
      { region: "us-west-2", health_check_enabled: "false", client: kms },
      { VAULT_AWSKMS_SEAL_KEY_ID: PRIMARY },
    );
    seals.push(seal);
    expect(seal.type).toBe("awskms");
    expect(seal.autoUnseal).toBe(true);
    expect(seal.supportsSealWrap).toBe(true);
    await seal.init();
    expect(seal.keyId()).toBe(arn);
  });

  it("rejects a client that does not implement KmsApi", () => {
    expect(() => new AwsKmsSeal({ kmsKeyId: PRIMARY, client: {} as never })).toThrow(
      /describeKey, encrypt and decrypt/,
    );
  });
});

describe("abort signal on encrypt and decrypt", () => {
  async function outcome(p: Promise<unknown>): Promise<unknown> {
    return p.then(
      () => "resolved",
      (e: unknown) => e,
    );
  }

  it("an aborted signal sends nothing to KMS and rejects with its reason", async () => {
    const { seal, kms } = setup();
    seals.push(seal);
    await seal.init();
    const blob = await seal.encrypt(utf8("x"));
    const before = kms.calls.length;
    const reason = new Error("gave up");
    const signal = AbortSignal.abort(reason);
    expect(await outcome(seal.encrypt(utf8("y"), { signal }))).toBe(reason);
    expect(await outcome(seal.decrypt(blob, { signal }))).toBe(reason);
    expect(kms.calls.length).toBe(before);
  });

  it("an abort cancels the KMS request in flight: the client's abortSignal fires with the caller's reason", async () => {
    const { seal, kms } = setup({ requestTimeoutMs: 60_000 });
    seals.push(seal);
    await seal.init();
    const blob = await seal.encrypt(utf8("in flight"));
    for (const op of ["encrypt", "decrypt"] as const) {
      let seen: AbortSignal | undefined;
      kms.fail(op, (signal) => {
        seen = signal;
        return hang(signal);
      });
      const ac = new AbortController();
      const pending =
        op === "encrypt"
          ? seal.encrypt(utf8("y"), { signal: ac.signal })
          : seal.decrypt(blob, { signal: ac.signal });
      await new Promise((r) => setTimeout(r, 20));
      expect(seen?.aborted).toBe(false);
      const reason = new Error(`cancel ${op}`);
      ac.abort(reason);
      expect(await outcome(pending)).toBe(reason);
      expect(seen?.aborted, `${op}: the KMS call was told to stop`).toBe(true);
      expect(seen?.reason).toBe(reason);
    }
    // Nothing was retried after the aborts, and the seal still works.
    expect(new TextDecoder().decode(await seal.decrypt(await seal.encrypt(utf8("after"))))).toBe("after");
  }, 30_000);

  it("an abort during the backoff before a retry ends it: no further attempt, finalize does not wait", async () => {
    const { seal, kms } = setup({ maxRetries: 5, retryBaseDelayMs: 20_000, retryMaxDelayMs: 20_000 });
    await seal.init();
    const before = kms.count("encrypt");
    kms.fail("encrypt", awsError("ThrottlingException", "Rate exceeded"));
    const ac = new AbortController();
    const pending = seal.encrypt(utf8("throttled"), { signal: ac.signal });
    await new Promise((r) => setTimeout(r, 50));
    expect(kms.count("encrypt") - before).toBe(1);
    const reason = new Error("shutting down");
    ac.abort(reason);
    expect(await outcome(pending)).toBe(reason);
    const started = performance.now();
    await seal.finalize();
    expect(performance.now() - started, "finalize waited for the backoff").toBeLessThan(1_000);
    expect(kms.count("encrypt") - before).toBe(1);
  }, 30_000);
});

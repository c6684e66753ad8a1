/**
 * Network and service faults between the seal and a real KMS emulator, injected by a proxy:
 * throttling answers, answers later than the request timeout, closed connections.
 */
import { inspect } from "node:util";
import { SealWrapBackend } from "@bulwark/core";
import { MemoryBackend } from "@bulwark/storage-memory";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import {
  AwsKmsAccessDeniedError,
  AwsKmsSeal,
  type AwsKmsSealOptions,
  AwsKmsUnavailableError,
} from "../src/index.js";
import { type FaultProxy, startFaultProxy } from "./fault-proxy.js";
import { rejection } from "./helpers.js";
import { LOCAL_CREDENTIALS, type LocalKms, localKmsAvailability, startLocalKms } from "./local-kms.js";

const { available } = localKmsAvailability();
const utf8 = (s: string) => new TextEncoder().encode(s);
const text = (b: Uint8Array) => new TextDecoder().decode(b);

describe.skipIf(!available)("AwsKmsSeal through a fault proxy in front of local-kms", () => {
  let kms: LocalKms;
  let proxy: FaultProxy;
  const open: AwsKmsSeal[] = [];
  const MAX_RETRIES = 3;

  const seal = async (extra: Partial<AwsKmsSealOptions> = {}) => {
    const s = new AwsKmsSeal({
      kmsKeyId: kms.alias,
      region: kms.region,
      endpoint: proxy.endpoint,
      ...LOCAL_CREDENTIALS,
      maxRetries: MAX_RETRIES,
      requestTimeoutMs: 400,
      retryBaseDelayMs: 10,
      retryMaxDelayMs: 50,
      healthCheckIntervalMs: 0,
      ...extra,
    });
    open.push(s);
    await s.init();
    proxy.resetCalls();
    return s;
  };
  const actions = (op: string) => proxy.calls.filter((c) => c.operation === op).map((c) => c.action);

  beforeAll(async () => {
    kms = await startLocalKms();
    proxy = await startFaultProxy(kms.endpoint);
  }, 30_000);
  afterAll(async () => {
    for (const s of open) await s.finalize();
    await proxy?.stop();
    await kms?.stop();
  });
  beforeEach(() => {
    proxy.clear();
    proxy.resetCalls();
  });

  it("ThrottlingException N times (N ≤ max_retries): retried and succeeds", async () => {
    const s = await seal();
    proxy.inject("Encrypt", { kind: "throttle" }, MAX_RETRIES);
    const blob = await s.encrypt(utf8("throttled"));
    expect(actions("Encrypt")).toEqual(["throttle", "throttle", "throttle", "pass"]);
    proxy.inject("Decrypt", { kind: "throttle" }, 2);
    expect(text(await s.decrypt(blob))).toBe("throttled");
    expect(actions("Decrypt")).toEqual(["throttle", "throttle", "pass"]);
  });

  it("an answer delayed past the request timeout: the attempt is abandoned, retried and succeeds", async () => {
    const s = await seal();
    const blob = await s.encrypt(utf8("slow"));
    proxy.resetCalls();
    proxy.inject("Decrypt", { kind: "delay", ms: 1_500 }, 1);
    const started = performance.now();
    expect(text(await s.decrypt(blob))).toBe("slow");
    const elapsed = performance.now() - started;
    expect(elapsed).toBeGreaterThanOrEqual(390);
    expect(elapsed).toBeLessThan(1_500);
    expect(actions("Decrypt")).toEqual(["delay", "pass"]);
  });

  it("connections closed without an answer: retried on a new connection and succeeds", async () => {
    const s = await seal();
    proxy.inject("Encrypt", { kind: "close" }, 2);
    const blob = await s.encrypt(utf8("reconnected"));
    expect(actions("Encrypt")).toEqual(["close", "close", "pass"]);
    proxy.inject("Decrypt", { kind: "close" }, 1);
    expect(text(await s.decrypt(blob))).toBe("reconnected");
  });

  it("KMS-side transient errors (KMSInternalException, 503) are retried too", async () => {
    const s = await seal();
    proxy.inject("Encrypt", { kind: "error", status: 500, type: "KMSInternalException" }, 1);
    proxy.inject("Encrypt", { kind: "error", status: 503, type: "ServiceUnavailableException" }, 1);
    await s.encrypt(utf8("x"));
    expect(actions("Encrypt")).toEqual(["error", "error", "pass"]);
  });

  it("faults during init (DescribeKey) are retried within the bound", async () => {
    proxy.inject("DescribeKey", { kind: "throttle" }, 1);
    proxy.inject("DescribeKey", { kind: "close" }, 1);
    const s = await seal();
    expect(s.keyId()).toBe(kms.primary.arn);
  });

  it("beyond the bound: a clear error, and a seal-wrapped write leaves nothing in storage", async () => {
    const s = await seal();
    const storage = new MemoryBackend();
    const wrapped = new SealWrapBackend(storage, s);
    proxy.inject("Encrypt", { kind: "throttle" }, Number.POSITIVE_INFINITY);
    const err = await rejection(wrapped.put({ key: "core/keyring", value: utf8("keyring"), sealWrap: true }));
    expect(err).toBeInstanceOf(AwsKmsUnavailableError);
    expect((err as AwsKmsUnavailableError).kms).toMatchObject({
      operation: "Encrypt",
      awsErrorName: "ThrottlingException",
      attempts: MAX_RETRIES + 1,
    });
    expect(err.message).toMatch(
      /^KMS Encrypt kept failing transiently \(ThrottlingException, request id fault-proxy-\d+, 4 attempts\)/,
    );
    expect(actions("Encrypt")).toEqual(Array(MAX_RETRIES + 1).fill("throttle"));
    expect(await storage.get("core/keyring")).toBeUndefined();
    expect(await storage.list("")).toEqual([]);

    proxy.clear();
    proxy.inject("Decrypt", { kind: "close" }, Number.POSITIVE_INFINITY);
    await wrapped.put({ key: "core/keyring", value: utf8("keyring"), sealWrap: true });
    const down = await rejection(wrapped.get("core/keyring"));
    expect(down).toBeInstanceOf(AwsKmsUnavailableError);
    expect(down.message).toMatch(
      /cannot reach AWS KMS \(endpoint http:\/\/127\.0\.0\.1:\d+, region eu-west-2\) for Decrypt \(ECONNRESET, 4 attempts\)/,
    );

    proxy.clear();
    proxy.inject("Decrypt", { kind: "delay", ms: 2_000 }, Number.POSITIVE_INFINITY);
    const slow = await rejection(s.decrypt(await s.encrypt(utf8("y"))));
    expect(slow.message).toMatch(
      /^KMS Decrypt timed out \(endpoint http:\/\/127\.0\.0\.1:\d+, region eu-west-2\) \(Timeout, 4 attempts\); error: @smithy\/node-http-handler - \[ERROR\] a request has exceeded the configured 400 ms requestTimeout/,
    );
  });

  it("an abort reaches the SDK: the HTTP request to KMS is cancelled, not left to its timeout", async () => {
    const s = await seal({ requestTimeoutMs: 20_000, maxRetries: 0 });
    const blob = await s.encrypt(utf8("abort me"));
    const before = proxy.hangups.length;
    for (const op of ["Encrypt", "Decrypt"] as const) {
      proxy.inject(op, { kind: "delay", ms: 10_000 }, 1);
      const ac = new AbortController();
      const pending =
        op === "Encrypt"
          ? s.encrypt(utf8("slow"), { signal: ac.signal })
          : s.decrypt(blob, { signal: ac.signal });
      for (let i = 0; i < 100 && !actions(op).includes("delay"); i++)
        await new Promise((r) => setTimeout(r, 20));
      expect(actions(op)).toContain("delay");
      const reason = new Error(`cancel ${op}`);
      ac.abort(reason);
      expect(
        await pending.then(
          () => "resolved",
          (e: unknown) => e,
        ),
      ).toBe(reason);
      // The proxy sees the connection go away long before the 20 s request timeout would close it.
      for (let i = 0; i < 50 && !proxy.hangups.slice(before).includes(op); i++)
        await new Promise((r) => setTimeout(r, 20));
      expect(proxy.hangups.slice(before), `${op}: the SDK hung up on abort`).toContain(op);
    }
    proxy.clear();
    expect(text(await s.decrypt(blob))).toBe("abort me");
  }, 30_000);

  it("a real SDK error keeps the credentials out of the error, its causes and the seal", async () => {
    const s = await seal();
    proxy.inject(
      "Encrypt",
      {
        kind: "error",
        status: 400,
        type: "AccessDeniedException",
        message: "User: arn:aws:iam::111122223333:user/ci is not authorized to perform: kms:Encrypt",
      },
      1,
    );
    const err = await rejection(s.encrypt(utf8("x")));
    expect(err).toBeInstanceOf(AwsKmsAccessDeniedError);
    expect(err.message).toContain("kms:Encrypt denied for arn:aws:kms:eu-west-2:111122223333:key/");
    expect(err.message).toContain("request id fault-proxy-");
    const dump = [
      inspect(err, { depth: 20, showHidden: true }),
      inspect(s, { depth: 20, showHidden: true }),
      JSON.stringify(s.metadata()),
    ].join("\n");
    expect(dump).not.toContain(LOCAL_CREDENTIALS.secretAccessKey);
    expect(actions("Encrypt")).toEqual(["error"]);
  });
});

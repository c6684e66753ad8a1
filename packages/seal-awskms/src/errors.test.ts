import { SealError } from "@bulwark/seal";
import { describe, expect, it } from "vitest";
import { classifyKmsError, toSealError } from "./errors.js";

function err(props: Record<string, unknown>, message = "boom"): Error {
  return Object.assign(new Error(message), props);
}

describe("classifyKmsError", () => {
  it("retries throttling, KMS-side failures, timeouts and network errors", () => {
    for (const name of [
      "ThrottlingException",
      "KMSInternalException",
      "KeyUnavailableException",
      "DependencyTimeoutException",
      "TimeoutError",
    ]) {
      expect(classifyKmsError(err({ name }), false).retryable, name).toBe(true);
    }
    expect(classifyKmsError(err({ code: "ECONNREFUSED" }), false)).toMatchObject({
      name: "ECONNREFUSED",
      retryable: true,
    });
    // The SDK sometimes wraps the socket error.
    expect(classifyKmsError(err({ name: "Error", cause: err({ code: "ECONNRESET" }) }), false).name).toBe(
      "ECONNRESET",
    );
    expect(classifyKmsError(new Error("socket hang up"), false)).toMatchObject({
      name: "ECONNRESET",
      retryable: true,
    });
    expect(classifyKmsError(err({ name: "AbortError" }), true)).toMatchObject({
      name: "Timeout",
      retryable: true,
    });
  });

  it("retries an unmodelled server fault or 5xx/429, not a modelled client error", () => {
    expect(
      classifyKmsError(err({ name: "Unknown", $fault: "server", $metadata: { httpStatusCode: 503 } }), false)
        .retryable,
    ).toBe(true);
    expect(
      classifyKmsError(err({ name: "Unknown", $metadata: { httpStatusCode: 429 } }), false).retryable,
    ).toBe(true);
    expect(
      classifyKmsError(
        err({ name: "NotFoundException", $fault: "client", $metadata: { httpStatusCode: 400 } }),
        false,
      ).retryable,
    ).toBe(false);
    expect(
      classifyKmsError(err({ name: "AccessDeniedException", $fault: "client", $retryable: {} }), false)
        .retryable,
    ).toBe(false);
  });

  it("reads the request id and status, and shortens AWS's message", () => {
    const c = classifyKmsError(
      err({ name: "X", $metadata: { requestId: "abc-123", httpStatusCode: 400 } }, "m ".repeat(400)),
      false,
    );
    expect(c).toMatchObject({ requestId: "abc-123", httpStatusCode: 400 });
    expect(c.message.length).toBeLessThanOrEqual(300);
  });
});

describe("toSealError", () => {
  it("every failure becomes a SealError carrying the AWS details", () => {
    for (const name of [
      "AccessDeniedException",
      "NotFoundException",
      "DisabledException",
      "KMSInvalidStateException",
      "InvalidCiphertextException",
      "InvalidKeyUsageException",
      "CredentialsProviderError",
      "Weird",
    ]) {
      const e = err({ name, $metadata: { requestId: "rid-1" } });
      const s = toSealError("Decrypt", "alias/x", e, classifyKmsError(e, false), 1, "region us-east-1");
      expect(s, name).toBeInstanceOf(SealError);
      expect((s as SealError & { kms: { awsErrorName: string } }).kms.awsErrorName).toBe(name);
      expect(s.cause).toBe(e);
    }
    const creds = err({ name: "CredentialsProviderError" }, "Could not load credentials from any providers");
    expect(toSealError("DescribeKey", "k", creds, classifyKmsError(creds, false), 1, "x").message).toMatch(
      /no AWS credentials/,
    );
  });
});

import { CodedError, errorKinds } from "@bulwark/errors";
import { SealDecryptError, type SealError, SealKeyNotFoundError, SealUnavailableError } from "@bulwark/seal";
import { describe, expect, it } from "vitest";
import {
  AwsKmsAccessDeniedError,
  AwsKmsDecryptError,
  AwsKmsError,
  type AwsKmsErrorDetails,
  AwsKmsKeyNotFoundError,
  AwsKmsKeyStateError,
  AwsKmsUnavailableError,
} from "./errors.js";

const kms: AwsKmsErrorDetails = {
  operation: "Decrypt",
  awsErrorName: "X",
  requestId: undefined,
  httpStatusCode: undefined,
  attempts: 1,
};

describe("AWS KMS errors on the coded-error base", () => {
  it("are seal-domain CodedErrors with '@bulwark/seal-awskms:<Class>' kinds above their seal parents", () => {
    const cases: Array<[SealError, string, string]> = [
      [new AwsKmsError("provider_failed", "m", { kms }), "AwsKmsError", "@bulwark/seal:SealError"],
      [
        new AwsKmsUnavailableError("m", { kms }),
        "AwsKmsUnavailableError",
        "@bulwark/seal:SealUnavailableError",
      ],
      [
        new AwsKmsAccessDeniedError("m", { kms }),
        "AwsKmsAccessDeniedError",
        "@bulwark/seal:SealUnavailableError",
      ],
      [new AwsKmsKeyStateError("k", "m", {}), "AwsKmsKeyStateError", "@bulwark/seal:SealUnavailableError"],
      [
        new AwsKmsKeyNotFoundError("k", "m", { kms }),
        "AwsKmsKeyNotFoundError",
        "@bulwark/seal:SealKeyNotFoundError",
      ],
      [new AwsKmsDecryptError("k", "m", { kms }), "AwsKmsDecryptError", "@bulwark/seal:SealDecryptError"],
    ];
    for (const [e, name, parent] of cases) {
      expect(e).toBeInstanceOf(CodedError);
      expect(e.domain).toBe("seal");
      expect(e.name).toBe(name);
      expect(errorKinds(e).slice(0, 2)).toEqual([`@bulwark/seal-awskms:${name}`, parent]);
    }
    expect(new AwsKmsDecryptError("k", "m", { kms })).toBeInstanceOf(SealDecryptError);
    expect(new AwsKmsKeyNotFoundError("k", "m", { kms })).toBeInstanceOf(SealKeyNotFoundError);
    expect(new AwsKmsAccessDeniedError("m", { kms })).toBeInstanceOf(SealUnavailableError);
  });

  it("an error from an older copy (bare legacy kinds) is still recognised", () => {
    const foreign = new Error("throttled");
    Object.defineProperty(foreign, Symbol.for("@bulwark/seal:error-kinds"), {
      value: ["AwsKmsUnavailableError", "SealUnavailableError", "SealError"],
    });
    expect(foreign).toBeInstanceOf(AwsKmsUnavailableError);
    expect(foreign).toBeInstanceOf(SealUnavailableError);
    expect(foreign).not.toBeInstanceOf(AwsKmsAccessDeniedError);
  });
});

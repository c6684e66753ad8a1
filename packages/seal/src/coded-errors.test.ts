import { CodedError, errorKinds } from "@bulwark/errors";
import { describe, expect, it } from "vitest";
import { decodeBlobInfo } from "./blob-info.js";
import {
  BlobInfoDecodeError,
  SEAL_ERROR_CODES,
  SealConfigError,
  SealDecryptError,
  SealError,
  SealFinalizedError,
  SealKeyNotFoundError,
  SealNotInitializedError,
  SealUnavailableError,
} from "./errors.js";

const LEGACY = Symbol.for("@bulwark/seal:error-kinds");

describe("seal errors on the coded-error base", () => {
  it("SealError is a CodedError of domain seal for every code", () => {
    for (const code of SEAL_ERROR_CODES) {
      const e = new SealError(code, "m");
      expect(e).toBeInstanceOf(CodedError);
      expect(e.domain).toBe("seal");
      expect(e.code).toBe(code);
    }
  });

  it("each class records '@bulwark/seal:<Class>' kinds, and the legacy bare names beside them", () => {
    const cases: Array<[SealError, string]> = [
      [new SealConfigError("key", "bad"), "SealConfigError"],
      [new SealUnavailableError("down"), "SealUnavailableError"],
      [new SealKeyNotFoundError("k"), "SealKeyNotFoundError"],
      [new SealDecryptError("bad tag"), "SealDecryptError"],
      [new SealNotInitializedError("x"), "SealNotInitializedError"],
      [new SealFinalizedError(), "SealFinalizedError"],
      [new BlobInfoDecodeError("short"), "BlobInfoDecodeError"],
    ];
    for (const [e, name] of cases) {
      expect(errorKinds(e)).toEqual([
        `@bulwark/seal:${name}`,
        "@bulwark/seal:SealError",
        "@bulwark/errors:CodedError",
      ]);
      expect(Reflect.get(e, LEGACY)).toEqual([name, "SealError"]);
    }
  });

  it("a provider's subclass in another package gets its bare class name in the legacy list", () => {
    class AcmeHsmError extends SealUnavailableError {
      static override readonly kind: string = "@acme/seal-hsm:AcmeHsmError";
    }
    const e = new AcmeHsmError("hsm unreachable");
    expect(errorKinds(e)[0]).toBe("@acme/seal-hsm:AcmeHsmError");
    expect(Reflect.get(e, LEGACY)).toEqual(["AcmeHsmError", "SealUnavailableError", "SealError"]);
  });

  it("instanceof holds for a seal error from a new copy of the package (CodedError kinds only)", () => {
    const foreign = Object.assign(new Error("gone"), { domain: "seal", code: "finalized" });
    Object.defineProperty(foreign, Symbol.for("@bulwark/errors:kinds"), {
      value: ["@bulwark/seal:SealFinalizedError", "@bulwark/seal:SealError", "@bulwark/errors:CodedError"],
    });
    expect(foreign).toBeInstanceOf(SealFinalizedError);
    expect(foreign).toBeInstanceOf(SealError);
    expect(foreign).toBeInstanceOf(CodedError);
    expect(foreign).not.toBeInstanceOf(SealConfigError);
  });

  it("BlobInfo's decoder failures come out as BlobInfoDecodeError, caused by a coded error", () => {
    const bytes = Uint8Array.of(0x0a, 0x05, 0x01);
    let caught: unknown;
    try {
      decodeBlobInfo(bytes);
    } catch (e) {
      caught = e;
    }
    expect(caught).toBeInstanceOf(BlobInfoDecodeError);
    expect(caught).toBeInstanceOf(CodedError);
  });
});

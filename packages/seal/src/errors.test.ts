import { describe, expect, it } from "vitest";
import {
  BlobInfoDecodeError,
  SealConfigError,
  SealDecryptError,
  SealError,
  SealFinalizedError,
  SealKeyNotFoundError,
  SealNotInitializedError,
  SealUnavailableError,
} from "./errors.js";

describe("seal errors", () => {
  it("every error class has a stable code and its own name", () => {
    const cases: Array<[SealError, string, string]> = [
      [new SealConfigError("keyId", "must not be empty"), "invalid_config", "SealConfigError"],
      [new SealUnavailableError("down"), "unavailable", "SealUnavailableError"],
      [new SealKeyNotFoundError("k1"), "key_not_found", "SealKeyNotFoundError"],
      [new SealDecryptError("bad tag"), "decrypt_failed", "SealDecryptError"],
      [new SealNotInitializedError("pkcs11"), "not_initialized", "SealNotInitializedError"],
      [new SealFinalizedError(), "finalized", "SealFinalizedError"],
      [new BlobInfoDecodeError("truncated"), "invalid_blob_info", "BlobInfoDecodeError"],
    ];
    for (const [err, code, name] of cases) {
      expect(err).toBeInstanceOf(SealError);
      expect(err).toBeInstanceOf(Error);
      expect(err.code).toBe(code);
      expect(err.name).toBe(name);
    }
  });

  it("SealConfigError names the field", () => {
    const err = new SealConfigError(
      "previousKeys[0].key",
      "must be 32 bytes; generate one with openssl rand -hex 32",
    );
    expect(err.field).toBe("previousKeys[0].key");
    expect(err.message).toBe(
      "invalid seal configuration `previousKeys[0].key`: must be 32 bytes; generate one with openssl rand -hex 32",
    );
  });

  it("SealKeyNotFoundError names the key id", () => {
    const err = new SealKeyNotFoundError("hsm-key:0a0b");
    expect(err.keyId).toBe("hsm-key:0a0b");
    expect(err.message).toContain('"hsm-key:0a0b"');
  });

  it("the finalized message tells what to do", () => {
    expect(new SealFinalizedError().message).toBe("seal was finalized; create a new one");
  });

  it("instanceof works for errors from another copy of the package (brand check)", () => {
    // What a SealFinalizedError from a second copy of @bulwark/seal looks like to this copy.
    const foreign = new Error("seal was finalized; create a new one");
    Object.defineProperty(foreign, Symbol.for("@bulwark/seal:error-kinds"), {
      value: ["SealFinalizedError", "SealError"],
    });
    expect(foreign).toBeInstanceOf(SealError);
    expect(foreign).toBeInstanceOf(SealFinalizedError);
    expect(foreign).not.toBeInstanceOf(SealConfigError);
    expect(new Error("plain")).not.toBeInstanceOf(SealError);
    expect(null).not.toBeInstanceOf(SealError);
  });

  it("a subclass error is not an instance of a sibling class", () => {
    expect(new SealDecryptError("x")).not.toBeInstanceOf(SealKeyNotFoundError);
    expect(new SealError("unavailable", "x")).not.toBeInstanceOf(SealUnavailableError);
  });

  it("provider subclasses inherit the brand of their parents", () => {
    class Pkcs11LoginError extends SealConfigError {}
    const err = new Pkcs11LoginError("pin", "CKR_PIN_INCORRECT");
    expect(err).toBeInstanceOf(SealConfigError);
    expect(err).toBeInstanceOf(SealError);
    const kinds = (err as unknown as Record<symbol, unknown>)[Symbol.for("@bulwark/seal:error-kinds")];
    expect(kinds).toEqual(["SealConfigError", "SealError"]);
  });
});

import { CodedError, errorKinds } from "@bulwark/errors";
import { describe, expect, it } from "vitest";
import { CRYPTO_ERROR_CODES, CryptoError } from "./errors.js";

describe("CryptoError", () => {
  it("is a CodedError of domain crypto for every code, with a kind of its own", () => {
    for (const code of CRYPTO_ERROR_CODES) {
      const e = new CryptoError(code, "m", { cause: "why" });
      expect(e).toBeInstanceOf(CodedError);
      expect(e).toBeInstanceOf(Error);
      expect(e.domain).toBe("crypto");
      expect(e.code).toBe(code);
      expect(e.name).toBe("CryptoError");
      expect(e.cause).toBe("why");
    }
    expect(errorKinds(new CryptoError("key_zeroed", "m"))).toEqual([
      "@bulwark/crypto:CryptoError",
      "@bulwark/errors:CodedError",
    ]);
  });

  it("instanceof holds for a CryptoError from another copy of the package", () => {
    const foreign = Object.assign(new Error("m"), { domain: "crypto", code: "key_zeroed" });
    Object.defineProperty(foreign, Symbol.for("@bulwark/errors:kinds"), {
      value: ["@bulwark/crypto:CryptoError", "@bulwark/errors:CodedError"],
    });
    expect(foreign).toBeInstanceOf(CryptoError);
    expect(new Error("m")).not.toBeInstanceOf(CryptoError);
  });
});

import { CodedError, errorKinds } from "@bulwark/errors";
import { describe, expect, it } from "vitest";
import { CORE_ERROR_CODES, CoreError, InvalidRequestError, SealedError } from "./errors.js";

describe("core errors", () => {
  it("CoreError is a CodedError of domain core for every code", () => {
    for (const code of CORE_ERROR_CODES) {
      const e = new CoreError(code, "m");
      expect(e).toBeInstanceOf(CodedError);
      expect(e.domain).toBe("core");
      expect(e.code).toBe(code);
    }
  });

  it("the subclasses keep their names, codes and messages, and record their own kinds", () => {
    const sealed = new SealedError();
    expect([sealed.name, sealed.code, sealed.message]).toEqual([
      "SealedError",
      "sealed",
      "Bulwark is sealed",
    ]);
    expect(errorKinds(sealed)).toEqual([
      "@bulwark/core:SealedError",
      "@bulwark/core:CoreError",
      "@bulwark/errors:CodedError",
    ]);
    const bad = new InvalidRequestError("secret_shares must be a number");
    expect([bad.name, bad.code]).toEqual(["InvalidRequestError", "invalid_request"]);
    expect(bad).toBeInstanceOf(CoreError);
    expect(bad).not.toBeInstanceOf(SealedError);
  });

  it("instanceof holds for an error from another copy of the package", () => {
    const foreign = Object.assign(new Error("Bulwark is sealed"), { domain: "core", code: "sealed" });
    Object.defineProperty(foreign, Symbol.for("@bulwark/errors:kinds"), {
      value: ["@bulwark/core:SealedError", "@bulwark/core:CoreError", "@bulwark/errors:CodedError"],
    });
    expect(foreign).toBeInstanceOf(SealedError);
    expect(foreign).toBeInstanceOf(CoreError);
    expect(foreign).not.toBeInstanceOf(InvalidRequestError);
  });
});

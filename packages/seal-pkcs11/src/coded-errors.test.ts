import { CodedError, errorKinds } from "@bulwark/errors";
import { SealError } from "@bulwark/seal";
import { describe, expect, it } from "vitest";
import { CKR_PIN_INCORRECT, Pkcs11CallError } from "./errors.js";

describe("Pkcs11CallError on the coded-error base", () => {
  it("is a CodedError (seal/provider_failed) but not a SealError, so the seal still classifies it", () => {
    const e = new Pkcs11CallError("C_Login", CKR_PIN_INCORRECT);
    expect(e).toBeInstanceOf(CodedError);
    expect(e).not.toBeInstanceOf(SealError);
    expect(e.domain).toBe("seal");
    expect(e.code).toBe("provider_failed");
    expect(e.rv).toBe(CKR_PIN_INCORRECT);
    expect(e.message).toBe("C_Login returned CKR_PIN_INCORRECT (0xa0)");
    expect(errorKinds(e)).toEqual(["@bulwark/seal-pkcs11:Pkcs11CallError", "@bulwark/errors:CodedError"]);
  });
});

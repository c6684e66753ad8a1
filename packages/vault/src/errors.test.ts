import { CodedError, errorKinds, isCodedError } from "@bulwark/errors";
import { describe, expect, it } from "vitest";
import {
  BadRequestError,
  GenerateRootError,
  KvError,
  PermissionDeniedError,
  PolicyError,
  RouteError,
  TokenError,
  VAULT_ERROR_CODES,
  VaultError,
  VaultStateError,
} from "./errors.js";

describe("vault errors", () => {
  const samples: VaultError[] = [
    new BadRequestError('field "x" must be a string, got number'),
    new PolicyError("failed to parse policy"),
    new TokenError("permission_denied", "bad token"),
    new KvError("not_found", ""),
    new GenerateRootError("nonce_mismatch", "incorrect nonce"),
    new RouteError("unsupported_operation", "unsupported operation"),
    new PermissionDeniedError(),
    new VaultStateError("sealed", "Vault is sealed"),
  ];

  it("are CodedErrors of domain vault with a listed code and a kind per class", () => {
    for (const e of samples) {
      expect(isCodedError(e)).toBe(true);
      expect(e).toBeInstanceOf(VaultError);
      expect(e.domain).toBe("vault");
      expect(VAULT_ERROR_CODES).toContain(e.code);
      expect(errorKinds(e)[0]).toBe(`@bulwark/vault:${e.name}`);
      expect(errorKinds(e)).toContain("@bulwark/vault:VaultError");
    }
  });

  it("recognises an error of another copy of the package by its kinds", () => {
    // What a second install of @bulwark/vault would throw: another class with the same kinds.
    class OtherCopyKvError extends CodedError {
      static override readonly kind = "@bulwark/vault:KvError";
    }
    const foreign = new OtherCopyKvError("vault", "not_found", "");
    expect(foreign).toBeInstanceOf(KvError);
    expect(foreign).not.toBeInstanceOf(TokenError);
  });

  it("keeps the status callers without an HTTP layer read from KV and field errors", () => {
    expect(new KvError("not_found", "").status).toBe(404);
    expect(new KvError("invalid_request", "bad").status).toBe(400);
    expect(new BadRequestError("bad").status).toBe(400);
  });

  it("says permission denied as Vault does", () => {
    expect(new PermissionDeniedError().message).toBe("permission denied");
  });
});

import { CodedError, errorKinds } from "@bulwark/errors";
import { describe, expect, it } from "vitest";
import {
  BARRIER_CIPHERTEXT_ERROR_CODES,
  BARRIER_ERROR_CODES,
  BarrierAlreadyInitializedError,
  BarrierCiphertextError,
  BarrierError,
  BarrierInvalidKeyError,
  BarrierNotInitializedError,
  BarrierSealedError,
} from "./errors.js";
import { JsonSyntaxError } from "./json.js";

describe("barrier errors", () => {
  it("BarrierError is a CodedError of domain barrier for every code", () => {
    for (const code of BARRIER_ERROR_CODES) {
      const e = new BarrierError(code, "m");
      expect(e).toBeInstanceOf(CodedError);
      expect(e.domain).toBe("barrier");
      expect(e.code).toBe(code);
    }
    for (const code of BARRIER_CIPHERTEXT_ERROR_CODES) expect(BARRIER_ERROR_CODES).toContain(code);
  });

  it("each subclass keeps its name and code, and records its own kind first", () => {
    const cases: Array<[BarrierError, string, string]> = [
      [new BarrierSealedError(), "BarrierSealedError", "sealed"],
      [new BarrierNotInitializedError(), "BarrierNotInitializedError", "not_initialized"],
      [new BarrierAlreadyInitializedError(), "BarrierAlreadyInitializedError", "already_initialized"],
      [new BarrierInvalidKeyError(), "BarrierInvalidKeyError", "invalid_key"],
      [new BarrierCiphertextError("unknown_term", "m", "p", 3), "BarrierCiphertextError", "unknown_term"],
      [new JsonSyntaxError("invalid JSON at byte 1"), "JsonSyntaxError", "invalid_json"],
    ];
    for (const [e, name, code] of cases) {
      expect(e.name).toBe(name);
      expect(e.code).toBe(code);
      expect(e.domain).toBe("barrier");
      expect(errorKinds(e)).toEqual([
        `@bulwark/barrier:${name}`,
        "@bulwark/barrier:BarrierError",
        "@bulwark/errors:CodedError",
      ]);
    }
  });

  it("instanceof holds for an error from another copy of the package, and only for its kinds", () => {
    const foreign = Object.assign(new Error("sealed"), { domain: "barrier", code: "sealed" });
    Object.defineProperty(foreign, Symbol.for("@bulwark/errors:kinds"), {
      value: [
        "@bulwark/barrier:BarrierSealedError",
        "@bulwark/barrier:BarrierError",
        "@bulwark/errors:CodedError",
      ],
    });
    expect(foreign).toBeInstanceOf(BarrierSealedError);
    expect(foreign).toBeInstanceOf(BarrierError);
    expect(foreign).not.toBeInstanceOf(BarrierInvalidKeyError);
  });
});

import { CodedError, errorKinds } from "@bulwark/errors";
import { describe, expect, it } from "vitest";
import {
  FencedWriteError,
  InvalidKeyError,
  STORAGE_ERROR_CODES,
  StorageError,
  StorageProbeError,
  StorageUnavailableError,
  TransactionError,
  ValueTooLargeError,
} from "./errors.js";

describe("storage errors", () => {
  it("StorageError is a CodedError of domain storage for every code", () => {
    for (const code of STORAGE_ERROR_CODES) {
      const e = new StorageError(code, "m");
      expect(e).toBeInstanceOf(CodedError);
      expect(e.domain).toBe("storage");
      expect(e.code).toBe(code);
    }
  });

  it("each subclass keeps its name and code, and records its own kind first", () => {
    const cases: Array<[StorageError, string, string]> = [
      [new InvalidKeyError("a/../b", "has .."), "InvalidKeyError", "invalid_key"],
      [new ValueTooLargeError("k", 10, 5), "ValueTooLargeError", "value_too_large"],
      [new TransactionError("rolled back", 2), "TransactionError", "transaction_failed"],
      [new FencedWriteError(), "FencedWriteError", "fenced_write"],
      [new StorageUnavailableError("down"), "StorageUnavailableError", "unavailable"],
      [new StorageProbeError("io", "path", "not writable", "chmod it"), "StorageProbeError", "io"],
    ];
    for (const [e, name, code] of cases) {
      expect(e).toBeInstanceOf(StorageError);
      expect(e.name).toBe(name);
      expect(e.code).toBe(code);
      expect(e.domain).toBe("storage");
      expect(errorKinds(e)).toEqual([
        `@bulwark/storage:${name}`,
        "@bulwark/storage:StorageError",
        "@bulwark/errors:CodedError",
      ]);
    }
    expect(new TransactionError("big", undefined, { code: "transaction_too_large" }).code).toBe(
      "transaction_too_large",
    );
  });

  it("instanceof holds for an error from another copy of the package, and only for its kinds", () => {
    const foreign = Object.assign(new Error("down"), { domain: "storage", code: "unavailable" });
    Object.defineProperty(foreign, Symbol.for("@bulwark/errors:kinds"), {
      value: [
        "@bulwark/storage:StorageUnavailableError",
        "@bulwark/storage:StorageError",
        "@bulwark/errors:CodedError",
      ],
    });
    expect(foreign).toBeInstanceOf(StorageUnavailableError);
    expect(foreign).toBeInstanceOf(StorageError);
    expect(foreign).not.toBeInstanceOf(FencedWriteError);
  });
});

import { CodedError, errorKinds } from "@bulwark/errors";
import { StorageError } from "@bulwark/storage";
import { describe, expect, it } from "vitest";
import { CorruptEntryError, FileBackendConfigError } from "./errors.js";

describe("file backend errors on the coded-error base", () => {
  it("FileBackendConfigError is storage/invalid_config, naming the field, and not a StorageError", () => {
    const e = new FileBackendConfigError("path", "path is required");
    expect(e).toBeInstanceOf(CodedError);
    expect(e).not.toBeInstanceOf(StorageError);
    expect([e.domain, e.code, e.field, e.name]).toEqual([
      "storage",
      "invalid_config",
      "path",
      "FileBackendConfigError",
    ]);
    expect(errorKinds(e)).toEqual([
      "@bulwark/storage-file:FileBackendConfigError",
      "@bulwark/errors:CodedError",
    ]);
  });

  it("CorruptEntryError is a StorageError (io) with a kind of its own", () => {
    const e = new CorruptEntryError("k", "/data/_k", "not JSON");
    expect(e).toBeInstanceOf(StorageError);
    expect([e.domain, e.code]).toEqual(["storage", "io"]);
    expect(errorKinds(e)[0]).toBe("@bulwark/storage-file:CorruptEntryError");
  });
});

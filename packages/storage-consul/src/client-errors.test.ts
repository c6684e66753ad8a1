import { CodedError, errorKinds } from "@bulwark/errors";
import { StorageError } from "@bulwark/storage";
import { describe, expect, it } from "vitest";
import { RequestAbortedError } from "./client.js";

describe("RequestAbortedError", () => {
  it("is storage/aborted, still named AbortError, and not a StorageError", () => {
    const cause = new Error("socket closed");
    const e = new RequestAbortedError("kv get was aborted", { cause });
    expect(e).toBeInstanceOf(CodedError);
    expect(e).not.toBeInstanceOf(StorageError);
    expect([e.domain, e.code, e.name, e.message]).toEqual([
      "storage",
      "aborted",
      "AbortError",
      "kv get was aborted",
    ]);
    expect(e.cause).toBe(cause);
    expect(errorKinds(e)).toEqual([
      "@bulwark/storage-consul:RequestAbortedError",
      "@bulwark/errors:CodedError",
    ]);
  });
});

import { InvalidKeyError, StorageError, StorageUnavailableError } from "@bulwark/storage";
import { describe, expect, it } from "vitest";
import { toStorageError } from "./errors.js";

function sysErr(code: string, message: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`${code}: ${message}`), { code });
}

describe("toStorageError: every file-system failure names what happened and what to do", () => {
  it("a full disk or exhausted quota says to free space", () => {
    for (const code of ["ENOSPC", "EDQUOT"]) {
      const err = toStorageError(sysErr(code, "no space left on device"), "write", "/data/_k", "k");
      expect(err).toBeInstanceOf(StorageError);
      expect(err.code).toBe("io");
      expect(err.message).toContain("/data/_k");
      expect(err.message).toMatch(/free (up )?(disk )?space/);
      expect(err.cause).toBeDefined();
    }
  });

  it("too many open files is unavailable and says which limit to raise", () => {
    const err = toStorageError(sysErr("EMFILE", "too many open files"), "write", "/data/_k", "k");
    expect(err).toBeInstanceOf(StorageUnavailableError);
    expect(err.message).toMatch(/ulimit -n|open-file limit/);
    // It names no setting the backend does not have.
    expect(err.message).not.toMatch(/maxParallel/);
  });

  it("permission denied on a read does not tell the operator to make the directory writable only", () => {
    const err = toStorageError(sysErr("EACCES", "permission denied"), "read", "/data/_k", "k");
    expect(err.code).toBe("permission_denied");
    expect(err.message).toMatch(/readable/);
  });

  it("a name too long is an InvalidKeyError naming the key or list prefix", () => {
    const err = toStorageError(sysErr("ENAMETOOLONG", "name too long"), "list", "/data/xxx", "xxx/");
    expect(err).toBeInstanceOf(InvalidKeyError);
  });
});

import { CodedError } from "@bulwark/errors";
import {
  InvalidKeyError,
  StorageError,
  type StorageErrorCode,
  StorageUnavailableError,
} from "@bulwark/storage";

/**
 * A `FileBackend` option is missing or has the wrong type; `field` names it. Domain "storage",
 * code `invalid_config` (typed from `StorageErrorCode`, so a table by storage code covers it); not
 * a `StorageError`, which stands for failures of a working backend.
 */
export class FileBackendConfigError extends CodedError<Extract<StorageErrorCode, "invalid_config">> {
  static override readonly kind: string = "@bulwark/storage-file:FileBackendConfigError";
  override name = "FileBackendConfigError";
  readonly field: string;
  constructor(field: string, message: string) {
    super("storage", "invalid_config", message);
    this.field = field;
  }
}

/**
 * A file under the data directory is not a valid entry (not `{"Value":"<base64>"}`). Nothing is
 * changed on disk; `path` names the file so an operator can restore or remove it.
 */
export class CorruptEntryError extends StorageError {
  static override readonly kind: string = "@bulwark/storage-file:CorruptEntryError";
  override name = "CorruptEntryError";
  readonly key: string;
  readonly path: string;
  constructor(key: string, path: string, reason: string) {
    super(
      "io",
      `file backend: ${path} (key ${JSON.stringify(key)}) is not a valid entry: ${reason}; restore the file from a backup or delete it`,
    );
    this.key = key;
    this.path = path;
  }
}

function errnoCode(err: unknown): string | undefined {
  const code: unknown = typeof err === "object" && err !== null ? Reflect.get(err, "code") : undefined;
  return typeof code === "string" ? code : undefined;
}

/** True when `err` is a Node system error with one of `codes`. */
export function hasErrno(err: unknown, ...codes: string[]): boolean {
  const code = errnoCode(err);
  return code !== undefined && codes.includes(code);
}

/**
 * Turns a file-system failure into the storage error a caller can act on: permissions and a
 * read-only file system → `permission_denied`; descriptor exhaustion and busy resources →
 * `unavailable` (retrying later may help); a name too long for the file system → `InvalidKeyError`;
 * everything else (a full disk included) → `io`. Each message names the file, what failed and
 * what to do. The original error stays available as `cause`.
 */
export function toStorageError(err: unknown, action: string, target: string, key?: string): StorageError {
  if (err instanceof StorageError) return err;
  const code = errnoCode(err);
  const detail = err instanceof Error ? err.message : String(err);
  if (code === "ENAMETOOLONG" && key !== undefined) {
    return new InvalidKeyError(key, "a path segment is longer than the file system allows (about 230 bytes)");
  }
  if (code === "EACCES" || code === "EPERM" || code === "EROFS") {
    return new StorageError(
      "permission_denied",
      `file backend: cannot ${action} ${target}: ${detail}; check that the data directory and everything in it is readable and writable by this process's user (and not on a read-only mount)`,
      { cause: err },
    );
  }
  if (code === "ENOSPC" || code === "EDQUOT") {
    return new StorageError(
      "io",
      `file backend: cannot ${action} ${target}: ${detail}; free disk space (or raise the quota) on the file system that holds the data directory, then retry`,
      { cause: err },
    );
  }
  if (code === "EMFILE" || code === "ENFILE") {
    return new StorageUnavailableError(
      `file backend: cannot ${action} ${target} right now: ${detail}; retry, and raise the open-file limit (ulimit -n / LimitNOFILE) or run fewer operations at once`,
      { cause: err },
    );
  }
  if (code === "EAGAIN" || code === "EBUSY") {
    return new StorageUnavailableError(
      `file backend: cannot ${action} ${target} right now: ${detail}; retry`,
      {
        cause: err,
      },
    );
  }
  return new StorageError("io", `file backend: failed to ${action} ${target}: ${detail}`, { cause: err });
}

import { CodedError, type CodedErrorOptions } from "@bulwark/errors";

/** Stable codes for storage failures (domain "storage"). */
export const STORAGE_ERROR_CODES = [
  "invalid_key",
  "value_too_large",
  "transaction_failed",
  "transaction_too_large",
  "fenced_write",
  "unavailable",
  "permission_denied",
  "io",
  /** A backend's configuration block is unusable (the error names the setting). */
  "invalid_config",
  /** The caller aborted the operation through its `AbortSignal`. */
  "aborted",
  /**
   * A call the object's state does not allow (a second `acquire()` waiting on one lock handle):
   * the caller's bug, not a failure of the backend; retrying the same call does not help.
   */
  "invalid_operation",
] as const;

export type StorageErrorCode = (typeof STORAGE_ERROR_CODES)[number];

/** Base of the storage contract's errors: a `CodedError` of domain "storage". */
export class StorageError extends CodedError<StorageErrorCode> {
  static override readonly kind: string = "@bulwark/storage:StorageError";
  override name = "StorageError";

  constructor(code: StorageErrorCode, message: string, options?: CodedErrorOptions) {
    super("storage", code, message, options);
  }
}

/** The key is empty, absolute, contains `..` or is otherwise unusable. */
export class InvalidKeyError extends StorageError {
  static override readonly kind: string = "@bulwark/storage:InvalidKeyError";
  override name = "InvalidKeyError";
  readonly key: string;
  constructor(key: string, reason: string) {
    super("invalid_key", `invalid storage key ${JSON.stringify(key)}: ${reason}`);
    this.key = key;
  }
}

/** The value exceeds what the backend can store (Vault: "put failed due to value being too large"). */
export class ValueTooLargeError extends StorageError {
  static override readonly kind: string = "@bulwark/storage:ValueTooLargeError";
  override name = "ValueTooLargeError";
  readonly key: string;
  readonly size: number;
  readonly limit: number;
  constructor(key: string, size: number, limit: number) {
    super(
      "value_too_large",
      `put failed due to value being too large: ${JSON.stringify(key)} is ${size} bytes, the backend accepts at most ${limit}`,
    );
    this.key = key;
    this.size = size;
    this.limit = limit;
  }
}

/** A transaction was rolled back; `failedIndex` names the operation that failed, when known. */
export class TransactionError extends StorageError {
  static override readonly kind: string = "@bulwark/storage:TransactionError";
  override name = "TransactionError";
  readonly failedIndex: number | undefined;
  constructor(
    message: string,
    failedIndex?: number,
    options?: { cause?: unknown; code?: "transaction_failed" | "transaction_too_large" },
  ) {
    super(options?.code ?? "transaction_failed", message, options);
    this.failedIndex = failedIndex;
  }
}

/** The HA lock changed owner before the write (Vault: "lock has changed ownership before attempting write"). */
export class FencedWriteError extends StorageError {
  static override readonly kind: string = "@bulwark/storage:FencedWriteError";
  override name = "FencedWriteError";
  constructor(message = "lock has changed ownership before attempting write", options?: { cause?: unknown }) {
    super("fenced_write", message, options);
  }
}

/** The storage could not be reached or failed transiently; the operation may be retried. */
export class StorageUnavailableError extends StorageError {
  static override readonly kind: string = "@bulwark/storage:StorageUnavailableError";
  override name = "StorageUnavailableError";
  constructor(message: string, options?: { cause?: unknown }) {
    super("unavailable", message, options);
  }
}

/**
 * `Backend.probe()` found the storage unusable: unreachable, not writable, full. `setting` names
 * the backend option at fault (`path`, `address`, `token`, …) and `fix` says what to do, so a
 * caller that knows where the option was written (a config file and line) can point there.
 */
export class StorageProbeError extends StorageError {
  static override readonly kind: string = "@bulwark/storage:StorageProbeError";
  override name = "StorageProbeError";
  readonly setting: string;
  /** What happened, without the fix. */
  readonly detail: string;
  /** What to do about it. */
  readonly fix: string;
  constructor(
    code: StorageErrorCode,
    setting: string,
    detail: string,
    fix: string,
    options?: { cause?: unknown },
  ) {
    super(code, `${detail}; ${fix}`, options);
    this.setting = setting;
    this.detail = detail;
    this.fix = fix;
  }
}

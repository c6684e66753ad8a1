/** Stable codes for storage failures. */
export type StorageErrorCode =
  | "invalid_key"
  | "value_too_large"
  | "transaction_failed"
  | "transaction_too_large"
  | "fenced_write"
  | "unavailable"
  | "permission_denied"
  | "io";

export class StorageError extends Error {
  override name = "StorageError";
  readonly code: StorageErrorCode;

  constructor(code: StorageErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}

/** The key is empty, absolute, contains `..` or is otherwise unusable. */
export class InvalidKeyError extends StorageError {
  override name = "InvalidKeyError";
  readonly key: string;
  constructor(key: string, reason: string) {
    super("invalid_key", `invalid storage key ${JSON.stringify(key)}: ${reason}`);
    this.key = key;
  }
}

/** The value exceeds what the backend can store (Vault: "put failed due to value being too large"). */
export class ValueTooLargeError extends StorageError {
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
  override name = "FencedWriteError";
  constructor(message = "lock has changed ownership before attempting write", options?: { cause?: unknown }) {
    super("fenced_write", message, options);
  }
}

/** The storage could not be reached or failed transiently; the operation may be retried. */
export class StorageUnavailableError extends StorageError {
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

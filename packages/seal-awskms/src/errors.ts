import {
  SealDecryptError,
  SealError,
  type SealErrorCode,
  SealKeyNotFoundError,
  SealUnavailableError,
} from "@bulwark/seal";

/** The KMS API operations the seal calls. */
export type KmsOperation = "DescribeKey" | "Encrypt" | "Decrypt";

/** What AWS said, attached to every error the seal raises for a failed KMS call. */
export interface AwsKmsErrorDetails {
  operation: KmsOperation;
  /** AWS error code (`ThrottlingException`, `NotFoundException`), a Node network code (`ECONNREFUSED`), or `Timeout`. */
  awsErrorName: string;
  requestId: string | undefined;
  httpStatusCode: number | undefined;
  /** Attempts made (1 = no retry). */
  attempts: number;
}

type Details = { kms: AwsKmsErrorDetails };

/** A KMS call failed in a way no other class describes (validation error, unexpected response). */
export class AwsKmsError extends SealError {
  static override readonly kind: string = "@bulwark/seal-awskms:AwsKmsError";
  override name = "AwsKmsError";
  readonly kms: AwsKmsErrorDetails;
  constructor(code: SealErrorCode, message: string, options: Details & { cause?: unknown }) {
    super(code, message, { cause: options.cause });
    this.kms = options.kms;
  }
}

/** KMS could not be reached or kept failing transiently (throttling, timeouts, 5xx) after every retry. */
export class AwsKmsUnavailableError extends SealUnavailableError {
  static override readonly kind: string = "@bulwark/seal-awskms:AwsKmsUnavailableError";
  override name = "AwsKmsUnavailableError";
  readonly kms: AwsKmsErrorDetails;
  constructor(message: string, options: Details & { cause?: unknown }) {
    super(message, { cause: options.cause });
    this.kms = options.kms;
  }
}

/** The credentials are missing, invalid, or lack a KMS permission (AccessDenied, UnrecognizedClient, …). */
export class AwsKmsAccessDeniedError extends SealUnavailableError {
  static override readonly kind: string = "@bulwark/seal-awskms:AwsKmsAccessDeniedError";
  override name = "AwsKmsAccessDeniedError";
  readonly kms: AwsKmsErrorDetails;
  constructor(message: string, options: Details & { cause?: unknown }) {
    super(message, { cause: options.cause });
    this.kms = options.kms;
  }
}

/** The key exists but cannot be used: disabled, pending deletion, pending import, unavailable, or the wrong kind. */
export class AwsKmsKeyStateError extends SealUnavailableError {
  static override readonly kind: string = "@bulwark/seal-awskms:AwsKmsKeyStateError";
  override name = "AwsKmsKeyStateError";
  readonly kms: AwsKmsErrorDetails | undefined;
  /** `Disabled`, `PendingDeletion`, … when known. */
  readonly keyState: string | undefined;
  readonly keyId: string;
  constructor(
    keyId: string,
    message: string,
    options: { kms?: AwsKmsErrorDetails | undefined; keyState?: string | undefined; cause?: unknown },
  ) {
    super(message, { cause: options.cause });
    this.keyId = keyId;
    this.kms = options.kms;
    this.keyState = options.keyState;
  }
}

/** KMS does not know the key (NotFoundException): wrong id, wrong region or account, or deleted. */
export class AwsKmsKeyNotFoundError extends SealKeyNotFoundError {
  static override readonly kind: string = "@bulwark/seal-awskms:AwsKmsKeyNotFoundError";
  override name = "AwsKmsKeyNotFoundError";
  readonly kms: AwsKmsErrorDetails;
  constructor(keyId: string, message: string, options: Details & { cause?: unknown }) {
    super(keyId, message, { cause: options.cause });
    this.kms = options.kms;
  }
}

/**
 * KMS refused to decrypt the wrapped data key (InvalidCiphertextException, IncorrectKeyException):
 * a different encryption context, a different key, or changed bytes.
 */
export class AwsKmsDecryptError extends SealDecryptError {
  static override readonly kind: string = "@bulwark/seal-awskms:AwsKmsDecryptError";
  override name = "AwsKmsDecryptError";
  readonly kms: AwsKmsErrorDetails;
  constructor(keyId: string | undefined, message: string, options: Details & { cause?: unknown }) {
    super(message, { cause: options.cause, keyId });
    this.kms = options.kms;
  }
}

// ---------------------------------------------------------------------------------------------
// Classification of what a KMS call threw.

/** AWS error codes worth another attempt. */
const RETRYABLE_NAMES = new Set([
  "ThrottlingException",
  "Throttling",
  "ThrottledException",
  "TooManyRequestsException",
  "RequestThrottled",
  "RequestThrottledException",
  "RequestLimitExceeded",
  "ProvisionedThroughputExceededException",
  "SlowDown",
  "KeyUnavailableException",
  "KMSInternalException",
  "DependencyTimeoutException",
  "InternalFailure",
  "InternalError",
  "InternalServerError",
  "ServiceUnavailable",
  "ServiceUnavailableException",
  "RequestTimeout",
  "RequestTimeoutException",
  "TimeoutError",
  "Timeout",
  "PriorRequestNotComplete",
]);

/** Node / undici network error codes: the request may not have reached KMS, or its answer was lost. */
const NETWORK_CODES = new Set([
  "ECONNRESET",
  "ECONNREFUSED",
  "ECONNABORTED",
  "EPIPE",
  "ETIMEDOUT",
  "ENETUNREACH",
  "ENETDOWN",
  "EHOSTUNREACH",
  "EHOSTDOWN",
  "EAI_AGAIN",
  "ENOTFOUND",
  "ERR_SOCKET_CONNECTION_TIMEOUT",
  "UND_ERR_SOCKET",
  "UND_ERR_CONNECT_TIMEOUT",
]);

const ACCESS_NAMES = new Set([
  "AccessDeniedException",
  "AccessDenied",
  "UnrecognizedClientException",
  "InvalidSignatureException",
  "IncompleteSignature",
  "MissingAuthenticationToken",
  "MissingAuthenticationTokenException",
  "ExpiredTokenException",
  "ExpiredToken",
  "InvalidClientTokenId",
  "SignatureDoesNotMatch",
  "CredentialsProviderError",
]);

export interface ClassifiedError {
  /** AWS error code, Node network code, or "Timeout". */
  name: string;
  retryable: boolean;
  requestId: string | undefined;
  httpStatusCode: number | undefined;
  /** AWS's message, shortened; never contains credentials (AWS does not echo them). */
  message: string;
}

function prop(value: unknown, key: string): unknown {
  return typeof value === "object" && value !== null ? (value as Record<string, unknown>)[key] : undefined;
}

/** Finds a network error code on the error or its cause chain (the SDK sometimes wraps them). */
function networkCode(err: unknown): string | undefined {
  let e: unknown = err;
  for (let depth = 0; depth < 4 && e !== undefined && e !== null; depth++) {
    const code = prop(e, "code");
    if (typeof code === "string" && NETWORK_CODES.has(code)) return code;
    e = prop(e, "cause");
  }
  const message = prop(err, "message");
  if (typeof message === "string" && /socket hang up|other side closed|ECONNRESET/i.test(message))
    return "ECONNRESET";
  return undefined;
}

function shorten(text: string, max = 300): string {
  const oneLine = text.replace(/\s+/g, " ").trim();
  return oneLine.length > max ? `${oneLine.slice(0, max - 1)}…` : oneLine;
}

/** Reads name, request id, status and retryability from whatever a {@link KmsApi} call threw. */
export function classifyKmsError(err: unknown, timedOut: boolean): ClassifiedError {
  const metadata = prop(err, "$metadata");
  const requestIdRaw = prop(metadata, "requestId");
  const statusRaw = prop(metadata, "httpStatusCode");
  const requestId = typeof requestIdRaw === "string" && requestIdRaw !== "" ? requestIdRaw : undefined;
  const httpStatusCode = typeof statusRaw === "number" ? statusRaw : undefined;
  const rawMessage = prop(err, "message");
  const message = shorten(typeof rawMessage === "string" ? rawMessage : String(err));
  if (timedOut) return { name: "Timeout", retryable: true, requestId, httpStatusCode, message };
  // The SDK renames socket errors to TimeoutError (for its retry logic): the code says what happened.
  const net = networkCode(err);
  if (net !== undefined && net !== "ETIMEDOUT")
    return { name: net, retryable: true, requestId, httpStatusCode, message };
  if (net === "ETIMEDOUT" || prop(err, "name") === "TimeoutError") {
    return { name: "Timeout", retryable: true, requestId, httpStatusCode, message };
  }
  const nameRaw = prop(err, "name");
  const name = typeof nameRaw === "string" && nameRaw !== "" ? nameRaw : "Error";
  if (RETRYABLE_NAMES.has(name)) return { name, retryable: true, requestId, httpStatusCode, message };
  if (prop(err, "$retryable") !== undefined && !ACCESS_NAMES.has(name)) {
    return { name, retryable: true, requestId, httpStatusCode, message };
  }
  // A server-side fault or 5xx/429 without a modelled client error is transient too.
  const fault = prop(err, "$fault");
  const serverish =
    fault === "server" || (httpStatusCode !== undefined && (httpStatusCode >= 500 || httpStatusCode === 429));
  const modelledClientError = /Exception$/.test(name) && fault === "client";
  return {
    name,
    retryable: serverish && !modelledClientError && !ACCESS_NAMES.has(name),
    requestId,
    httpStatusCode,
    message,
  };
}

const PERMISSIONS = "kms:DescribeKey, kms:Encrypt and kms:Decrypt";

function suffix(c: ClassifiedError, attempts: number): string {
  const parts = [c.name];
  if (c.requestId !== undefined) parts.push(`request id ${c.requestId}`);
  if (attempts > 1) parts.push(`${attempts} attempts`);
  return `(${parts.join(", ")})`;
}

/**
 * Turns a failed KMS call into the seal error that says what happened and what to do.
 * `keyId` is the key the call named (configured id or the blob's ARN); `where` describes the
 * endpoint/region for messages.
 */
export function toSealError(
  operation: KmsOperation,
  keyId: string | undefined,
  err: unknown,
  c: ClassifiedError,
  attempts: number,
  where: string,
): SealError {
  const kms: AwsKmsErrorDetails = {
    operation,
    awsErrorName: c.name,
    requestId: c.requestId,
    httpStatusCode: c.httpStatusCode,
    attempts,
  };
  const key = keyId === undefined || keyId === "" ? "the key named in the ciphertext" : keyId;
  const tail = suffix(c, attempts);
  // Only an answer from KMS is "AWS said"; a socket or timeout error is the client's own account.
  const fromAws = c.requestId !== undefined || c.httpStatusCode !== undefined;
  const aws = c.message === "" ? "" : `; ${fromAws ? "AWS said" : "error"}: ${c.message}`;
  const options = { kms, cause: err };
  if (c.retryable) {
    const what =
      c.name === "Timeout"
        ? `KMS ${operation} timed out (${where})`
        : NETWORK_CODES.has(c.name)
          ? `cannot reach AWS KMS (${where}) for ${operation}`
          : `KMS ${operation} kept failing transiently`;
    return new AwsKmsUnavailableError(
      `${what} ${tail}${aws}; gave up after ${attempts} attempt${attempts === 1 ? "" : "s"}: check the endpoint, region and network, or raise max_retries / request_timeout`,
      options,
    );
  }
  if (c.name === "CredentialsProviderError") {
    return new AwsKmsAccessDeniedError(
      `no AWS credentials for KMS ${operation} ${tail}: set access_key/secret_key, shared_creds_profile, web_identity_token_file + role_arn, or run with an instance/task role`,
      options,
    );
  }
  if (ACCESS_NAMES.has(c.name)) {
    const permission = `kms:${operation}`;
    const fix =
      c.name === "AccessDeniedException" || c.name === "AccessDenied"
        ? `grant ${PERMISSIONS} on the key to this principal (key policy or IAM policy), and check the key is in this account/region`
        : "the credentials were rejected: check access_key/secret_key/session_token or the credential chain, and the clock";
    return new AwsKmsAccessDeniedError(`${permission} denied for ${key} ${tail}${aws}: ${fix}`, options);
  }
  switch (c.name) {
    case "NotFoundException":
      return new AwsKmsKeyNotFoundError(
        keyId ?? "",
        `KMS key ${key} not found (${where}) ${tail}${aws}: check kms_key_id, the region and the account; a deleted key cannot be recovered`,
        options,
      );
    case "DisabledException":
      return new AwsKmsKeyStateError(
        keyId ?? "",
        `KMS key ${key} is disabled ${tail}: enable it (aws kms enable-key --key-id ${key}); the seal cannot encrypt or decrypt with a disabled key`,
        { ...options, keyState: "Disabled" },
      );
    case "KMSInvalidStateException":
      return new AwsKmsKeyStateError(
        keyId ?? "",
        `KMS key ${key} is not in a usable state ${tail}${aws}: if it is pending deletion, cancel it (aws kms cancel-key-deletion) and enable it; if pending import, import its key material`,
        options,
      );
    case "InvalidCiphertextException":
    case "IncorrectKeyException":
      return new AwsKmsDecryptError(
        keyId,
        operation === "Decrypt"
          ? `KMS could not decrypt the wrapped data key with ${key} ${tail}: the encryption context differs from the one used at encryption, the ciphertext was changed, or it was written with another key`
          : `KMS rejected the ${operation} request for ${key} ${tail}${aws}`,
        options,
      );
    case "InvalidKeyUsageException":
      return new AwsKmsKeyStateError(
        keyId ?? "",
        `KMS key ${key} cannot be used for ${operation} ${tail}${aws}: the seal needs a symmetric key (SYMMETRIC_DEFAULT) with key usage ENCRYPT_DECRYPT`,
        options,
      );
    default:
      return new AwsKmsError(
        operation === "Encrypt"
          ? "encrypt_failed"
          : operation === "Decrypt"
            ? "decrypt_failed"
            : "provider_failed",
        `KMS ${operation} with ${key} failed ${tail}${aws}`,
        options,
      );
  }
}

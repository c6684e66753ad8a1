/**
 * Every failure becomes Vault's error shape, `{"errors":["…"]}`, with Vault's status codes:
 * 400 bad request, 403 permission denied, 404 not found, 405 unsupported operation, 413 body too
 * large, 503 sealed/standby/unavailable, 500 anything unexpected.
 *
 * Bulwark's errors are `CodedError`s: the status comes from one table keyed by the error's
 * (domain, code) — never by class name or message text — so an error thrown by a second copy of a
 * package (two installed versions, the ESM and CJS builds) answers the same. Each domain's row is
 * checked with `satisfies Record<Code, Answer>`: a new code without a status does not typecheck.
 */
import type { BarrierErrorCode } from "@bulwark/barrier";
import type { CoreErrorCode } from "@bulwark/core";
import type { CryptoErrorCode } from "@bulwark/crypto";
import { CodedError, isCodedError } from "@bulwark/errors";
import type { HclErrorCode } from "@bulwark/hcl";
import type { SealErrorCode } from "@bulwark/seal";
import type { SettingsErrorCode } from "@bulwark/settings";
import type { StorageErrorCode } from "@bulwark/storage";
import { SEALED_MESSAGE, VAULT_ERROR_STATUS, type VaultErrorCode } from "@bulwark/vault";
import type { ConfigErrorCode } from "../config/errors.js";
import type { ProviderErrorCode } from "../registry/errors.js";

/** Codes of {@link HttpError} (domain "http"), one per status class the server answers. */
export const HTTP_ERROR_CODES = [
  "bad_request",
  "permission_denied",
  "not_found",
  "unsupported_operation",
  "request_too_large",
  /** Any other 4xx (Fastify's 415, 406, …). */
  "client_error",
  "internal",
  "unavailable",
  /** Any other 5xx. */
  "server_error",
] as const;

export type HttpErrorCode = (typeof HTTP_ERROR_CODES)[number];

function httpErrorCode(status: number): HttpErrorCode {
  switch (status) {
    case 400:
      return "bad_request";
    case 403:
      return "permission_denied";
    case 404:
      return "not_found";
    case 405:
      return "unsupported_operation";
    case 413:
      return "request_too_large";
    case 500:
      return "internal";
    case 503:
      return "unavailable";
    default:
      return status >= 500 ? "server_error" : "client_error";
  }
}

/** An answer ready to send: `status` and Vault's error list. Its `code` follows the status. */
export class HttpError extends CodedError<HttpErrorCode> {
  static override readonly kind: string = "@bulwark/server:HttpError";
  override name = "HttpError";
  readonly status: number;
  readonly errors: string[];
  /**
   * The unredacted message, for the server log only, when the client's text had file system
   * paths or storage ids taken out (see {@link redact}).
   */
  detail?: string;
  constructor(status: number, message: string | string[]) {
    const errors = Array.isArray(message) ? message : message === "" ? [] : [message];
    super("http", httpErrorCode(status), errors.join("; ") || `HTTP ${status}`);
    this.status = status;
    this.errors = errors;
  }
}

/** Vault's text for a sealed store (declared once, in @bulwark/vault). */
export { SEALED_MESSAGE };

const UUID = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/gi;
/** An absolute path of two segments or more (`/var/lib/bulwark/data`), wherever it starts. */
const ABSOLUTE_PATH = /(^|[\s"'`(=:,[{])\/(?:[^\s"'`),:\]}]+\/)+[^\s"'`),:\]}]*/g;
/** A stack frame line (`    at fn (file.js:1:2)`). */
const STACK_LINE = /\n\s+at [^\n]*/g;

/**
 * What a client may see of an internal message: no file system paths (the data directory, a
 * plugin's file), no storage ids (a mount's UUID in `logical/<uuid>/…`), no stack frames. The
 * server log keeps the full text (`HttpError.detail`).
 */
export function redact(message: string): string {
  return message
    .replace(STACK_LINE, "")
    .replace(ABSOLUTE_PATH, (_m, lead: string) => `${lead}<path>`)
    .replace(UUID, "<id>");
}

function redacted(status: number, message: string, requestId?: string): HttpError {
  const clean = redact(message);
  const see = requestId === undefined ? "" : ` (request id ${requestId}: details in the server log)`;
  const h = new HttpError(status, clean === message ? message : `${clean}${see}`);
  if (clean !== message) h.detail = message;
  return h;
}

export function permissionDenied(): HttpError {
  return new HttpError(403, "permission denied");
}

/** How one (domain, code) answers over HTTP. */
export interface Answer {
  readonly status: number;
  /**
   * The message was written for the client (it names the request's own field or value) and is
   * sent as is. Otherwise it is redacted (see {@link redact}): the log keeps the full text.
   */
  readonly expose?: true;
  /** Vault's exact text, sent instead of the message (clients match on it). */
  readonly text?: string;
  /** The prefix of this code's (redacted) message, instead of its domain's. */
  readonly prefix?: string;
}

/** One domain's row: its codes, and the prefix its (redacted) messages get. */
interface DomainAnswers {
  readonly prefix?: string;
  readonly codes: Readonly<Record<string, Answer>>;
}

// The sealed reason (if any) is in seal-status's warnings; clients match on Vault's text.
const SEALED: Answer = { status: 503, text: SEALED_MESSAGE };
const DENIED: Answer = { status: 403, text: "permission denied" };
const BAD: Answer = { status: 400 };
const BAD_EXPOSED: Answer = { status: 400, expose: true };
const UNAVAILABLE: Answer = { status: 503 };
const INTERNAL: Answer = { status: 500 };
/** An internal failure of a domain whose other messages go out bare: the 500 text of a plain Error. */
const INTERNAL_ERROR: Answer = { status: 500, prefix: "internal error: " };

/**
 * Vault's logical layer declares the status of each of its codes (`VAULT_ERROR_STATUS`); how each
 * is shown follows from the status. Its 4xx messages name the caller's own request (its fields, its
 * path: a UUID there is the caller's, not a storage id) and are sent as written; 403 and 503 are
 * Vault's fixed texts; a 500 is this layer's own failure ("internal error: …", as before the
 * logical layer moved out of the server).
 */
function vaultAnswers(statuses: Readonly<Record<VaultErrorCode, number>>): Record<VaultErrorCode, Answer> {
  const answer = (status: number): Answer =>
    status === 403
      ? DENIED
      : status === 503
        ? SEALED
        : status >= 500
          ? INTERNAL_ERROR
          : { status, expose: true };
  const entries = Object.entries(statuses).map(([code, status]) => [code, answer(status)]);
  const table = Object.fromEntries(entries) as Record<VaultErrorCode, Answer>;
  // No audit device could record the request: Vault's bare text; which device failed and why is
  // in the server log (the error handler logs every 500 with its message).
  table.audit_failed = { status: 500, text: "internal error" };
  return table;
}

const ANSWERS = {
  core: {
    codes: {
      sealed: SEALED,
      not_initialized: BAD,
      already_initialized: BAD,
      invalid_key: BAD,
      invalid_request: BAD,
      standby: UNAVAILABLE,
      nonce_mismatch: BAD,
      no_operation_in_progress: BAD,
      operation_in_progress: BAD,
      migration: BAD,
      // The HSM/KMS cannot be reached (auto-unseal is retrying): unavailable, not a server fault.
      seal_unavailable: UNAVAILABLE,
      closed: UNAVAILABLE,
    } satisfies Record<CoreErrorCode, Answer>,
  },
  storage: {
    prefix: "storage: ",
    codes: {
      invalid_key: BAD,
      value_too_large: { status: 413 },
      transaction_failed: INTERNAL,
      transaction_too_large: INTERNAL,
      fenced_write: UNAVAILABLE,
      unavailable: UNAVAILABLE,
      permission_denied: INTERNAL,
      io: INTERNAL,
      invalid_config: INTERNAL,
      // Cancelled under the request (the server is stopping): retry.
      aborted: UNAVAILABLE,
      // A lock handle used against its contract: the server's bug.
      invalid_operation: INTERNAL,
    } satisfies Record<StorageErrorCode, Answer>,
  },
  barrier: {
    codes: {
      sealed: SEALED,
      // Vault's sys/init and sys/unseal answer these 400.
      not_initialized: BAD,
      already_initialized: BAD,
      invalid_key: BAD,
      invalid_argument: BAD,
      invalid_rotation_config: BAD,
      // A keyring that does not open, a ciphertext that does not decrypt, a key that cannot
      // rotate: the stored data or the server is at fault, never the request (Vault: 500).
      invalid_keyring: INTERNAL,
      keyring_missing: INTERNAL,
      keyring_not_restored: INTERNAL,
      key_conflict: INTERNAL,
      active_key_removal: INTERNAL,
      term_exhausted: INTERNAL,
      invalid_json: INTERNAL,
      ciphertext_too_short: INTERNAL,
      unknown_version: INTERNAL,
      unknown_term: INTERNAL,
      authentication_failed: INTERNAL,
    } satisfies Record<BarrierErrorCode, Answer>,
  },
  // A seal failure under a request is the server's (its HSM/KMS), whatever the cause.
  seal: {
    prefix: "seal: ",
    codes: {
      invalid_config: INTERNAL,
      invalid_argument: INTERNAL,
      unavailable: INTERNAL,
      key_not_found: INTERNAL,
      encrypt_failed: INTERNAL,
      decrypt_failed: INTERNAL,
      not_initialized: INTERNAL,
      finalized: INTERNAL,
      invalid_blob_info: INTERNAL,
      unsupported_operation: INTERNAL,
      contract_violation: INTERNAL,
      provider_failed: INTERNAL,
    } satisfies Record<SealErrorCode, Answer>,
  },
  crypto: {
    prefix: "internal error: ",
    codes: {
      invalid_key: INTERNAL,
      invalid_nonce: INTERNAL,
      authentication_failed: INTERNAL,
      invalid_argument: INTERNAL,
      key_zeroed: INTERNAL,
      shamir_invalid_parameters: INTERNAL,
      shamir_invalid_shares: INTERNAL,
    } satisfies Record<CryptoErrorCode, Answer>,
  },
  // A document the request carried (a policy) does not parse: Vault answers 400.
  hcl: { codes: { hcl_parse: BAD } satisfies Record<HclErrorCode, Answer> },
  settings: {
    codes: {
      invalid_boolean: BAD_EXPOSED,
      invalid_duration: BAD_EXPOSED,
      invalid_value: BAD_EXPOSED,
      // An env:// or file:// reference of the server's own configuration.
      unresolved_reference: INTERNAL,
    } satisfies Record<SettingsErrorCode, Answer>,
  },
  config: {
    prefix: "internal error: ",
    codes: { invalid_config: INTERNAL } satisfies Record<ConfigErrorCode, Answer>,
  },
  registry: {
    prefix: "internal error: ",
    codes: {
      unknown_type: INTERNAL,
      invalid_options: INTERNAL,
      plugin_not_found: INTERNAL,
      plugin_invalid: INTERNAL,
      provider_failed: INTERNAL,
    } satisfies Record<ProviderErrorCode, Answer>,
  },
  vault: { codes: vaultAnswers(VAULT_ERROR_STATUS) },
} satisfies Record<string, DomainAnswers>;

const TABLE: ReadonlyMap<string, { prefix: string; codes: ReadonlyMap<string, Answer> }> = new Map(
  Object.entries(ANSWERS).map(([domain, row]: [string, DomainAnswers]) => [
    domain,
    { prefix: row.prefix ?? "", codes: new Map(Object.entries(row.codes)) },
  ]),
);

/** The table's answer for (domain, code); undefined when the table has none (then: 500). */
export function answerFor(domain: string, code: string): Answer | undefined {
  return TABLE.get(domain)?.codes.get(code);
}

/** The domains the table answers for. */
export function answeredDomains(): IterableIterator<string> {
  return TABLE.keys();
}

function fromTable(e: CodedError, requestId: string | undefined): HttpError | undefined {
  const row = TABLE.get(e.domain);
  const answer = row?.codes.get(e.code);
  if (row === undefined || answer === undefined) return undefined;
  if (answer.text !== undefined) return new HttpError(answer.status, answer.text);
  if (answer.expose === true) return new HttpError(answer.status, e.message);
  return redacted(answer.status, `${answer.prefix ?? row.prefix}${e.message}`, requestId);
}

/** What Fastify's own errors carry (its codes are `FST_…`; not Bulwark's, so not in the table). */
interface FrameworkError {
  code?: unknown;
  statusCode?: unknown;
  message?: unknown;
}

/**
 * Maps any thrown value to a status and Vault-style error list. Messages that come from below the
 * HTTP layer (storage, barrier, seal, unexpected errors) are redacted for the client; `requestId`
 * is then named in the client's text so the full message can be found in the log.
 */
export function toHttpError(e: unknown, requestId?: string): HttpError {
  if (e instanceof HttpError) return e;
  if (isCodedError(e)) {
    const answer = fromTable(e, requestId);
    if (answer !== undefined) return answer;
  }
  const c: FrameworkError = typeof e === "object" && e !== null ? e : {};
  const message = typeof c.message === "string" ? c.message : String(e);
  if (typeof c.code === "string" && c.code.startsWith("FST_")) {
    if (c.code === "FST_ERR_CTP_BODY_TOO_LARGE") return new HttpError(413, "http: request body too large");
    if (typeof c.statusCode === "number" && c.statusCode < 500) return new HttpError(c.statusCode, message);
  }
  return redacted(500, `internal error: ${message}`, requestId);
}

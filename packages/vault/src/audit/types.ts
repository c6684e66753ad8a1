/**
 * The seams of Bulwark's audit devices (Vault's `audit` subsystem), shared by the formatter
 * (format.ts, hash.ts), the devices (devices/), the broker (broker.ts) and the HTTP server.
 *
 * Values here are the request's own, unhashed: the formatter HMACs them per device (with that
 * device's salt) unless the device logs raw. Field names follow OpenBao 2.6's `logical.LogInput`
 * and `audit.AuditRequestEntry` / `AuditResponseEntry` (internal/audit/format.go); the records
 * written are byte-compatible in shape with OpenBao's (see fixtures/openbao-2.6.2/).
 */

import type { CodedErrorOptions } from "@bulwark/errors";
import { BadRequestError } from "../errors.js";

/** Who made the request (Vault's `logical.Auth` as the audit formatter reads it). */
export interface AuditAuthInput {
  /** The token itself (hashed unless `log_raw`). */
  clientToken?: string;
  /** The token's accessor (hashed when `hmac_accessor`, the default). */
  accessor?: string;
  displayName?: string;
  policies?: string[];
  tokenPolicies?: string[];
  identityPolicies?: string[];
  noDefaultPolicy?: boolean;
  /** The ACL's verdict on the request and the policies that granted it (Vault's PolicyResults). */
  policyResults?: { allowed: boolean; grantingPolicies: AuditPolicyInfo[] };
  metadata?: Record<string, string> | null;
  /** A created token's use limit (response auth only). */
  numUses?: number;
  /** The uses the token has left after this request (0 = unlimited; Vault's `remaining_uses`). */
  remainingUses?: number;
  entityId?: string;
  /** "service", "batch", or "default" when no token was presented (Vault's TokenTypeDefault). */
  tokenType: string;
  /** Seconds. */
  tokenTtl?: number;
  /** RFC 3339 (seconds precision), as Vault's `IssueTime.Format(time.RFC3339)`. */
  tokenIssueTime?: string;
}

export interface AuditPolicyInfo {
  name: string;
  /** "root" (Bulwark has no namespaces). */
  namespaceId: string;
  /** "acl". */
  type: string;
}

/** The request (Vault's `logical.Request` as the audit formatter reads it). */
export interface AuditRequestInput {
  /** The request id (a UUID), the same in the request and the response record. */
  id: string;
  /** Vault's client id: the entity id, or base64(SHA-256(sorted policies + namespace)) — see clientIdOf. */
  clientId?: string;
  /** Vault's operation: read, list, create, update, delete, patch. */
  operation: string;
  /** "secret/", "sys/", "auth/token/" … with the trailing '/'. */
  mountPoint?: string;
  /** "kv", "system", "token", "cubbyhole" … */
  mountType?: string;
  mountAccessor?: string;
  /** The mount's running plugin version (OpenBao: `v2.6.2+builtin.bao`). */
  mountRunningVersion?: string;
  /** "secret" or "auth". */
  mountClass?: string;
  clientToken?: string;
  clientTokenAccessor?: string;
  /** The request path below /v1/, without a leading '/'. */
  path: string;
  /** The request body (parsed JSON: objects, arrays, strings, booleans, null, numbers or JsonNumbers). */
  data?: Record<string, unknown> | null;
  remoteAddress?: string;
  remotePort?: number;
  /** Audited request headers (lower-cased names → values); none unless configured. */
  headers?: Record<string, string[]>;
  /** The node id of a standby that forwarded the request, when it was forwarded. */
  forwardedFrom?: string;
}

/** What the request produced (Vault's `logical.Response` as the audit formatter reads it). */
export interface AuditResponseInput {
  /** A token the response issued (token create, login). */
  auth?: AuditAuthInput;
  /** The lease of a dynamic secret. */
  secret?: { leaseId: string };
  /** The response's `data` (Vault logs the engine's data, not the HTTP envelope). */
  data?: Record<string, unknown> | null;
  warnings?: string[];
  redirect?: string;
  headers?: Record<string, string[]>;
}

/** One audit event: the request record is written before the request runs, the response record after. */
export interface LogInput {
  /** "request" / "response" unless given (OpenBao's test probe sets "request"). */
  type?: string;
  auth?: AuditAuthInput;
  request: AuditRequestInput;
  response?: AuditResponseInput;
  /** The error the request ended with, as text (Vault's OuterErr). */
  error?: string;
  /** The mount's `audit_non_hmac_request_keys` / `audit_non_hmac_response_keys`. */
  nonHmacRequestKeys?: string[];
  nonHmacResponseKeys?: string[];
}

/** How a device writes records: its options, parsed (Vault's audit.FormatterConfig + format/prefix). */
export interface FormatConfig {
  /** `log_raw`: nothing is hashed. */
  raw: boolean;
  /** `hmac_accessor` (default true): accessors are hashed too. */
  hmacAccessor: boolean;
  /** `elide_list_responses`: a list response's `keys` becomes its count, `key_info` its size. */
  elideListResponses: boolean;
  /** `format`: "json" (default) or "jsonx" (Vault's XML form; OpenBao 2.6 removed it). */
  format: "json" | "jsonx";
  /** `prefix`: written before every record. */
  prefix: string;
}

/** `hmac-sha256:<hex>` of a value with one device's salt (Vault's `salt.GetIdentifiedHMAC`). */
export type Hasher = (value: string) => string;

/** Where one device writes its records. */
export interface AuditDevice {
  readonly type: string;
  /**
   * Writes one record (already formatted, prefix and trailing newline included). Resolves once the
   * device has taken it (the file written to, the socket accepted it); rejects when it could not —
   * the broker then counts this device as failed for this record.
   */
  write(record: Uint8Array): Promise<void>;
  /** Reopens the device's file or connection (SIGHUP, for logrotate); a no-op where there is none. */
  reopen(): Promise<void>;
  /** Closes it (the device is disabled, the node steps down or seals). */
  close(): Promise<void>;
}

/** What a device factory is given besides its options. */
export interface AuditDeviceContext {
  /** The device's path in the audit table ("file/"), for messages. */
  path: string;
  /** Where a device reports trouble (a reconnect, a failed write). */
  logger?: { warn(obj: Record<string, unknown>, msg: string): void };
}

/**
 * Makes a device from its options (Vault's `options` map: strings only). Throws an
 * AuditOptionError naming the option and the fix when an option is missing or invalid. Does not
 * write anything (the broker writes Vault's test record when the device is enabled).
 */
export type AuditDeviceFactory = (
  options: Readonly<Record<string, string>>,
  ctx: AuditDeviceContext,
) => AuditDevice;

/** An enabled device as `sys/audit` lists it. */
export interface AuditDeviceInfo {
  /** With the trailing '/'. */
  path: string;
  type: string;
  description: string;
  options: Record<string, string>;
  local: boolean;
}

/** What `sys/audit/<path>` asks to enable. */
export interface EnableAuditRequest {
  type: string;
  description?: string;
  options?: Record<string, string>;
  local?: boolean;
}

/** The server config's audit settings. */
export interface AuditSettings {
  /** The `audit` blocks, in config order. */
  devices: readonly ConfigAuditDevice[];
  /** OpenBao 2.6's `unsafe_allow_api_audit_creation` (default false: sys/audit/<path> refuses to enable). */
  unsafeAllowApiAuditCreation: boolean;
  /** OpenBao 2.6's `allow_audit_log_prefixing` (default false: the `prefix` option is refused). */
  allowAuditLogPrefixing: boolean;
}

/** An `audit "<type>" "<path>" { … }` block of the server config (OpenBao's declarative devices). */
export interface ConfigAuditDevice extends EnableAuditRequest {
  path: string;
}

/**
 * The audit devices of one store (Vault's audit broker + audit table), on the active node only:
 * the table (`core/audit`, `core/local-audit`) is loaded and the devices opened once per active
 * term; a standby has none open (the HTTP server forwards audited requests to the active node).
 */
export interface AuditBroker {
  /**
   * Whether requests must be audited: at least one device is in the table. Loads the table (and
   * opens the devices) on the first call of an active term. On a standby: whether the stored table
   * names any device (cached briefly), so the caller can forward instead of serving unaudited.
   */
  enabled(): Promise<boolean>;
  /** {@link enabled} when the answer is at hand without waiting (the active term's table), else undefined. */
  enabledNow?(): boolean | undefined;
  /**
   * Writes the request record to every device. Resolves when at least one device took it, or when
   * no device is enabled; otherwise rejects with a VaultError "audit_failed" (500, Vault's
   * "internal error"): the request must not run.
   */
  logRequest(input: LogInput): Promise<void>;
  /** The response record; rejects as logRequest when no device took it. */
  logResponse(input: LogInput): Promise<void>;
  /** The enabled devices, in table order. */
  list(): Promise<AuditDeviceInfo[]>;
  /**
   * Enables a device through the API (sys/audit/<path>): refused unless the settings have
   * `unsafeAllowApiAuditCreation`, and a `prefix` option unless `allowAuditLogPrefixing` (OpenBao
   * 2.6's hardening, its error texts). Validates the options, opens the device, writes Vault's test
   * record (unless `skip_test=true`), creates its salt and stores the table. Refuses a path that
   * overlaps one in use.
   */
  enable(path: string, request: EnableAuditRequest): Promise<void>;
  /**
   * Disables a device through the API (its salt goes with it). A path with no device: nothing
   * happens. A device of the server config is refused ("cannot disable configuration-managed audit device").
   */
  disable(path: string): Promise<void>;
  /** `hmac-sha256:<hex>` of `input` with the device's salt (sys/audit-hash). */
  hash(path: string, input: string): Promise<string>;
  /**
   * Takes the server config's audit settings (at start and on SIGHUP) and makes the table match
   * its `audit` blocks (OpenBao's handleAuditLogSetup): adds the missing ones, refuses one that
   * differs from its stored entry or duplicates an API-created device, disables config devices no
   * longer configured. Reconciles now when this node is active, and again at the start of every
   * active term. Rejects (naming the block) when a block cannot be set up.
   */
  configure(settings: AuditSettings): Promise<void>;
  /** Reopens every device (SIGHUP). */
  reopen(): Promise<void>;
  /** Closes every device (the server stops). */
  close(): Promise<void>;
}

/**
 * An audit device option that is missing or invalid (400, as OpenBao answers `sys/audit/<path>`):
 * `option` names it, the message says what is accepted. Devices and the formatter throw it.
 */
export class AuditOptionError extends BadRequestError {
  static override readonly kind: string = "@bulwark/vault:AuditOptionError";
  override name = "AuditOptionError";
  readonly option: string;
  constructor(option: string, message: string, options?: CodedErrorOptions) {
    super(message, options);
    this.option = option;
  }
}

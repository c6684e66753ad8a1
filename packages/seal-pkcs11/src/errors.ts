import { CodedError, type CodedErrorOptions } from "@bulwark/errors";
import type { SealErrorCode } from "@bulwark/seal";
import pkcs11js from "pkcs11js";

// Return values the seal reacts to (PKCS#11 v2.40 numbers).
export const CKR_GENERAL_ERROR = 0x5;
export const CKR_ARGUMENTS_BAD = 0x7;
export const CKR_DEVICE_ERROR = 0x30;
export const CKR_DEVICE_REMOVED = 0x32;
export const CKR_KEY_HANDLE_INVALID = 0x60;
export const CKR_KEY_TYPE_INCONSISTENT = 0x63;
export const CKR_KEY_FUNCTION_NOT_PERMITTED = 0x68;
export const CKR_MECHANISM_INVALID = 0x70;
export const CKR_MECHANISM_PARAM_INVALID = 0x71;
export const CKR_OBJECT_HANDLE_INVALID = 0x82;
export const CKR_OPERATION_ACTIVE = 0x90;
export const CKR_PIN_INCORRECT = 0xa0;
export const CKR_PIN_INVALID = 0xa1;
export const CKR_PIN_LEN_RANGE = 0xa2;
export const CKR_PIN_EXPIRED = 0xa3;
export const CKR_PIN_LOCKED = 0xa4;
export const CKR_SESSION_CLOSED = 0xb0;
export const CKR_SESSION_HANDLE_INVALID = 0xb3;
export const CKR_SIGNATURE_INVALID = 0xc0;
export const CKR_SIGNATURE_LEN_RANGE = 0xc1;
export const CKR_TOKEN_NOT_PRESENT = 0xe0;
export const CKR_USER_ALREADY_LOGGED_IN = 0x100;
export const CKR_USER_NOT_LOGGED_IN = 0x101;
export const CKR_CRYPTOKI_ALREADY_INITIALIZED = 0x191;

let names: Map<number, string> | undefined;

/** `CKR_PIN_INCORRECT` for 0xa0; `CKR_0x…` for codes the addon does not name. */
export function ckrName(rv: number): string {
  if (names === undefined) {
    names = new Map();
    for (const [k, v] of Object.entries(pkcs11js as unknown as Record<string, unknown>)) {
      // A few CKR_* aliases share a value; the first (standard) name wins.
      if (k.startsWith("CKR_") && typeof v === "number" && !names.has(v)) names.set(v, k);
    }
  }
  return names.get(rv) ?? `CKR_0x${rv.toString(16)}`;
}

/**
 * One failed PKCS#11 call: which function, which return value. Seal errors carry it as `cause`,
 * so callers can switch on `cause.rv` while the message stays readable. A `CodedError` of domain
 * "seal" with code `provider_failed` (typed from `SealErrorCode`), but not a `SealError`: the seal's `instanceof SealError`
 * checks tell its own finished errors from raw call failures it still has to classify. pkcs11js often leaves its
 * own `method` empty (checked for C_Encrypt/C_Decrypt), so the seal names every call itself.
 */
export class Pkcs11CallError extends CodedError<Extract<SealErrorCode, "provider_failed">> {
  static override readonly kind: string = "@bulwark/seal-pkcs11:Pkcs11CallError";
  override name = "Pkcs11CallError";
  /** The PKCS#11 function, e.g. `C_Login`. */
  readonly call: string;
  /** The CK_RV, or undefined when the failure was not a PKCS#11 return value (library load, type error). */
  readonly rv: number | undefined;
  /** `CKR_…` name of `rv` (or "native error"). */
  readonly ckr: string;

  constructor(call: string, rv: number | undefined, detail?: string, options?: CodedErrorOptions) {
    const ckr = rv === undefined ? "native error" : ckrName(rv);
    const code = rv === undefined ? "" : ` (0x${rv.toString(16)})`;
    super("seal", "provider_failed", `${call} returned ${ckr}${code}${detail ? `: ${detail}` : ""}`, options);
    this.call = call;
    this.rv = rv;
    this.ckr = ckr;
  }
}

/** Turns whatever pkcs11js threw into a {@link Pkcs11CallError} naming `call`. */
export function toCallError(call: string, err: unknown): Pkcs11CallError {
  if (err instanceof Pkcs11CallError) return err;
  if (err instanceof pkcs11js.Pkcs11Error)
    return new Pkcs11CallError(call, err.code, undefined, { cause: err });
  const message = err instanceof Error ? err.message : String(err);
  // pkcs11js formats CK_RV failures as "CKR_NAME:code" when the error escaped its wrapper.
  const m = /(CKR_[A-Z_]+):(\d+)/.exec(message);
  if (m) return new Pkcs11CallError(call, Number(m[2]), undefined, { cause: err });
  return new Pkcs11CallError(call, undefined, message, { cause: err });
}

/** The return value of a PKCS#11 failure, if it was one. */
export function rvOf(err: unknown): number | undefined {
  if (err instanceof Pkcs11CallError) return err.rv;
  if (err instanceof pkcs11js.Pkcs11Error) return err.code;
  return undefined;
}

/**
 * The session or the login is gone (HSM restart, network cut, someone closed our sessions, token
 * pulled): drop every session, log in again, look the keys up again, retry.
 */
const RECONNECT = new Set([
  CKR_SESSION_HANDLE_INVALID,
  CKR_SESSION_CLOSED,
  CKR_DEVICE_REMOVED,
  CKR_TOKEN_NOT_PRESENT,
  CKR_DEVICE_ERROR,
  CKR_USER_NOT_LOGGED_IN,
]);

/** Never retried: each retry of a wrong PIN burns a login attempt and ends in a locked token. */
const PIN_FATAL = new Set([
  CKR_PIN_INCORRECT,
  CKR_PIN_INVALID,
  CKR_PIN_LEN_RANGE,
  CKR_PIN_EXPIRED,
  CKR_PIN_LOCKED,
]);

export function needsReconnect(err: unknown): boolean {
  const rv = rvOf(err);
  return rv !== undefined && RECONNECT.has(rv);
}

export function isPinError(err: unknown): boolean {
  const rv = rvOf(err);
  return rv !== undefined && PIN_FATAL.has(rv);
}

/** Object handles are per login: after an HSM-side change the cached key handle may be stale. */
export function isStaleHandle(err: unknown): boolean {
  const rv = rvOf(err);
  return rv === CKR_KEY_HANDLE_INVALID || rv === CKR_OBJECT_HANDLE_INVALID;
}

/** The session's operation state is unknown (a call failed mid-operation): do not reuse the session. */
export function sessionGone(err: unknown): boolean {
  const rv = rvOf(err);
  return rv === CKR_SESSION_HANDLE_INVALID || rv === CKR_SESSION_CLOSED;
}

/**
 * What to tell the operator when `C_Login` refuses the PIN. A wrong PIN is fixed in the config; a
 * locked or expired one is not: the token's security officer must unlock or reset it first.
 */
export function pinRejectedMessage(tokenLabel: string, err: unknown): string {
  const rv = rvOf(err);
  const what = err instanceof Error ? err.message : String(err);
  if (rv === CKR_PIN_LOCKED) {
    return `token "${tokenLabel}" has locked the user PIN (${what}), usually after too many wrong logins: have the token's security officer unlock or reset it with the vendor's tools, then restart; changing pin alone does not help`;
  }
  if (rv === CKR_PIN_EXPIRED) {
    return `token "${tokenLabel}" says the user PIN has expired (${what}): set a new PIN with the token's tools, then put it in pin and restart`;
  }
  return `token "${tokenLabel}" rejected the PIN (${what}); no further login attempt was made, because repeated failures lock the token — fix pin`;
}

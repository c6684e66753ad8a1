import { randomBytes } from "@bulwark/crypto";
import { SealConfigError, SealError, type SealHealth, SealUnavailableError } from "@bulwark/seal";
import { CKM_RSA_PKCS_OAEP, mechanismName } from "./constants.js";
import { decryptBlob, encryptValue } from "./encrypt-decrypt.js";
import {
  CKR_ARGUMENTS_BAD,
  CKR_KEY_FUNCTION_NOT_PERMITTED,
  CKR_KEY_TYPE_INCONSISTENT,
  CKR_MECHANISM_INVALID,
  CKR_MECHANISM_PARAM_INVALID,
  Pkcs11CallError,
  rvOf,
} from "./errors.js";
import type { Pkcs11HealthDetails, Pkcs11Runtime } from "./seal-types.js";

// Health and the init self-test: both are a round trip through the token.

/** Encrypts and decrypts a random value at init; a failure says which setting to fix. */
export async function selfTest(rt: Pkcs11Runtime): Promise<void> {
  const probe = randomBytes(32);
  const aad = new TextEncoder().encode("bulwark pkcs11 self-test");
  let back: Uint8Array;
  try {
    back = await decryptBlob(rt, await encryptValue(rt, probe, aad), aad);
  } catch (err) {
    throw selfTestError(rt, err);
  }
  if (Buffer.compare(Buffer.from(back), Buffer.from(probe)) !== 0) {
    throw new SealUnavailableError(
      `${rt.calls.type} seal self-test: the token returned a different value after encrypt and decrypt`,
    );
  }
}

function selfTestError(rt: Pkcs11Runtime, err: unknown): unknown {
  const cause = err instanceof SealError && err.cause instanceof Pkcs11CallError ? err.cause : err;
  const rv = rvOf(cause);
  const mechanism = rt.current?.mechanism;
  if (mechanism === CKM_RSA_PKCS_OAEP && (rv === CKR_ARGUMENTS_BAD || rv === CKR_MECHANISM_PARAM_INVALID)) {
    return new SealConfigError(
      "rsa_oaep_hash",
      `the token rejected RSA-OAEP with ${rt.calls.config.rsaOaepHash} (${(cause as Error).message}); SoftHSM supports only sha1: set rsa_oaep_hash = "sha1"`,
      { cause },
    );
  }
  if (rv === CKR_KEY_FUNCTION_NOT_PERMITTED || rv === CKR_KEY_TYPE_INCONSISTENT) {
    // The key's attributes forbid the operation: no retry or reconnect will change that.
    const call = cause instanceof Pkcs11CallError ? cause.call : "";
    const hmac = call === "C_SignInit" || call === "C_VerifyInit" || call === "C_Sign" || call === "C_Verify";
    const keyId = hmac ? rt.current?.hmacKeyId : rt.current?.keyId;
    const needs = hmac ? "CKA_SIGN and CKA_VERIFY" : "CKA_ENCRYPT and CKA_DECRYPT";
    return new SealConfigError(
      hmac ? "hmac_key_label" : "key_label",
      `the token refused to use key ${JSON.stringify(keyId)} for ${hmac ? "CKM_SHA256_HMAC (0x0251)" : mechanismName(mechanism ?? 0)} in the self-test (${(cause as Error).message}); the key needs ${needs} set to true — choose another key or create one with generate_key = true`,
      { cause },
    );
  }
  if (rv === CKR_MECHANISM_INVALID || rv === CKR_MECHANISM_PARAM_INVALID) {
    return new SealConfigError(
      "mechanism",
      `the token rejected ${mechanismName(mechanism ?? 0)} in the self-test (${(cause as Error).message}); choose another mechanism`,
      { cause },
    );
  }
  if (err instanceof SealError) return err;
  const why = err instanceof Error ? err.message : String(err);
  return new SealUnavailableError(`${rt.calls.type} seal self-test (encrypt + decrypt) failed: ${why}`, {
    cause: err,
  });
}

/** A heartbeat round trip through the token, with the token, pool and error figures. */
export async function health(rt: Pkcs11Runtime, keyId: () => string): Promise<SealHealth> {
  const started = performance.now();
  const probe = randomBytes(16);
  let healthy = false;
  let message: string | undefined;
  try {
    const back = await decryptBlob(rt, await encryptValue(rt, probe, undefined), undefined);
    healthy = Buffer.compare(Buffer.from(back), Buffer.from(probe)) === 0;
    if (!healthy) message = "the heartbeat round trip returned a different value";
  } catch (err) {
    rt.token.noteError(err);
    message = err instanceof Error ? err.message : String(err);
  }
  const conn = rt.token.conn;
  const details: Pkcs11HealthDetails = {
    library: rt.calls.module?.description ?? "",
    slot: conn?.slotId.toString() ?? "",
    tokenLabel: conn?.tokenLabel ?? "",
    tokenSerial: conn?.tokenSerial ?? "",
    mechanism: mechanismName(rt.current?.mechanism ?? 0),
    pool: conn?.pool.stats() ?? { open: 0, busy: 0, waiting: 0, max: 0 },
    reconnects: rt.token.reconnects,
    lastError: rt.token.lastError,
    roundTripMs: Math.round((performance.now() - started) * 100) / 100,
  };
  return {
    healthy,
    keyId: keyId(),
    ...(message !== undefined ? { message } : {}),
    details: details as unknown as Record<string, unknown>,
  };
}

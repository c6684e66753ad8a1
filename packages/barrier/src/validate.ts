/** The barrier's argument checks: each names the argument and what it must be. */

import { AES_256_KEY_BYTES } from "@bulwark/crypto";
import type { Backend } from "@bulwark/storage";
import {
  ABSOLUTE_OPERATION_MAXIMUM,
  ABSOLUTE_OPERATION_MINIMUM,
  DEFAULT_UPGRADE_GRACE_PERIOD_MS,
  MINIMUM_ROTATION_INTERVAL_MS,
} from "./constants.js";
import { BarrierError } from "./errors.js";
import type { RotationConfig } from "./keyring.js";

const MAX_TIMER_MS = 2_147_483_647;
const ROTATION_FIELDS = new Set(["disabled", "maxOperations", "intervalMs"]);

export function requireBytes(what: string, value: unknown): asserts value is Uint8Array {
  if (!(value instanceof Uint8Array)) {
    throw new BarrierError("invalid_argument", `${what} must be a Uint8Array, got ${typeof value}`);
  }
}

export function requireKey(what: string, value: unknown): asserts value is Uint8Array {
  requireBytes(what, value);
  // AES-256 only: the root key encrypts the keyring with AES-256-GCM.
  if (value.length !== AES_256_KEY_BYTES) {
    throw new BarrierError(
      "invalid_argument",
      `${what} must be ${AES_256_KEY_BYTES} bytes (AES-256), got ${value.length}`,
    );
  }
}

export function requirePath(value: unknown): asserts value is string {
  if (typeof value !== "string") {
    throw new BarrierError("invalid_argument", `path must be a string, got ${typeof value}`);
  }
}

export function requireBackend(storage: Backend): void {
  for (const m of ["get", "put", "delete", "list"] as const) {
    if (typeof (storage as Partial<Backend> | undefined)?.[m] !== "function") {
      throw new BarrierError("invalid_argument", `storage must implement Backend: missing ${m}()`);
    }
  }
}

/** The upgrade grace period in milliseconds: the option, or the default. */
export function upgradeGracePeriod(option: number | undefined): number {
  const grace = option ?? DEFAULT_UPGRADE_GRACE_PERIOD_MS;
  // setTimeout turns delays above 2^31-1 ms into 1 ms, which would delete upgrade entries at once.
  if (!Number.isFinite(grace) || grace < 0 || grace > MAX_TIMER_MS) {
    throw new BarrierError(
      "invalid_argument",
      `upgradeGracePeriodMs must be between 0 and ${MAX_TIMER_MS} milliseconds, got ${grace}`,
    );
  }
  return grace;
}

/**
 * A rotation-policy change: only known fields, `maxOperations` in [1 000 000, 3 865 470 566],
 * `intervalMs` 0 (off) or at least 24 h.
 */
export function requireRotationConfig(cfg: Partial<RotationConfig>): void {
  if (typeof cfg !== "object" || cfg === null) {
    throw new BarrierError("invalid_rotation_config", "rotation config must be an object");
  }
  for (const k of Object.keys(cfg)) {
    if (!ROTATION_FIELDS.has(k)) {
      throw new BarrierError(
        "invalid_rotation_config",
        `unknown rotation config field ${JSON.stringify(k)}: use disabled, maxOperations or intervalMs`,
      );
    }
  }
  const { disabled, maxOperations, intervalMs } = cfg;
  if (disabled !== undefined && typeof disabled !== "boolean") {
    throw new BarrierError("invalid_rotation_config", `disabled must be a boolean, got ${typeof disabled}`);
  }
  if (
    maxOperations !== undefined &&
    (!Number.isSafeInteger(maxOperations) ||
      maxOperations < ABSOLUTE_OPERATION_MINIMUM ||
      maxOperations > ABSOLUTE_OPERATION_MAXIMUM)
  ) {
    throw new BarrierError(
      "invalid_rotation_config",
      `maxOperations must be an integer between ${ABSOLUTE_OPERATION_MINIMUM} and ${ABSOLUTE_OPERATION_MAXIMUM} (AES-GCM's safe limit per key), got ${maxOperations}`,
    );
  }
  if (
    intervalMs !== undefined &&
    (!Number.isSafeInteger(intervalMs) ||
      intervalMs < 0 ||
      (intervalMs > 0 && intervalMs < MINIMUM_ROTATION_INTERVAL_MS))
  ) {
    throw new BarrierError(
      "invalid_rotation_config",
      `intervalMs must be 0 (no time-based rotation) or a whole number of milliseconds of at least ${MINIMUM_ROTATION_INTERVAL_MS} (24 h), got ${intervalMs}`,
    );
  }
}

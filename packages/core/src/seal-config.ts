import { InvalidRequestError } from "./errors.js";

/** Vault's `SealConfig` JSON, stored in plaintext at core/seal-config and core/recovery-config. */
export interface SealConfig {
  type: string;
  secret_shares: number;
  secret_threshold: number;
  pgp_keys: string[] | null;
  nonce: string;
  backup: boolean;
  stored_shares: number;
}

// The paths are declared with the rest of the storage layout (@bulwark/barrier's layout.ts).
export {
  RECOVERY_CONFIG_PATH,
  RECOVERY_KEY_PATH,
  SEAL_CONFIG_PATH,
  STORED_KEYS_PATH,
} from "@bulwark/barrier";

export function sealConfig(type: string, shares: number, threshold: number): SealConfig {
  return {
    type,
    secret_shares: shares,
    secret_threshold: threshold,
    pgp_keys: null,
    nonce: "",
    backup: false,
    stored_shares: 1,
  };
}

export function encodeSealConfig(c: SealConfig): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(c));
}

/** Parses a stored seal config; anything unexpected is a clear error naming the record. */
export function decodeSealConfig(bytes: Uint8Array, path: string): SealConfig {
  let raw: unknown;
  try {
    raw = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
  } catch (cause) {
    throw new InvalidRequestError(
      `${path} is not valid JSON: the storage holds a damaged seal configuration`,
      { cause },
    );
  }
  const o = raw as Partial<Record<keyof SealConfig, unknown>>;
  if (typeof o !== "object" || o === null || typeof o.type !== "string") {
    throw new InvalidRequestError(`${path} has no "type": the storage holds a damaged seal configuration`);
  }
  const num = (v: unknown, field: string): number => {
    if (typeof v !== "number" || !Number.isInteger(v) || v < 0) {
      throw new InvalidRequestError(`${path} field "${field}" must be a non-negative integer`);
    }
    return v;
  };
  return {
    type: o.type,
    secret_shares: num(o.secret_shares, "secret_shares"),
    secret_threshold: num(o.secret_threshold, "secret_threshold"),
    pgp_keys: Array.isArray(o.pgp_keys) ? (o.pgp_keys as string[]) : null,
    nonce: typeof o.nonce === "string" ? o.nonce : "",
    backup: o.backup === true,
    stored_shares: o.stored_shares === undefined ? 0 : num(o.stored_shares, "stored_shares"),
  };
}

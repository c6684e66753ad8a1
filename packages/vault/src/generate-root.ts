/**
 * Root token generation (Vault's `sys/generate-root/*`): share holders submit a threshold of
 * unseal keys (Shamir) or recovery keys (auto seals); the new root token is returned XOR-ed with
 * a one-time password, `base64(token ⊕ otp)` without padding (Vault's RawStdEncoding), so only
 * the holder of the OTP can read it. The OTP is base62, as long as a token: 26 characters for the
 * `s.` tokens Bulwark issues, as OpenBao 2.6.2 (`bao operator generate-root -init` answers
 * `otp_length: 26`; Vault's `TokenLength + TokenPrefixLength`).
 *
 * The shares are checked by `SealedStore.verifyKeyShares`: the unseal key (Shamir) or the
 * recovery key (auto seals), compared in constant time, with no change to storage.
 */
import { randomUUID } from "node:crypto";
import { parseKeyShare, type SealedStore } from "@bulwark/core";
import { constantTimeEqual } from "@bulwark/crypto";
import { TOKEN_LENGTH } from "./auth/token-id.js";
import { GenerateRootError } from "./errors.js";
import { randomBase62 } from "./ids.js";

export interface GenerateRootStatus {
  started: boolean;
  nonce: string;
  progress: number;
  required: number;
  encoded_token: string;
  encoded_root_token: string;
  pgp_fingerprint: string;
  otp_length: number;
  complete: boolean;
  otp?: string;
}

interface Attempt {
  nonce: string;
  otp: string;
  shares: Uint8Array[];
}

/** Byte-wise XOR of two buffers of equal length. */
function xor(a: Buffer, b: Buffer): Buffer {
  const out = Buffer.alloc(a.length);
  for (let i = 0; i < a.length; i++) out[i] = (a[i] as number) ^ (b[i] as number);
  return out;
}

/** XOR of token and OTP (equal lengths), base64 without padding. */
export function encodeRootToken(token: string, otp: string): string {
  const t = Buffer.from(token, "utf8");
  const o = Buffer.from(otp, "utf8");
  if (t.length !== o.length) throw new GenerateRootError("internal", "token and OTP lengths differ");
  return xor(t, o).toString("base64").replace(/=+$/, "");
}

/** The inverse of {@link encodeRootToken} (what `vault operator generate-root -decode` does). */
export function decodeRootToken(encoded: string, otp: string): string {
  const x = Buffer.from(encoded, "base64");
  const o = Buffer.from(otp, "utf8");
  if (x.length !== o.length) throw new GenerateRootError("internal", "encoded token and OTP lengths differ");
  return xor(x, o).toString("utf8");
}

export class GenerateRoot {
  #attempt: Attempt | undefined;
  /** Serialises updates: two shares arriving together must not both complete an attempt. */
  #queue: Promise<unknown> = Promise.resolve();

  status(required: number): GenerateRootStatus {
    const a = this.#attempt;
    return {
      started: a !== undefined,
      nonce: a?.nonce ?? "",
      progress: a?.shares.length ?? 0,
      required,
      encoded_token: "",
      encoded_root_token: "",
      pgp_fingerprint: "",
      // OpenBao's GenerateRootStatusResponse always has the field ("" but in the start answer).
      otp: "",
      otp_length: TOKEN_LENGTH,
      complete: false,
    };
  }

  /** Starts an attempt; returns the OTP when Bulwark generated it (shown once, as in Vault). */
  start(required: number, otp?: string): GenerateRootStatus {
    if (this.#attempt !== undefined) {
      throw new GenerateRootError(
        "operation_in_progress",
        "root generation already in progress: cancel it (DELETE) or finish it",
      );
    }
    if (otp !== undefined && (otp.length !== TOKEN_LENGTH || !/^[0-9A-Za-z]+$/.test(otp))) {
      throw new GenerateRootError(
        "invalid_request",
        `OTP string is wrong length: give ${TOKEN_LENGTH} base62 characters, or omit it`,
      );
    }
    const generated = otp === undefined;
    this.#attempt = { nonce: randomUUID(), otp: otp ?? randomBase62(TOKEN_LENGTH), shares: [] };
    const s = this.status(required);
    s.otp = generated ? this.#attempt.otp : "";
    return s;
  }

  cancel(): void {
    for (const p of this.#attempt?.shares ?? []) p.fill(0);
    this.#attempt = undefined;
  }

  /**
   * Adds one share. Below the threshold returns progress; at the threshold verifies the shares,
   * creates the root token with `createRoot` and returns it encoded. Wrong shares reset the
   * progress but keep the attempt, as in Vault; a key given twice is refused.
   */
  async update(
    store: SealedStore,
    key: string,
    nonce: string,
    required: number,
    createRoot: () => Promise<string>,
  ): Promise<GenerateRootStatus> {
    const run = this.#queue.then(() => this.#update(store, key, nonce, required, createRoot));
    this.#queue = run.catch(() => undefined);
    return run;
  }

  async #update(
    store: SealedStore,
    key: string,
    nonce: string,
    required: number,
    createRoot: () => Promise<string>,
  ): Promise<GenerateRootStatus> {
    const a = this.#attempt;
    if (a === undefined)
      throw new GenerateRootError(
        "no_operation_in_progress",
        "no root generation in progress: start one with PUT sys/generate-root/attempt",
      );
    if (nonce !== a.nonce)
      throw new GenerateRootError(
        "nonce_mismatch",
        "incorrect nonce: use the nonce of the attempt in progress",
      );
    const share = parseKeyShare(key);
    if (share.length < 16 || share.length > 33) {
      share.fill(0);
      throw new GenerateRootError("invalid_key", `key share must be 16 to 33 bytes, got ${share.length}`);
    }
    if (a.shares.some((p) => constantTimeEqual(p, share))) {
      share.fill(0);
      throw new GenerateRootError(
        "invalid_request",
        "given key has already been provided during this generation operation",
      );
    }
    a.shares.push(share);
    // OpenBao's update answer: started, no OTP length (its handler does not set it).
    if (a.shares.length < required) return { ...this.status(required), otp_length: 0 };
    try {
      await verifyShares(store, a.shares, required);
    } catch (e) {
      // As in Vault: the progress is reset, the attempt (nonce, OTP) stays for the right keys.
      for (const p of a.shares) p.fill(0);
      a.shares = [];
      throw e;
    }
    const otp = a.otp;
    const nonceDone = a.nonce;
    this.cancel();
    const token = await createRoot();
    const encoded = encodeRootToken(token, otp);
    return {
      // OpenBao answers the completing share with started: true too (its update handler's constant).
      started: true,
      nonce: nonceDone,
      progress: required,
      required,
      encoded_token: encoded,
      encoded_root_token: encoded,
      pgp_fingerprint: "",
      otp: "",
      otp_length: 0,
      complete: true,
    };
  }
}

async function verifyShares(store: SealedStore, shares: Uint8Array[], required: number): Promise<void> {
  if (shares.length < required) {
    throw new GenerateRootError("invalid_key", "root generation failed: not enough distinct key shares");
  }
  try {
    // Unseal key (Shamir) or recovery key (auto seals), checked by the core without side effects.
    await store.verifyKeyShares(shares);
  } catch (e) {
    throw new GenerateRootError(
      "invalid_key",
      `root generation failed: the key shares are not valid (${(e as Error).message})`,
      { cause: e },
    );
  }
}

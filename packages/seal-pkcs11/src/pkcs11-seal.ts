import {
  BaseSeal,
  type BlobInfo,
  type SealEncryptOptions,
  SealError,
  type SealHealth,
  SealUnavailableError,
} from "@bulwark/seal";
import { Pkcs11Calls } from "./calls.js";
import {
  type Pkcs11SealOptions,
  parsePkcs11Config,
  type ResolvedPkcs11Config,
  resolveOptions,
} from "./config.js";
import type { Pkcs11Mechanism } from "./constants.js";
import { decryptBlob, encryptValue, opError } from "./encrypt-decrypt.js";
import { Pkcs11CallError } from "./errors.js";
import { health, selfTest } from "./health.js";
import { resolveCurrent } from "./keys.js";
import { acquireModule } from "./module-registry.js";
import type { Pkcs11Capabilities, Pkcs11Runtime } from "./seal-types.js";
import type { SessionPoolStats } from "./session-pool.js";
import { Pkcs11Token } from "./token.js";

export type { Pkcs11Capabilities, Pkcs11HealthDetails } from "./seal-types.js";

// The class is the facade: its parts live in calls.ts (PKCS#11 call wrappers), token.ts (token,
// login, pool), keys.ts, mechanisms.ts, encrypt-decrypt.ts and health.ts (health, self-test).

/**
 * A seal whose key lives in a PKCS#11 token (HSM, SoftHSM, CloudHSM): the root key and seal-wrapped
 * entries are encrypted by the token and come back through it to unseal automatically.
 *
 * - Token chosen by slot id, label or serial (never by list position); one logged-in session plus
 *   a bounded pool of read-write operation sessions; crypto via pkcs11js async calls, so the
 *   event loop keeps serving while the HSM works.
 * - Mechanisms: AES-GCM (default for AES keys), AES-CBC-PAD + HMAC-SHA256 (encrypt-then-MAC),
 *   RSA-OAEP (envelope, default for RSA keys). Values above `maxDirectBytes` are encrypted with a
 *   fresh AES-256-GCM data key that the HSM wraps; the blob records which (never guessed).
 * - Blob key id `<label>:<CKA_ID hex>`; decrypt uses the key the blob names, so rotation is:
 *   configure a new `key_label`, restart, let the store upgrade its stored keys and rewrap.
 * - Lost sessions / device errors: drop the pool, log in again, look keys up again, retry a few
 *   times with backoff. A rejected PIN is never retried.
 * - `encrypt`/`decrypt` take an optional abort `signal`: an aborted one rejects before any PKCS#11
 *   call; an abort stops the wait for a pooled session and the backoff between retries, and the
 *   call rejects promptly with `signal.reason`. A PKCS#11 call already running in the native
 *   library cannot be interrupted (PKCS#11 has no cancel; C_SessionCancel is 3.0 and not offered
 *   by SoftHSM or CloudHSM): it runs to its end in the background, its session then returns to
 *   the pool, and its result is discarded (a decrypted value is wiped). `finalize()` waits for it.
 */
export class Pkcs11Seal extends BaseSeal {
  /** Profiles built on this class (CloudHSM) override it. */
  readonly type: string = "pkcs11";
  readonly autoUnseal = true;
  readonly supportsSealWrap = true;

  protected readonly config: ResolvedPkcs11Config;
  readonly #rt: Pkcs11Runtime;
  /** Health checks in flight (finalize waits for them). */
  readonly #healthRuns = new Set<Promise<SealHealth>>();

  constructor(options: Pkcs11SealOptions) {
    super();
    this.config = resolveOptions(options);
    // `type` is read lazily: a profile's own `type` is set after this constructor returns.
    const calls = new Pkcs11Calls(this.config, () => this.type);
    this.#rt = { calls, token: new Pkcs11Token(calls), current: undefined };
  }

  /** Parses a Vault `seal "pkcs11"` block (or typed options); BULWARK_HSM_* / VAULT_HSM_* override it, as in Vault. */
  static fromConfig<T extends Pkcs11Seal>(
    this: new (
      options: Pkcs11SealOptions,
    ) => T,
    config: Record<string, unknown> | Pkcs11SealOptions,
    env: Record<string, string | undefined> = process.env,
  ): T {
    // `this` is the class it is called on, so profiles (subclasses) get their own instances.
    return new this(parsePkcs11Config(config, env));
  }

  get capabilities(): Pkcs11Capabilities {
    return {
      hsmGeneratedIv: this.config.hsmGeneratedIv,
      maxDirectBytes: this.config.maxDirectBytes,
      sessionFlags: this.config.sessionFlags,
    };
  }

  /** `<label>:<CKA_ID hex>` of the current key once initialised; "" before. */
  keyId(): string {
    return this.#rt.current?.keyId ?? "";
  }

  /** The mechanism new blobs are written with (after init). */
  get mechanism(): Pkcs11Mechanism | undefined {
    return this.#rt.current?.mechanism;
  }

  /** Session pool use right now (for health pages and tests). */
  poolStats(): SessionPoolStats | undefined {
    return this.#rt.token.conn?.pool.stats();
  }

  // ------------------------------------------------------------------------------------------
  // Lifecycle

  protected override async doInit(signal: AbortSignal | undefined): Promise<void> {
    const rt = this.#rt;
    rt.calls.module = acquireModule(this.config.lib);
    try {
      signal?.throwIfAborted();
      const conn = rt.token.connect(false);
      rt.token.conn = conn;
      signal?.throwIfAborted();
      rt.current = await resolveCurrent(rt.calls, conn);
      signal?.throwIfAborted();
      await selfTest(rt);
    } catch (err) {
      rt.token.teardown(false);
      throw this.#initError(err);
    }
  }

  protected override async doFinalize(): Promise<void> {
    // BaseSeal drains encrypt/decrypt before this, but not health checks: their HSM calls would
    // otherwise run on sessions (and a library) that are being closed under them.
    await Promise.allSettled([...this.#healthRuns]);
    this.#rt.token.teardown(false);
    this.#rt.current = undefined;
  }

  #initError(err: unknown): unknown {
    if (err instanceof SealError) return err;
    if (err instanceof Pkcs11CallError) {
      return new SealUnavailableError(
        `${this.type} seal init failed: ${err.message}; check that the HSM is reachable and the token is present`,
        { cause: err },
      );
    }
    return err;
  }

  // ------------------------------------------------------------------------------------------
  // Encrypt / decrypt (encrypt-decrypt.ts)

  protected override async doEncrypt(plaintext: Uint8Array, opts: SealEncryptOptions): Promise<BlobInfo> {
    try {
      return await encryptValue(this.#rt, plaintext, opts.aad, opts.signal);
    } catch (err) {
      if (opts.signal?.aborted && err === opts.signal.reason) throw err;
      throw opError(this.type, "encrypt", err, undefined);
    }
  }

  protected override async doDecrypt(
    blob: BlobInfo & { keyInfo: NonNullable<BlobInfo["keyInfo"]> },
    opts: SealEncryptOptions,
  ): Promise<Uint8Array> {
    try {
      return await decryptBlob(this.#rt, blob, opts.aad, opts.signal);
    } catch (err) {
      if (opts.signal?.aborted && err === opts.signal.reason) throw err;
      throw opError(this.type, "decrypt", err, blob.keyInfo.keyId);
    }
  }

  // ------------------------------------------------------------------------------------------
  // Health (health.ts)

  protected override async doHealth(): Promise<SealHealth> {
    const run = health(this.#rt, () => this.keyId());
    this.#healthRuns.add(run);
    try {
      return await run;
    } finally {
      this.#healthRuns.delete(run);
    }
  }
}

/**
 * Builds a {@link Pkcs11Seal} from the server's parsed `seal "pkcs11" { … }` block (Vault key
 * names) or from typed options. `BULWARK_HSM_*`, then `VAULT_HSM_*`, override the block's settings
 * (Vault's rule: the environment wins). Throws `SealConfigError` (with `field`) for anything unusable.
 */
export function createPkcs11Seal(
  config: Record<string, unknown> | Pkcs11SealOptions,
  env: Record<string, string | undefined> = process.env,
): Pkcs11Seal {
  return Pkcs11Seal.fromConfig(config, env);
}

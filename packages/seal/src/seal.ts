import type { BlobInfo } from "./blob-info.js";
import { SealDecryptError, SealError, SealFinalizedError, SealNotInitializedError } from "./errors.js";

/** Per-call options for {@link Seal.encrypt} and {@link Seal.decrypt}. */
export interface SealEncryptOptions {
  /**
   * Additional authenticated data: bound to the blob at encryption, required unchanged at
   * decryption. An empty array counts as no AAD (AES-GCM cannot tell them apart).
   */
  aad?: Uint8Array;
  /**
   * Lets the caller give up on the call, as `fetch` and the AWS SDK do. An already aborted signal
   * rejects at once with `signal.reason`, before the seal calls its HSM or KMS. An abort while
   * the call is under way rejects promptly with `signal.reason`; the seal stops what can be stopped
   * (a wait for a session, a KMS request, a retry backoff). Work that cannot be interrupted (a
   * PKCS#11 call already running in the native library) finishes in the background and its
   * result is discarded (a decrypted plaintext is wiped). The abort reason is passed through
   * unchanged, never wrapped in a `SealError`.
   */
  signal?: AbortSignal;
}

/** Result of {@link Seal.health}. */
export interface SealHealth {
  healthy: boolean;
  /** The seal's current key id at the time of the check. */
  keyId: string;
  /** Why the seal is unhealthy (or a short note when healthy). */
  message?: string;
  /** Provider-specific facts (latency, HSM slot, KMS region, …). Never secrets. */
  details?: Record<string, unknown>;
}

/**
 * A seal protects the barrier's root key (and, with seal wrap, chosen entries) with a key the
 * storage never sees: Shamir shares, an HSM key, a KMS key. The Go counterpart is go-kms-wrapping's
 * `Wrapper` + `InitFinalizer`.
 *
 * Contract (checked by `runSealConformance` from `@bulwark/seal/testing`):
 * - `init()` connects, resolves the key and proves it with a round trip; it is idempotent, and
 *   concurrent calls share one attempt. A caller's abort rejects that caller's call; the attempt
 *   itself is aborted once every caller waiting for it has aborted. A failed init may be retried.
 * - `encrypt`/`decrypt` before `init()` → `SealNotInitializedError`; after `finalize()` →
 *   `SealFinalizedError`. `finalize()` is idempotent.
 * - Every blob carries `keyInfo` whose `keyId` equals `keyId()` at encryption time; decrypt picks
 *   its key from `blob.keyInfo`, never from configuration alone.
 * - Every failure is a `SealError`; a changed byte, wrong AAD or unknown key id is an error, never
 *   a wrong plaintext. The one exception is the caller's own abort: `encrypt`/`decrypt` with an
 *   aborted `signal` (see {@link SealEncryptOptions.signal}) reject with `signal.reason` itself.
 */
export interface Seal {
  /** "shamir" | "static" | "pkcs11" | "cloudhsm" | "awskms" | a plugin's type. */
  readonly type: string;
  /** True when the seal can decrypt stored keys without an operator (HSM/KMS/static); Shamir: false. */
  readonly autoUnseal: boolean;
  /** True when entries flagged `sealWrap` are wrapped by this seal (Vault: auto seals only). */
  readonly supportsSealWrap: boolean;
  init(signal?: AbortSignal): Promise<void>;
  finalize(): Promise<void>;
  /** The current key id (HSM `label:id`, KMS key ARN, static key id; "" for Shamir). */
  keyId(): string;
  encrypt(plaintext: Uint8Array, opts?: SealEncryptOptions): Promise<BlobInfo>;
  decrypt(blob: BlobInfo, opts?: SealEncryptOptions): Promise<Uint8Array>;
  health?(): Promise<SealHealth>;
}

type Operation = "init" | "finalize" | "encrypt" | "decrypt" | "health";

/** A running `doInit`, shared by every `init()` call made while it runs. */
interface InitAttempt {
  promise: Promise<void>;
  controller: AbortController;
  /** Callers still waiting (infinite once a caller without a signal joined). */
  waiting: number;
}

/** Duck-typed, so a signal from another realm (a vm context, a polyfill) is accepted too. */
function isAbortSignal(value: unknown): value is AbortSignal {
  if (value instanceof AbortSignal) return true;
  const v = value as Partial<AbortSignal> | null;
  return (
    typeof v === "object" &&
    v !== null &&
    typeof v.aborted === "boolean" &&
    typeof v.addEventListener === "function" &&
    typeof v.removeEventListener === "function"
  );
}

function describe(value: unknown): string {
  if (value === null) return "null";
  if (typeof value !== "object") return typeof value;
  return (value as object).constructor?.name ?? "object";
}

/**
 * The template every built-in seal and provider extends: the public methods check the contract,
 * the protected `do*` hooks do the provider work. Subclasses implement `type`, `autoUnseal`,
 * `supportsSealWrap`, `keyId()`, `doEncrypt` and `doDecrypt`; `doInit`, `doFinalize` and
 * `doHealth` have defaults.
 *
 * Hooks may throw `SealError`s (they pass through unchanged); anything else a hook throws is
 * wrapped into `SealError("provider_failed")` with the original as `cause`.
 */
export abstract class BaseSeal implements Seal {
  abstract readonly type: string;
  abstract readonly autoUnseal: boolean;
  abstract readonly supportsSealWrap: boolean;
  abstract keyId(): string;

  #initPromise: Promise<void> | undefined;
  #initAttempt: InitAttempt | undefined;
  #initialized = false;
  #finalizePromise: Promise<void> | undefined;
  #inFlight = 0;
  #drained: (() => void) | undefined;

  /** Connect, resolve the key, self-test. Called once; must clean up after itself if it throws. */
  protected doInit(_signal: AbortSignal | undefined): Promise<void> {
    return Promise.resolve();
  }

  /** Release sessions, clients and key material. Called once, only after a successful `doInit`. */
  protected doFinalize(): Promise<void> {
    return Promise.resolve();
  }

  protected abstract doEncrypt(plaintext: Uint8Array, opts: SealEncryptOptions): Promise<BlobInfo>;

  /** Called with a blob that has `keyInfo`; pick the key from `blob.keyInfo.keyId`. */
  protected abstract doDecrypt(
    blob: BlobInfo & { keyInfo: NonNullable<BlobInfo["keyInfo"]> },
    opts: SealEncryptOptions,
  ): Promise<Uint8Array>;

  /**
   * Default health check, as Vault's seal health test does: encrypt and decrypt a heartbeat
   * value. Providers may override with something cheaper (a DescribeKey call, a session ping).
   */
  protected async doHealth(): Promise<SealHealth> {
    const heartbeat = new TextEncoder().encode(`Heartbeat ${Math.floor(Math.random() * 1000)}`);
    const started = performance.now();
    const blob = await this.encrypt(heartbeat);
    const back = await this.decrypt(blob);
    const ok = back.length === heartbeat.length && back.every((b, i) => b === heartbeat[i]);
    return {
      healthy: ok,
      keyId: this.keyId(),
      ...(ok ? {} : { message: "the heartbeat round trip returned a different value" }),
      details: { roundTripMs: Math.round((performance.now() - started) * 100) / 100 },
    };
  }

  /**
   * Whether `recorded`, the key id in a blob `doEncrypt` just returned, is a key this seal encrypts
   * with. Default: `keyId()` before or after the call. A provider whose current key can change
   * under concurrent calls (a KMS alias answering with the old and the new key while it is
   * re-pointed) may also accept the other keys it was told about.
   */
  protected isCurrentKeyId(recorded: string, keyIdBefore: string): boolean {
    return recorded === keyIdBefore || recorded === this.keyId();
  }

  /** True once `init()` succeeded and until `finalize()` starts. */
  protected get initialized(): boolean {
    return this.#initialized && this.#finalizePromise === undefined;
  }

  init(signal?: AbortSignal): Promise<void> {
    // Rule: init after finalize is refused.
    if (this.#finalizePromise !== undefined) return Promise.reject(new SealFinalizedError());
    // Rule: init is idempotent (concurrent init calls share one attempt).
    if (this.#initPromise !== undefined) {
      if (this.#initialized || this.#initAttempt === undefined) return this.#initPromise;
      return this.#join(this.#initAttempt, signal);
    }
    // Rule: an already aborted signal stops init before any provider call.
    if (signal?.aborted) return Promise.reject(signal.reason);
    // The provider gets a signal of the attempt's own: it aborts only once every caller waiting
    // for the attempt has aborted (a caller without a signal keeps it going).
    const controller = new AbortController();
    const attempt: InitAttempt = { promise: this.#runInit(controller.signal), controller, waiting: 0 };
    this.#initPromise = attempt.promise;
    this.#initAttempt = attempt;
    attempt.promise.then(
      () => {
        if (this.#initAttempt === attempt) this.#initAttempt = undefined;
      },
      () => {
        // A failed init may be retried: forget the failed attempt.
        if (this.#initPromise === attempt.promise) this.#initPromise = undefined;
        if (this.#initAttempt === attempt) this.#initAttempt = undefined;
      },
    );
    return this.#join(attempt, signal);
  }

  /** One caller's view of a shared init attempt: its own abort rejects its own promise. */
  #join(attempt: InitAttempt, signal: AbortSignal | undefined): Promise<void> {
    if (signal === undefined) {
      attempt.waiting = Number.POSITIVE_INFINITY;
      return attempt.promise;
    }
    if (signal.aborted) return Promise.reject(signal.reason);
    attempt.waiting++;
    return new Promise<void>((resolve, reject) => {
      const onAbort = () => {
        attempt.waiting--;
        if (attempt.waiting === 0) attempt.controller.abort(signal.reason);
        reject(signal.reason);
      };
      signal.addEventListener("abort", onAbort, { once: true });
      attempt.promise.then(
        () => {
          signal.removeEventListener("abort", onAbort);
          resolve();
        },
        (err: unknown) => {
          signal.removeEventListener("abort", onAbort);
          reject(err);
        },
      );
    });
  }

  async #runInit(signal: AbortSignal): Promise<void> {
    try {
      await this.doInit(signal);
    } catch (err) {
      // An abort is reported as the caller's own abort reason, not as a seal failure.
      if (signal.aborted && err === signal.reason) throw err;
      throw this.#wrap("init", err);
    }
    this.#initialized = true;
  }

  finalize(): Promise<void> {
    // Rule: finalize is idempotent.
    if (this.#finalizePromise === undefined) this.#finalizePromise = this.#runFinalize();
    return this.#finalizePromise;
  }

  async #runFinalize(): Promise<void> {
    // A running init decides whether there is anything to finalize; its outcome is otherwise moot.
    if (this.#initPromise !== undefined) await this.#initPromise.catch(() => undefined);
    // Let in-flight operations finish so the provider does not close sessions under them.
    if (this.#inFlight > 0) await new Promise<void>((resolve) => (this.#drained = resolve));
    if (!this.#initialized) return;
    this.#initialized = false;
    try {
      await this.doFinalize();
    } catch (err) {
      throw this.#wrap("finalize", err);
    }
  }

  async encrypt(plaintext: Uint8Array, opts?: SealEncryptOptions): Promise<BlobInfo> {
    this.#checkUsable();
    // Precondition: plaintext must be a Uint8Array.
    if (!(plaintext instanceof Uint8Array)) {
      throw new SealError(
        "invalid_argument",
        `seal encrypt: plaintext must be a Uint8Array, got ${describe(plaintext)}`,
      );
    }
    const options = this.#checkOptions("encrypt", opts);
    // Rule: an already aborted signal rejects with its reason before any provider call.
    if (options.signal?.aborted) throw options.signal.reason;
    const keyIdBefore = this.keyId();
    const blob = await this.#run("encrypt", () => this.doEncrypt(plaintext, options), options.signal);
    // Postcondition: the returned blob must carry ciphertext bytes.
    if (typeof blob !== "object" || blob === null || !(blob.ciphertext instanceof Uint8Array)) {
      throw this.#contract("doEncrypt must return a BlobInfo with ciphertext bytes");
    }
    // Postcondition: the returned blob must not carry the plaintext (field 7 is never set by a seal).
    if (!(blob.plaintext instanceof Uint8Array) || blob.plaintext.length > 0) {
      throw this.#contract("doEncrypt must leave blob.plaintext empty (use createBlobInfo for defaults)");
    }
    // Postcondition: the returned blob must carry keyInfo with a keyId equal to keyId() at encryption time.
    // (Sampled before and after the call: a KMS seal learns its key ARN from the Encrypt response.)
    const recorded = blob.keyInfo?.keyId;
    if (typeof recorded !== "string" || !this.isCurrentKeyId(recorded, keyIdBefore)) {
      throw this.#contract(
        `doEncrypt must record the key it used: blob.keyInfo.keyId is ${JSON.stringify(recorded)}, keyId() is ${JSON.stringify(keyIdBefore)}`,
      );
    }
    return blob;
  }

  async decrypt(blob: BlobInfo, opts?: SealEncryptOptions): Promise<Uint8Array> {
    this.#checkUsable();
    // Precondition: blob must be a BlobInfo with ciphertext bytes.
    if (typeof blob !== "object" || blob === null || !(blob.ciphertext instanceof Uint8Array)) {
      throw new SealError("invalid_argument", `seal decrypt: blob must be a BlobInfo, got ${describe(blob)}`);
    }
    // Precondition: decrypt requires blob.keyInfo (it names the key to use).
    const keyInfo = blob.keyInfo;
    if (typeof keyInfo !== "object" || keyInfo === null || typeof keyInfo.keyId !== "string") {
      throw new SealDecryptError(
        `the ${this.type} seal cannot decrypt a blob without keyInfo: it was not written by a seal, or it is damaged`,
      );
    }
    const options = this.#checkOptions("decrypt", opts);
    // Rule: an already aborted signal rejects with its reason before any provider call.
    if (options.signal?.aborted) throw options.signal.reason;
    const plaintext = await this.#run(
      "decrypt",
      () => this.doDecrypt({ ...blob, keyInfo }, options),
      options.signal,
      // A plaintext nobody will read any more is wiped.
      (late) => {
        if (late instanceof Uint8Array) late.fill(0);
      },
    );
    // Postcondition: decrypt returns bytes.
    if (!(plaintext instanceof Uint8Array)) {
      throw this.#contract("doDecrypt must return a Uint8Array");
    }
    return plaintext;
  }

  /** Never throws: failures are reported as `healthy: false` with the reason. */
  async health(): Promise<SealHealth> {
    if (this.#finalizePromise !== undefined) {
      return { healthy: false, keyId: this.keyId(), message: "seal was finalized; create a new one" };
    }
    if (!this.#initialized) {
      return { healthy: false, keyId: this.keyId(), message: `the ${this.type} seal is not initialized` };
    }
    try {
      return await this.doHealth();
    } catch (err) {
      const e = this.#wrap("health", err);
      return { healthy: false, keyId: this.keyId(), message: e.message, details: { code: e.code } };
    }
  }

  #checkUsable(): void {
    // Rule: encrypt/decrypt after finalize → SealFinalizedError.
    if (this.#finalizePromise !== undefined) throw new SealFinalizedError();
    // Rule: encrypt/decrypt before init → SealNotInitializedError.
    if (!this.#initialized) throw new SealNotInitializedError(this.type);
  }

  #checkOptions(op: Operation, opts: SealEncryptOptions | undefined): SealEncryptOptions {
    if (opts === undefined) return {};
    // Precondition: options must be an object.
    if (typeof opts !== "object" || opts === null) {
      throw new SealError("invalid_argument", `seal ${op}: options must be an object, got ${describe(opts)}`);
    }
    // Precondition: aad, when given, must be a Uint8Array.
    if (opts.aad !== undefined && !(opts.aad instanceof Uint8Array)) {
      throw new SealError(
        "invalid_argument",
        `seal ${op}: aad must be a Uint8Array, got ${describe(opts.aad)}`,
      );
    }
    // Precondition: signal, when given, must be an AbortSignal.
    const signal = opts.signal;
    if (signal !== undefined && !isAbortSignal(signal)) {
      throw new SealError(
        "invalid_argument",
        `seal ${op}: signal must be an AbortSignal (AbortController.signal, AbortSignal.timeout()), got ${describe(signal)}`,
      );
    }
    const out: SealEncryptOptions = opts.aad !== undefined && opts.aad.length > 0 ? { aad: opts.aad } : {};
    if (signal !== undefined) out.signal = signal;
    return out;
  }

  async #run<T>(
    op: Operation,
    fn: () => Promise<T>,
    signal?: AbortSignal,
    discard?: (late: T) => void,
  ): Promise<T> {
    this.#inFlight++;
    if (signal !== undefined) return this.#abortable(op, fn, signal, discard);
    try {
      return await fn();
    } catch (err) {
      throw this.#wrap(op, err);
    } finally {
      this.#settled();
    }
  }

  #settled(): void {
    this.#inFlight--;
    if (this.#inFlight === 0 && this.#drained !== undefined) {
      const resolve = this.#drained;
      this.#drained = undefined;
      resolve();
    }
  }

  /**
   * Runs `fn` until it settles or `signal` aborts, whichever comes first. On abort the caller gets
   * `signal.reason` at once; the provider, which got the signal too, stops what it can, and
   * whatever it still produces is discarded. The operation counts as in flight until it settles,
   * so `finalize()` still waits for it (sessions are not closed under a running HSM call).
   */
  #abortable<T>(
    op: Operation,
    fn: () => Promise<T>,
    signal: AbortSignal,
    discard: ((late: T) => void) | undefined,
  ): Promise<T> {
    let work: Promise<T>;
    try {
      work = fn();
    } catch (err) {
      work = Promise.reject(err);
    }
    work.then(
      () => this.#settled(),
      () => this.#settled(),
    );
    return new Promise<T>((resolve, reject) => {
      const onAbort = () => {
        reject(signal.reason);
        work.then(
          (late) => discard?.(late),
          () => undefined,
        );
      };
      if (signal.aborted) {
        onAbort();
        return;
      }
      signal.addEventListener("abort", onAbort, { once: true });
      work.then(
        (value) => {
          signal.removeEventListener("abort", onAbort);
          resolve(value);
        },
        (err: unknown) => {
          signal.removeEventListener("abort", onAbort);
          // A provider that stopped on the abort rejects with the reason: the caller's, not a failure.
          reject(signal.aborted ? signal.reason : this.#wrap(op, err));
        },
      );
    });
  }

  // Rule: errors from hooks that are not SealError are wrapped into SealError with the provider cause.
  #wrap(op: Operation, err: unknown): SealError {
    if (err instanceof SealError) return err;
    const why = err instanceof Error ? err.message : String(err);
    return new SealError("provider_failed", `${this.type} seal ${op} failed: ${why}`, { cause: err });
  }

  #contract(message: string): SealError {
    return new SealError("contract_violation", `${this.type} seal broke the Seal contract: ${message}`);
  }
}

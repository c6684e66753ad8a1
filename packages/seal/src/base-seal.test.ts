import { describe, expect, it } from "vitest";
import { type BlobInfo, createBlobInfo } from "./blob-info.js";
import {
  SealDecryptError,
  SealError,
  SealFinalizedError,
  SealNotInitializedError,
  SealUnavailableError,
} from "./errors.js";
import { BaseSeal, type SealEncryptOptions, type SealHealth } from "./seal.js";

/** A reversible toy seal (XOR 0x5a, AAD appended) whose hooks tests can replace and observe. */
class ProbeSeal extends BaseSeal {
  readonly type = "probe";
  readonly autoUnseal = true;
  readonly supportsSealWrap = true;
  currentKeyId = "probe-1";
  calls = { init: 0, finalize: 0, encrypt: 0, decrypt: 0 };
  lastEncryptOpts: SealEncryptOptions | undefined;
  initImpl: (signal: AbortSignal | undefined) => Promise<void> = async () => {};
  finalizeImpl: () => Promise<void> = async () => {};
  encryptImpl: ((pt: Uint8Array) => Promise<BlobInfo>) | undefined;
  decryptImpl: ((blob: BlobInfo) => Promise<Uint8Array>) | undefined;

  keyId(): string {
    return this.currentKeyId;
  }
  protected override doInit(signal: AbortSignal | undefined): Promise<void> {
    this.calls.init++;
    return this.initImpl(signal);
  }
  protected override doFinalize(): Promise<void> {
    this.calls.finalize++;
    return this.finalizeImpl();
  }
  protected async doEncrypt(plaintext: Uint8Array, opts: SealEncryptOptions): Promise<BlobInfo> {
    this.calls.encrypt++;
    this.lastEncryptOpts = opts;
    if (this.encryptImpl) return this.encryptImpl(plaintext);
    return createBlobInfo({
      ciphertext: plaintext.map((b) => b ^ 0x5a),
      keyInfo: { keyId: this.currentKeyId },
    });
  }
  protected async doDecrypt(blob: BlobInfo): Promise<Uint8Array> {
    this.calls.decrypt++;
    if (this.decryptImpl) return this.decryptImpl(blob);
    return blob.ciphertext.map((b) => b ^ 0x5a);
  }
}

async function ready(): Promise<ProbeSeal> {
  const seal = new ProbeSeal();
  await seal.init();
  return seal;
}

const pt = new TextEncoder().encode("plaintext");

function deferred<T = void>(): {
  promise: Promise<T>;
  resolve: (v: T) => void;
  reject: (e: unknown) => void;
} {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

describe("BaseSeal guards", () => {
  it("init is idempotent (concurrent init calls share one promise)", async () => {
    const seal = new ProbeSeal();
    const gate = deferred();
    seal.initImpl = () => gate.promise;
    const a = seal.init();
    const b = seal.init();
    expect(a).toBe(b);
    gate.resolve();
    await Promise.all([a, b]);
    await seal.init();
    expect(seal.calls.init).toBe(1);
  });

  it("a failed init may be retried", async () => {
    const seal = new ProbeSeal();
    seal.initImpl = async () => {
      throw new SealUnavailableError("HSM not reachable");
    };
    await expect(seal.init()).rejects.toBeInstanceOf(SealUnavailableError);
    seal.initImpl = async () => {};
    await seal.init();
    expect(seal.calls.init).toBe(2);
    expect(await seal.decrypt(await seal.encrypt(pt))).toEqual(pt);
  });

  it("init after finalize is refused", async () => {
    const seal = await ready();
    await seal.finalize();
    await expect(seal.init()).rejects.toBeInstanceOf(SealFinalizedError);
  });

  it("an already aborted signal stops init before any provider call", async () => {
    const seal = new ProbeSeal();
    const controller = new AbortController();
    controller.abort(new Error("shutting down"));
    await expect(seal.init(controller.signal)).rejects.toThrow("shutting down");
    expect(seal.calls.init).toBe(0);
  });

  it("an abort during init is reported as the caller's abort reason, not wrapped", async () => {
    const seal = new ProbeSeal();
    const controller = new AbortController();
    seal.initImpl = (signal) =>
      new Promise((_, reject) => signal?.addEventListener("abort", () => reject(signal.reason)));
    const pending = seal.init(controller.signal);
    const reason = new Error("timeout");
    controller.abort(reason);
    await expect(pending).rejects.toBe(reason);
  });

  it("concurrent init: one caller's abort rejects only that caller; the shared attempt goes on for the others", async () => {
    const seal = new ProbeSeal();
    const gate = deferred();
    let providerSignal: AbortSignal | undefined;
    seal.initImpl = (signal) => {
      providerSignal = signal;
      return gate.promise;
    };
    const first = new AbortController();
    const a = seal.init(first.signal);
    const b = seal.init();
    const reason = new Error("caller a gave up");
    first.abort(reason);
    await expect(a).rejects.toBe(reason);
    expect(providerSignal?.aborted, "b still waits: the provider's attempt must not be aborted").toBe(false);
    gate.resolve();
    await b;
    expect(seal.calls.init).toBe(1);
    expect(await seal.decrypt(await seal.encrypt(pt))).toEqual(pt);
  });

  it("concurrent init: a later caller's signal is honoured too, and the attempt stops once every caller gave up", async () => {
    const seal = new ProbeSeal();
    seal.initImpl = (signal) =>
      new Promise((_, reject) => signal?.addEventListener("abort", () => reject(signal.reason)));
    const first = new AbortController();
    const second = new AbortController();
    const a = seal.init(first.signal);
    const b = seal.init(second.signal);
    const late = new Error("caller b gave up");
    second.abort(late);
    await expect(b).rejects.toBe(late);
    const reason = new Error("caller a gave up");
    first.abort(reason);
    await expect(a).rejects.toBe(reason);
    // Nothing is left running, and init can be tried again.
    seal.initImpl = async () => {};
    await seal.init();
    expect(seal.calls.init).toBe(2);
  });

  it("encrypt/decrypt before init → SealNotInitializedError", async () => {
    const seal = new ProbeSeal();
    await expect(seal.encrypt(pt)).rejects.toBeInstanceOf(SealNotInitializedError);
    await expect(seal.decrypt(createBlobInfo({ ciphertext: pt, keyInfo: {} }))).rejects.toBeInstanceOf(
      SealNotInitializedError,
    );
    await expect(seal.encrypt(pt)).rejects.toThrow("await seal.init()");
    expect(seal.calls.encrypt + seal.calls.decrypt).toBe(0);
  });

  it("encrypt/decrypt while init is still running → SealNotInitializedError", async () => {
    const seal = new ProbeSeal();
    const gate = deferred();
    seal.initImpl = () => gate.promise;
    const init = seal.init();
    await expect(seal.encrypt(pt)).rejects.toBeInstanceOf(SealNotInitializedError);
    gate.resolve();
    await init;
    await expect(seal.encrypt(pt)).resolves.toBeDefined();
  });

  it('encrypt/decrypt after finalize → SealFinalizedError ("seal was finalized; create a new one")', async () => {
    const seal = await ready();
    const blob = await seal.encrypt(pt);
    await seal.finalize();
    await expect(seal.encrypt(pt)).rejects.toThrow(new SealFinalizedError());
    await expect(seal.encrypt(pt)).rejects.toThrow("seal was finalized; create a new one");
    await expect(seal.decrypt(blob)).rejects.toBeInstanceOf(SealFinalizedError);
  });

  it("finalize is idempotent", async () => {
    const seal = await ready();
    const a = seal.finalize();
    const b = seal.finalize();
    expect(a).toBe(b);
    await a;
    await seal.finalize();
    expect(seal.calls.finalize).toBe(1);
  });

  it("doFinalize runs only after a successful doInit", async () => {
    const never = new ProbeSeal();
    await never.finalize();
    expect(never.calls.finalize).toBe(0);

    const failed = new ProbeSeal();
    failed.initImpl = async () => {
      throw new Error("boom");
    };
    await expect(failed.init()).rejects.toBeInstanceOf(SealError);
    await failed.finalize();
    expect(failed.calls.finalize).toBe(0);
  });

  it("finalize waits for a running init, then finalizes what it set up", async () => {
    const seal = new ProbeSeal();
    const gate = deferred();
    seal.initImpl = () => gate.promise;
    const init = seal.init();
    const fin = seal.finalize();
    gate.resolve();
    await init;
    await fin;
    expect(seal.calls.finalize).toBe(1);
    await expect(seal.encrypt(pt)).rejects.toBeInstanceOf(SealFinalizedError);
  });

  it("finalize waits for in-flight operations before calling doFinalize", async () => {
    const seal = await ready();
    const gate = deferred<BlobInfo>();
    seal.encryptImpl = () => gate.promise;
    const op = seal.encrypt(pt);
    let finalized = false;
    const fin = seal.finalize().then(() => {
      finalized = true;
    });
    await new Promise((r) => setTimeout(r, 10));
    expect(finalized).toBe(false);
    expect(seal.calls.finalize).toBe(0);
    gate.resolve(createBlobInfo({ ciphertext: pt, keyInfo: { keyId: "probe-1" } }));
    await op;
    await fin;
    expect(seal.calls.finalize).toBe(1);
  });

  it("plaintext must be a Uint8Array", async () => {
    const seal = await ready();
    for (const bad of ["text", [1, 2, 3], null, undefined, new ArrayBuffer(4)]) {
      const err = await seal.encrypt(bad as unknown as Uint8Array).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(SealError);
      expect((err as SealError).code).toBe("invalid_argument");
    }
    expect(seal.calls.encrypt).toBe(0);
  });

  it("aad, when given, must be a Uint8Array", async () => {
    const seal = await ready();
    await expect(seal.encrypt(pt, { aad: "path" as unknown as Uint8Array })).rejects.toThrow(
      /aad must be a Uint8Array/,
    );
    await expect(seal.encrypt(pt, 7 as unknown as SealEncryptOptions)).rejects.toThrow(
      /options must be an object/,
    );
    expect(seal.calls.encrypt).toBe(0);
  });

  it("an empty aad is passed to the hook as no aad", async () => {
    const seal = await ready();
    await seal.encrypt(pt, { aad: new Uint8Array(0) });
    expect(seal.lastEncryptOpts).toEqual({});
    const aad = new Uint8Array([1]);
    await seal.encrypt(pt, { aad });
    expect(seal.lastEncryptOpts).toEqual({ aad });
  });

  it("the returned blob must carry ciphertext bytes (postcondition)", async () => {
    const seal = await ready();
    seal.encryptImpl = async () => ({ keyInfo: { keyId: "probe-1" } }) as unknown as BlobInfo;
    const err = await seal.encrypt(pt).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SealError);
    expect((err as SealError).code).toBe("contract_violation");
  });

  it("the returned blob must not carry the plaintext (postcondition)", async () => {
    const seal = await ready();
    seal.encryptImpl = async (p) =>
      createBlobInfo({ ciphertext: p, plaintext: p, keyInfo: { keyId: "probe-1" } });
    await expect(seal.encrypt(pt)).rejects.toThrow(/plaintext empty/);
  });

  it("the returned blob must carry keyInfo with a keyId equal to keyId() at encryption time (postcondition)", async () => {
    const seal = await ready();
    seal.encryptImpl = async (p) => createBlobInfo({ ciphertext: p });
    await expect(seal.encrypt(pt)).rejects.toThrow(/must record the key it used/);
    seal.encryptImpl = async (p) => createBlobInfo({ ciphertext: p, keyInfo: { keyId: "someone-else" } });
    const err = await seal.encrypt(pt).catch((e: unknown) => e);
    expect((err as SealError).code).toBe("contract_violation");
    expect((err as Error).message).toContain('"someone-else"');
  });

  it("a key id learned during the call (KMS returns the key ARN) satisfies the postcondition", async () => {
    const seal = await ready();
    seal.encryptImpl = async (p) => {
      seal.currentKeyId = "arn:aws:kms:eu-west-1:1:key/abc";
      return createBlobInfo({ ciphertext: p, keyInfo: { keyId: seal.currentKeyId } });
    };
    const blob = await seal.encrypt(pt);
    expect(blob.keyInfo?.keyId).toBe("arn:aws:kms:eu-west-1:1:key/abc");
  });

  it("blob must be a BlobInfo with ciphertext bytes", async () => {
    const seal = await ready();
    for (const bad of [null, "blob", {}, { ciphertext: "x", keyInfo: {} }]) {
      const err = await seal.decrypt(bad as unknown as BlobInfo).catch((e: unknown) => e);
      expect((err as SealError).code).toBe("invalid_argument");
    }
    expect(seal.calls.decrypt).toBe(0);
  });

  it("decrypt requires blob.keyInfo", async () => {
    const seal = await ready();
    await expect(seal.decrypt(createBlobInfo({ ciphertext: pt }))).rejects.toBeInstanceOf(SealDecryptError);
    await expect(seal.decrypt(createBlobInfo({ ciphertext: pt }))).rejects.toThrow(/without keyInfo/);
    expect(seal.calls.decrypt).toBe(0);
  });

  it("decrypt must return bytes (postcondition)", async () => {
    const seal = await ready();
    seal.decryptImpl = async () => "plaintext" as unknown as Uint8Array;
    const err = await seal.decrypt(await seal.encrypt(pt)).catch((e: unknown) => e);
    expect((err as SealError).code).toBe("contract_violation");
  });

  it("errors from hooks that are not SealError are wrapped into SealError with the provider cause", async () => {
    const cause = new Error("CKR_DEVICE_ERROR");
    const seal = new ProbeSeal();
    seal.initImpl = async () => {
      throw cause;
    };
    const initErr = (await seal.init().catch((e: unknown) => e)) as SealError;
    expect(initErr).toBeInstanceOf(SealError);
    expect(initErr.code).toBe("provider_failed");
    expect(initErr.cause).toBe(cause);
    expect(initErr.message).toBe("probe seal init failed: CKR_DEVICE_ERROR");

    seal.initImpl = async () => {};
    await seal.init();
    seal.encryptImpl = async () => {
      throw cause;
    };
    seal.decryptImpl = async () => {
      throw "a string";
    };
    const encErr = (await seal.encrypt(pt).catch((e: unknown) => e)) as SealError;
    expect(encErr.cause).toBe(cause);
    expect(encErr.message).toBe("probe seal encrypt failed: CKR_DEVICE_ERROR");
    const decErr = (await seal
      .decrypt(createBlobInfo({ ciphertext: pt, keyInfo: {} }))
      .catch((e: unknown) => e)) as SealError;
    expect(decErr).toBeInstanceOf(SealError);
    expect(decErr.cause).toBe("a string");

    seal.finalizeImpl = async () => {
      throw cause;
    };
    const finErr = (await seal.finalize().catch((e: unknown) => e)) as SealError;
    expect(finErr.code).toBe("provider_failed");
    expect(finErr.cause).toBe(cause);
  });

  it("SealErrors thrown by hooks pass through unchanged", async () => {
    const seal = await ready();
    const original = new SealDecryptError("tag mismatch");
    seal.decryptImpl = async () => {
      throw original;
    };
    await expect(seal.decrypt(await seal.encrypt(pt))).rejects.toBe(original);
  });
});

describe("BaseSeal health", () => {
  it("reports unhealthy before init and after finalize, without throwing", async () => {
    const seal = new ProbeSeal();
    expect(await seal.health()).toMatchObject({
      healthy: false,
      keyId: "probe-1",
      message: "the probe seal is not initialized",
    });
    await seal.init();
    await seal.finalize();
    expect(await seal.health()).toMatchObject({
      healthy: false,
      message: "seal was finalized; create a new one",
    });
  });

  it("the default check is a heartbeat round trip", async () => {
    const seal = await ready();
    const health: SealHealth = await seal.health();
    expect(health.healthy).toBe(true);
    expect(health.keyId).toBe("probe-1");
    expect(seal.calls.encrypt).toBe(1);
    expect(seal.calls.decrypt).toBe(1);
    expect(typeof health.details?.roundTripMs).toBe("number");
  });

  it("a failing provider makes the seal unhealthy with the reason", async () => {
    const seal = await ready();
    seal.encryptImpl = async () => {
      throw new Error("KMS throttled");
    };
    const health = await seal.health();
    expect(health.healthy).toBe(false);
    expect(health.message).toContain("KMS throttled");
    expect(health.details).toEqual({ code: "provider_failed" });
  });

  it("a round trip returning other bytes is unhealthy", async () => {
    const seal = await ready();
    seal.decryptImpl = async () => new Uint8Array([1]);
    expect((await seal.health()).healthy).toBe(false);
  });
});

import { AesGcmKey, randomBytes } from "@bulwark/crypto";
import { describe, expect, it } from "vitest";
import { aeadDecryptBlob, aeadEncryptBlob } from "./aead.js";
import type { BlobInfo } from "./blob-info.js";
import { SealError, SealKeyNotFoundError } from "./errors.js";
import { BaseSeal, type SealEncryptOptions } from "./seal.js";
import { runSealConformance } from "./testing.js";

/**
 * A seal with a pretend provider (AES-GCM in process) that can be stalled like a slow HSM: calls
 * wait for the gate, and honour the signal only when `honoursSignal` is set (as a KMS request
 * does; a PKCS#11 call already in the library does not).
 */
class GatedSeal extends BaseSeal {
  readonly type = "gated";
  readonly autoUnseal = true;
  readonly supportsSealWrap = true;
  readonly #key = new AesGcmKey(randomBytes(32));
  providerCalls = 0;
  finished = 0;
  honoursSignal = false;
  lastSignal: AbortSignal | undefined;
  lastPlaintext: Uint8Array | undefined;
  #gate: Promise<void> | undefined;

  keyId(): string {
    return "gated-1";
  }

  /** Calls from now on wait until the returned function is called. */
  stall(): () => void {
    let open = () => {};
    this.#gate = new Promise<void>((resolve) => (open = resolve));
    return () => {
      this.#gate = undefined;
      open();
    };
  }

  async #provider(signal: AbortSignal | undefined): Promise<void> {
    this.providerCalls++;
    this.lastSignal = signal;
    const gate = this.#gate;
    if (gate === undefined) return;
    if (!this.honoursSignal || signal === undefined) return gate;
    await new Promise<void>((resolve, reject) => {
      signal.addEventListener("abort", () => reject(signal.reason), { once: true });
      gate.then(resolve);
    });
  }

  protected async doEncrypt(plaintext: Uint8Array, opts: SealEncryptOptions): Promise<BlobInfo> {
    await this.#provider(opts.signal);
    this.finished++;
    return aeadEncryptBlob(this.#key, this.keyId(), plaintext, opts.aad);
  }

  protected async doDecrypt(blob: BlobInfo, opts: SealEncryptOptions): Promise<Uint8Array> {
    const keyId = blob.keyInfo?.keyId ?? "";
    if (keyId !== this.keyId()) throw new SealKeyNotFoundError(keyId, `no key ${JSON.stringify(keyId)}`);
    await this.#provider(opts.signal);
    this.finished++;
    this.lastPlaintext = aeadDecryptBlob(this.#key, blob, opts.aad, "gated seal decrypt failed");
    return this.lastPlaintext;
  }
}

// The kit's abort tests with working hooks: these fail if BaseSeal (or the kit) gets abort wrong.
for (const honoursSignal of [false, true]) {
  runSealConformance(
    `GatedSeal (${honoursSignal ? "provider honours the signal" : "provider cannot be interrupted"})`,
    async () => {
      const seal = new GatedSeal();
      seal.honoursSignal = honoursSignal;
      return {
        seal,
        provider: {
          calls: () => seal.providerCalls,
          stall: async () => {
            const open = seal.stall();
            return async () => open();
          },
        },
      };
    },
    { maxPlaintext: 1024, concurrency: 8, timeoutMs: 10_000 },
  );
}

const pt = new TextEncoder().encode("abort me");

async function ready(): Promise<GatedSeal> {
  const seal = new GatedSeal();
  await seal.init();
  return seal;
}

async function rejection(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  throw new Error("expected a rejection");
}

describe("BaseSeal: the abort signal of encrypt/decrypt", () => {
  it("passes the caller's signal to the provider hooks", async () => {
    const seal = await ready();
    const signal = new AbortController().signal;
    const blob = await seal.encrypt(pt, { signal });
    expect(seal.lastSignal).toBe(signal);
    await seal.decrypt(blob, { signal });
    expect(seal.lastSignal).toBe(signal);
    await seal.encrypt(pt);
    expect(seal.lastSignal).toBeUndefined();
  });

  it("an already aborted signal rejects before the provider is called, even an invalid blob", async () => {
    const seal = await ready();
    const reason = new Error("gave up");
    const signal = AbortSignal.abort(reason);
    expect(await rejection(seal.encrypt(pt, { signal }))).toBe(reason);
    const blob = await seal.encrypt(pt);
    expect(await rejection(seal.decrypt(blob, { signal }))).toBe(reason);
    expect(seal.providerCalls).toBe(1);
  });

  it("an abort during an uninterruptible call: the caller gets the reason at once, finalize waits for the call, the plaintext is wiped", async () => {
    const seal = await ready();
    const blob = await seal.encrypt(pt);
    const open = seal.stall();
    const controller = new AbortController();
    const pending = seal.decrypt(blob, { signal: controller.signal });
    await new Promise((r) => setTimeout(r, 10));
    const reason = new Error("timeout");
    controller.abort(reason);
    expect(await rejection(pending)).toBe(reason);
    expect(seal.finished).toBe(1); // the decrypt is still running in the "provider"
    let finalized = false;
    const fin = seal.finalize().then(() => (finalized = true));
    await new Promise((r) => setTimeout(r, 20));
    expect(finalized, "finalize waits for the abandoned call").toBe(false);
    open();
    await fin;
    expect(seal.finished).toBe(2);
    // The late plaintext nobody will read was wiped.
    expect(seal.lastPlaintext?.every((b) => b === 0)).toBe(true);
    expect(seal.lastPlaintext?.length).toBe(pt.length);
  });

  it("a provider that stops on the abort rejects with the reason, not a wrapped SealError", async () => {
    const seal = await ready();
    seal.honoursSignal = true;
    const open = seal.stall();
    const controller = new AbortController();
    const pending = seal.encrypt(pt, { signal: controller.signal });
    await new Promise((r) => setTimeout(r, 10));
    controller.abort("string reason");
    expect(await rejection(pending)).toBe("string reason");
    open();
    await seal.finalize();
    expect(seal.finished).toBe(0); // the provider stopped: the aborted call never finished
  });

  it("a signal that is not an AbortSignal is an invalid_argument naming signal", async () => {
    const seal = await ready();
    const err = await rejection(seal.encrypt(pt, { signal: "soon" as unknown as AbortSignal }));
    expect(err).toBeInstanceOf(SealError);
    expect((err as SealError).code).toBe("invalid_argument");
    expect((err as SealError).message).toMatch(/signal must be an AbortSignal.*got string/);
    expect(seal.providerCalls).toBe(0);
  });

  it("an unaborted signal leaves no listener behind", async () => {
    const seal = await ready();
    const controller = new AbortController();
    let added = 0;
    let removed = 0;
    const { signal } = controller;
    const add = signal.addEventListener.bind(signal);
    const remove = signal.removeEventListener.bind(signal);
    signal.addEventListener = ((...args: Parameters<typeof add>) => {
      added++;
      add(...args);
    }) as typeof signal.addEventListener;
    signal.removeEventListener = ((...args: Parameters<typeof remove>) => {
      removed++;
      remove(...args);
    }) as typeof signal.removeEventListener;
    for (let i = 0; i < 10; i++) await seal.decrypt(await seal.encrypt(pt, { signal }), { signal });
    expect(added).toBeGreaterThan(0);
    expect(removed).toBe(added);
  });
});

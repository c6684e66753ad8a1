/**
 * The seal conformance suite. Every built-in seal runs it, and so should every provider:
 *
 * ```ts
 * import { runSealConformance } from "@bulwark/seal/testing";
 * runSealConformance("my-seal", async () => ({ seal: new MySeal(config), cleanup: async () => {} }));
 * ```
 *
 * The factory returns a fresh, *uninitialised* seal for each test; the suite calls `init()` and
 * `finalize()` itself, then `cleanup()`. A provider that talks to an HSM or KMS should also return
 * `provider` hooks (see {@link SealProviderHooks}), so the abort tests can check that an aborted
 * call never reaches the provider and that an abort during a slow provider call rejects promptly.
 */
import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { type BlobInfo, decodeBlobInfo, encodeBlobInfo } from "./blob-info.js";
import {
  SealConfigError,
  SealDecryptError,
  SealError,
  SealFinalizedError,
  SealKeyNotFoundError,
  SealNotInitializedError,
} from "./errors.js";
import type { Seal } from "./seal.js";

/** What `fn` throws, asserted to be a `SealConfigError` (for a seal's config-parsing tests). */
export function configError(fn: () => unknown): SealConfigError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(SealConfigError);
    return err as SealConfigError;
  }
  throw new Error("expected a SealConfigError");
}

export interface SealConformanceOptions {
  /** Largest plaintext the seal must handle; round trips above it are not run. Default 1 MiB. */
  maxPlaintext?: number;
  /** Operations started at once in the concurrency test. Default 64. */
  concurrency?: number;
  /** Per-test timeout in milliseconds. Default 30 000. */
  timeoutMs?: number;
}

/**
 * A view of the HSM/KMS behind a seal, for the abort tests. Without it those tests check what
 * they can from outside (an aborted signal rejects with its reason, the seal keeps working).
 */
export interface SealProviderHooks {
  /** How many calls the seal has made to its provider so far (the suite compares before/after). */
  calls(): number;
  /**
   * Makes the provider's calls hang (a delaying proxy, a blocked worker pool) until the returned
   * function is called; resolves once the stall is in effect.
   */
  stall?(): Promise<() => Promise<void>>;
}

export type SealFactory = () => Promise<{
  seal: Seal;
  cleanup?: () => Promise<void>;
  provider?: SealProviderHooks;
}>;

/** How long an aborted call may take to reject (generous: the suite runs on loaded CI machines). */
const ABORT_PROMPT_MS = 1_000;
/** How long the slow-provider test lets a call run before it aborts it. */
const ABORT_AFTER_MS = 150;

const KiB = 1024;
const MiB = 1024 * KiB;
const ROUND_TRIP_SIZES = [0, 1, KiB, 64 * KiB, MiB];
/** Positions flipped per field in the tamper test (spread evenly over the field). */
const TAMPER_POSITIONS = 24;

function bytes(n: number): Uint8Array {
  return new Uint8Array(randomBytes(n));
}

function utf8(s: string): Uint8Array {
  return new TextEncoder().encode(s);
}

function sizeLabel(n: number): string {
  if (n >= MiB && n % MiB === 0) return `${n / MiB} MiB`;
  if (n >= KiB && n % KiB === 0) return `${n / KiB} KiB`;
  return `${n} B`;
}

function positions(length: number): number[] {
  if (length <= TAMPER_POSITIONS) return Array.from({ length }, (_, i) => i);
  const out = new Set<number>([0, length - 1]);
  for (let i = 1; out.size < TAMPER_POSITIONS; i++)
    out.add(Math.floor((i * length) / TAMPER_POSITIONS) % length);
  return [...out].sort((a, b) => a - b);
}

function flipped(field: Uint8Array, at: number): Uint8Array {
  const copy = new Uint8Array(field);
  copy[at] = (copy[at] as number) ^ 0x01;
  return copy;
}

/** Byte equality that does not care whether either side is a Buffer or a plain Uint8Array. */
function expectBytes(actual: Uint8Array, expected: Uint8Array, what?: string): void {
  expect(actual, what).toBeInstanceOf(Uint8Array);
  expect(Buffer.from(actual).equals(Buffer.from(expected)), what ?? "bytes differ").toBe(true);
}

function cloneBlob(blob: BlobInfo): BlobInfo {
  return decodeBlobInfo(encodeBlobInfo(blob));
}

/** Expects `promise` to reject with a SealError, and returns it (a resolved value fails the test). */
async function expectSealError(promise: Promise<unknown>, what: string): Promise<SealError> {
  let outcome: { value: unknown } | { error: unknown };
  try {
    outcome = { value: await promise };
  } catch (error) {
    outcome = { error };
  }
  if ("value" in outcome) {
    expect.fail(
      `${what}: expected a SealError, but the operation succeeded (a wrong plaintext is never acceptable)`,
    );
  }
  expect(outcome.error, what).toBeInstanceOf(SealError);
  return outcome.error as SealError;
}

/** What `promise` settles to, without throwing: for asserting on a rejection's exact value. */
async function outcomeOf<T>(promise: Promise<T>): Promise<{ value: T } | { error: unknown }> {
  try {
    return { value: await promise };
  } catch (error) {
    return { error };
  }
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Starts `op`, lets it reach the (stalled) provider, aborts it, and checks the rejection. */
async function expectPromptAbort(
  op: (signal: AbortSignal) => Promise<unknown>,
  what: string,
  stalled: boolean,
): Promise<void> {
  const controller = new AbortController();
  let settled = false;
  const promise = op(controller.signal);
  promise.then(
    () => (settled = true),
    () => (settled = true),
  );
  await delay(ABORT_AFTER_MS);
  if (stalled) {
    expect(
      settled,
      `${what}: settled while the provider was stalled — the stall hook does not stall it`,
    ).toBe(false);
  }
  const reason = new Error(`conformance: the caller gave up on ${what}`);
  const started = performance.now();
  controller.abort(reason);
  // Bounded, so a seal that ignores the abort fails here with a message instead of hanging the test.
  const outcome = await Promise.race([
    outcomeOf(promise),
    delay(ABORT_PROMPT_MS * 5).then(() => ({
      error: `${what} still pending ${ABORT_PROMPT_MS * 5} ms after the abort`,
    })),
  ]);
  const ms = performance.now() - started;
  if (stalled || "error" in outcome) {
    expect("error" in outcome ? outcome.error : outcome, `${what}: rejects with signal.reason itself`).toBe(
      reason,
    );
    expect(ms, `${what}: rejected ${Math.round(ms)} ms after the abort`).toBeLessThan(ABORT_PROMPT_MS);
  }
}

/**
 * Registers the seal conformance tests with vitest. Call it at the top level of a test file.
 * `name` labels the `describe` block; `factory` builds one uninitialised seal per test.
 */
export function runSealConformance(
  name: string,
  factory: SealFactory,
  options: SealConformanceOptions = {},
): void {
  const maxPlaintext = options.maxPlaintext ?? MiB;
  const concurrency = options.concurrency ?? 64;
  const timeout = options.timeoutMs ?? 30_000;
  const sizes = [...new Set([...ROUND_TRIP_SIZES.filter((n) => n <= maxPlaintext), maxPlaintext])].sort(
    (a, b) => a - b,
  );

  /** Runs `fn` with a fresh seal, initialised unless told otherwise; always finalizes and cleans up. */
  async function withSeal(
    fn: (seal: Seal, provider: SealProviderHooks | undefined) => Promise<void>,
    init = true,
  ): Promise<void> {
    const { seal, cleanup, provider } = await factory();
    try {
      if (init) await seal.init();
      await fn(seal, provider);
    } finally {
      try {
        await seal.finalize();
      } finally {
        await cleanup?.();
      }
    }
  }

  describe(`seal conformance: ${name}`, () => {
    it(
      "describes itself: type, autoUnseal, supportsSealWrap, keyId",
      () =>
        withSeal(async (seal) => {
          expect(typeof seal.type).toBe("string");
          expect(seal.type.length).toBeGreaterThan(0);
          expect(typeof seal.autoUnseal).toBe("boolean");
          expect(typeof seal.supportsSealWrap).toBe("boolean");
          expect(typeof seal.keyId()).toBe("string");
        }),
      timeout,
    );

    it(
      "encrypt and decrypt before init fail with SealNotInitializedError",
      () =>
        withSeal(async (seal) => {
          await expect(seal.encrypt(utf8("x"))).rejects.toBeInstanceOf(SealNotInitializedError);
          const blob: BlobInfo = {
            ciphertext: bytes(64),
            iv: new Uint8Array(0),
            hmac: new Uint8Array(0),
            wrapped: false,
            keyInfo: {
              mechanism: 0,
              hmacMechanism: 0,
              keyId: seal.keyId(),
              hmacKeyId: "",
              wrappedKey: new Uint8Array(0),
              flags: 0,
            },
            valuePath: "",
            plaintext: new Uint8Array(0),
          };
          await expect(seal.decrypt(blob)).rejects.toBeInstanceOf(SealNotInitializedError);
        }, false),
      timeout,
    );

    it(
      "init twice is safe, and concurrent init calls succeed together",
      () =>
        withSeal(async (seal) => {
          await Promise.all([seal.init(), seal.init(), seal.init()]);
          await seal.init();
          const pt = utf8("after several init calls");
          expectBytes(await seal.decrypt(await seal.encrypt(pt)), pt);
        }, false),
      timeout,
    );

    for (const size of sizes) {
      it(
        `round trip of ${sizeLabel(size)}`,
        () =>
          withSeal(async (seal) => {
            const pt = bytes(size);
            const blob = await seal.encrypt(pt);
            expect(blob.ciphertext).toBeInstanceOf(Uint8Array);
            expect(blob.plaintext.length, "a seal never stores the plaintext in the blob").toBe(0);
            const back = await seal.decrypt(blob);
            expect(back.length).toBe(size);
            expectBytes(back, pt);
          }),
        timeout,
      );
    }

    it(
      "the blob does not contain the plaintext",
      () =>
        withSeal(async (seal) => {
          const pt = bytes(Math.min(KiB, maxPlaintext));
          const encoded = Buffer.from(encodeBlobInfo(await seal.encrypt(pt)));
          const window = Buffer.from(pt.subarray(0, Math.min(16, pt.length)));
          expect(window.length).toBeGreaterThan(0);
          expect(encoded.includes(window)).toBe(false);
        }),
      timeout,
    );

    it(
      "encrypting the same plaintext twice gives different blobs",
      () =>
        withSeal(async (seal) => {
          const pt = utf8("same plaintext");
          const a = encodeBlobInfo(await seal.encrypt(pt));
          const b = encodeBlobInfo(await seal.encrypt(pt));
          expect(Buffer.from(a).equals(Buffer.from(b))).toBe(false);
        }),
      timeout,
    );

    it(
      "every blob records the key id, equal to keyId()",
      () =>
        withSeal(async (seal) => {
          for (const pt of [new Uint8Array(0), utf8("key id check")]) {
            const blob = await seal.encrypt(pt);
            expect(blob.keyInfo, "blob.keyInfo").toBeDefined();
            expect(blob.keyInfo?.keyId).toBe(seal.keyId());
          }
        }),
      timeout,
    );

    it(
      "a blob survives encode/decode through the BlobInfo codec",
      () =>
        withSeal(async (seal) => {
          const pt = utf8("through the wire format");
          const aad = utf8("core/hsm/barrier-unseal-keys");
          const blob = await seal.encrypt(pt, { aad });
          const decoded = decodeBlobInfo(encodeBlobInfo(blob));
          expect(decoded.keyInfo?.keyId).toBe(blob.keyInfo?.keyId);
          expectBytes(await seal.decrypt(decoded, { aad }), pt);
        }),
      timeout,
    );

    it(
      "AAD is bound: decrypt with other or missing AAD fails with a SealError",
      () =>
        withSeal(async (seal) => {
          const pt = utf8("bound to its AAD");
          const aad = utf8("core/recovery-key");
          const blob = await seal.encrypt(pt, { aad });
          expectBytes(await seal.decrypt(cloneBlob(blob), { aad }), pt);
          await expectSealError(seal.decrypt(cloneBlob(blob), { aad: utf8("core/other-key") }), "other AAD");
          await expectSealError(seal.decrypt(cloneBlob(blob)), "missing AAD");
          const plain = await seal.encrypt(pt);
          await expectSealError(seal.decrypt(plain, { aad }), "AAD on a blob encrypted without AAD");
        }),
      timeout,
    );

    it(
      "tampering with any byte of ciphertext, iv, hmac or wrappedKey is rejected, never a wrong plaintext",
      () =>
        withSeal(async (seal) => {
          const pt = bytes(Math.min(64, maxPlaintext));
          const blob = await seal.encrypt(pt);
          const fields: Array<[string, Uint8Array, (b: BlobInfo, v: Uint8Array) => void]> = [
            ["ciphertext", blob.ciphertext, (b, v) => (b.ciphertext = v)],
            ["iv", blob.iv, (b, v) => (b.iv = v)],
            ["hmac", blob.hmac, (b, v) => (b.hmac = v)],
            [
              "keyInfo.wrappedKey",
              blob.keyInfo?.wrappedKey ?? new Uint8Array(0),
              (b, v) => {
                if (b.keyInfo) b.keyInfo.wrappedKey = v;
              },
            ],
          ];
          expect(blob.ciphertext.length, "ciphertext is never empty").toBeGreaterThan(0);
          for (const [field, value, set] of fields) {
            for (const at of positions(value.length)) {
              const tampered = cloneBlob(blob);
              set(tampered, flipped(value, at));
              await expectSealError(seal.decrypt(tampered), `${field}[${at}] flipped`);
            }
          }
          // The untouched blob still decrypts: the failures above came from the changes.
          expectBytes(await seal.decrypt(cloneBlob(blob)), pt);
        }),
      timeout * 2,
    );

    it(
      "decrypt of a blob naming an unknown key id fails with SealKeyNotFoundError or SealDecryptError",
      () =>
        withSeal(async (seal) => {
          const blob = await seal.encrypt(utf8("which key?"));
          const other = cloneBlob(blob);
          if (other.keyInfo) other.keyInfo.keyId = `${seal.keyId()}-bulwark-conformance-unknown-key`;
          const err = await expectSealError(seal.decrypt(other), "unknown key id");
          expect(err instanceof SealKeyNotFoundError || err instanceof SealDecryptError, err.message).toBe(
            true,
          );
        }),
      timeout,
    );

    it(
      "decrypt of a blob without keyInfo fails with a SealError",
      () =>
        withSeal(async (seal) => {
          const blob = cloneBlob(await seal.encrypt(utf8("no key info")));
          delete blob.keyInfo;
          await expectSealError(seal.decrypt(blob), "blob without keyInfo");
        }),
      timeout,
    );

    it(
      "a plaintext that is not a Uint8Array is rejected with a SealError",
      () =>
        withSeal(async (seal) => {
          await expectSealError(seal.encrypt("not bytes" as unknown as Uint8Array), "string plaintext");
        }),
      timeout,
    );

    it(
      "an already aborted signal rejects encrypt and decrypt with signal.reason, without a provider call",
      () =>
        withSeal(async (seal, provider) => {
          const pt = utf8("never sent");
          const blob = await seal.encrypt(pt);
          const before = provider?.calls();
          for (const reason of [new Error("caller gave up"), "a string reason", { code: 42 }]) {
            const controller = new AbortController();
            controller.abort(reason);
            const enc = await outcomeOf(seal.encrypt(pt, { signal: controller.signal }));
            expect("error" in enc ? enc.error : enc, "encrypt rejects with the reason itself").toBe(reason);
            const dec = await outcomeOf(seal.decrypt(cloneBlob(blob), { signal: controller.signal }));
            expect("error" in dec ? dec.error : dec, "decrypt rejects with the reason itself").toBe(reason);
          }
          // AbortSignal.abort() without a reason: the DOMException "AbortError" it carries.
          const aborted = AbortSignal.abort();
          const dom = await outcomeOf(seal.encrypt(pt, { signal: aborted }));
          expect("error" in dom ? dom.error : dom).toBe(aborted.reason);
          if (provider !== undefined) {
            expect(provider.calls() - (before ?? 0), "provider calls made for aborted operations").toBe(0);
          }
          // A signal that was never aborted changes nothing, and the seal still works.
          const live = new AbortController().signal;
          expectBytes(await seal.decrypt(await seal.encrypt(pt, { signal: live }), { signal: live }), pt);
        }),
      timeout,
    );

    it(
      "an abort while the provider is slow rejects promptly with signal.reason; the seal keeps working",
      () =>
        withSeal(async (seal, provider) => {
          const pt = utf8("slow provider");
          const aad = utf8("core/abort");
          const blob = await seal.encrypt(pt, { aad });
          const release = await provider?.stall?.();
          const stalled = release !== undefined;
          try {
            await expectPromptAbort((signal) => seal.encrypt(pt, { aad, signal }), "encrypt", stalled);
            await expectPromptAbort(
              (signal) => seal.decrypt(cloneBlob(blob), { aad, signal }),
              "decrypt",
              stalled,
            );
          } finally {
            await release?.();
          }
          expectBytes(await seal.decrypt(await seal.encrypt(pt, { aad }), { aad }), pt);
          expectBytes(await seal.decrypt(cloneBlob(blob), { aad }), pt);
        }),
      timeout,
    );

    it(
      "a signal that is not an AbortSignal is rejected with a SealError",
      () =>
        withSeal(async (seal) => {
          const signal = { aborted: true } as unknown as AbortSignal;
          await expectSealError(seal.encrypt(utf8("x"), { signal }), "encrypt with a fake signal");
          const blob = await seal.encrypt(utf8("x"));
          await expectSealError(seal.decrypt(blob, { signal }), "decrypt with a fake signal");
        }),
      timeout,
    );

    it(
      `${concurrency} concurrent encrypt/decrypt operations are all correct`,
      () =>
        withSeal(async (seal) => {
          const inputs = Array.from({ length: concurrency }, (_, i) =>
            utf8(`value #${i} ${"x".repeat(i % 97)}`),
          );
          const blobs = await Promise.all(inputs.map((pt) => seal.encrypt(pt)));
          const outputs = await Promise.all(blobs.map((b) => seal.decrypt(b)));
          outputs.forEach((out, i) => {
            expectBytes(out, inputs[i] as Uint8Array);
          });
          // Interleaved: encrypts and decrypts in flight at the same time.
          const mixed = await Promise.all(
            inputs.map(async (pt, i) => {
              const [fresh, old] = await Promise.all([seal.encrypt(pt), seal.decrypt(blobs[i] as BlobInfo)]);
              return { back: await seal.decrypt(fresh), old };
            }),
          );
          mixed.forEach(({ back, old }, i) => {
            expectBytes(back, inputs[i] as Uint8Array);
            expectBytes(old, inputs[i] as Uint8Array);
          });
        }),
      timeout * 2,
    );

    it(
      "use after finalize fails with SealFinalizedError; finalize twice is safe",
      () =>
        withSeal(async (seal) => {
          const blob = await seal.encrypt(utf8("before finalize"));
          await seal.finalize();
          await seal.finalize();
          await expect(seal.encrypt(utf8("after"))).rejects.toBeInstanceOf(SealFinalizedError);
          await expect(seal.decrypt(blob)).rejects.toBeInstanceOf(SealFinalizedError);
          await expect(seal.init()).rejects.toBeInstanceOf(SealFinalizedError);
        }),
      timeout,
    );

    it(
      "health(), when implemented, reports healthy after init with the current key id",
      () =>
        withSeal(async (seal) => {
          const health = seal.health === undefined ? undefined : await seal.health();
          if (health !== undefined) {
            expect(health.healthy, health.message).toBe(true);
            expect(health.keyId).toBe(seal.keyId());
          } else {
            expect(seal.health).toBeUndefined();
          }
        }),
      timeout,
    );
  });
}

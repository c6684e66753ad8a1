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
import { describe, expect, it } from "vitest";
import { type BlobInfo, decodeBlobInfo, encodeBlobInfo } from "./blob-info.js";
import {
  SealConfigError,
  SealDecryptError,
  SealFinalizedError,
  SealKeyNotFoundError,
  SealNotInitializedError,
} from "./errors.js";
import type { Seal } from "./seal.js";
import { abortCases } from "./testing-abort.js";
import {
  bytes,
  type ConformanceSuite,
  cloneBlob,
  expectBytes,
  expectSealError,
  KiB,
  MiB,
  utf8,
} from "./testing-support.js";

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

const ROUND_TRIP_SIZES = [0, 1, KiB, 64 * KiB, MiB];
/** Positions flipped per field in the tamper test (spread evenly over the field). */
const TAMPER_POSITIONS = 24;

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

/** Describes itself; refuses use before init; init is idempotent. */
function identityCases({ withSeal, timeout }: ConformanceSuite): void {
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
}

/** Round trips of every size; blobs hide the plaintext, differ, record the key, survive the codec. */
function roundTripCases({ withSeal, timeout, sizes, maxPlaintext }: ConformanceSuite): void {
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
}

/** AAD binding, tampering, unknown keys, damaged blobs and bad arguments are errors. */
function integrityCases({ withSeal, timeout, maxPlaintext }: ConformanceSuite): void {
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
}

/** Concurrency, finalize rules, health. */
function concurrencyAndLifecycleCases({ withSeal, timeout, concurrency }: ConformanceSuite): void {
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
  const suite: ConformanceSuite = {
    maxPlaintext,
    concurrency: options.concurrency ?? 64,
    timeout: options.timeoutMs ?? 30_000,
    sizes: [...new Set([...ROUND_TRIP_SIZES.filter((n) => n <= maxPlaintext), maxPlaintext])].sort(
      (a, b) => a - b,
    ),
    async withSeal(fn, init = true) {
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
    },
  };

  describe(`seal conformance: ${name}`, () => {
    identityCases(suite);
    roundTripCases(suite);
    integrityCases(suite);
    abortCases(suite);
    concurrencyAndLifecycleCases(suite);
  });
}

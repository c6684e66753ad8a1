import { randomBytes } from "@bulwark/crypto";
import { CodedError } from "@bulwark/errors";
import { SealConfigError, SealUnavailableError, StaticKeySeal } from "@bulwark/seal";
import { StorageUnavailableError } from "@bulwark/storage";
import { MemoryBackend } from "@bulwark/storage-memory";
import { describe, expect, it } from "vitest";
import { autoUnsealDelayMs, isTransientUnsealError, resolveRetry } from "./auto-unseal.js";
import { CoreError } from "./errors.js";
import { type Logger, SealedStore } from "./sealed-store.js";
import { dec, enc, waitFor } from "./test-support.js";

const key = randomBytes(32);

type Attempt = "fail" | "hang" | "ok";

/**
 * A static seal whose init behaves, attempt by attempt, like an HSM/KMS that is down ("fail": an
 * unavailable error), that never answers ("hang": only the caller's abort ends it), or is up.
 */
class FlakySeal extends StaticKeySeal {
  inits = 0;
  #plan: (attempt: number) => Attempt;
  constructor(plan: number | ((attempt: number) => Attempt)) {
    super({ key, keyId: "key-a" });
    this.#plan = typeof plan === "number" ? (n) => (n <= plan ? "fail" : "ok") : plan;
  }
  up(): void {
    this.#plan = () => "ok";
  }
  protected override async doInit(signal?: AbortSignal): Promise<void> {
    this.inits++;
    const what = this.#plan(this.inits);
    if (what === "hang") {
      await new Promise<never>((_, reject) => {
        signal?.addEventListener("abort", () => reject(signal.reason), { once: true });
      });
    }
    if (what === "fail")
      throw new SealUnavailableError("connect ECONNREFUSED 127.0.0.1:1 (test KMS is down)");
    await super.doInit();
  }
}

function recordingLogger(): Logger & { lines: string[] } {
  const lines: string[] = [];
  const log = (level: string) => (msg: string) => {
    lines.push(`${level} ${msg}`);
  };
  return { lines, debug: log("debug"), info: log("info"), warn: log("warn"), error: log("error") };
}

/** An auto-sealed store with one secret in it, closed again; returns its storage. */
async function initialisedStorage(): Promise<MemoryBackend> {
  const storage = new MemoryBackend();
  const store = await SealedStore.open({ storage, seal: new StaticKeySeal({ key, keyId: "key-a" }) });
  await store.initialize({ recoveryShares: 1, recoveryThreshold: 1 });
  await store.put("secret/a", enc("kept"));
  await store.close();
  return storage;
}

const fast = { initialDelayMs: 10, maxDelayMs: 40 };

describe("auto-unseal retries while the seal is unreachable", () => {
  it("a seal that fails 3 times then works: the store unseals by itself, logging each attempt", async () => {
    const storage = await initialisedStorage();
    const seal = new FlakySeal(3);
    const logger = recordingLogger();
    const store = await SealedStore.open({ storage, seal, logger, autoUnsealRetry: fast });
    try {
      expect(store.sealed).toBe(true);
      const s = store.status();
      expect(s.autoUnseal).toMatchObject({ seal: "static", attempts: 1, maxDelayMs: 40 });
      expect(s.autoUnseal?.lastError).toMatch(/ECONNREFUSED/);
      expect(s.autoUnseal?.nextAttemptAt.getTime()).toBeGreaterThanOrEqual(
        s.autoUnseal?.lastAttemptAt.getTime() as number,
      );
      expect(s.sealedReason).toMatch(/waiting for the static seal .*ECONNREFUSED/);
      expect(s.sealedReason).toMatch(/unseals by itself/);
      expect(s.sealedReason).not.toMatch(/recovery/);
      await expect(store.get("secret/a")).rejects.toThrow(/waiting for the static seal/);

      await waitFor(() => !store.sealed, 5000);
      expect(seal.inits).toBe(4);
      expect(store.status().autoUnseal).toBeUndefined();
      expect(store.status().sealedReason).toBeUndefined();
      expect(dec(await store.get("secret/a"))).toBe("kept");
      expect(
        logger.lines.filter((l) => l.startsWith("warn auto-unseal: the static seal is unreachable")),
      ).toHaveLength(3);
      expect(logger.lines).toContain("info auto-unsealed");
    } finally {
      await store.close();
    }
  });

  it("refuses key shares while waiting (they are checked through the seal), without consuming them", async () => {
    const storage = new MemoryBackend();
    const first = await SealedStore.open({ storage, seal: new StaticKeySeal({ key, keyId: "key-a" }) });
    const init = await first.initialize({ recoveryShares: 1, recoveryThreshold: 1 });
    await first.close();
    const seal = new FlakySeal(() => "fail");
    const store = await SealedStore.open({ storage, seal, autoUnsealRetry: fast });
    try {
      const err = await store.unseal(init.recoveryKeys[0] as string).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(CoreError);
      expect(err).toMatchObject({ code: "seal_unavailable" });
      expect((err as Error).message).toMatch(
        /the static seal is unreachable .*cannot unseal the store without it/,
      );
      expect(store.status().progress).toBe(0);
      seal.up();
      await waitFor(() => !store.sealed, 5000);
    } finally {
      await store.close();
    }
  });

  it("keeps waiting while the seal is down, and unseals once it comes back", async () => {
    const storage = await initialisedStorage();
    const seal = new FlakySeal(() => "fail");
    const store = await SealedStore.open({ storage, seal, autoUnsealRetry: fast });
    try {
      await waitFor(() => seal.inits >= 6, 5000);
      expect(store.sealed).toBe(true);
      expect(store.status().autoUnseal?.attempts).toBeGreaterThanOrEqual(5);
      seal.up();
      await waitFor(() => !store.sealed, 5000);
      expect(dec(await store.get("secret/a"))).toBe("kept");
    } finally {
      await store.close();
    }
  });

  it("seal() stops the retries", async () => {
    const storage = await initialisedStorage();
    const seal = new FlakySeal(() => "fail");
    const store = await SealedStore.open({ storage, seal, autoUnsealRetry: fast });
    try {
      await waitFor(() => seal.inits >= 2, 5000);
      await store.seal();
      const inits = seal.inits;
      seal.up();
      await new Promise((r) => setTimeout(r, 200));
      expect(seal.inits).toBe(inits);
      expect(store.sealed).toBe(true);
      expect(store.status().autoUnseal).toBeUndefined();
    } finally {
      await store.close();
    }
  });

  it("close() aborts a retry attempt that hangs, instead of waiting for it", async () => {
    const storage = await initialisedStorage();
    const seal = new FlakySeal((n) => (n === 1 ? "fail" : "hang"));
    const store = await SealedStore.open({ storage, seal, autoUnsealRetry: fast });
    await waitFor(() => seal.inits >= 2, 5000);
    const started = Date.now();
    await store.close();
    expect(Date.now() - started).toBeLessThan(1000);
    expect(store.sealed).toBe(true);
    expect(store.status().autoUnseal).toBeUndefined();
    await new Promise((r) => setTimeout(r, 100));
    expect(seal.inits).toBe(2);
  });

  it("does not retry a failure that waiting cannot fix (wrong key), and never advises recovery keys", async () => {
    const storage = await initialisedStorage();
    const wrong = new StaticKeySeal({ key: randomBytes(32), keyId: "key-a" });
    const store = await SealedStore.open({ storage, seal: wrong, autoUnsealRetry: fast });
    try {
      expect(store.sealed).toBe(true);
      expect(store.status().autoUnseal).toBeUndefined();
      expect(store.status().sealedReason).toMatch(/could not decrypt/);
      expect(store.status().sealedReason).not.toMatch(/recovery/);
    } finally {
      await store.close();
    }
  });
});

describe("autoUnsealDelayMs", () => {
  it("doubles from the initial delay up to the cap, with equal jitter", () => {
    const low = resolveRetry({ initialDelayMs: 1000, maxDelayMs: 10_000, random: () => 0 });
    const high = resolveRetry({ initialDelayMs: 1000, maxDelayMs: 10_000, random: () => 0.999999 });
    expect([1, 2, 3, 4, 5, 6, 50].map((n) => autoUnsealDelayMs(n, low))).toEqual([
      500, 1000, 2000, 4000, 5000, 5000, 5000,
    ]);
    expect([1, 2, 3, 4, 5, 6, 50].map((n) => autoUnsealDelayMs(n, high))).toEqual([
      1000, 2000, 4000, 8000, 10_000, 10_000, 10_000,
    ]);
  });

  it("defaults to 1 s up to 10 s, and refuses nonsense", () => {
    expect(resolveRetry(undefined)).toMatchObject({ initialDelayMs: 1000, maxDelayMs: 10_000 });
    expect(() => resolveRetry({ initialDelayMs: 0 })).toThrow(/initialDelayMs must be/);
    expect(() => resolveRetry({ initialDelayMs: 500, maxDelayMs: 100 })).toThrow(/maxDelayMs must be/);
  });
});

describe("isTransientUnsealError", () => {
  it("retries outages of the seal or the storage, also wrapped", () => {
    const kms = new SealUnavailableError("KMS unreachable");
    expect(isTransientUnsealError(kms)).toBe(true);
    expect(isTransientUnsealError(new CoreError("seal_unavailable", "wrapped", { cause: kms }))).toBe(true);
    expect(isTransientUnsealError(new StorageUnavailableError("Consul down"))).toBe(true);
    const refused = Object.assign(new Error("connect ECONNREFUSED"), { code: "ECONNREFUSED" });
    expect(isTransientUnsealError(new Error("plugin seal failed", { cause: refused }))).toBe(true);
  });

  it("does not retry what waiting cannot fix (a rejected PIN, a bad config, a plain bug)", () => {
    expect(isTransientUnsealError(new SealConfigError("pin", "CKR_PIN_INCORRECT"))).toBe(false);
    expect(isTransientUnsealError(new CoreError("invalid_key", "wrong"))).toBe(false);
    expect(isTransientUnsealError(new TypeError("x is not a function"))).toBe(false);
  });

  it("matches (domain, code): code unavailable of another domain is not an outage of the seal or storage", () => {
    // An HTTP 503 (domain http, code unavailable) from some client a plugin used, a settings or
    // server error that happens to share the word: not something waiting for the HSM/KMS heals.
    class HttpLikeError extends CodedError<"unavailable"> {
      static override readonly kind: string = "@example/client:HttpLikeError";
      constructor() {
        super("http", "unavailable", "503 Service Unavailable");
      }
    }
    expect(isTransientUnsealError(new HttpLikeError())).toBe(false);
    expect(isTransientUnsealError(new Error("wrapped", { cause: new HttpLikeError() }))).toBe(false);
    expect(isTransientUnsealError(Object.assign(new Error("no domain"), { code: "unavailable" }))).toBe(
      false,
    );
    // The seal's and the storage's own, also from another copy of their package (fields only).
    expect(isTransientUnsealError(new CodedError("seal", "unavailable", "KMS down"))).toBe(true);
    const foreign = Object.assign(new Error("Consul down"), { domain: "storage", code: "unavailable" });
    expect(isTransientUnsealError(foreign)).toBe(true);
    expect(isTransientUnsealError(new CodedError("seal", "key_not_found", "no key"))).toBe(false);
  });
});

import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { Pkcs11Seal, type Pkcs11SealOptions } from "../src/index.js";
import { RawToken } from "./raw-token.js";
import { type SoftHsm, type SoftHsmToken, softHsmAvailable, startSoftHsm } from "./softhsm.js";
import { stallWorkerPool } from "./stall.js";

// What the conformance kit cannot reach: the wait for a pooled session and the backoff between
// retries, both of which an abort must end (not merely abandon).

const available = softHsmAvailable();
let hsm: SoftHsm;
let token: SoftHsmToken;
let raw: RawToken;
const seals: Pkcs11Seal[] = [];
const releases: Array<() => Promise<void>> = [];

if (available) {
  hsm = startSoftHsm();
  token = hsm.createToken("abort");
}

beforeAll(() => {
  if (available) raw = new RawToken(hsm.lib);
});

afterEach(async () => {
  await Promise.all(releases.splice(0).map((r) => r()));
  await Promise.all(seals.splice(0).map((s) => s.finalize()));
});

afterAll(() => {
  raw?.finalize();
  hsm?.stop();
});

function make(options: Partial<Pkcs11SealOptions> = {}): Pkcs11Seal {
  const seal = new Pkcs11Seal({
    lib: hsm.lib,
    tokenLabel: token.label,
    pin: token.pin,
    keyLabel: "abort-key",
    generateKey: true,
    ...options,
  });
  seals.push(seal);
  return seal;
}

const utf8 = (s: string) => new TextEncoder().encode(s);
const delay = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function rejection(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  throw new Error("expected a rejection");
}

describe.skipIf(!available)("abort signal on SoftHSM", () => {
  it("an abort while waiting for a pooled session leaves the queue at once; the busy session serves the next caller", async () => {
    const seal = make({ maxParallel: 1 });
    await seal.init();
    const release = await stallWorkerPool();
    releases.push(release);
    // The only session is busy in a C_Encrypt the library does not return from.
    const first = seal.encrypt(utf8("holds the session"));
    await delay(50);
    const controller = new AbortController();
    const waiting = seal.encrypt(utf8("waits for a session"), { signal: controller.signal });
    await delay(50);
    expect(seal.poolStats()).toMatchObject({ busy: 1, waiting: 1 });
    const reason = new Error("request cancelled");
    const started = performance.now();
    controller.abort(reason);
    expect(await rejection(waiting)).toBe(reason);
    expect(performance.now() - started).toBeLessThan(500);
    // Gone from the queue (not just abandoned): nobody waits for the session any more.
    expect(seal.poolStats()).toMatchObject({ busy: 1, waiting: 0 });
    await release();
    const blob = await first;
    expect(new TextDecoder().decode(await seal.decrypt(blob))).toBe("holds the session");
    expect(seal.poolStats()).toMatchObject({ busy: 0, waiting: 0 });
  }, 30_000);

  it("an abort during the backoff before a retry ends the wait: no retry, and finalize does not wait for the backoff", async () => {
    const calls: string[] = [];
    const seal = make({
      maxParallel: 1,
      maxRetries: 3,
      retryBaseMs: 20_000,
      trace: (e) => calls.push(e.call),
    });
    await seal.init();
    await seal.encrypt(utf8("opens the session"));
    // The token drops every session: the next call fails, the seal backs off (10–20 s) to retry.
    raw.closeAllSessions("abort");
    const controller = new AbortController();
    const pending = seal.encrypt(utf8("retried"), { signal: controller.signal });
    await delay(200);
    const before = calls.length;
    const reason = new Error("shutting down");
    controller.abort(reason);
    expect(await rejection(pending)).toBe(reason);
    const started = performance.now();
    await seal.finalize();
    expect(performance.now() - started, "finalize waited for the backoff").toBeLessThan(2_000);
    // No reconnect or retry after the abort (finalize closes sessions only).
    expect(calls.slice(before).filter((c) => c === "C_Login" || c === "C_Encrypt")).toEqual([]);
  }, 30_000);
});

import { monitorEventLoopDelay } from "node:perf_hooks";
import { SealConfigError, SealUnavailableError } from "@bulwark/seal";
import pkcs11js from "pkcs11js";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  type Pkcs11HealthDetails,
  Pkcs11Seal,
  type Pkcs11SealOptions,
  type Pkcs11TraceEvent,
} from "../src/index.js";
import { RawToken } from "./raw-token.js";
import { type SoftHsm, type SoftHsmToken, softHsmAvailable, startSoftHsm } from "./softhsm.js";

const available = softHsmAvailable();
let hsm: SoftHsm;
let token: SoftHsmToken;
let pinToken: SoftHsmToken;
let raw: RawToken;
const seals: Pkcs11Seal[] = [];

if (available) {
  hsm = startSoftHsm();
  token = hsm.createToken("faults");
  pinToken = hsm.createToken("pin-change");
}

beforeAll(() => {
  if (available) raw = new RawToken(hsm.lib);
});

afterEach(async () => {
  await Promise.all(seals.splice(0).map((s) => s.finalize()));
});

afterAll(() => {
  raw?.finalize();
  hsm?.stop();
});

function make(options: Partial<Pkcs11SealOptions> = {}, t: SoftHsmToken = token): Pkcs11Seal {
  const seal = new Pkcs11Seal({
    lib: hsm.lib,
    tokenLabel: t.label,
    pin: t.pin,
    keyLabel: "fault-key",
    generateKey: true,
    ...options,
  });
  seals.push(seal);
  return seal;
}

const utf8 = (s: string) => new TextEncoder().encode(s);

describe.skipIf(!available)("faults and load on SoftHSM", () => {
  it("sessions closed underneath during a burst (C_CloseAllSessions): every operation succeeds after reconnect", async () => {
    const seal = make({ maxParallel: 8 });
    await seal.init();
    const blobs = await Promise.all(Array.from({ length: 32 }, (_, i) => seal.encrypt(utf8(`old ${i}`))));
    let settled = 0;
    const ops = Array.from({ length: 400 }, (_, i) =>
      (i % 2 === 0
        ? seal.encrypt(utf8(`value ${i}`)).then((b) => seal.decrypt(b))
        : seal.decrypt(blobs[i % blobs.length] as (typeof blobs)[number])
      ).then((pt) => {
        settled++;
        return pt;
      }),
    );
    // Pull the sessions away twice while operations are queued and in flight.
    let kills = 0;
    await new Promise<void>((resolve) => {
      const tick = () => {
        if (settled >= 40 * (kills + 1) || settled === ops.length) {
          raw.closeAllSessions("faults");
          kills++;
        }
        if (kills === 2) resolve();
        else setImmediate(tick);
      };
      setImmediate(tick);
    });
    const results = await Promise.all(ops);
    results.forEach((pt, i) => {
      expect(Buffer.from(pt).toString()).toBe(i % 2 === 0 ? `value ${i}` : `old ${i % blobs.length}`);
    });
    const health = await seal.health();
    expect(health.healthy).toBe(true);
    const d = health.details as unknown as Pkcs11HealthDetails;
    expect(d.reconnects).toBeGreaterThanOrEqual(1);
    expect(d.lastError?.message).toMatch(
      /CKR_SESSION_HANDLE_INVALID|CKR_USER_NOT_LOGGED_IN|CKR_SESSION_CLOSED/,
    );
    expect(d.pool.open).toBeLessThanOrEqual(8);
  });

  it("a logout underneath (C_Logout by someone else) is repaired by logging in again", async () => {
    const seal = make();
    await seal.init();
    const s = raw.session("faults", token.pin);
    raw.lib.C_Logout(s);
    raw.lib.C_CloseSession(s);
    const pt = utf8("after logout");
    expect(Buffer.from(await seal.decrypt(await seal.encrypt(pt))).toString()).toBe("after logout");
  });

  it("retries are bounded: a token that keeps losing sessions gives SealUnavailableError after maxRetries", async () => {
    let sabotage = false;
    const events: Pkcs11TraceEvent[] = [];
    const seal = make({
      maxRetries: 2,
      retryBaseMs: 1,
      trace: (e) => {
        events.push(e);
        // Close every session right after each C_EncryptInit: the following C_Encrypt fails.
        if (sabotage && e.call === "C_EncryptInit" && e.rv === 0) raw.closeAllSessions("faults");
      },
    });
    await seal.init();
    events.length = 0;
    sabotage = true;
    const err = await seal.encrypt(utf8("x")).catch((e: unknown) => e);
    sabotage = false;
    expect(err).toBeInstanceOf(SealUnavailableError);
    expect((err as Error).message).toMatch(
      /C_Encrypt returned CKR_SESSION_HANDLE_INVALID \(0xb3\).*after 3 attempt/,
    );
    expect(events.filter((e) => e.call === "C_Encrypt")).toHaveLength(3);
    // Each retry logged in again (a lost login is not a PIN failure).
    expect(events.filter((e) => e.call === "C_Login" && e.rv === 0)).toHaveLength(2);
    // And the seal recovers once the token behaves.
    expect(Buffer.from(await seal.decrypt(await seal.encrypt(utf8("ok")))).toString()).toBe("ok");
  });

  it("a PIN rejected during reconnect is not retried: one failed C_Login, then a configuration error", async () => {
    const events: Pkcs11TraceEvent[] = [];
    const seal = make({ trace: (e) => events.push(e) }, pinToken);
    await seal.init();
    // The PIN is changed on the token and the sessions dropped: the seal's next login fails.
    const s = raw.session("pin-change", pinToken.pin);
    raw.lib.C_SetPIN(s, pinToken.pin, "changed-pin");
    raw.closeAllSessions("pin-change");
    events.length = 0;
    const err = await seal.encrypt(utf8("x")).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SealConfigError);
    expect((err as SealConfigError).field).toBe("pin");
    const logins = events.filter((e) => e.call === "C_Login");
    expect(logins).toHaveLength(1);
    expect(logins[0]?.rv).toBe(pkcs11js.CKR_PIN_INCORRECT);
    // Further operations do not try the rejected PIN again.
    await expect(seal.encrypt(utf8("y"))).rejects.toBeInstanceOf(SealConfigError);
    expect(events.filter((e) => e.call === "C_Login")).toHaveLength(1);
  });

  it("256 concurrent encrypts with max_parallel 8: all succeed, at most 8 sessions, the event loop stays responsive", async () => {
    const seal = make({ maxParallel: 8 });
    await seal.init();
    const value = new Uint8Array(2048).fill(7);
    let peakBusy = 0;
    let ticks = 0;
    const timer = setInterval(() => {
      ticks++;
      peakBusy = Math.max(peakBusy, seal.poolStats()?.busy ?? 0);
    }, 1);
    const delay = monitorEventLoopDelay({ resolution: 1 });
    delay.enable();
    const started = performance.now();
    const blobs = await Promise.all(
      Array.from({ length: 256 }, async () => {
        const b = await seal.encrypt(value);
        peakBusy = Math.max(peakBusy, seal.poolStats()?.busy ?? 0);
        return b;
      }),
    );
    const ms = performance.now() - started;
    delay.disable();
    clearInterval(timer);
    expect(blobs).toHaveLength(256);
    expect(new Set(blobs.map((b) => Buffer.from(b.iv).toString("hex"))).size).toBe(256);
    const back = await Promise.all(blobs.slice(0, 16).map((b) => seal.decrypt(b)));
    for (const pt of back) expect(Buffer.from(pt).equals(Buffer.from(value))).toBe(true);
    expect(peakBusy).toBeGreaterThan(1);
    expect(peakBusy).toBeLessThanOrEqual(8);
    expect(seal.poolStats()?.open).toBeLessThanOrEqual(8);
    const p99 = delay.percentile(99) / 1e6;
    const max = delay.max / 1e6;
    console.log(
      `256 concurrent encrypts (2 KiB, max_parallel 8): ${ms.toFixed(1)} ms; event-loop delay p50 ${(delay.percentile(50) / 1e6).toFixed(2)} ms, p99 ${p99.toFixed(2)} ms, max ${max.toFixed(2)} ms; 1 ms timer fired ${ticks} times; peak sessions busy ${peakBusy}`,
    );
    // The work runs on libuv's thread pool, so the loop keeps serving timers during the burst.
    // (Bounds are loose on purpose: CI machines run many test processes on two cores.)
    expect(ticks).toBeGreaterThanOrEqual(3);
    expect(delay.percentile(50) / 1e6).toBeLessThan(20);
  });
});

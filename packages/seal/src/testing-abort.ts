/**
 * The abort cases of the seal conformance suite: `encrypt`/`decrypt` with an aborted signal, an
 * abort during a slow provider call, and a signal that is not an AbortSignal.
 */
import { expect, it } from "vitest";
import {
  type ConformanceSuite,
  cloneBlob,
  delay,
  expectBytes,
  expectSealError,
  outcomeOf,
  utf8,
} from "./testing-support.js";

/** How long an aborted call may take to reject (generous: the suite runs on loaded CI machines). */
const ABORT_PROMPT_MS = 1_000;
/** How long the slow-provider test lets a call run before it aborts it. */
const ABORT_AFTER_MS = 150;

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

/** Registers the abort cases (see {@link SealEncryptOptions.signal} for the behaviour they check). */
export function abortCases({ withSeal, timeout }: ConformanceSuite): void {
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
}

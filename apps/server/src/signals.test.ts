import { describe, expect, it } from "vitest";
import { type BulwarkServer, holdSignalsWhileStarting, runUntilSignal } from "./main.js";

/** A server whose shutdown only records that it ran. */
function fakeServer(): { server: BulwarkServer; reasons: string[] } {
  const reasons: string[] = [];
  const server = {
    shutdown: async (reason: string) => {
      reasons.push(reason);
    },
    logger: { error: () => undefined, flush: () => undefined },
  } as unknown as BulwarkServer;
  return { server, reasons };
}

describe("signals while the server starts", () => {
  it("a SIGTERM caught while starting is held, and runUntilSignal shuts down in order at once", async () => {
    const exits: number[] = [];
    const release = holdSignalsWhileStarting((code) => exits.push(code));
    // process.emit runs the listeners without Node's default action (no real signal is sent).
    process.emit("SIGTERM", "SIGTERM");
    const pendingSignal = release();
    if (pendingSignal === undefined) throw new Error("the SIGTERM was not caught");
    expect(pendingSignal).toBe("SIGTERM");
    expect(exits).toEqual([]);
    const { server, reasons } = fakeServer();
    expect(await runUntilSignal(server, { pendingSignal, exit: (code) => exits.push(code) })).toBe(0);
    expect(reasons).toEqual(["received SIGTERM"]);
    expect(process.listenerCount("SIGTERM")).toBe(0);
  });

  it("a second signal while starting exits at once with 1; none caught gives undefined", () => {
    const exits: number[] = [];
    const release = holdSignalsWhileStarting((code) => exits.push(code));
    process.emit("SIGINT", "SIGINT");
    process.emit("SIGTERM", "SIGTERM");
    expect(exits).toEqual([1]);
    expect(release()).toBe("SIGINT");
    expect(holdSignalsWhileStarting(() => undefined)()).toBeUndefined();
    expect(process.listenerCount("SIGINT")).toBe(0);
  });
});

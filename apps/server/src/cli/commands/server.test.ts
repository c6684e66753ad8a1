import { describe, expect, it } from "vitest";
import { UsageError } from "../output.js";
import { shutdownDeadlineMs } from "./server.js";

describe("BULWARK_SHUTDOWN_TIMEOUT", () => {
  it("reads the settings kernel's duration grammar (Vault's), in milliseconds", () => {
    expect(shutdownDeadlineMs({})).toBeUndefined();
    expect(shutdownDeadlineMs({ BULWARK_SHUTDOWN_TIMEOUT: " " })).toBeUndefined();
    expect(shutdownDeadlineMs({ BULWARK_SHUTDOWN_TIMEOUT: "1500ms" })).toBe(1500);
    expect(shutdownDeadlineMs({ BULWARK_SHUTDOWN_TIMEOUT: "30" })).toBe(30_000);
    expect(shutdownDeadlineMs({ BULWARK_SHUTDOWN_TIMEOUT: "1m30s" })).toBe(90_000);
    expect(shutdownDeadlineMs({ BULWARK_SHUTDOWN_TIMEOUT: ".5s" })).toBe(500);
    expect(shutdownDeadlineMs({ BULWARK_SHUTDOWN_TIMEOUT: "+2s" })).toBe(2000);
    expect(shutdownDeadlineMs({ BULWARK_SHUTDOWN_TIMEOUT: "1d" })).toBe(86_400_000);
  });

  it("refuses what the kernel refuses, zero and more than 24h, naming the variable", () => {
    for (const v of ["soon", "0", "0s", "-5s", "1d12h", "1.5d", "25h", "2d"]) {
      expect(() => shutdownDeadlineMs({ BULWARK_SHUTDOWN_TIMEOUT: v }), v).toThrow(UsageError);
      expect(() => shutdownDeadlineMs({ BULWARK_SHUTDOWN_TIMEOUT: v }), v).toThrow(
        /BULWARK_SHUTDOWN_TIMEOUT must be a duration like "10s"/,
      );
    }
  });
});

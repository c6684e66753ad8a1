/**
 * The sim's own C-level tests (tooling/cloudhsm-sim/test.sh → build/sim-test), run as part of this
 * package's suite: a C program drives the module the way a C application would and checks every
 * emulated CloudHSM behaviour. Here: it ran, passed, and covered what the emulation claims.
 */
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { runGroup } from "../../core/test/support/processes.js";
import { SIM_DIR, simAvailable } from "./sim.js";

const available = simAvailable();

describe.skipIf(!available)("cloudhsm-sim C-level tests", () => {
  it("test.sh exits 0 and every check passes", async () => {
    // make, the C compiler and the test binary in one process group, killed with the test.
    const r = await runGroup("bash", [join(SIM_DIR, "test.sh")], { timeoutMs: 90_000 });
    const out = r.stdout;
    expect(r.stderr).toBe("");
    expect(out).not.toMatch(/^not ok/m);
    const summary = /cloudhsm-sim C tests: (\d+) passed, (\d+) failed/.exec(out);
    expect(summary, out).not.toBeNull();
    expect(Number(summary?.[2])).toBe(0);
    expect(Number(summary?.[1])).toBeGreaterThanOrEqual(90);
    expect(r.code).toBe(0);
    // The behaviours the emulation claims, each checked at the C level.
    for (const line of [
      "ok - C_OpenSession read-only (CKF_SERIAL_SESSION only) -> 0x6 (want 0x6)",
      "ok - C_Login with the bare password -> 0xa0 (want 0xa0)",
      "ok - C_Login user:password -> 0x0 (want 0x0)",
      "ok - GCM C_EncryptInit with a caller IV -> 0x71 (want 0x71)",
      "ok - the HSM wrote its IV into the caller's pIv buffer",
      "ok - GCM C_EncryptUpdate -> 0x70 (want 0x70)",
      "ok - GCM C_DecryptUpdate -> 0x70 (want 0x70)",
      "ok - GCM C_Encrypt of exactly 16384 bytes -> 0x0 (want 0x0)",
      "ok - GCM C_Encrypt of 16385 bytes -> 0x21 (want 0x21)",
      "ok - C_GenerateKey with a CKA_ID another secret key has -> 0x13 (want 0x13)",
      "ok - a key generated without CKA_EXTRACTABLE is extractable (CloudHSM default)",
      "ok - first slot id is 0x2000000000000001 (2305843009213693953)",
    ]) {
      expect(out).toContain(line);
    }
  }, 120_000);
});

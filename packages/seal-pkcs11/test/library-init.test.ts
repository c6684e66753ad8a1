/**
 * A PKCS#11 library that loads but fails C_Initialize (its own configuration is missing, or it
 * cannot reach the HSM). Own file: SoftHSM reads SOFTHSM2_CONF once per process, in C_Initialize.
 */
import { SealUnavailableError } from "@bulwark/seal";
import { describe, expect, it } from "vitest";
import { loadedModuleCount, Pkcs11Seal } from "../src/index.js";
import { SOFTHSM_LIB, softHsmAvailable } from "./softhsm.js";

const available = softHsmAvailable();

describe.skipIf(!available)("a library whose C_Initialize fails", () => {
  it("is an outage naming the library, the call and where to look, and leaves nothing loaded", async () => {
    process.env.SOFTHSM2_CONF = "/nonexistent/bulwark/softhsm2.conf";
    const seal = new Pkcs11Seal({ lib: SOFTHSM_LIB, tokenLabel: "t", pin: "1234", keyLabel: "k" });
    const err = (await seal.init().catch((e: unknown) => e)) as Error;
    expect(err).toBeInstanceOf(SealUnavailableError);
    expect(err.message).toContain(SOFTHSM_LIB);
    expect(err.message).toMatch(/C_Initialize returned CKR_GENERAL_ERROR \(0x5\)/);
    expect(err.message).toMatch(/configuration.*reachable/);
    expect(loadedModuleCount()).toBe(0);
  });
});

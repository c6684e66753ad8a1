import { runSealConformance } from "@bulwark/seal/testing";
import { afterAll, describe } from "vitest";
import { Pkcs11Seal, type Pkcs11TraceEvent } from "../src/index.js";
import { type SoftHsm, type SoftHsmToken, softHsmAvailable, startSoftHsm } from "./softhsm.js";
import { pkcs11ProviderHooks } from "./stall.js";

const available = softHsmAvailable();
let hsm: SoftHsm | undefined;
let token: SoftHsmToken | undefined;
if (available) {
  hsm = startSoftHsm();
  token = hsm.createToken("conformance-rsa");
}
afterAll(() => hsm?.stop());

function seal(rsaEncryptLocal: boolean, trace?: (event: Pkcs11TraceEvent) => void): Pkcs11Seal {
  const t = token as SoftHsmToken;
  return new Pkcs11Seal({
    lib: (hsm as SoftHsm).lib,
    tokenLabel: t.label,
    pin: t.pin,
    keyLabel: "rsa-key",
    mechanism: "0x0009",
    // SoftHSM 2.6 implements OAEP with SHA-1 only (other hashes → CKR_ARGUMENTS_BAD).
    rsaOaepHash: "sha1",
    rsaEncryptLocal,
    generateKey: true,
    trace,
  });
}

describe.skipIf(!available)("SoftHSM RSA-OAEP envelope", () => {
  runSealConformance("Pkcs11Seal RSA-OAEP (encrypt in the HSM)", async () => {
    const { trace, provider } = pkcs11ProviderHooks();
    return { seal: seal(false, trace), provider };
  });
  runSealConformance("Pkcs11Seal RSA-OAEP (rsa_encrypt_local)", async () => ({ seal: seal(true) }), {
    concurrency: 16,
  });
});

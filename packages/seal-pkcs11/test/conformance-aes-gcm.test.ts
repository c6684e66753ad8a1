import { runSealConformance } from "@bulwark/seal/testing";
import { afterAll, describe } from "vitest";
import { Pkcs11Seal } from "../src/index.js";
import { type SoftHsm, type SoftHsmToken, softHsmAvailable, startSoftHsm } from "./softhsm.js";
import { pkcs11ProviderHooks } from "./stall.js";

const available = softHsmAvailable();
let hsm: SoftHsm | undefined;
let token: SoftHsmToken | undefined;
if (available) {
  hsm = startSoftHsm();
  token = hsm.createToken("conformance-gcm");
}
afterAll(() => hsm?.stop());

function seal(extra: Partial<ConstructorParameters<typeof Pkcs11Seal>[0]> = {}): Pkcs11Seal {
  const t = token as SoftHsmToken;
  return new Pkcs11Seal({
    lib: (hsm as SoftHsm).lib,
    tokenLabel: t.label,
    pin: t.pin,
    keyLabel: "gcm-key",
    generateKey: true,
    ...extra,
  });
}

describe.skipIf(!available)("SoftHSM AES-GCM", () => {
  // Default threshold: 0 B … 1 KiB go to the HSM directly, 64 KiB and 1 MiB use an HSM-wrapped data key.
  // With provider hooks: PKCS#11 calls counted by trace, a slow HSM by a stalled worker pool.
  runSealConformance("Pkcs11Seal AES-GCM (direct + envelope)", async () => {
    const { trace, provider } = pkcs11ProviderHooks();
    return { seal: seal({ trace }), provider };
  });
  // Everything through the HSM in one C_Encrypt call, up to 1 MiB.
  runSealConformance(
    "Pkcs11Seal AES-GCM (all direct)",
    async () => ({ seal: seal({ maxDirectBytes: 2 * 1024 * 1024 }) }),
    { concurrency: 32 },
  );
});

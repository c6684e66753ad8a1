import { runSealConformance } from "@bulwark/seal/testing";
import { afterAll, describe } from "vitest";
import { pkcs11ProviderHooks } from "../../seal-pkcs11/test/stall.js";
import { CloudHsmSeal, type CloudHsmSealOptions } from "../src/index.js";
import { SIM_LIB, type SimToken, type SoftHsm, simAvailable, startSoftHsm } from "./sim.js";

const available = simAvailable();
let hsm: SoftHsm | undefined;
let token: SimToken | undefined;
if (available) {
  hsm = startSoftHsm();
  token = hsm.createToken("cavium");
}
afterAll(() => hsm?.stop());

function seal(extra: Partial<CloudHsmSealOptions> = {}): CloudHsmSeal {
  return new CloudHsmSeal({
    lib: SIM_LIB,
    pin: (token as SimToken).pin,
    keyLabel: "conformance-key",
    generateKey: true,
    ...extra,
  });
}

describe.skipIf(!available)("CloudHsmSeal through cloudhsm-sim", () => {
  // 0 B … 1 KiB in one HSM-IV GCM call each; 64 KiB and 1 MiB through an HSM-wrapped data key.
  // With provider hooks: PKCS#11 calls counted by trace, a slow HSM by a stalled worker pool.
  runSealConformance("CloudHsmSeal (token in the first cluster slot, default)", async () => {
    const { trace, provider } = pkcs11ProviderHooks();
    return { seal: seal({ trace }), provider };
  });
  // The 16 KiB boundary: a value of exactly the limit goes to the HSM whole.
  runSealConformance(
    "CloudHsmSeal (token by label, 16 KiB values)",
    async () => ({ seal: seal({ tokenLabel: "cavium" }) }),
    { maxPlaintext: 16 * 1024, concurrency: 32 },
  );
});

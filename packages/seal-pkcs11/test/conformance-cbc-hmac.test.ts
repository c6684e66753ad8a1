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
  token = hsm.createToken("conformance-cbc");
}
afterAll(() => hsm?.stop());

function seal(
  maxDirectBytes?: number,
  extra: Partial<ConstructorParameters<typeof Pkcs11Seal>[0]> = {},
): Pkcs11Seal {
  const t = token as SoftHsmToken;
  return new Pkcs11Seal({
    lib: (hsm as SoftHsm).lib,
    tokenLabel: t.label,
    pin: t.pin,
    keyLabel: "cbc-key",
    hmacKeyLabel: "cbc-hmac",
    mechanism: "0x1085",
    generateKey: true,
    ...(maxDirectBytes !== undefined ? { maxDirectBytes } : {}),
    ...extra,
  });
}

describe.skipIf(!available)("SoftHSM AES-CBC-PAD + HMAC-SHA256", () => {
  runSealConformance("Pkcs11Seal AES-CBC-PAD+HMAC (direct + envelope)", async () => {
    const { trace, provider } = pkcs11ProviderHooks();
    return { seal: seal(undefined, { trace }), provider };
  });
  runSealConformance(
    "Pkcs11Seal AES-CBC-PAD+HMAC (all direct)",
    async () => ({ seal: seal(2 * 1024 * 1024) }),
    {
      concurrency: 32,
    },
  );
});

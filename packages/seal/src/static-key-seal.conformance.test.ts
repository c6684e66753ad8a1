import { StaticKeySeal } from "./static-key-seal.js";
import { runSealConformance } from "./testing.js";

runSealConformance("StaticKeySeal", async () => ({
  seal: new StaticKeySeal({
    key: StaticKeySeal.generateKey(),
    keyId: "static-2",
    previousKeys: [{ keyId: "static-1", key: StaticKeySeal.generateKey() }],
  }),
}));

runSealConformance(
  "StaticKeySeal (small plaintexts, low concurrency)",
  async () => ({ seal: new StaticKeySeal({ key: StaticKeySeal.generateKey(), keyId: "small" }) }),
  { maxPlaintext: 16 * 1024, concurrency: 4, timeoutMs: 5_000 },
);

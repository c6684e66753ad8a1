import { ShamirSeal } from "./shamir-seal.js";
import { runSealConformance } from "./testing.js";

runSealConformance("ShamirSeal", async () => {
  const seal = new ShamirSeal();
  const kek = ShamirSeal.generateKey();
  seal.setKey(kek);
  kek.fill(0);
  return { seal };
});

// The seal conformance suite from @bulwark/seal/testing: the same checks every built-in seal
// passes (round trips, AAD binding, tampering, unknown keys, concurrency, init/finalize rules).

import { randomBytes } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runSealConformance } from "@bulwark/seal/testing";
import { createSeal } from "../src/index.js";

async function keyDir(): Promise<{ dir: string; file: (name: string) => Promise<string> }> {
  const dir = await mkdtemp(join(tmpdir(), "keyfile-seal-"));
  return {
    dir,
    async file(name) {
      const path = join(dir, name);
      await writeFile(path, `${randomBytes(32).toString("hex")}\n`, { mode: 0o600 });
      return path;
    },
  };
}

runSealConformance("keyfile seal", async () => {
  const { dir, file } = await keyDir();
  return {
    seal: createSeal({ key_file: await file("current.key") }, {}),
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
});

runSealConformance("keyfile seal with a previous key", async () => {
  const { dir, file } = await keyDir();
  return {
    seal: createSeal({ key_file: await file("new.key"), previous_key_files: [await file("old.key")] }, {}),
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
});

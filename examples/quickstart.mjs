// Quick start: a file-backed, Vault-compatible barrier in ./data.
// The first run initialises the barrier; every run writes a secret, reads it back and shows the
// ciphertext file on disk. (Until the `bulwark` server lands, the root key is kept in
// ./data/.example-root-key so the example can unseal again: a real deployment protects it with a
// seal: Shamir key shares or an HSM/KMS.)
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { AesGcmBarrier } from "@bulwark/barrier";
import { randomBytes } from "@bulwark/crypto";
import { FileBackend } from "@bulwark/storage-file";

const dataDir = resolve(process.env.BULWARK_DATA_DIR ?? join(process.cwd(), "data"));
const keyFile = join(dataDir, ".example-root-key");
const storage = new FileBackend({ path: dataDir });
const barrier = new AesGcmBarrier(storage);

let rootKey;
if (await barrier.initialized()) {
  rootKey = Buffer.from(readFileSync(keyFile, "utf8").trim(), "hex");
  console.log(`barrier in ${dataDir} is initialised; unsealing`);
} else {
  rootKey = randomBytes(32);
  await barrier.initialize(rootKey);
  writeFileSync(keyFile, `${Buffer.from(rootKey).toString("hex")}\n`, { mode: 0o600 });
  console.log(`initialised a new barrier in ${dataDir}`);
}
await barrier.unseal(rootKey);

const runs = Number(new TextDecoder().decode((await barrier.get("example/runs"))?.value ?? new TextEncoder().encode("0"))) + 1;
await barrier.put({ key: "example/runs", value: new TextEncoder().encode(String(runs)) });
await barrier.put({ key: "secret/data/db", value: new TextEncoder().encode(JSON.stringify({ password: "hunter2", run: runs })) });

const back = await barrier.get("secret/data/db");
console.log(`read back secret/data/db: ${new TextDecoder().decode(back.value)}`);
const file = join(dataDir, "secret", "data", "_db");
const onDisk = JSON.parse(readFileSync(file, "utf8"));
const ct = Buffer.from(onDisk.Value, "base64");
console.log(`ciphertext on disk: ${file}`);
console.log(`  ${ct.length} bytes: term ${ct.readUInt32BE(0)}, version ${ct[4]}, nonce ${ct.subarray(5, 17).toString("hex")}`);
console.log(`  contains the plaintext password? ${ct.includes("hunter2") || readFileSync(file).includes("hunter2")}`);
console.log(`key status: ${JSON.stringify(barrier.keyStatus())}; runs so far: ${runs}`);
barrier.seal();
if (!existsSync(file)) process.exitCode = 1;

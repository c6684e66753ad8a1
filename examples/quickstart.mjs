// Quick start: the embedded default — a sealed store on file storage with the Shamir seal (5 unseal
// key shares, any 3 unseal it).
//
// The store lives in .walkthrough/example/data at the repository root (git-ignored, next to the
// README walkthroughs' files), not in ./data: that is where `pnpm start`'s server keeps its store,
// and the two must never open the same directory. BULWARK_DATA_DIR and BULWARK_EXAMPLE_KEYS move
// the data and the keys file elsewhere.
//
// First run: initialises the store and prints the 5 unseal key shares. For this example only, they
// are also written to .walkthrough/example/unseal-keys.json so the next run can unseal by itself; in
// a real deployment each share goes to a different person and never sits next to the data.
// Every run: unseals with 3 shares, writes a secret (one plain, one seal-wrapped request), reads it
// back and shows the ciphertext file on disk, then seals again.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { SealedStore } from "@bulwark/core";
import { FileBackend } from "@bulwark/storage-file";

// Relative to this file, not the working directory: `pnpm example` (repo root) and
// `pnpm --filter @bulwark/examples quickstart` (examples/) use the same store.
const exampleDir = fileURLToPath(new URL("../.walkthrough/example/", import.meta.url));
const dataDir = resolve(process.env.BULWARK_DATA_DIR ?? join(exampleDir, "data"));
const keysFile = resolve(process.env.BULWARK_EXAMPLE_KEYS ?? join(exampleDir, "unseal-keys.json"));
mkdirSync(dirname(keysFile), { recursive: true });
const store = await SealedStore.open({ storage: new FileBackend({ path: dataDir }), storageType: "file" });

let keys;
if (!store.status().initialized) {
  const init = await store.initialize({ secretShares: 5, secretThreshold: 3 });
  keys = init.keys;
  writeFileSync(keysFile, `${JSON.stringify({ keys }, null, 2)}\n`, { mode: 0o600 });
  console.log(`initialised a new store in ${dataDir}`);
  for (const [i, k] of keys.entries()) console.log(`  unseal key ${i + 1}: ${k}`);
  console.log(`  (example only: also saved to ${keysFile})`);
} else {
  if (!existsSync(keysFile)) {
    console.error(`${dataDir} is initialised but ${keysFile} is missing: unseal with your own key shares`);
    process.exit(1);
  }
  keys = JSON.parse(readFileSync(keysFile, "utf8")).keys;
  console.log(`store in ${dataDir} is initialised and sealed`);
}

for (const k of keys.slice(0, 3)) {
  const s = await store.unseal(k);
  console.log(`  unseal progress ${s.sealed ? `${s.progress}/${s.t}` : "done: unsealed"}`);
}

const enc = (s) => new TextEncoder().encode(s);
const runs = Number(new TextDecoder().decode((await store.get("example/runs")) ?? enc("0"))) + 1;
await store.put("example/runs", enc(String(runs)));
await store.put("secret/data/db", enc(JSON.stringify({ password: "hunter2", run: runs })));
console.log(`read back secret/data/db: ${new TextDecoder().decode(await store.get("secret/data/db"))}`);

const file = join(dataDir, "secret", "data", "_db");
const raw = readFileSync(file);
const ct = Buffer.from(JSON.parse(raw.toString("utf8")).Value, "base64");
console.log(`ciphertext on disk: ${file}`);
console.log(
  `  ${ct.length} bytes: term ${ct.readUInt32BE(0)}, version ${ct[4]}, nonce ${ct.subarray(5, 17).toString("hex")}`,
);
console.log(
  `  plaintext visible on disk? ${raw.includes("hunter2") || ct.includes("hunter2") ? "YES (bug!)" : "no"}`,
);
console.log(
  `key status: term ${store.keyStatus().term}, ${store.keyStatus().encryptions} encryptions; runs so far: ${runs}`,
);
await store.close();
console.log("sealed again (keys zeroed)");

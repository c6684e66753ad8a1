// The CommonJS consumer: `require()` of every published package (each ships a CommonJS build under
// the `require` condition), and a real round trip through it. One line per check; exit 1 on a failure.
const assert = require("node:assert/strict");
const { mkdtemp, rm } = require("node:fs/promises");
const { tmpdir } = require("node:os");
const { join } = require("node:path");

const enc = (s) => new TextEncoder().encode(s);
const dec = (b) => new TextDecoder().decode(b);
let failed = 0;

async function check(name, fn) {
  try {
    const note = await fn();
    console.log(`ok   cjs: ${name}${note ? ` (${note})` : ""}`);
  } catch (err) {
    failed++;
    console.log(`FAIL cjs: ${name}`);
    console.log(String(err?.stack ?? err).replace(/^/gm, "       "));
  }
}

// Every published package and one export its entry must have (shared with esm.mjs).
const PACKAGES = require("./entries.json");

async function main() {
  await check(`require() every package (${Object.keys(PACKAGES).length} packages, CommonJS builds)`, () => {
    for (const [name, symbol] of Object.entries(PACKAGES)) {
      assert.match(require.resolve(name), /[\\/]dist[\\/]index\.cjs$/, `${name} resolves to dist/index.cjs`);
      assert.equal(typeof require(name)[symbol], "function", `${name} exports ${symbol}`);
    }
  });

  await check(
    "SealedStore (CommonJS): Shamir init on file storage, unseal, put/get, static-key seal wrap",
    async () => {
      const { SealedStore } = require("@bulwark/core");
      const { FileBackend } = require("@bulwark/storage-file");
      const { MemoryBackend } = require("@bulwark/storage-memory");
      const { StaticKeySeal } = require("@bulwark/seal");
      const dir = await mkdtemp(join(tmpdir(), "bulwark-pack-test-cjs-"));
      try {
        const store = await SealedStore.open({ storage: new FileBackend({ path: dir }) });
        const init = await store.initialize({ secretShares: 3, secretThreshold: 2 });
        for (const k of init.keys.slice(0, 2)) await store.unseal(k);
        await store.put("secret/a", enc("from cjs"));
        assert.equal(dec(await store.get("secret/a")), "from cjs");
        await store.close();
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
      const storage = new MemoryBackend();
      const store = await SealedStore.open({
        storage,
        seal: new StaticKeySeal({ key: StaticKeySeal.generateKey(), keyId: "k" }),
      });
      await store.initialize({ recoveryShares: 1, recoveryThreshold: 1 });
      await store.put("secret/w", enc("wrapped"), { sealWrap: true });
      assert.equal((await storage.get("secret/w")).value.at(-1), 0x73);
      assert.equal(dec(await store.get("secret/w")), "wrapped");
      await store.close();
    },
  );

  // The plugin template is ESM only, as plugins may be: require() of it works because every Node
  // line in `engines` has require(esm) unflagged (20.19+, 22.12+, 23+).
  await check("require() of the ESM-only seal plugin template (require(esm))", () => {
    const plugin = require("@acme/bulwark-seal-keyfile");
    assert.equal(typeof plugin.createSeal, "function");
    return `Node ${process.versions.node}`;
  });
}

main().then(
  () => {
    if (failed > 0) process.exitCode = 1;
  },
  (err) => {
    console.log(`FAIL cjs: ${err?.stack ?? err}`);
    process.exitCode = 1;
  },
);

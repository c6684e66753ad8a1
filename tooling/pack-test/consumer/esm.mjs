// The ES module consumer: what a user of the published tarballs does with `import`. Each check prints
// one line ("ok"/"FAIL"); the process exits non-zero if any failed. Run by ../run.sh inside a scratch
// project outside the workspace, where only the packed tarballs (and the npm registry) are installed.
import assert from "node:assert/strict";
import { chmod, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { Writable } from "node:stream";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);
const enc = (s) => new TextEncoder().encode(s);
const dec = (b) => new TextDecoder().decode(b);
let failed = 0;

async function check(name, fn) {
  try {
    const note = await fn();
    console.log(`ok   esm: ${name}${note ? ` (${note})` : ""}`);
  } catch (err) {
    failed++;
    console.log(`FAIL esm: ${name}`);
    console.log(String(err?.stack ?? err).replace(/^/gm, "       "));
  }
}

// Every published package and one export its entry must have (shared with cjs.cjs).
const ENTRIES = require("./entries.json");

await check(`import every package's entry (${Object.keys(ENTRIES).length} packages)`, async () => {
  for (const [name, symbol] of Object.entries(ENTRIES)) {
    const mod = await import(name);
    assert.equal(typeof mod[symbol], "function", `${name} exports ${symbol}`);
    // The import condition must pick the ESM build, not the CommonJS one.
    assert.match(import.meta.resolve(name), /\/dist\/index\.js$/, `${name} resolves to dist/index.js`);
  }
});

const { SealedStore } = await import("@bulwark/core");
const { MemoryBackend } = await import("@bulwark/storage-memory");
const { FileBackend } = await import("@bulwark/storage-file");
const { StaticKeySeal, SealError, SealDecryptError } = await import("@bulwark/seal");

await check("crypto: Shamir split/combine and AES-256-GCM round trips", async () => {
  const { shamirSplit, shamirCombine, aesGcmEncrypt, aesGcmDecrypt, randomBytes } = await import(
    "@bulwark/crypto"
  );
  const secret = randomBytes(32);
  const shares = await shamirSplit(secret, 5, 3);
  assert.deepEqual(Buffer.from(await shamirCombine(shares.slice(1, 4))), Buffer.from(secret));
  const key = randomBytes(32);
  const iv = randomBytes(12);
  const ct = aesGcmEncrypt(key, iv, enc("hello"), enc("aad"));
  assert.equal(dec(aesGcmDecrypt(key, iv, ct, enc("aad"))), "hello");
});

await check(
  "SealedStore on memory storage with a static-key seal: init, put/get, seal wrap, reopen auto-unseals",
  async () => {
    const storage = new MemoryBackend();
    const key = StaticKeySeal.generateKey();
    const store = await SealedStore.open({ storage, seal: new StaticKeySeal({ key, keyId: "k1" }) });
    const init = await store.initialize({ recoveryShares: 1, recoveryThreshold: 1 });
    assert.equal(init.recoveryKeys.length, 1);
    assert.equal(store.sealed, false);
    await store.put("secret/app", enc("hunter2"));
    await store.put("secret/wrapped", enc("double"), { sealWrap: true });
    const raw = await storage.get("secret/wrapped");
    assert.equal(raw.value.at(-1), 0x73, "a seal-wrapped value ends with the 's' canary");
    assert.ok(
      !Buffer.from((await storage.get("secret/app")).value).includes("hunter2"),
      "no plaintext in storage",
    );
    await store.close();
    const again = await SealedStore.open({ storage, seal: new StaticKeySeal({ key, keyId: "k1" }) });
    assert.equal(again.sealed, false, "auto-unsealed on open");
    assert.equal(dec(await again.get("secret/app")), "hunter2");
    assert.equal(dec(await again.get("secret/wrapped")), "double");
    await again.close();
  },
);

await check("SealedStore on file storage with Shamir shares: init 3 of 5, unseal, put/get", async () => {
  const dir = await mkdtemp(join(tmpdir(), "bulwark-pack-test-"));
  try {
    const store = await SealedStore.open({ storage: new FileBackend({ path: dir }), storageType: "file" });
    const init = await store.initialize({ secretShares: 5, secretThreshold: 3 });
    for (const k of init.keys.slice(2)) await store.unseal(k);
    assert.equal(store.sealed, false);
    await store.put("secret/data/db", enc("s3cret"));
    assert.equal(dec(await store.get("secret/data/db")), "s3cret");
    const onDisk = await readFile(join(dir, "secret", "data", "_db"), "utf8");
    assert.ok(!onDisk.includes("s3cret") && onDisk.includes('"Value"'), "Vault's file layout, encrypted");
    await store.close();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

await check("errors are recognised across the ESM and CommonJS builds (instanceof)", async () => {
  const cjs = require("@bulwark/seal");
  assert.notEqual(cjs.SealError, SealError, "two copies are loaded");
  const seal = new StaticKeySeal({ key: StaticKeySeal.generateKey(), keyId: "k" });
  await seal.init();
  const blob = await seal.encrypt(enc("x"), { aad: enc("a") });
  const err = await seal.decrypt(blob, { aad: enc("b") }).catch((e) => e);
  await seal.finalize();
  assert.ok(
    err instanceof SealDecryptError && err instanceof cjs.SealDecryptError && err instanceof cjs.SealError,
  );
});

await check(
  "a CodedError from one build is recognised by the other's classes (settings, errors)",
  async () => {
    const cjsSettings = require("@bulwark/settings");
    const { SettingsError } = await import("@bulwark/settings");
    const { CodedError, isCodedError } = await import("@bulwark/errors");
    assert.notEqual(cjsSettings.SettingsError, SettingsError, "two copies are loaded");
    let err;
    try {
      cjsSettings.parseBool("tls_disable", "yes");
    } catch (e) {
      err = e;
    }
    assert.ok(err instanceof SettingsError && err instanceof CodedError && isCodedError(err), "recognised");
    assert.equal(err.domain, "settings");
    assert.equal(err.field, "tls_disable");
    assert.ok(!(new Error("plain") instanceof CodedError), "a plain Error is not a CodedError");
  },
);

await check(
  "the conformance suites' entries (@bulwark/seal/testing, @bulwark/storage/testing) load",
  async () => {
    const { runSealConformance, configError } = await import("@bulwark/seal/testing");
    const { runBackendConformance } = await import("@bulwark/storage/testing");
    for (const f of [runSealConformance, configError, runBackendConformance])
      assert.equal(typeof f, "function");
  },
);

await check("pkcs11js, a native addon, was built by npm install and loads", async () => {
  const pkcs11js = require("pkcs11js");
  const binding = require.resolve("pkcs11js/build/Release/pkcs11.node");
  assert.equal(typeof new pkcs11js.PKCS11().load, "function");
  const lib = "/usr/lib/softhsm/libsofthsm2.so";
  try {
    await readFile(lib);
  } catch {
    return `${binding.replace(`${here}/`, "")}; SoftHSM not installed, library not called`;
  }
  const p = new pkcs11js.PKCS11();
  p.load(lib);
  p.C_Initialize();
  try {
    const info = p.C_GetInfo();
    return `C_GetInfo through ${lib}: ${info.manufacturerID.trim()} ${info.libraryDescription.trim()}`;
  } finally {
    p.C_Finalize();
    p.close();
  }
});

/** Runs `fn` with a server from `startServer`, shut down whatever happens. */
async function withServer(opts, fn) {
  const { startServer } = await import("@bulwark/server");
  const quiet = new Writable({ write: (_c, _e, cb) => cb() });
  const server = await startServer({ out: quiet, logDestination: quiet, ...opts });
  try {
    return await fn(server);
  } finally {
    await server.shutdown("pack test done");
  }
}

async function api(server, method, path, token, body) {
  const res = await fetch(`${server.address}/v1/${path}`, {
    method,
    headers: { ...(token ? { "X-Vault-Token": token } : {}), "content-type": "application/json" },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  assert.ok(res.ok, `${method} /v1/${path}: HTTP ${res.status} ${text}`);
  return text === "" ? undefined : JSON.parse(text);
}

await check("@bulwark/server dev mode: HTTP kv v2 put/get, then shutdown", () =>
  withServer({ dev: true, devListenAddress: "127.0.0.1:0", env: {} }, async (server) => {
    const token = server.dev.rootToken;
    await api(server, "PUT", "secret/data/app", token, { data: { password: "hunter2" } });
    const got = await api(server, "GET", "secret/data/app", token);
    assert.equal(got.data.data.password, "hunter2");
    return server.address;
  }),
);

await check(
  "@bulwark/server loads the seal plugin template from its sample config (plugin = ...)",
  async () => {
    const dir = await mkdtemp(join(here, "plugin-run-"));
    try {
      const keyFile = join(dir, "seal.key");
      await writeFile(keyFile, `${(await import("node:crypto")).randomBytes(32).toString("hex")}\n`);
      await chmod(keyFile, 0o600);
      // examples/seal-plugin/bulwark.hcl, copied here by run.sh.
      let config = await readFile(join(here, "seal-plugin.hcl"), "utf8");
      for (const [from, to] of [
        ['"/var/lib/bulwark"', JSON.stringify(join(dir, "data"))],
        ['"/etc/bulwark/seal.key"', JSON.stringify(keyFile)],
        ['"127.0.0.1:8200"', '"127.0.0.1:0"'],
      ]) {
        assert.ok(config.includes(from), `the sample config sets ${from}`);
        config = config.replace(from, to);
      }
      // The config sits in the scratch project, so the plugin resolves from its node_modules.
      const configFile = join(here, "plugin-run.hcl");
      await writeFile(configFile, config);
      try {
        return await withServer({ configPaths: [configFile], env: {} }, async (server) => {
          const init = await api(server, "PUT", "sys/init", undefined, {
            recovery_shares: 1,
            recovery_threshold: 1,
          });
          const status = await api(server, "GET", "sys/seal-status");
          assert.equal(status.sealed, false, "auto-unsealed by the plugin seal");
          assert.equal(status.type, "keyfile");
          await api(server, "POST", "sys/mounts/kv", init.root_token, {
            type: "kv",
            options: { version: "2" },
          });
          await api(server, "PUT", "kv/data/x", init.root_token, { data: { v: "1" } });
          assert.equal((await api(server, "GET", "kv/data/x", init.root_token)).data.data.v, "1");
          return `seal type ${status.type}`;
        });
      } finally {
        await rm(configFile, { force: true });
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  },
);

if (failed > 0) process.exitCode = 1;

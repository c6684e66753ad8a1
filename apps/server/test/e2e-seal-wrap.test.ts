/**
 * A seal-wrapped KV mount end to end: `bulwark server` with file storage and an auto seal (the
 * static-key seal, so this runs without an HSM); node-vault writes to a `seal_wrap = true` mount
 * and to a plain one; with the server stopped, the raw file storage shows the `s` canary
 * (`protobuf(BlobInfo) ‖ 's'`) on every entry of the wrapped mount and on none of the plain one,
 * and no plaintext anywhere. A restart auto-unseals and the data reads back.
 */
import { randomBytes } from "node:crypto";
import { parseSealWrapped, SEAL_WRAP_CANARY } from "@bulwark/seal";
import { FileBackend } from "@bulwark/storage-file";
import nodeVault from "node-vault";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { cliMissing, type ServerProcess, startServerProcess, tempDir } from "./helpers/server-process.js";

// Starts `bulwark server` processes: generous limits for a loaded 2-core machine (every test's
// servers are stopped after it however it ends: packages/core/test/support/vitest-setup.ts).
vi.setConfig({ testTimeout: 120_000, hookTimeout: 120_000 });

const missing = cliMissing();
if (missing !== undefined && process.env.CI === "true") throw new Error(missing);
if (missing !== undefined) console.warn(`skipping e2e: ${missing}`);

const dir = tempDir("e2e-wrap");
const sealKey = randomBytes(32).toString("hex");
const config = `
storage "file" { path = "${dir}/data" }
seal "static" {
  key    = "${sealKey}"
  key_id = "e2e-static-1"
}
listener "tcp" {
  address     = "127.0.0.1:{{PORT}}"
  tls_disable = true
}
log_level = "debug"
`;

async function rawEntries(
  storage: FileBackend,
  prefix: string,
): Promise<Array<{ key: string; value: Uint8Array }>> {
  const out: Array<{ key: string; value: Uint8Array }> = [];
  for (const name of await storage.list(prefix)) {
    if (name.endsWith("/")) out.push(...(await rawEntries(storage, prefix + name)));
    else out.push({ key: prefix + name, value: (await storage.get(prefix + name))?.value as Uint8Array });
  }
  return out;
}

describe.skipIf(missing !== undefined)("e2e: seal-wrapped KV mount (file storage, auto seal)", () => {
  let server: ServerProcess & { port: number };
  let vault: nodeVault.client;
  let root = "";
  const uuids: Record<string, string> = {};
  const SECRET = "seal-wrapped-plaintext-7f3a9c";

  beforeAll(async () => {
    server = await startServerProcess({ config, dir });
    vault = nodeVault({ endpoint: server.address, apiVersion: "v1" });
  }, 60_000);
  afterAll(async () => {
    await server?.stop();
  });

  it("initialises with recovery keys and is unsealed by the seal", async () => {
    // node-vault's init() knows only Shamir fields; the raw write sends the recovery ones.
    const init = await vault.write("sys/init", { recovery_shares: 3, recovery_threshold: 2 });
    expect(init.recovery_keys).toHaveLength(3);
    root = init.root_token;
    vault.token = root;
    expect(await vault.status()).toMatchObject({
      type: "static",
      sealed: false,
      recovery_seal: true,
      t: 2,
      n: 3,
    });
  });

  it("writes through a seal_wrap mount and a plain one", async () => {
    await vault.mount({ mount_point: "wrapped", type: "kv", options: { version: "2" }, seal_wrap: true });
    await vault.mount({ mount_point: "plain", type: "kv", options: { version: "1" } });
    await vault.write("wrapped/data/db", { data: { password: SECRET } });
    await vault.write("wrapped/data/db", { data: { password: `${SECRET}-2` } });
    await vault.write("plain/db", { password: SECRET });
    const mounts = (await vault.mounts()).data;
    expect(mounts["wrapped/"].seal_wrap).toBe(true);
    expect(mounts["plain/"].seal_wrap).toBe(false);
    uuids.wrapped = mounts["wrapped/"].uuid;
    uuids.plain = mounts["plain/"].uuid;
  });

  it("raw storage: the 's' canary on every wrapped entry, on no plain one, and no plaintext anywhere", async () => {
    expect(await server.stop()).toBe(0);
    const storage = new FileBackend({ path: `${dir}/data` });
    // KV v2 wraps what Vault's plugin names in SealWrapStorage: the versions and the key that
    // encrypts metadata paths (policy/, archive/); its metadata, salt, marker stay barrier-only.
    const mountEntries = await rawEntries(storage, `logical/${uuids.wrapped}/`);
    const isWrappedPath = (key: string) => /^logical\/[^/]+\/[^/]+\/(versions|policy|archive)\//.test(key);
    const wrapped = mountEntries.filter((e) => isWrappedPath(e.key));
    expect(wrapped.length).toBe(4); // two versions, policy/metadata, archive/metadata
    for (const e of wrapped) {
      expect(e.value[e.value.length - 1], e.key).toBe(SEAL_WRAP_CANARY);
      expect(parseSealWrapped(e.value), e.key).toBeDefined();
    }
    const rest = mountEntries.filter((e) => !isWrappedPath(e.key));
    expect(rest.length).toBeGreaterThanOrEqual(3); // metadata, salt, upgrading
    for (const e of rest) expect(parseSealWrapped(e.value), e.key).toBeUndefined();
    const plain = await rawEntries(storage, `logical/${uuids.plain}/`);
    expect(plain.length).toBe(1);
    for (const e of plain) expect(parseSealWrapped(e.value), e.key).toBeUndefined();
    const needle = Buffer.from(SECRET);
    for (const e of await rawEntries(storage, "")) {
      expect(Buffer.from(e.value).includes(needle), e.key).toBe(false);
    }
  });

  it("a restart auto-unseals without operator action and the wrapped data reads back", async () => {
    // The next test reads this server's logs: it lives until the file ends.
    server = await startServerProcess({ config, dir, port: server.port, scope: "file" });
    vault = nodeVault({ endpoint: server.address, apiVersion: "v1", token: root });
    expect(await vault.status()).toMatchObject({ sealed: false, type: "static", recovery_seal: true });
    expect((await vault.read("wrapped/data/db")).data.data).toEqual({ password: `${SECRET}-2` });
    expect((await vault.read("wrapped/data/db?version=1")).data.data).toEqual({ password: SECRET });
    expect((await vault.read("plain/db")).data).toEqual({ password: SECRET });
  });

  it("logs hold neither the seal key nor the secret", async () => {
    await server.stop();
    const out = server.output();
    expect(out).not.toContain(sealKey);
    expect(out).not.toContain(SECRET);
    expect(out).not.toContain(root);
  });
});

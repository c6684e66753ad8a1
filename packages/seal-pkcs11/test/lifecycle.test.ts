/**
 * The full lifecycle with @bulwark/core on file storage: initialise in this process, auto-unseal in
 * new processes (built dist; seal from a Vault-style block and VAULT_HSM_* variables), rotate the
 * HSM key by label (stored keys upgraded, rewrap, only then the old key removed), and a missing
 * key (the store stays sealed and says which label).
 *
 * SoftHSM keeps a token's objects in files that every process reads at C_Initialize, so this file
 * never keeps the library initialised while a child runs: each step here finalizes its seals.
 */
import { readdir, readFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { SealedStore, type SealStatus } from "@bulwark/core";
import { parseSealWrapped } from "@bulwark/seal";
import { FileBackend } from "@bulwark/storage-file";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { execGroup } from "../../core/test/support/processes.js";
import { createPkcs11Seal, loadedModuleCount } from "../src/index.js";
import { RawToken } from "./raw-token.js";
import { type SoftHsm, type SoftHsmToken, softHsmAvailable, startSoftHsm } from "./softhsm.js";

// Starts a Node process per step: generous limits for a loaded 2-core machine (a child still
// running when its test ends is killed with it: packages/core/test/support/vitest-setup.ts).
vi.setConfig({ testTimeout: 120_000, hookTimeout: 120_000 });

const available = softHsmAvailable();
const CHILD = join(dirname(fileURLToPath(import.meta.url)), "fixtures", "open-store.mjs");
const utf8 = (s: string) => new TextEncoder().encode(s);
const STORED_KEYS = "core/hsm/barrier-unseal-keys";
const RECOVERY_KEY = "core/recovery-key";

interface ChildReport {
  status: SealStatus;
  openMs: number;
  keyId: string;
  values: Record<string, string | null>;
  errors: Record<string, string>;
  rawKeyIds: Record<string, string | null>;
}

describe.skipIf(!available)("SealedStore + file storage + Pkcs11Seal (SoftHSM) across processes", () => {
  let hsm: SoftHsm;
  let token: SoftHsmToken;
  let dir: string;

  beforeAll(() => {
    hsm = startSoftHsm();
    token = hsm.createToken("vault-hsm");
    dir = join(hsm.dir, "store");
  });
  afterAll(() => hsm?.stop());

  /** The seal block a Vault config would carry; lib and PIN come from the environment. */
  function block(keyLabel: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
    return { token_label: token.label, key_label: keyLabel, ...extra };
  }
  const env = () => ({ VAULT_HSM_LIB: hsm.lib, VAULT_HSM_PIN: token.pin });

  async function child(
    config: Record<string, unknown>,
    opts: { reads?: string[]; writes?: Array<[string, string, boolean]> } = {},
  ): Promise<ChildReport> {
    const { stdout } = await execGroup(process.execPath, [CHILD], {
      env: {
        PATH: process.env.PATH ?? "",
        SOFTHSM2_CONF: hsm.conf,
        ...env(),
        STORE_DIR: dir,
        SEAL_CONFIG: JSON.stringify(config),
        READ_PATHS: JSON.stringify(opts.reads ?? []),
        WRITE_ENTRIES: JSON.stringify(opts.writes ?? []),
      },
      timeoutMs: 60_000,
    });
    return JSON.parse(stdout.trim().split("\n").at(-1) ?? "{}") as ChildReport;
  }

  /** Runs `fn` with raw token access, then finalizes the library again (see the file comment). */
  function withRaw<T>(fn: (raw: RawToken, session: Buffer) => T): T {
    const raw = new RawToken(hsm.lib);
    try {
      return fn(raw, raw.session(token.label, token.pin));
    } finally {
      raw.finalize();
    }
  }

  async function grepStore(needle: string): Promise<boolean> {
    const files = await readdir(dir, { recursive: true, withFileTypes: true });
    for (const f of files) {
      if (!f.isFile()) continue;
      const body = await readFile(join(f.parentPath, f.name));
      if (body.includes(Buffer.from(needle))) return true;
      // The file backend stores values base64-encoded inside JSON.
      if (body.includes(Buffer.from(Buffer.from(needle).toString("base64").slice(0, 16)))) return true;
    }
    return false;
  }

  let key1 = "";

  it("init here → a new process auto-unseals → plain and seal-wrapped data readable", async () => {
    const seal = createPkcs11Seal(block("bulwark-key-1", { generate_key: "true" }), env());
    const store = await SealedStore.open({ storage: new FileBackend({ path: dir }), seal });
    expect(store.status()).toMatchObject({ initialized: false, sealed: true, type: "pkcs11" });
    const init = await store.initialize({ recoveryShares: 3, recoveryThreshold: 2 });
    expect(init.keys).toEqual([]);
    expect(init.recoveryKeys).toHaveLength(3);
    expect(store.status()).toMatchObject({ initialized: true, sealed: false, recoverySeal: true });
    key1 = seal.keyId();
    expect(key1).toMatch(/^bulwark-key-1:[0-9a-f]{8}$/);
    await store.put("secret/plain", utf8("plain value"));
    await store.put("secret/wrapped", utf8("wrapped value hsm"), { sealWrap: true });
    await store.close();
    expect(loadedModuleCount()).toBe(0);
    // Nothing readable on disk: the wrapped value went through the HSM, the plain one through the barrier.
    expect(await grepStore("wrapped value hsm")).toBe(false);

    const report = await child(block("bulwark-key-1"), { reads: ["secret/plain", "secret/wrapped"] });
    expect(report.status).toMatchObject({ type: "pkcs11", initialized: true, sealed: false });
    expect(report.status.sealedReason).toBeUndefined();
    expect(report.values).toEqual({ "secret/plain": "plain value", "secret/wrapped": "wrapped value hsm" });
    expect(report.keyId).toBe(key1);
    expect(report.rawKeyIds).toMatchObject({
      [STORED_KEYS]: key1,
      [RECOVERY_KEY]: key1,
      "secret/wrapped": key1,
    });
    // The plain entry is barrier-encrypted only; the wrapped one carries the seal's BlobInfo.
    expect(report.rawKeyIds["secret/plain"]).toBeNull();
    console.log(
      `auto-unseal in a new process: SealedStore.open → unsealed in ${report.openMs.toFixed(1)} ms`,
    );
  });

  it("rotation: a new key_label → old data readable, stored keys upgraded; the old key goes only after rewrap", async () => {
    const report = await child(block("bulwark-key-2", { generate_key: "true" }), {
      reads: ["secret/plain", "secret/wrapped"],
      writes: [["secret/new-wrapped", "new wrapped value", true]],
    });
    expect(report.status.sealed).toBe(false);
    const key2 = report.keyId;
    expect(key2).toMatch(/^bulwark-key-2:[0-9a-f]{8}$/);
    expect(report.values).toEqual({ "secret/plain": "plain value", "secret/wrapped": "wrapped value hsm" });
    expect(report.rawKeyIds).toMatchObject({
      [STORED_KEYS]: key2,
      [RECOVERY_KEY]: key2,
      "secret/wrapped": key1,
      "secret/new-wrapped": key2,
    });

    // Before rewrap the old key is still needed (the keyring itself is seal-wrapped with it): hide
    // it and the store cannot unseal, naming the missing key.
    withRaw((raw, s) => expect(raw.relabel(s, "bulwark-key-1", "hidden-key-1")).toBe(1));
    const without = await child(block("bulwark-key-2"), { reads: ["secret/wrapped"] });
    expect(without.status.sealed).toBe(true);
    expect(without.status.sealedReason).toMatch(/core\/keyring.*no key labelled "bulwark-key-1"/);
    withRaw((raw, s) => expect(raw.relabel(s, "hidden-key-1", "bulwark-key-1")).toBe(1));

    // Rewrap moves every seal-wrapped entry to the current key.
    const seal = createPkcs11Seal(block("bulwark-key-2"), env());
    const storage = new FileBackend({ path: dir });
    const store = await SealedStore.open({ storage, seal });
    expect(store.status().sealed).toBe(false);
    const result = await store.rewrap();
    expect(result.failed).toBe(0);
    expect(result.rewrapped).toBeGreaterThanOrEqual(1);
    for (const path of ["secret/wrapped", "core/keyring"]) {
      const raw = await storage.get(path);
      expect(raw && parseSealWrapped(raw.value)?.keyInfo?.keyId, path).toBe(key2);
    }
    await store.close();

    // Now the old key can go: everything still opens and reads.
    withRaw((raw, s) => expect(raw.destroy(s, "bulwark-key-1")).toBe(1));
    const after = await child(block("bulwark-key-2"), {
      reads: ["secret/plain", "secret/wrapped", "secret/new-wrapped"],
    });
    expect(after.status.sealed).toBe(false);
    expect(after.values).toEqual({
      "secret/plain": "plain value",
      "secret/wrapped": "wrapped value hsm",
      "secret/new-wrapped": "new wrapped value",
    });
  });

  it("a missing key: the store stays sealed and the reason names the label", async () => {
    const report = await child(block("no-such-key"));
    expect(report.status).toMatchObject({ initialized: true, sealed: true });
    expect(report.status.sealedReason).toMatch(
      /stored unseal keys are present but the seal could not decrypt them/,
    );
    expect(report.status.sealedReason).toMatch(/no key labelled "no-such-key" on token "vault-hsm"/);
    // In this process too, with a wrong PIN: sealed, with the PIN named as the problem. The
    // environment gives the library only: VAULT_HSM_PIN would override the block's pin (Vault's rule).
    const seal = createPkcs11Seal(block("bulwark-key-2", { pin: "not-the-pin" }), { VAULT_HSM_LIB: hsm.lib });
    const store = await SealedStore.open({ storage: new FileBackend({ path: dir }), seal });
    expect(store.status().sealed).toBe(true);
    expect(store.status().sealedReason).toMatch(/rejected the PIN .*CKR_PIN_INCORRECT/);
    await store.close();
  });
});

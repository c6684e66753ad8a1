/**
 * The full lifecycle with @bulwark/core on file storage, through cloudhsm-sim: initialise here,
 * auto-unseal in new processes (built dist; seal from a Vault-style block, CU credentials from the
 * environment, as a server would), seal-wrapped values of 20 KiB and 1 MiB written and read back
 * across processes, the same data opened by the plain pkcs11 seal on the token underneath (no
 * seal migration), and a store that stays sealed — with the reason — for a wrong password or a
 * cluster that is required but not ACTIVE.
 *
 * SoftHSM keeps a token's objects in files that every process reads at C_Initialize, so this file
 * never keeps the library initialised while a child runs: each step here closes its store.
 */
import { createHash } from "node:crypto";
import { readdir, readFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { SealedStore, type SealStatus } from "@bulwark/core";
import { FLAG_ENVELOPE, loadedModuleCount } from "@bulwark/seal-pkcs11";
import { FileBackend } from "@bulwark/storage-file";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { execGroup } from "../../core/test/support/processes.js";
import { createCloudHsmSeal } from "../src/index.js";
import { activeHsms, CloudHsmApiDouble } from "./cloudhsm-api.js";
import { CU, SIM_LIB, type SimToken, SOFTHSM_LIB, type SoftHsm, simAvailable, startSoftHsm } from "./sim.js";

const available = simAvailable();
const CHILD = join(dirname(fileURLToPath(import.meta.url)), "fixtures", "open-store.mjs");
const STORED_KEYS = "core/hsm/barrier-unseal-keys";
const RECOVERY_KEY = "core/recovery-key";
const CLUSTER = "cluster-lifecycle01";
const KiB = 1024;

interface BlobSummary {
  keyId: string | null;
  flags: number | null;
  mechanism: number | null;
  iv: string;
}
interface ChildReport {
  status: SealStatus;
  openMs: number;
  keyId: string;
  values: Record<string, { length: number; sha256: string } | null>;
  errors: Record<string, string>;
  blobs: Record<string, BlobSummary | null>;
}

/** Same generator as pattern() in fixtures/open-store.mjs. */
function pattern(size: number, seed: number): Uint8Array {
  const out = new Uint8Array(size);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < size; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}
const digest = (b: Uint8Array) => ({
  length: b.length,
  sha256: createHash("sha256").update(b).digest("hex"),
});

describe.skipIf(!available)(
  "SealedStore + file storage + CloudHsmSeal (cloudhsm-sim) across processes",
  () => {
    let hsm: SoftHsm;
    let token: SimToken;
    let dir: string;
    const api = new CloudHsmApiDouble();

    beforeAll(async () => {
      hsm = startSoftHsm();
      token = hsm.createToken("cavium");
      dir = join(hsm.dir, "store");
      await api.start();
      api.setCluster(CLUSTER, "ACTIVE", activeHsms(CLUSTER));
    });
    afterAll(async () => {
      await api.stop();
      hsm?.stop();
    });

    /** The seal block a server config would carry; library path and CU credentials come from the environment. */
    const block = (extra: Record<string, unknown> = {}) => ({ key_label: "bulwark-cloudhsm", ...extra });
    const env = (password = token.password) => ({
      VAULT_HSM_LIB: SIM_LIB,
      BULWARK_CLOUDHSM_USER: CU,
      BULWARK_CLOUDHSM_PASSWORD: password,
    });

    async function child(
      config: Record<string, unknown>,
      opts: {
        kind?: "cloudhsm" | "pkcs11";
        reads?: string[];
        writes?: Array<[string, number, number]>;
        env?: Record<string, string>;
      } = {},
    ): Promise<ChildReport> {
      const { stdout } = await execGroup(process.execPath, [CHILD], {
        env: {
          PATH: process.env.PATH ?? "",
          SOFTHSM2_CONF: hsm.conf,
          AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true",
          ...(opts.env ?? env()),
          SEAL_KIND: opts.kind ?? "cloudhsm",
          STORE_DIR: dir,
          SEAL_CONFIG: JSON.stringify(config),
          READ_PATHS: JSON.stringify(opts.reads ?? []),
          WRITE_SIZES: JSON.stringify(opts.writes ?? []),
        },
        timeoutMs: 60_000,
      });
      return JSON.parse(stdout.trim().split("\n").at(-1) ?? "{}") as ChildReport;
    }

    async function storeContains(needle: Uint8Array): Promise<boolean> {
      const probe = Buffer.from(needle.subarray(0, 64));
      const probe64 = Buffer.from(probe.toString("base64").slice(0, 40));
      for (const f of await readdir(dir, { recursive: true, withFileTypes: true })) {
        if (!f.isFile()) continue;
        const body = await readFile(join(f.parentPath, f.name));
        if (body.includes(probe) || body.includes(probe64)) return true;
      }
      return false;
    }

    const small = pattern(100, 1);
    const v20k = pattern(20 * KiB, 2);
    const v1m = pattern(1024 * KiB, 3);
    let keyId = "";

    it("init here → a new process auto-unseals through cloudhsm-sim; 20 KiB and 1 MiB seal-wrapped values readable", async () => {
      const seal = createCloudHsmSeal(
        block({
          generate_key: "true",
          cluster_id: CLUSTER,
          region: "us-east-1",
          endpoint: api.url,
          access_key: "A",
          secret_key: "S",
        }),
        env(),
      );
      const store = await SealedStore.open({ storage: new FileBackend({ path: dir }), seal });
      expect(store.status()).toMatchObject({ initialized: false, sealed: true, type: "pkcs11" });
      const init = await store.initialize({ recoveryShares: 1, recoveryThreshold: 1 });
      expect(init.keys).toEqual([]);
      expect(init.recoveryKeys).toHaveLength(1);
      expect(store.status()).toMatchObject({ initialized: true, sealed: false, recoverySeal: true });
      keyId = seal.keyId();
      expect(keyId).toMatch(/^bulwark-cloudhsm:[0-9a-f]{8}$/);
      expect(seal.clusterStatus()?.state).toBe("ACTIVE");
      await store.put("secret/small", small, { sealWrap: true });
      await store.put("secret/20k", v20k, { sealWrap: true });
      await store.put("secret/1m", v1m, { sealWrap: true });
      expect(digest((await store.get("secret/1m")) as Uint8Array)).toEqual(digest(v1m));
      await store.close();
      expect(loadedModuleCount()).toBe(0);
      for (const v of [small, v20k, v1m]) expect(await storeContains(v)).toBe(false);

      const report = await child(block(), { reads: ["secret/small", "secret/20k", "secret/1m"] });
      expect(report.status).toMatchObject({ type: "pkcs11", initialized: true, sealed: false });
      expect(report.status.sealedReason).toBeUndefined();
      expect(report.keyId).toBe(keyId);
      expect(report.errors).toEqual({});
      expect(report.values).toEqual({
        "secret/small": digest(small),
        "secret/20k": digest(v20k),
        "secret/1m": digest(v1m),
      });
      // Stored keys and the small value: one HSM GCM call each, with the HSM's IV in the blob.
      for (const path of [STORED_KEYS, RECOVERY_KEY]) {
        expect(report.blobs[path], path).toMatchObject({ keyId, flags: 0, mechanism: 0x1087 });
        expect(report.blobs[path]?.iv).toMatch(/^[0-9a-f]{24}$/);
        expect(report.blobs[path]?.iv).not.toBe("0".repeat(24));
      }
      // 20 KiB and 1 MiB are over CloudHSM's 16 KiB GCM limit: HSM-wrapped data keys.
      expect(report.blobs["secret/20k"]).toMatchObject({ keyId, flags: FLAG_ENVELOPE });
      expect(report.blobs["secret/1m"]).toMatchObject({ keyId, flags: FLAG_ENVELOPE });
      console.log(
        `auto-unseal through cloudhsm-sim in a new process: SealedStore.open → unsealed in ${report.openMs.toFixed(1)} ms`,
      );
    });

    it("values written by one process are read by the next (and here)", async () => {
      const w20 = pattern(20 * KiB, 20);
      const w1m = pattern(1024 * KiB, 21);
      const writer = await child(block(), {
        writes: [
          ["secret/w20k", 20 * KiB, 20],
          ["secret/w1m", 1024 * KiB, 21],
        ],
      });
      expect(writer.status.sealed).toBe(false);
      const reader = await child(block(), { reads: ["secret/w20k", "secret/w1m", "secret/20k"] });
      expect(reader.values).toEqual({
        "secret/w20k": digest(w20),
        "secret/w1m": digest(w1m),
        "secret/20k": digest(v20k),
      });

      const store = await SealedStore.open({
        storage: new FileBackend({ path: dir }),
        seal: createCloudHsmSeal(block(), env()),
      });
      expect(store.status().sealed).toBe(false);
      expect(digest((await store.get("secret/w1m")) as Uint8Array)).toEqual(digest(w1m));
      await store.close();
    });

    it("no seal migration needed: the plain pkcs11 seal on the token underneath opens the same store", async () => {
      const report = await child(
        { lib: SOFTHSM_LIB, token_label: "cavium", pin: token.password, key_label: "bulwark-cloudhsm" },
        { kind: "pkcs11", env: {}, reads: ["secret/small", "secret/1m"] },
      );
      expect(report.status).toMatchObject({ type: "pkcs11", sealed: false });
      expect(report.keyId).toBe(keyId);
      expect(report.values).toEqual({ "secret/small": digest(small), "secret/1m": digest(v1m) });
    });

    it("a wrong password: the new process stays sealed and says the crypto user's login was refused", async () => {
      const report = await child(block(), { env: env("Wr0ng-password"), reads: ["secret/small"] });
      expect(report.status).toMatchObject({ initialized: true, sealed: true });
      expect(report.status.sealedReason).toMatch(
        /stored unseal keys are present but the seal could not decrypt them/,
      );
      expect(report.status.sealedReason).toMatch(
        /CloudHSM refused the login of crypto user "crypto_user".*CKR_PIN_INCORRECT/,
      );
      expect(report.status.sealedReason).not.toContain("Wr0ng-password");
      expect(report.values).toEqual({});
    });

    it("a required cluster that is DEGRADED keeps the new process sealed; ACTIVE again → it unseals", async () => {
      const cluster = {
        cluster_id: CLUSTER,
        region: "us-east-1",
        endpoint: api.url,
        access_key: "A",
        secret_key: "S",
        require_active_cluster: "true",
      };
      api.setCluster(
        CLUSTER,
        "DEGRADED",
        activeHsms(CLUSTER, ["DEGRADED", "ACTIVE"]),
        "an HSM is being replaced",
      );
      const down = await child(block(cluster));
      expect(down.status.sealed).toBe(true);
      expect(down.status.sealedReason).toMatch(
        /CloudHSM cluster check failed: cluster cluster-lifecycle01 is DEGRADED/,
      );
      api.setCluster(CLUSTER, "ACTIVE", activeHsms(CLUSTER));
      const up = await child(block(cluster), { reads: ["secret/20k"] });
      expect(up.status.sealed).toBe(false);
      expect(up.values["secret/20k"]).toEqual(digest(v20k));
    });
  },
);

import { execFileSync } from "node:child_process";
import { randomBytes as nodeRandomBytes } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { performance } from "node:perf_hooks";
import { SealedStore } from "@bulwark/core";
import { randomBytes } from "@bulwark/crypto";
import type { BlobInfo, Seal } from "@bulwark/seal";
import { CloudHsmSeal } from "@bulwark/seal-cloudhsm";
import { Pkcs11Seal } from "@bulwark/seal-pkcs11";
import { MemoryBackend } from "@bulwark/storage-memory";
import pkcs11js from "pkcs11js";
import type { Comparison, Subject } from "../harness.js";
import { cpuPerOp } from "./seal-pkcs11.js";

const SOFTHSM = process.env.SOFTHSM_LIBRARY_PATH ?? "/usr/lib/softhsm/libsofthsm2.so";
const SIM_DIR = resolve(import.meta.dirname, "../../../cloudhsm-sim");
const LABEL = "cavium";
const KEY_LABEL = "bench-cloudhsm-key";
const CU = "bench_cu";

/** Builds cloudhsm-sim (idempotent) and returns the module's path. */
function buildSim(): string {
  execFileSync("bash", [join(SIM_DIR, "build.sh")], { stdio: ["ignore", "pipe", "inherit"] });
  const lib = join(SIM_DIR, "build", "libcloudhsm-sim.so");
  if (!existsSync(lib)) throw new Error(`cloudhsm-sim was not built at ${lib}`);
  return lib;
}

/** A private SoftHSM token directory for this run (SOFTHSM2_CONF is read at C_Initialize). */
function startSoftHsm(): { password: string; stop: () => void } {
  if (!existsSync(SOFTHSM))
    throw new Error(`SoftHSM2 not found at ${SOFTHSM}: run tooling/services/install.sh`);
  const dir = mkdtempSync(join(tmpdir(), "bulwark-bench-cloudhsm-"));
  mkdirSync(join(dir, "tokens"));
  const conf = join(dir, "softhsm2.conf");
  writeFileSync(
    conf,
    `directories.tokendir = ${join(dir, "tokens")}\nobjectstore.backend = file\nlog.level = ERROR\n`,
  );
  process.env.SOFTHSM2_CONF = conf;
  const password = `Pw${nodeRandomBytes(6).toString("hex")}`;
  execFileSync(
    "softhsm2-util",
    ["--init-token", "--free", "--label", LABEL, "--so-pin", password, "--pin", password],
    { stdio: "pipe" },
  );
  const stop = () => rmSync(dir, { recursive: true, force: true });
  process.once("exit", stop);
  return { password, stop };
}

/**
 * Holds SoftHSM and cloudhsm-sim loaded and initialised for the whole suite. Both seals share
 * SoftHSM in this process; with an owner outside both, neither finalizes it under the other, and
 * each open in the auto-unseal comparison costs the same library work on both sides (a reference,
 * not a fresh load of one library but not the other).
 */
function holdLibraries(paths: string[]): () => void {
  const libs = paths.map((path) => {
    const lib = new pkcs11js.PKCS11();
    lib.load(path);
    lib.C_Initialize({ flags: pkcs11js.CKF_OS_LOCKING_OK });
    return lib;
  });
  return () => {
    for (const lib of libs.reverse()) {
      lib.C_Finalize();
      lib.close();
    }
  };
}

/**
 * The CloudHSM profile through cloudhsm-sim against the plain PKCS#11 seal on SoftHSM — the same
 * token and key underneath — so the ratio is what the profile and the emulated CloudHSM rules
 * cost (HSM-generated IV written back, single-part checks, PIN split, RW sessions): target ≥ 0.9×,
 * encrypt and decrypt of 1 KiB and 16 KiB (the largest value CloudHSM takes in one GCM call) at
 * concurrency 1 and 16. Also prints CPU time per operation (steadier than wall clock on shared
 * cores) and the auto-unseal time through the sim.
 */
export async function suite(): Promise<Comparison[]> {
  const simLib = buildSim();
  const hsm = startSoftHsm();
  const release = holdLibraries([SOFTHSM, simLib]);
  const cloudOptions = {
    lib: simLib,
    tokenLabel: LABEL,
    user: CU,
    password: hsm.password,
    keyLabel: KEY_LABEL,
    generateKey: true,
    maxParallel: 16,
  };
  const plainOptions = {
    lib: SOFTHSM,
    tokenLabel: LABEL,
    pin: hsm.password,
    keyLabel: KEY_LABEL,
    maxParallel: 16,
    // The same split as the profile, so both sides do the same HSM work per value.
    maxDirectBytes: 16 * 1024,
  };
  // Create the key once through the profile (generate_key), then release the library again.
  const creator = new CloudHsmSeal(cloudOptions);
  await creator.init();
  await creator.finalize();

  let cloud: CloudHsmSeal | undefined;
  let plain: Pkcs11Seal | undefined;
  const blobs = new Map<string, BlobInfo>();
  // Each comparison opens its own seals and closes them again.
  const side = (
    kind: "cloud" | "plain",
    name: string,
    concurrency: number,
    op: () => Promise<unknown>,
    pt: Uint8Array,
  ): Subject => ({
    name,
    concurrency,
    op: async () => {
      await op();
    },
    setup: async () => {
      const s = kind === "cloud" ? new CloudHsmSeal(cloudOptions) : new Pkcs11Seal(plainOptions);
      await s.init();
      if (s instanceof CloudHsmSeal) cloud = s;
      else plain = s;
      blobs.set(name, await s.encrypt(pt));
    },
    teardown: async () => {
      await (kind === "cloud" ? cloud : plain)?.finalize();
      if (kind === "cloud") cloud = undefined;
      else plain = undefined;
    },
  });

  const out: Comparison[] = [];
  for (const [size, sizeName] of [
    [1024, "1 KiB"],
    [16 * 1024, "16 KiB"],
  ] as const) {
    const pt = randomBytes(size);
    for (const concurrency of [1, 16]) {
      const ops = size === 1024 ? (concurrency === 1 ? 3_000 : 6_000) : 2_000;
      const encName = `CloudHsmSeal.encrypt ${sizeName} c${concurrency}`;
      out.push({
        name: `cloudhsm seal (cloudhsm-sim) vs pkcs11 seal (SoftHSM): encrypt ${sizeName}, concurrency ${concurrency}`,
        target: 0.9,
        ops,
        rounds: 7,
        ours: side("cloud", encName, concurrency, () => (cloud as CloudHsmSeal).encrypt(pt), pt),
        baseline: side(
          "plain",
          `Pkcs11Seal.encrypt ${sizeName} c${concurrency}`,
          concurrency,
          () => (plain as Pkcs11Seal).encrypt(pt),
          pt,
        ),
      });
      const decName = `CloudHsmSeal.decrypt ${sizeName} c${concurrency}`;
      const plainDec = `Pkcs11Seal.decrypt ${sizeName} c${concurrency}`;
      out.push({
        name: `cloudhsm seal (cloudhsm-sim) vs pkcs11 seal (SoftHSM): decrypt ${sizeName}, concurrency ${concurrency}`,
        target: 0.9,
        ops,
        rounds: 7,
        ours: side(
          "cloud",
          decName,
          concurrency,
          () => (cloud as CloudHsmSeal).decrypt(blobs.get(decName) as BlobInfo),
          pt,
        ),
        baseline: side(
          "plain",
          plainDec,
          concurrency,
          () => (plain as Pkcs11Seal).decrypt(blobs.get(plainDec) as BlobInfo),
          pt,
        ),
      });
    }
  }

  // CPU time per operation, 1 KiB at concurrency 1 (both seals live at once, alternating runs).
  {
    const pt = randomBytes(1024);
    const c = new CloudHsmSeal(cloudOptions);
    const p = new Pkcs11Seal(plainOptions);
    await c.init();
    await p.init();
    const cb = await c.encrypt(pt);
    const pb = await p.encrypt(pt);
    for (const [what, ours, base] of [
      ["encrypt", () => c.encrypt(pt), () => p.encrypt(pt)],
      ["decrypt", () => c.decrypt(cb), () => p.decrypt(pb)],
    ] as const) {
      const o: number[] = [];
      const b: number[] = [];
      await cpuPerOp(ours, 300, 1);
      await cpuPerOp(base, 300, 1);
      for (let r = 0; r < 7; r++) {
        o.push(await cpuPerOp(ours, 1_500, 1));
        b.push(await cpuPerOp(base, 1_500, 1));
      }
      const med = (xs: number[]) => [...xs].sort((x, y) => x - y)[xs.length >> 1] ?? 0;
      const ratio = med(b) / med(o);
      console.log(
        `  cloudhsm ${what} 1 KiB, concurrency 1: CPU per op ${med(o).toFixed(1)} µs (cloudhsm-sim) vs ${med(b).toFixed(1)} µs (SoftHSM) → ${ratio.toFixed(2)}× (target ≥ 0.9×: ${ratio >= 0.9 ? "met" : "MISSED"})`,
      );
    }
    await c.finalize();
    await p.finalize();
  }

  // Auto-unseal through the sim: SealedStore.open → unsealed.
  const storage = new MemoryBackend();
  const first = await SealedStore.open({ storage, seal: new CloudHsmSeal(cloudOptions) });
  await first.initialize({ recoveryShares: 1, recoveryThreshold: 1 });
  await first.close();
  const openOnce = async (seal: Seal): Promise<number> => {
    const t0 = performance.now();
    const store = await SealedStore.open({ storage, seal });
    const ms = performance.now() - t0;
    if (store.status().sealed) throw new Error(`auto-unseal failed: ${store.status().sealedReason}`);
    await store.close();
    return ms;
  };
  out.push({
    name: "cloudhsm auto-unseal through cloudhsm-sim vs pkcs11 on SoftHSM (SealedStore.open → unsealed)",
    target: 0.9,
    ops: 30,
    rounds: 5,
    ours: {
      name: "SealedStore.open (CloudHsmSeal) + close",
      op: async () => {
        await openOnce(new CloudHsmSeal(cloudOptions));
      },
    },
    baseline: {
      name: "SealedStore.open (Pkcs11Seal) + close",
      op: async () => {
        await openOnce(new Pkcs11Seal(plainOptions));
      },
      teardown: async () => {
        release();
        hsm.stop();
      },
    },
  });
  return out;
}

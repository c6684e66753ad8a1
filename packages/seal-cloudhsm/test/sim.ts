/**
 * cloudhsm-sim for tests: where the module is, how to build it, and a private SoftHSM token
 * directory per test file for it to sit on.
 *
 * The module is built by tooling/cloudhsm-sim/build.sh (the vitest globalSetup runs it once per
 * test run). vitest runs every test file in its own forked process; SoftHSM reads SOFTHSM2_CONF
 * (and scans its token directory) in C_Initialize, so `startSoftHsm()` and every `createToken()`
 * must run before the first seal of the file initialises.
 */
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import {
  SOFTHSM_LIB,
  softHsmMissing,
  startSoftHsm as startPkcs11SoftHsm,
} from "../../seal-pkcs11/test/softhsm.js";

export { SOFTHSM_LIB };
export const REPO = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");
export const SIM_DIR = join(REPO, "tooling", "cloudhsm-sim");
export const SIM_LIB = join(SIM_DIR, "build", "libcloudhsm-sim.so");
/** The crypto user of every test token (the sim accepts any name unless CLOUDHSM_SIM_USER is set). */
export const CU = "crypto_user";

/** Runs build.sh (idempotent: make rebuilds only what changed). */
export function buildSim(): { ok: boolean; output: string } {
  const r = spawnSync("bash", [join(SIM_DIR, "build.sh")], { encoding: "utf8" });
  return { ok: r.status === 0, output: `${r.stdout ?? ""}${r.stderr ?? ""}`.trim() };
}

/** Why the sim tests cannot run here, or undefined when they can. */
export function simMissing(): string | undefined {
  if (softHsmMissing !== undefined) return softHsmMissing;
  if (!existsSync(SIM_LIB))
    return `cloudhsm-sim is not built at ${SIM_LIB} (tooling/cloudhsm-sim/build.sh failed: gcc/make?)`;
  return undefined;
}

/**
 * Local runs skip sim suites with a one-line reason; in CI (CI=true) a missing piece fails the
 * file instead, because CI counts skipped tests as failures and must never silently pass.
 */
export function simAvailable(): boolean {
  const why = simMissing();
  if (why === undefined) return true;
  if (process.env.CI === "true") throw new Error(`cloudhsm-sim tests are required in CI: ${why}`);
  console.warn(`skipping cloudhsm-sim tests: ${why}`);
  return false;
}

export interface SimToken {
  label: string;
  /** The crypto user's password = the SoftHSM user PIN. */
  password: string;
  /** The CloudHSM PIN: `${CU}:${password}`. */
  pin: string;
  serial: string;
}

export interface SoftHsm {
  dir: string;
  conf: string;
  /** Initialises a SoftHSM token (with softhsm2-util: CloudHSM has no C_InitToken). */
  createToken(label: string, password?: string): SimToken;
  stop(): void;
}

/** A fresh token directory and config for this process (seal-pkcs11's SoftHSM helper); sets SOFTHSM2_CONF. */
export function startSoftHsm(): SoftHsm {
  const hsm = startPkcs11SoftHsm();
  return {
    dir: hsm.dir,
    conf: hsm.conf,
    createToken(label, password = `Pw${randomBytes(6).toString("hex")}`) {
      const { serial } = hsm.createToken(label, password);
      return { label, password, pin: `${CU}:${password}`, serial };
    },
    stop: () => hsm.stop(),
  };
}

/**
 * cloudhsm-sim for tests: where the module is, how to build it, and a private SoftHSM token
 * directory per test file for it to sit on.
 *
 * The module is built by tooling/cloudhsm-sim/build.sh (the vitest globalSetup runs it once per
 * test run). vitest runs every test file in its own forked process; SoftHSM reads SOFTHSM2_CONF
 * (and scans its token directory) in C_Initialize, so `startSoftHsm()` and every `createToken()`
 * must run before the first seal of the file initialises.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

export const REPO = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");
export const SIM_DIR = join(REPO, "tooling", "cloudhsm-sim");
export const SIM_LIB = join(SIM_DIR, "build", "libcloudhsm-sim.so");
export const SOFTHSM_LIB = process.env.SOFTHSM_LIBRARY_PATH ?? "/usr/lib/softhsm/libsofthsm2.so";
const UTIL = process.env.SOFTHSM_UTIL ?? "softhsm2-util";
/** The crypto user of every test token (the sim accepts any name unless CLOUDHSM_SIM_USER is set). */
export const CU = "crypto_user";

/** Runs build.sh (idempotent: make rebuilds only what changed). */
export function buildSim(): { ok: boolean; output: string } {
  const r = spawnSync("bash", [join(SIM_DIR, "build.sh")], { encoding: "utf8" });
  return { ok: r.status === 0, output: `${r.stdout ?? ""}${r.stderr ?? ""}`.trim() };
}

function utilWorks(): boolean {
  try {
    execFileSync(UTIL, ["--version"], { stdio: "pipe" });
    return true;
  } catch {
    return false;
  }
}

/** Why the sim tests cannot run here, or undefined when they can. */
export function simMissing(): string | undefined {
  if (!existsSync(SOFTHSM_LIB))
    return `SoftHSM2 library not found at ${SOFTHSM_LIB} (run tooling/services/install.sh)`;
  if (!utilWorks()) return `${UTIL} is not on PATH (run tooling/services/install.sh)`;
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

function serials(conf: string): Map<string, string> {
  const out = execFileSync(UTIL, ["--show-slots"], {
    env: { ...process.env, SOFTHSM2_CONF: conf },
    encoding: "utf8",
  });
  const result = new Map<string, string>();
  let serial = "";
  for (const line of out.split("\n")) {
    const s = /^\s+Serial number:\s*(\S*)/.exec(line);
    if (s) serial = s[1] ?? "";
    const l = /^\s+Label:\s*(.*?)\s*$/.exec(line);
    if (l?.[1]) result.set(serial, l[1]);
  }
  return result;
}

/** A fresh token directory and config for this process; sets SOFTHSM2_CONF. */
export function startSoftHsm(): SoftHsm {
  const dir = mkdtempSync(join(tmpdir(), "bulwark-cloudhsm-"));
  const tokens = join(dir, "tokens");
  mkdirSync(tokens, { recursive: true, mode: 0o700 });
  const conf = join(dir, "softhsm2.conf");
  writeFileSync(
    conf,
    `directories.tokendir = ${tokens}\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n`,
  );
  process.env.SOFTHSM2_CONF = conf;
  return {
    dir,
    conf,
    createToken(label, password = `Pw${randomBytes(6).toString("hex")}`) {
      const before = new Set(serials(conf).keys());
      execFileSync(
        UTIL,
        ["--init-token", "--free", "--label", label, "--so-pin", `so-${password}`, "--pin", password],
        { env: { ...process.env, SOFTHSM2_CONF: conf }, stdio: "pipe" },
      );
      const serial = [...serials(conf).entries()].find(([s, l]) => l === label && !before.has(s))?.[0];
      if (serial === undefined) throw new Error(`softhsm2-util created no token labelled ${label}`);
      return { label, password, pin: `${CU}:${password}`, serial };
    },
    stop() {
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

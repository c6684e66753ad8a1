/**
 * SoftHSM2 for tests: a private token directory per test file, pointed to by SOFTHSM2_CONF.
 *
 * vitest runs every test file in its own forked process, and SoftHSM reads SOFTHSM2_CONF (and
 * scans its token directory) in C_Initialize — so `startSoftHsm()` must run, and create every
 * token the file needs, before the first seal is initialised. Slot ids change when a token is
 * initialised (SoftHSM assigns large random numbers): tokens are found by label.
 */
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export const SOFTHSM_LIB = process.env.SOFTHSM_LIBRARY_PATH ?? "/usr/lib/softhsm/libsofthsm2.so";
const UTIL = process.env.SOFTHSM_UTIL ?? "softhsm2-util";
/** softhsm2-util runs synchronously (vitest's timeout cannot fire meanwhile): bound it itself. */
const SYNC_CHILD = { timeout: 30_000, killSignal: "SIGKILL" } as const;

function utilWorks(): boolean {
  try {
    execFileSync(UTIL, ["--version"], { stdio: "pipe", ...SYNC_CHILD });
    return true;
  } catch {
    return false;
  }
}

/** Why SoftHSM tests cannot run here, or undefined when they can. */
export const softHsmMissing: string | undefined = !existsSync(SOFTHSM_LIB)
  ? `SoftHSM2 library not found at ${SOFTHSM_LIB} (run tooling/services/install.sh)`
  : !utilWorks()
    ? `${UTIL} is not on PATH (run tooling/services/install.sh)`
    : undefined;

/**
 * Local runs skip SoftHSM suites with a one-line reason; in CI (CI=true) a missing SoftHSM fails
 * the file instead, because CI counts skipped tests as failures and must never silently pass.
 */
export function softHsmAvailable(): boolean {
  if (softHsmMissing === undefined) return true;
  if (process.env.CI === "true") throw new Error(`SoftHSM is required in CI: ${softHsmMissing}`);
  console.warn(`skipping SoftHSM tests: ${softHsmMissing}`);
  return false;
}

export interface SoftHsmToken {
  label: string;
  pin: string;
  soPin: string;
  /** Slot id after initialisation (a large random number). */
  slot: bigint;
  serial: string;
}

export interface SoftHsm {
  dir: string;
  conf: string;
  lib: string;
  /** Initialises a token in the next free slot. Call before the first seal in this process inits. */
  createToken(label?: string, pin?: string): SoftHsmToken;
  /** Removes the token directory. */
  stop(): void;
}

/** Parses `softhsm2-util --show-slots`: slot id, label and serial of every initialised token. */
export function showSlots(conf: string): Array<{ slot: bigint; label: string; serial: string }> {
  const out = execFileSync(UTIL, ["--show-slots"], {
    env: { ...process.env, SOFTHSM2_CONF: conf },
    encoding: "utf8",
    ...SYNC_CHILD,
  });
  const result: Array<{ slot: bigint; label: string; serial: string }> = [];
  let current: { slot: bigint; label: string; serial: string } | undefined;
  for (const line of out.split("\n")) {
    const slot = /^Slot (\d+)/.exec(line);
    if (slot) {
      current = { slot: BigInt(slot[1] as string), label: "", serial: "" };
      result.push(current);
      continue;
    }
    const serial = /^\s+Serial number:\s*(\S*)/.exec(line);
    if (serial && current) current.serial = serial[1] ?? "";
    const label = /^\s+Label:\s*(.*?)\s*$/.exec(line);
    if (label && current) current.label = label[1] ?? "";
  }
  return result.filter((s) => s.label !== "");
}

/** A fresh token directory and config for this process; sets SOFTHSM2_CONF. */
export function startSoftHsm(): SoftHsm {
  const dir = mkdtempSync(join(tmpdir(), "bulwark-softhsm-"));
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
    lib: SOFTHSM_LIB,
    createToken(label = `t-${randomBytes(4).toString("hex")}`, pin = randomBytes(6).toString("hex")) {
      const soPin = randomBytes(6).toString("hex");
      const before = new Set(showSlots(conf).map((t) => t.serial));
      execFileSync(UTIL, ["--init-token", "--free", "--label", label, "--so-pin", soPin, "--pin", pin], {
        env: { ...process.env, SOFTHSM2_CONF: conf },
        stdio: "pipe",
        ...SYNC_CHILD,
      });
      // Slots are listed by (random) id, not creation order: the new token is the new serial.
      const created = showSlots(conf).find((t) => t.label === label && !before.has(t.serial));
      if (created === undefined) throw new Error(`softhsm2-util created no token labelled ${label}`);
      return { label, pin, soPin, slot: created.slot, serial: created.serial };
    },
    stop() {
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

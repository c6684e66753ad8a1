/**
 * Direct PKCS#11 access for tests (no seal in between): pkcs11js and graphene-pk11, resolved
 * through @bulwark/seal-pkcs11 (this package reaches PKCS#11 only through that package, so they
 * are not dependencies of its own). Used to make calls the seal never makes (read-only sessions,
 * multi-part GCM), to read key attributes, and to drive the sim's control channel.
 *
 * pkcs11js keeps one library state per process: loading the sim here shares the seal's
 * initialisation, sessions and login. Loading, sessions and object lookups are seal-pkcs11's
 * RawToken test helper; RawSim adds the sim's control channel.
 */
import { createRequire } from "node:module";
import { RawToken } from "../../seal-pkcs11/test/raw-token.js";

const require = createRequire(import.meta.url);
const fromPkcs11Seal = createRequire(require.resolve("@bulwark/seal-pkcs11/package.json"));

export interface Pkcs11Module {
  Pkcs11Error: new (...args: never[]) => Error & { code: number };
  [constant: string]: unknown;
}

export const pkcs11js = fromPkcs11Seal("pkcs11js") as Pkcs11Module;

/** graphene-pk11's Module, for its default (read-only) `Slot.open()`. */
export interface GrapheneModule {
  Module: {
    load(
      path: string,
      name?: string,
    ): {
      initialize(): void;
      finalize(): void;
      close(): void;
      getSlots(present: boolean): { length: number; items(i: number): { open(flags?: number): unknown } };
    };
  };
}
export const graphene = fromPkcs11Seal("graphene-pk11") as GrapheneModule;

export function k(name: string): number {
  const v = pkcs11js[name];
  if (typeof v !== "number") throw new Error(`pkcs11js has no constant ${name}`);
  return v;
}

export function rvOf(err: unknown): number | undefined {
  return err instanceof pkcs11js.Pkcs11Error ? err.code : undefined;
}

/** Runs `fn` and returns the CK_RV it failed with (fails the caller's expectation if it did not). */
export function ckrOf(fn: () => unknown): number | "no error" {
  try {
    fn();
  } catch (err) {
    return rvOf(err) ?? -1;
  }
  return "no error";
}

export class RawSim extends RawToken {
  /** A command on the sim's test control channel (C_SeedRandom "cloudhsm-sim:<cmd>"). */
  control(session: Buffer, command: string): void {
    this.lib.C_SeedRandom(session, Buffer.from(`cloudhsm-sim:${command}`));
  }
}

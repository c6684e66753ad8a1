/**
 * Direct PKCS#11 access for tests (no seal in between): pkcs11js and graphene-pk11, resolved
 * through @bulwark/seal-pkcs11 (this package reaches PKCS#11 only through that package, so they
 * are not dependencies of its own). Used to make calls the seal never makes (read-only sessions,
 * multi-part GCM), to read key attributes, and to drive the sim's control channel.
 *
 * pkcs11js keeps one library state per process: loading the sim here shares the seal's
 * initialisation, sessions and login.
 */
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const fromPkcs11Seal = createRequire(require.resolve("@bulwark/seal-pkcs11/package.json"));

export type Handle = Buffer;

/** The part of pkcs11js's `PKCS11` these tests use. */
export interface Pkcs11Lib {
  load(path: string): void;
  close(): void;
  C_Initialize(options?: { flags?: number }): void;
  C_Finalize(): void;
  C_GetSlotList(tokenPresent?: boolean): Handle[];
  C_GetTokenInfo(slot: Handle): { label: string; serialNumber: string };
  C_OpenSession(slot: Handle, flags: number): Handle;
  C_CloseSession(session: Handle): void;
  C_GetSessionInfo(session: Handle): { slotID: Handle; state: number; flags: number };
  C_Login(session: Handle, userType: number, pin?: string): void;
  C_FindObjectsInit(session: Handle, template: Array<{ type: number; value?: unknown }>): void;
  C_FindObjects(session: Handle, max: number): Handle[];
  C_FindObjectsFinal(session: Handle): void;
  C_GetAttributeValue(
    session: Handle,
    object: Handle,
    template: Array<{ type: number }>,
  ): Array<{ type: number; value?: unknown }>;
  C_EncryptInit(session: Handle, mechanism: { mechanism: number; parameter?: unknown }, key: Handle): void;
  C_EncryptUpdate(session: Handle, data: Buffer, out: Buffer): Buffer;
  C_Encrypt(session: Handle, data: Buffer, out: Buffer): Buffer;
  C_SeedRandom(session: Handle, buf: Buffer): void;
}

export interface Pkcs11Module {
  PKCS11: new () => Pkcs11Lib;
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

export class RawSim {
  readonly lib: Pkcs11Lib;
  readonly ownsInit: boolean;

  constructor(libPath: string) {
    this.lib = new pkcs11js.PKCS11();
    this.lib.load(libPath);
    let owns = true;
    try {
      this.lib.C_Initialize({ flags: k("CKF_OS_LOCKING_OK") });
    } catch (err) {
      if (rvOf(err) !== k("CKR_CRYPTOKI_ALREADY_INITIALIZED")) throw err;
      owns = false;
    }
    this.ownsInit = owns;
  }

  slotOf(label: string): Handle {
    for (const slot of this.lib.C_GetSlotList(true)) {
      if (this.lib.C_GetTokenInfo(slot).label.trim() === label) return slot;
    }
    throw new Error(`no token labelled ${label}`);
  }

  /** A logged-in read-write session (CKR_USER_ALREADY_LOGGED_IN is fine: login is per token). */
  session(label: string, pin: string): Handle {
    const s = this.lib.C_OpenSession(this.slotOf(label), k("CKF_SERIAL_SESSION") | k("CKF_RW_SESSION"));
    try {
      this.lib.C_Login(s, k("CKU_USER"), pin);
    } catch (err) {
      if (rvOf(err) !== k("CKR_USER_ALREADY_LOGGED_IN")) throw err;
    }
    return s;
  }

  /** A command on the sim's test control channel (C_SeedRandom "cloudhsm-sim:<cmd>"). */
  control(session: Handle, command: string): void {
    this.lib.C_SeedRandom(session, Buffer.from(`cloudhsm-sim:${command}`));
  }

  find(session: Handle, template: Array<{ type: number; value?: unknown }>): Handle[] {
    this.lib.C_FindObjectsInit(session, template);
    try {
      return this.lib.C_FindObjects(session, 100);
    } finally {
      this.lib.C_FindObjectsFinal(session);
    }
  }

  attributes(session: Handle, object: Handle, types: number[]): Map<number, unknown> {
    const out = new Map<number, unknown>();
    for (const a of this.lib.C_GetAttributeValue(
      session,
      object,
      types.map((type) => ({ type })),
    )) {
      out.set(a.type, a.value);
    }
    return out;
  }

  finalize(): void {
    if (this.ownsInit) {
      try {
        this.lib.C_Finalize();
      } catch {
        // Already finalised.
      }
    }
    this.lib.close();
  }
}

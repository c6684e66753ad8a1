import { createHash } from "node:crypto";
import { realpathSync, statSync } from "node:fs";
import { isAbsolute } from "node:path";
import { SealConfigError, SealUnavailableError } from "@bulwark/seal";
import { Module } from "graphene-pk11";
import pkcs11js from "pkcs11js";
import { CKR_CRYPTOKI_ALREADY_INITIALIZED, rvOf, toCallError } from "./errors.js";

/** A loaded, initialised PKCS#11 library shared by every seal of this process that uses it. */
export interface LoadedModule {
  /** Symlink-resolved absolute path: the registry key. */
  readonly path: string;
  readonly module: Module;
  readonly lib: pkcs11js.PKCS11;
  /** False when someone else in the process had already called C_Initialize: we never finalize it. */
  readonly ownsInit: boolean;
  /** Library description from C_GetInfo (for health and errors). */
  readonly description: string;
}

interface Entry extends LoadedModule {
  refs: number;
  /**
   * Per token (slot id): SHA-256 of the PIN this process logged in with. Login is per token per
   * application, so a second seal's C_Login answers CKR_USER_ALREADY_LOGGED_IN without checking
   * its PIN; comparing digests stops a wrong PIN from riding on another seal's login.
   */
  loginDigests: Map<string, Buffer>;
}

const registry = new Map<string, Entry>();
/**
 * PIN digests a token rejected, by library path: never sent again by this process (each try burns
 * a login attempt, and the token locks after a few). Kept when the library is unloaded, so a
 * retried init or a new seal with the same wrong PIN does not try again.
 */
const rejectedPins = new Map<string, Set<string>>();

function resolveLibPath(lib: string): string {
  // Bare names would go through the dynamic loader's search path: refuse, as OpenBao does.
  if (!isAbsolute(lib)) {
    throw new SealConfigError(
      "lib",
      `${JSON.stringify(lib)} is not an absolute path; give the full path of the PKCS#11 library (SoftHSM: /usr/lib/softhsm/libsofthsm2.so)`,
    );
  }
  let real: string;
  try {
    real = realpathSync(lib);
  } catch (cause) {
    throw new SealConfigError(
      "lib",
      `no PKCS#11 library at ${lib}: install the HSM vendor's library or fix the path (SoftHSM: apt-get install softhsm2 → /usr/lib/softhsm/libsofthsm2.so)`,
      { cause },
    );
  }
  if (!statSync(real).isFile()) {
    throw new SealConfigError("lib", `${lib} is not a file; give the path of the PKCS#11 library (.so)`);
  }
  return real;
}

/**
 * Loads (once per process) and initialises the library with CKF_OS_LOCKING_OK — the async calls
 * run on libuv's thread pool, so the library must do its own locking. Reference-counted: pair
 * every call with {@link releaseModule}.
 */
export function acquireModule(lib: string): LoadedModule {
  const path = resolveLibPath(lib);
  const existing = registry.get(path);
  if (existing !== undefined) {
    existing.refs++;
    return existing;
  }
  let module: Module;
  try {
    module = Module.load(path, path);
  } catch (cause) {
    const why = cause instanceof Error ? cause.message : String(cause);
    throw new SealConfigError(
      "lib",
      `cannot load ${lib} as a PKCS#11 library (${why}); check that it is the vendor's PKCS#11 .so built for this platform`,
      { cause },
    );
  }
  let ownsInit = true;
  try {
    module.lib.C_Initialize({ flags: pkcs11js.CKF_OS_LOCKING_OK });
  } catch (err) {
    if (rvOf(err) === CKR_CRYPTOKI_ALREADY_INITIALIZED) {
      // Another component of this process initialised it: adopt, never finalize.
      ownsInit = false;
    } else {
      try {
        module.close();
      } catch {
        // The library failed to initialise; unloading is best effort.
      }
      const cause = toCallError("C_Initialize", err);
      // The library loaded but cannot start: its own configuration, or the HSM it talks to.
      throw new SealUnavailableError(
        `the PKCS#11 library ${lib} failed to initialise (${cause.message}); check the library's own configuration (SoftHSM: SOFTHSM2_CONF and its token directory; CloudHSM: configure-pkcs11) and that the HSM is reachable`,
        { cause },
      );
    }
  }
  let description = "";
  try {
    const info = module.lib.C_GetInfo();
    description = `${info.manufacturerID.trim()} ${info.libraryDescription.trim()} ${info.libraryVersion.major}.${info.libraryVersion.minor}`;
  } catch {
    // Informational only.
  }
  const entry: Entry = {
    path,
    module,
    lib: module.lib,
    ownsInit,
    description,
    refs: 1,
    loginDigests: new Map(),
  };
  registry.set(path, entry);
  return entry;
}

/** Drops one reference; the last one finalizes (only if we initialised) and unloads the library. */
export function releaseModule(m: LoadedModule): void {
  const entry = registry.get(m.path);
  if (entry === undefined || entry !== m) return;
  entry.refs--;
  if (entry.refs > 0) return;
  registry.delete(m.path);
  try {
    if (entry.ownsInit) entry.lib.C_Finalize();
  } catch {
    // Sessions are already closed; a finalize failure leaves nothing for us to clean up.
  }
  try {
    entry.module.close();
  } catch {
    // Unloading is best effort (dlclose only drops a reference).
  }
}

function pinDigest(slotKey: string, pin: string): Buffer {
  return createHash("sha256").update(slotKey).update("\0").update(pin).digest();
}

/** Has this process seen the token reject exactly this PIN? */
export function pinWasRejected(m: LoadedModule, slotKey: string, pin: string): boolean {
  return rejectedPins.get(m.path)?.has(pinDigest(slotKey, pin).toString("hex")) ?? false;
}

export function notePinRejected(m: LoadedModule, slotKey: string, pin: string): void {
  let set = rejectedPins.get(m.path);
  if (set === undefined) {
    set = new Set();
    rejectedPins.set(m.path, set);
  }
  set.add(pinDigest(slotKey, pin).toString("hex"));
}

/**
 * Records a successful login (`fresh`) or checks a PIN against the login another seal made
 * (`already` = CKR_USER_ALREADY_LOGGED_IN). Returns false when the PINs differ.
 */
export function checkLoginPin(m: LoadedModule, slotKey: string, pin: string, fresh: boolean): boolean {
  const entry = registry.get(m.path);
  if (entry === undefined) return true;
  const digest = pinDigest(slotKey, pin);
  const known = entry.loginDigests.get(slotKey);
  if (fresh || known === undefined) {
    // After a fresh login, or when someone outside the registry logged in: remember ours.
    entry.loginDigests.set(slotKey, digest);
    return true;
  }
  return known.equals(digest);
}

/** Number of live registry entries (tests check that finalize released everything). */
export function loadedModuleCount(): number {
  return registry.size;
}

import { SealUnavailableError } from "@bulwark/seal";
import type pkcs11js from "pkcs11js";
import type { Pkcs11TraceEvent, ResolvedPkcs11Config } from "./config.js";
import { toCallError } from "./errors.js";
import type { LoadedModule } from "./module-registry.js";

/**
 * PKCS#11 call wrappers: every failure names its call and CK_RV; every call can be traced. Holds
 * the loaded library of one seal (set by init, cleared by finalize).
 */
export class Pkcs11Calls {
  readonly config: ResolvedPkcs11Config;
  readonly #type: () => string;
  module: LoadedModule | undefined;
  /** Buffers handed to in-flight async calls: the native side reads/writes them until they settle. */
  readonly #pinned = new Set<unknown[]>();

  /** `type` is read when a message is built: profiles (subclasses) set theirs after construction. */
  constructor(config: ResolvedPkcs11Config, type: () => string) {
    this.config = config;
    this.#type = type;
  }

  /** The seal's type, for messages ("pkcs11", or a profile's). */
  get type(): string {
    return this.#type();
  }

  lib(): pkcs11js.PKCS11 {
    return this.loaded().lib;
  }

  loaded(): LoadedModule {
    const m = this.module;
    if (m === undefined)
      throw new SealUnavailableError(`the ${this.type} seal has no PKCS#11 library loaded`);
    return m;
  }

  #trace(call: string, rv: number, started: number): void {
    const trace = this.config.trace;
    if (trace === undefined) return;
    const event: Pkcs11TraceEvent = { call, rv, ms: performance.now() - started };
    try {
      trace(event);
    } catch {
      // A broken observer must not break the seal.
    }
  }

  call<T>(call: string, fn: () => T): T {
    const started = this.config.trace === undefined ? 0 : performance.now();
    try {
      const result = fn();
      this.#trace(call, 0, started);
      return result;
    } catch (err) {
      const e = toCallError(call, err);
      this.#trace(call, e.rv ?? -1, started);
      throw e;
    }
  }

  async callAsync<T>(call: string, keep: unknown[], fn: () => Promise<T>): Promise<T> {
    const started = this.config.trace === undefined ? 0 : performance.now();
    // pkcs11js passes Buffers to the worker thread without copying (pkcs11js #121): they must stay
    // referenced, unmodified, until the call settles.
    this.#pinned.add(keep);
    try {
      const result = await fn();
      this.#trace(call, 0, started);
      return result;
    } catch (err) {
      const e = toCallError(call, err);
      this.#trace(call, e.rv ?? -1, started);
      throw e;
    } finally {
      this.#pinned.delete(keep);
    }
  }
}

/**
 * The storage conformance suite. Every built-in backend runs it, and so should every plugin:
 *
 *   runBackendConformance("MyBackend", async () => ({ backend: new MyBackend(), cleanup }), { ... });
 *
 * It registers one vitest `describe()` block; each test gets a fresh, empty backend from the
 * factory and calls `cleanup` afterwards. The sections live in ./conformance/, one module each;
 * this file keeps the public types, the per-test setup and cleanup, and their order.
 */
import { afterEach, beforeEach, describe } from "vitest";
import { registerBasicTests, registerProbeTests } from "./conformance/basic.js";
import { registerConcurrencyTests } from "./conformance/concurrency.js";
import { registerHALockTests } from "./conformance/ha-lock.js";
import { registerKeyValidationTests } from "./conformance/keys.js";
import { registerListTests } from "./conformance/list.js";
import type { ConformanceContext } from "./conformance/shared.js";
import { registerTransactionTests } from "./conformance/transactions.js";
import { registerValueTests } from "./conformance/values.js";
import type { Backend, HABackend, Lock } from "./types.js";

/** What the suite needs to exercise a backend's HA lock. */
export interface HAConformanceTarget {
  /** The HA backend under test (often the backend itself). */
  backend: HABackend;
  /** A second node on the same storage, for the two-node tests. Default: `backend` again. */
  peer?: HABackend;
  /**
   * Takes the lock on `key` away from its current holder, as a lost session would (for Consul:
   * destroy the holder's session). Enables the forced-loss tests.
   */
  breakLock?: (key: string) => Promise<void>;
  /** How long a lock hand-over or loss may take before the test fails, in ms. Default 5000. */
  handoverTimeoutMs?: number;
}

export interface BackendConformanceOptions<B extends Backend = Backend> {
  /** The backend's value size limit in bytes. Enables the "limit passes, limit + 1 fails" tests. */
  maxValueSize?: number;
  /**
   * How a zero-length value reads back: `"stored"` (as zero bytes; the default) or `"missing"`
   * (`get` returns `undefined`, as with Vault's file backend, where a zero-length file is missing).
   */
  emptyValue?: "stored" | "missing";
  /**
   * `true`: the backend must be transactional and the transaction tests run; `false`: they do not
   * run. Default: they run when `isTransactional(backend)`, and are reported skipped otherwise.
   */
  transactional?: boolean;
  /**
   * `true`: the backend must have `probe()` and the probe tests run; `false`: they do not run.
   * Default: they run when the backend has `probe()`, and are reported skipped otherwise.
   */
  probe?: boolean;
  /** The HA lock to test, or `undefined` to skip the HA tests (the default). */
  ha?: (backend: B) => HAConformanceTarget | undefined;
  /** Size of the random binary round trip. Default: `maxValueSize` capped at 1 MiB. */
  largeValueSize?: number;
  /** Number of concurrent operations in the concurrency tests. Default 200. */
  concurrency?: number;
  /** Per-test timeout in ms; raise it for backends behind a network. Default 30 000. */
  testTimeoutMs?: number;
}

export interface BackendUnderTest<B extends Backend = Backend> {
  /** A fresh backend with no keys in it. */
  backend: B;
  /** Called after each test, also when it failed. */
  cleanup?: () => Promise<void>;
}

const MIB = 1024 * 1024;

/**
 * Registers a `describe(name)` block that checks `factory`'s backends against the `Backend`
 * contract (and the transaction and HA-lock contracts where they apply). See the package README
 * for what each option changes.
 */
export function runBackendConformance<B extends Backend>(
  name: string,
  factory: () => Promise<BackendUnderTest<B>>,
  options: BackendConformanceOptions<B> = {},
): void {
  const maxValueSize = options.maxValueSize;
  const timeout = options.testTimeoutMs ?? 30_000;

  describe(name, { timeout }, () => {
    let current: BackendUnderTest<B> | undefined;
    let locks: Lock[] = [];
    let waits = new AbortController();

    beforeEach(async () => {
      current = await factory();
      locks = [];
      waits = new AbortController();
    });

    afterEach(async () => {
      // Abandon waits and free locks a failed test left behind, so cleanup cannot hang.
      waits.abort();
      await Promise.allSettled(locks.map((l) => l.release()));
      const c = current;
      current = undefined;
      await c?.cleanup?.();
    });

    const backend = (): B => {
      if (current === undefined) throw new Error("conformance: the factory did not produce a backend");
      return current.backend;
    };

    const kit: ConformanceContext = {
      backend,
      options: {
        emptyValue: options.emptyValue ?? "stored",
        concurrency: options.concurrency ?? 200,
        maxValueSize,
        largeValueSize: options.largeValueSize ?? Math.min(maxValueSize ?? MIB, MIB),
        probe: options.probe,
        transactional: options.transactional,
      },
    };

    // The order below is the order of the tests in every backend's report: keep it.
    registerBasicTests(kit);
    if (options.probe !== false) registerProbeTests(kit);
    registerValueTests(kit);
    registerListTests(kit);
    registerKeyValidationTests(kit);
    registerConcurrencyTests(kit);
    // Not registered at all for a backend declared non-transactional (an empty describe fails in vitest).
    if (options.transactional !== false) registerTransactionTests(kit);
    const ha = options.ha;
    if (ha !== undefined) {
      registerHALockTests({
        target: () => ha(backend()),
        track: (lock) => {
          locks.push(lock);
        },
        waits: () => waits.signal,
      });
    }
  });
}

/**
 * What the conformance sections share: the narrow context each one is registered with, and the
 * assertion and timing helpers. The sections are assembled by `runBackendConformance` (../testing.ts).
 */
import { expect } from "vitest";
import type { StorageErrorCode } from "../errors.js";
import type { Backend } from "../types.js";

/** The suite's options with their defaults applied, as the sections read them. */
export interface ResolvedConformanceOptions {
  emptyValue: "stored" | "missing";
  concurrency: number;
  maxValueSize: number | undefined;
  largeValueSize: number;
  /** As given: `true` requires `probe()`, `undefined` tests it when present. */
  probe: boolean | undefined;
  /** As given: `true` requires transactions, `undefined` tests them when present. */
  transactional: boolean | undefined;
}

/** What every section gets: the current test's backend, and the options. */
export interface ConformanceContext {
  /** The backend of the running test (a fresh one per test, made in beforeEach). */
  backend: () => Backend;
  options: ResolvedConformanceOptions;
}

export const enc = (s: string): Uint8Array => new TextEncoder().encode(s);

/** Deterministic pseudo-random bytes (xorshift32), so a failure reproduces. */
export function pseudoRandomBytes(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  let x = seed >>> 0 || 0x9e3779b9;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    out[i] = x & 0xff;
  }
  return out;
}

/** Byte equality with a short message (vitest's diff of a 1 MiB array is unreadable). */
export function expectBytes(actual: Uint8Array | undefined, expected: Uint8Array, what: string): void {
  expect(actual, `${what}: value missing`).toBeDefined();
  const a = actual as Uint8Array;
  expect(a, `${what}: value is not a Uint8Array`).toBeInstanceOf(Uint8Array);
  expect(a.length, `${what}: length`).toBe(expected.length);
  let first = -1;
  for (let i = 0; i < a.length; i++) {
    if (a[i] !== expected[i]) {
      first = i;
      break;
    }
  }
  expect(first, `${what}: first differing byte index`).toBe(-1);
}

/** What `p` rejects with; throws when it resolves. */
export async function rejection(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  throw new Error("expected the operation to fail, but it succeeded");
}

/**
 * Checks a storage error by `name` and `code`, not `instanceof`: a plugin may be built against
 * another copy of `@bulwark/storage` (a nested install, a bundled build), whose classes differ.
 */
export function expectStorageError(err: unknown, name: string, code: StorageErrorCode, what?: string): void {
  expect(err, what).toBeInstanceOf(Error);
  expect(err, what).toMatchObject({ name, code });
}

/** The `code` property of a thrown value, `undefined` when it has none (or is not an object). */
export function codeOf(err: unknown): unknown {
  return typeof err === "object" && err !== null && "code" in err ? err.code : undefined;
}

/** Whether `p` is still unsettled after `ms`. */
export async function stillPending(p: Promise<unknown>, ms: number): Promise<boolean> {
  const pending = Symbol("pending");
  let timer: ReturnType<typeof setTimeout> | undefined;
  const r = await Promise.race([
    p.then(
      () => "settled",
      () => "settled",
    ),
    new Promise<symbol>((res) => {
      timer = setTimeout(() => res(pending), ms);
    }),
  ]);
  clearTimeout(timer);
  return r === pending;
}

/** `p`, or a rejection naming `what` when it takes longer than `ms`. */
export async function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, rej) => {
    timer = setTimeout(() => rej(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Resolves when `signal` aborts (at once if it already has). */
export function aborted(signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((res) => signal.addEventListener("abort", () => res(), { once: true }));
}

/** Every key under `prefix`, depth first, in list order. */
export async function allKeys(b: Backend, prefix = ""): Promise<string[]> {
  const out: string[] = [];
  for (const name of await b.list(prefix)) {
    if (name.endsWith("/")) out.push(...(await allKeys(b, prefix + name)));
    else out.push(prefix + name);
  }
  return out;
}

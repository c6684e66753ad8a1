/**
 * Shared pieces of the seal conformance suite (testing.ts, testing-abort.ts): what one registered
 * case needs, and byte/assertion helpers.
 */
import { randomBytes } from "node:crypto";
import { expect } from "vitest";
import { type BlobInfo, decodeBlobInfo, encodeBlobInfo } from "./blob-info.js";
import { SealError } from "./errors.js";
import type { Seal } from "./seal.js";
import type { SealProviderHooks } from "./testing.js";

/** What every group of conformance cases gets from `runSealConformance`. */
export interface ConformanceSuite {
  /** Runs `fn` with a fresh seal, initialised unless told otherwise; always finalizes and cleans up. */
  withSeal(
    fn: (seal: Seal, provider: SealProviderHooks | undefined) => Promise<void>,
    init?: boolean,
  ): Promise<void>;
  timeout: number;
  maxPlaintext: number;
  concurrency: number;
  /** Round-trip sizes, ascending. */
  sizes: number[];
}

export const KiB = 1024;
export const MiB = 1024 * KiB;

export function bytes(n: number): Uint8Array {
  return new Uint8Array(randomBytes(n));
}

export function utf8(s: string): Uint8Array {
  return new TextEncoder().encode(s);
}

/** Byte equality that does not care whether either side is a Buffer or a plain Uint8Array. */
export function expectBytes(actual: Uint8Array, expected: Uint8Array, what?: string): void {
  expect(actual, what).toBeInstanceOf(Uint8Array);
  expect(Buffer.from(actual).equals(Buffer.from(expected)), what ?? "bytes differ").toBe(true);
}

export function cloneBlob(blob: BlobInfo): BlobInfo {
  return decodeBlobInfo(encodeBlobInfo(blob));
}

/** Expects `promise` to reject with a SealError, and returns it (a resolved value fails the test). */
export async function expectSealError(promise: Promise<unknown>, what: string): Promise<SealError> {
  let outcome: { value: unknown } | { error: unknown };
  try {
    outcome = { value: await promise };
  } catch (error) {
    outcome = { error };
  }
  if ("value" in outcome) {
    expect.fail(
      `${what}: expected a SealError, but the operation succeeded (a wrong plaintext is never acceptable)`,
    );
  }
  expect(outcome.error, what).toBeInstanceOf(SealError);
  return outcome.error as SealError;
}

/** What `promise` settles to, without throwing: for asserting on a rejection's exact value. */
export async function outcomeOf<T>(promise: Promise<T>): Promise<{ value: T } | { error: unknown }> {
  try {
    return { value: await promise };
  } catch (error) {
    return { error };
  }
}

export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

import { SealError } from "@bulwark/seal";
import { expect } from "vitest";

/** What `p` rejects with, asserted to be a `SealError`. */
export async function rejection(p: Promise<unknown>): Promise<SealError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err, "expected a rejection").toBeInstanceOf(SealError);
  return err as SealError;
}

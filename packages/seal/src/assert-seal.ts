import type { Seal } from "./seal.js";

/** Methods every seal has, with the signature shown in errors. */
const SEAL_METHODS: ReadonlyArray<readonly [keyof Seal, string]> = [
  ["init", "init(signal?)"],
  ["finalize", "finalize()"],
  ["keyId", "keyId()"],
  ["encrypt", "encrypt(plaintext, opts?)"],
  ["decrypt", "decrypt(blob, opts?)"],
];

function describe(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "an array";
  return typeof v;
}

/**
 * Checks that `obj` has the shape of `@bulwark/seal`'s `Seal` (the structural check a plugin gets
 * at load; behaviour is what the seal conformance suite proves). Throws a `TypeError` that names
 * `name` and the first thing missing.
 */
export function assertSeal(obj: unknown, name: string): asserts obj is Seal {
  if (typeof obj !== "object" || obj === null) {
    throw new TypeError(`${name} is not a seal: expected an object implementing Seal, got ${describe(obj)}`);
  }
  const rec = obj as Record<string, unknown>;
  if (typeof rec.type !== "string" || rec.type.trim() === "") {
    throw new TypeError(
      `${name} is not a seal: \`type\` must be a non-empty string (found ${describe(rec.type)})`,
    );
  }
  for (const flag of ["autoUnseal", "supportsSealWrap"] as const) {
    if (typeof rec[flag] !== "boolean") {
      throw new TypeError(
        `${name} is not a seal: \`${flag}\` must be a boolean (found ${describe(rec[flag])})`,
      );
    }
  }
  for (const [method, signature] of SEAL_METHODS) {
    if (typeof rec[method] !== "function") {
      throw new TypeError(
        `${name} is not a seal: method ${signature} is missing (found ${describe(rec[method])})`,
      );
    }
  }
  if (rec.health !== undefined && typeof rec.health !== "function") {
    throw new TypeError(
      `${name}: health must be a method health() when present, found ${describe(rec.health)}`,
    );
  }
}

/**
 * One coded-error base for every Bulwark package.
 *
 * Every error a Bulwark package throws on purpose is a `CodedError`: it carries a `domain` (which
 * package family reported it: "crypto", "storage", "barrier", "seal", "core", "settings", "vault",
 * …) and a `code` that is stable within that domain and safe to switch on. Callers map errors by
 * (domain, code), never by class name or message text.
 *
 * `instanceof` works across copies of a package: a seal provider may be resolved against another
 * copy of `@bulwark/seal` than the code that catches its errors (the ESM and CJS builds of one
 * version, two installed versions, a bundled `testing` entry). Plain `instanceof` would then say
 * "no". Every `CodedError` therefore records the kinds of its class chain under a registry symbol
 * (`Symbol.for`, shared by every copy in the process), and `instanceof` falls back to that list.
 * A class's `kind` must be unique among Bulwark's error classes (by convention
 * "<package>:<ClassName>").
 */

const KINDS = Symbol.for("@bulwark/errors:kinds");

function kindsOf(ctor: unknown): string[] {
  const kinds: string[] = [];
  let c: unknown = ctor;
  while (typeof c === "function") {
    const kind: unknown = Object.hasOwn(c, "kind") ? (c as { kind?: unknown }).kind : undefined;
    if (typeof kind === "string") kinds.push(kind);
    c = Object.getPrototypeOf(c);
  }
  return kinds;
}

/** The kinds recorded on an error by any copy of this package (empty for anything else). */
export function errorKinds(value: unknown): readonly string[] {
  if (typeof value !== "object" || value === null) return [];
  const kinds = (value as { [KINDS]?: unknown })[KINDS];
  return Array.isArray(kinds) ? kinds.filter((k): k is string => typeof k === "string") : [];
}

export interface CodedErrorOptions {
  cause?: unknown;
}

/** Base class of every Bulwark error; `domain` + `code` identify the failure. */
export class CodedError<Code extends string = string> extends Error {
  /** Identifies the class across copies of its package; every subclass sets its own. */
  static readonly kind: string = "@bulwark/errors:CodedError";

  static override [Symbol.hasInstance](value: unknown): boolean {
    // biome-ignore lint/complexity/noThisInStatic: `this` is the class right of `instanceof` (usually a subclass)
    if (Function.prototype[Symbol.hasInstance].call(this, value)) return true;
    // biome-ignore lint/complexity/noThisInStatic: as above
    return errorKinds(value).includes(this.kind);
  }

  override name = "CodedError";
  /** The package family that reported the error ("seal", "storage", …). */
  readonly domain: string;
  /** Stable within `domain`; safe to switch on. */
  readonly code: Code;

  constructor(domain: string, code: Code, message: string, options?: CodedErrorOptions) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.domain = domain;
    this.code = code;
    Object.defineProperty(this, KINDS, { value: kindsOf(new.target), enumerable: false });
  }
}

/** True for a `CodedError` from any copy of this package. */
export function isCodedError(value: unknown): value is CodedError {
  return value instanceof CodedError;
}

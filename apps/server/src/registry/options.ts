import { describeBlock, parseBoolean, parseInteger } from "../config/load.js";
import type { ProviderBlock } from "../contracts.js";
import { ProviderError } from "./errors.js";

function describe(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "a list";
  if (typeof v === "string") return `string ${JSON.stringify(v)}`;
  if (typeof v === "object") return "an object";
  return `${typeof v} ${String(v)}`;
}

/**
 * Reads a built-in provider's settings from its block: typed getters that report the setting's
 * file position, Vault's weak typing (`"true"`, `1`), and a final check for unknown settings.
 */
export class BlockOptions {
  readonly #kind: "storage" | "seal";
  readonly #block: ProviderBlock;
  readonly #used = new Set<string>();
  readonly warnings: string[] = [];

  constructor(kind: "storage" | "seal", block: ProviderBlock) {
    this.#kind = kind;
    this.#block = block;
  }

  /** A `ProviderError` about `field`, prefixed with the block and the field's position. */
  error(field: string, message: string, cause?: unknown): ProviderError {
    return new ProviderError(
      "invalid_options",
      `${describeBlock(this.#kind, this.#block, field)}: \`${field}\` ${message}`,
      {
        field,
        cause,
      },
    );
  }

  #raw(key: string): unknown {
    this.#used.add(key);
    return Object.hasOwn(this.#block.options, key) ? this.#block.options[key] : undefined;
  }

  string(key: string, required: true, hint?: string): string;
  string(key: string, required?: false, hint?: string): string | undefined;
  string(key: string, required = false, hint = ""): string | undefined {
    const v = this.#raw(key);
    if (v === undefined || v === "") {
      if (required) throw this.error(key, `must be set${hint ? `: ${hint}` : ""}`);
      return undefined;
    }
    if (typeof v !== "string") throw this.error(key, `must be a string, found ${describe(v)}`);
    return v;
  }

  boolean(key: string): boolean | undefined {
    const v = this.#raw(key);
    if (v === undefined) return undefined;
    const b = parseBoolean(v);
    if (b === undefined) throw this.error(key, `must be true or false, found ${describe(v)}`);
    return b;
  }

  integer(key: string, min = Number.MIN_SAFE_INTEGER): number | undefined {
    const v = this.#raw(key);
    if (v === undefined) return undefined;
    const n = parseInteger(v);
    if (n === undefined) throw this.error(key, `must be an integer, found ${describe(v)}`);
    if (n < min) throw this.error(key, `must be at least ${min}, found ${n}`);
    return n;
  }

  /** Vault settings accepted without effect: each one present becomes a warning. */
  ignore(keys: readonly string[], why: string): void {
    for (const key of keys) {
      if (this.#raw(key) !== undefined) {
        this.warnings.push(
          `${describeBlock(this.#kind, this.#block, key)}: \`${key}\` has no effect in Bulwark (${why})`,
        );
      }
    }
  }

  /** Throws for the first setting no getter asked for, listing the known ones. */
  finish(): void {
    for (const key of Object.keys(this.#block.options)) {
      if (key === "plugin" || this.#used.has(key)) continue;
      const known = [...this.#used].sort().join(", ");
      throw this.error(
        key,
        `is not a ${this.#kind} "${this.#block.type}" setting${known ? ` (known: ${known})` : " (this type takes no settings)"}`,
      );
    }
  }
}

import type { ProviderSettings } from "@bulwark/storage";
import { describeBlock, parseBoolean, parseInteger, suggest } from "../config/source.js";
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
 * One problem of a provider block, found by a config check: the setting to blame (when one is)
 * and the text after the block's name, which names the setting and says how to fix it.
 */
export interface BlockIssue {
  field?: string;
  message: string;
}

/**
 * The settings reader the registry gives every provider module (`context.settings`, the
 * `ProviderSettings` of `@bulwark/storage` and `@bulwark/seal`): typed getters that report the setting's
 * file position, Vault's weak typing (`"true"`, `1`), and a final check for unknown settings.
 *
 * Two modes: by default the first problem throws a {@link ProviderError} (building a provider);
 * {@link BlockOptions.collecting} records every problem in `issues` instead (checking a config
 * before anything is built), and the getters then return `undefined` for a bad or missing setting
 * — their values are only meaningful when `issues` stays empty.
 */
export class BlockOptions implements ProviderSettings {
  readonly #kind: "storage" | "seal";
  readonly #block: ProviderBlock;
  readonly #used = new Set<string>();
  readonly #collect: boolean;
  readonly warnings: string[] = [];
  /** Problems recorded in collecting mode, in the order the settings were read. */
  readonly issues: BlockIssue[] = [];

  constructor(kind: "storage" | "seal", block: ProviderBlock, options: { collect?: boolean } = {}) {
    this.#kind = kind;
    this.#block = block;
    this.#collect = options.collect === true;
  }

  /** Options that record every problem instead of throwing at the first. */
  static collecting(kind: "storage" | "seal", block: ProviderBlock): BlockOptions {
    return new BlockOptions(kind, block, { collect: true });
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

  /** Reports a problem with `field`: throws it, or records it when collecting. */
  problem(field: string, message: string): void {
    if (!this.#collect) throw this.error(field, message);
    this.issues.push({ field, message: `\`${field}\` ${message}` });
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
      if (required) this.problem(key, `must be set${hint ? `: ${hint}` : ""}`);
      return undefined;
    }
    if (typeof v !== "string") {
      this.problem(key, `must be a string, found ${describe(v)}`);
      return undefined;
    }
    return v;
  }

  boolean(key: string): boolean | undefined {
    const v = this.#raw(key);
    if (v === undefined) return undefined;
    const b = parseBoolean(v);
    if (b === undefined) this.problem(key, `must be true or false, found ${describe(v)}`);
    return b;
  }

  integer(key: string, min = Number.MIN_SAFE_INTEGER): number | undefined {
    const v = this.#raw(key);
    if (v === undefined) return undefined;
    const n = parseInteger(v);
    if (n === undefined) {
      this.problem(key, `must be an integer, found ${describe(v)}`);
      return undefined;
    }
    if (n < min) {
      this.problem(key, `must be at least ${min}, found ${n}`);
      return undefined;
    }
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

  /**
   * Reports every setting no getter asked for, with the closest known one ("did you mean") or
   * the list of known ones; throws at the first unless collecting.
   */
  finish(): void {
    for (const key of Object.keys(this.#block.options)) {
      if (key === "plugin" || this.#used.has(key)) continue;
      const known = [...this.#used].sort();
      const hint = suggest(key, known);
      this.problem(
        key,
        `is not a ${this.#kind} "${this.#block.type}" setting${known.length > 0 ? ` (known: ${known.join(", ")})` : " (this type takes no settings)"}${hint}`,
      );
    }
  }
}

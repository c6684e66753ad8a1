/**
 * Where a loaded block or setting was written, and the small helpers that the config loader and
 * the provider registry share (weak value decoding, "did you mean"). Kept apart from `load.ts` so
 * the registry can use them while the loader uses the registry's block checks, without an import
 * cycle.
 *
 * Position lookup, for anyone reporting a problem with a loaded {@link ServerConfig}:
 *
 * - `sourceOf(config.storage, "path")` → `{ filename, line, column }` of `path = …` in the
 *   storage block, or of the block itself when the setting is not written there (a default or an
 *   environment variable), or `undefined` when the block did not come from a file (`-dev`,
 *   `BULWARK_SEAL_TYPE`). Works for `config.storage`, each of `config.seals` and each of
 *   `config.listeners` (e.g. `sourceOf(listener, "address")`).
 * - `describeBlock("listener", listener, "address")` → `listener "tcp" (bulwark.hcl:7:3)`: how
 *   messages name a block and where it (or the setting) is written.
 */

import type { HclPosition } from "@bulwark/hcl";
import { tryParseBool } from "@bulwark/settings";
import type { ListenerConfig, ProviderBlock } from "../contracts.js";

/** A place in a config file: 1-based line and column. */
export interface SourcePosition {
  filename: string;
  line: number;
  column: number;
}

/** Where a block came from, so errors can point at the file and line. */
export interface BlockSource extends SourcePosition {
  /** Position of each setting (key) inside the block, as written. */
  keys: ReadonlyMap<string, HclPosition>;
}

/** The blocks whose position can be looked up: provider blocks (storage, seals) and listeners. */
export type SourcedBlock = ProviderBlock | ListenerConfig;

// Provider blocks are keyed by their `options` object (the block object itself is copied when
// the environment replaces a seal); listeners by the ListenerConfig object.
const SOURCES = new WeakMap<object, BlockSource>();

function sourceKey(block: SourcedBlock): object {
  return "options" in block ? block.options : block;
}

/** Records where a block was written (the loader calls this for every block it reads). */
export function rememberSource(block: SourcedBlock, source: BlockSource): void {
  SOURCES.set(sourceKey(block), source);
}

/** The file position of a block (with its settings' positions), if it came from a file. */
export function blockSource(block: SourcedBlock): BlockSource | undefined {
  return SOURCES.get(sourceKey(block));
}

/**
 * Where `setting` of `block` is written, or where the block is when the setting is not in it;
 * `undefined` when the block did not come from a file.
 */
export function sourceOf(block: SourcedBlock, setting?: string): SourcePosition | undefined {
  const src = blockSource(block);
  if (src === undefined) return undefined;
  const pos = (setting !== undefined ? src.keys.get(setting) : undefined) ?? src;
  return { filename: src.filename, line: pos.line, column: pos.column };
}

/** `file.hcl:3:5`. */
export function formatPosition(p: SourcePosition): string {
  return `${p.filename}:${p.line}:${p.column}`;
}

/** `seal "pkcs11"`, `listener "tcp"` — a block's name without position. */
export function blockName(kind: "storage" | "seal" | "listener", block: SourcedBlock): string {
  return `${kind} "${"type" in block ? block.type : "tcp"}"`;
}

/** `seal "pkcs11" (vault.hcl:12:1)`, or with a setting, its position — how messages name a block. */
export function describeBlock(
  kind: "storage" | "seal" | "listener",
  block: SourcedBlock,
  field?: string,
): string {
  const name = blockName(kind, block);
  const pos = sourceOf(block, field);
  return pos === undefined ? name : `${name} (${formatPosition(pos)})`;
}

// --------------------------------------------------------------------------- value readers

/**
 * A boolean setting, or `undefined` when `v` is not one: the settings kernel's rule (Go's
 * ParseBool words, surrounding whitespace ignored, JSON/HCL booleans and the numbers 0/1 that
 * Vault's weak decoding reads as the words "0"/"1").
 */
export function parseBoolean(v: unknown): boolean | undefined {
  return tryParseBool(v);
}

/** An integer from a number or a numeric string (`"33554432"`). */
export function parseInteger(v: unknown): number | undefined {
  if (typeof v === "number") return Number.isSafeInteger(v) ? v : undefined;
  if (typeof v === "string" && /^\s*-?\d+\s*$/.test(v)) {
    const n = Number(v.trim());
    return Number.isSafeInteger(n) ? n : undefined;
  }
  return undefined;
}

// --------------------------------------------------------------------------- did you mean

/** The closest of `known` within edit distance 2 (case-insensitive), if any. */
export function closest(key: string, known: Iterable<string>): string | undefined {
  let best: string | undefined;
  let bestDistance = 3;
  const k = key.toLowerCase();
  for (const candidate of known) {
    const d = editDistance(k, candidate.toLowerCase());
    if (d < bestDistance) {
      bestDistance = d;
      best = candidate;
    }
  }
  return best;
}

/** ` — did you mean \`x\`?`, or "" when nothing is close. */
export function suggest(key: string, known: Iterable<string>): string {
  const best = closest(key, known);
  return best === undefined ? "" : ` — did you mean \`${best}\`?`;
}

/** Levenshtein distance, capped: anything above 2 is reported as 3. */
function editDistance(a: string, b: string): number {
  if (Math.abs(a.length - b.length) > 2) return 3;
  let prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      row[j] = Math.min(
        (prev[j] as number) + 1,
        (row[j - 1] as number) + 1,
        (prev[j - 1] as number) + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
    }
    prev = row;
  }
  return prev[b.length] as number;
}

/**
 * Reading one file's values: how a value is described in a message, and the reader that collects
 * a file's problems and warnings with their line and column.
 */
import {
  blocks,
  type HclBlockEntry,
  type HclDocument,
  HclParseError,
  type HclPosition,
  type HclValue,
  toPlain,
} from "@bulwark/hcl";
import { type ConfigProblem, formatProblem } from "./errors.js";
import { type BlockSource, parseBoolean, parseInteger } from "./source.js";

/** A value as a message names it: its kind, with the value itself for a string, number or bool. */
export function describeValue(v: HclValue): string {
  switch (v.kind) {
    case "string":
      return `string ${JSON.stringify(v.value)}`;
    case "number":
      return `number ${v.raw}`;
    case "bool":
      return `bool ${v.value}`;
    case "null":
      return "null";
    case "list":
      return "a list";
    case "object":
      return "an object";
  }
}

/** One file's problems and warnings, and the value readers that report to them. */
export class FileReader {
  readonly problems: ConfigProblem[] = [];
  readonly warnings: string[] = [];
  readonly #file: string;

  constructor(file: string) {
    this.#file = file;
  }

  problem(pos: HclPosition | undefined, message: string): void {
    const p: ConfigProblem = { filename: this.#file, message };
    if (pos !== undefined) {
      p.line = pos.line;
      p.column = pos.column;
    }
    this.problems.push(p);
  }

  warn(pos: HclPosition, message: string): void {
    this.warnings.push(formatProblem({ filename: this.#file, line: pos.line, column: pos.column, message }));
  }

  hclError(err: HclParseError): void {
    this.problems.push({ filename: err.filename, line: err.line, column: err.column, message: err.detail });
  }

  string(key: string, v: HclValue): string | undefined {
    if (v.kind === "string") return v.value;
    this.problem(v.pos, `\`${key}\` must be a string, found ${describeValue(v)}`);
    return undefined;
  }

  boolean(key: string, v: HclValue): boolean | undefined {
    const b = parseBoolean(toPlain(v));
    if (b === undefined) this.problem(v.pos, `\`${key}\` must be true or false, found ${describeValue(v)}`);
    return b;
  }

  integer(key: string, v: HclValue): number | undefined {
    const n = parseInteger(toPlain(v));
    if (n === undefined) this.problem(v.pos, `\`${key}\` must be an integer, found ${describeValue(v)}`);
    return n;
  }

  blocks(doc: HclDocument, type: string): HclBlockEntry[] {
    return this.blocksWith(doc, type, 1);
  }

  /** Blocks with `labels` labels (`audit "<type>" "<path>"` has two). */
  blocksWith(doc: HclDocument, type: string, labels: number): HclBlockEntry[] {
    try {
      return blocks(doc, type, labels);
    } catch (err) {
      if (err instanceof HclParseError) {
        this.hclError(err);
        return [];
      }
      throw err;
    }
  }
}

/** Where a block and each of its settings (first occurrence) were written. */
export function entrySource(entry: HclBlockEntry): BlockSource {
  const keys = new Map<string, HclPosition>();
  for (const item of entry.body.items) {
    const key = item.kind === "attribute" ? item.key : item.type;
    if (!keys.has(key)) keys.set(key, item.pos);
  }
  return { filename: entry.filename, line: entry.line, column: entry.column, keys };
}

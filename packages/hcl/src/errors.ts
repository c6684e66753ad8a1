import { CodedError } from "@bulwark/errors";
import type { HclPosition } from "./tree.js";

/** Stable codes of the errors `@bulwark/hcl` reports (domain "hcl"). */
export const HCL_ERROR_CODES = ["hcl_parse"] as const;

export type HclErrorCode = (typeof HCL_ERROR_CODES)[number];

/**
 * A document that does not parse (`kind: "syntax"`) or whose shape is not what a caller asked
 * for (`kind: "structure"`, from {@link blocks}). The message starts with `file:line:column:`.
 */
export class HclParseError extends CodedError<HclErrorCode> {
  static override readonly kind: string = "@bulwark/hcl:HclParseError";
  override name = "HclParseError";
  /** Not the class's `static kind` (its cross-copy identity): which of the two failures this is. */
  readonly kind: "syntax" | "structure";
  readonly filename: string;
  readonly line: number;
  readonly column: number;
  /** The message without the location prefix. */
  readonly detail: string;

  constructor(kind: "syntax" | "structure", filename: string, pos: HclPosition, detail: string) {
    super("hcl", "hcl_parse", `${filename}:${pos.line}:${pos.column}: ${detail}`);
    this.kind = kind;
    this.filename = filename;
    this.line = pos.line;
    this.column = pos.column;
    this.detail = detail;
  }
}

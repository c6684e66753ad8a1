/**
 * The syntax tree every front end (HCL, JSON) produces: values, attributes, blocks and bodies, each
 * with its position, so callers can report "unknown key `foo` at vault.hcl:12:3".
 */

/** A place in the source: 1-based line and column (UTF-16 units), 0-based offset. */
export interface HclPosition {
  line: number;
  column: number;
  offset: number;
}

export interface HclStringValue {
  kind: "string";
  value: string;
  /** Written as `<<EOF … EOF`. */
  heredoc: boolean;
  pos: HclPosition;
}

export interface HclNumberValue {
  kind: "number";
  value: number;
  /** The literal as written (`0x1F`, `1e3`); integers beyond 2^53 keep their digits here. */
  raw: string;
  pos: HclPosition;
}

export interface HclBoolValue {
  kind: "bool";
  value: boolean;
  pos: HclPosition;
}

/** Only JSON documents have `null`. */
export interface HclNullValue {
  kind: "null";
  pos: HclPosition;
}

export interface HclListValue {
  kind: "list";
  items: HclValue[];
  pos: HclPosition;
}

/** `{ key = value … }` as a value, or a JSON object. */
export interface HclObjectValue {
  kind: "object";
  body: HclBody;
  pos: HclPosition;
}

export type HclValue =
  | HclStringValue
  | HclNumberValue
  | HclBoolValue
  | HclNullValue
  | HclListValue
  | HclObjectValue;

/** `key = value` (HCL) or `"key": value` (JSON). */
export interface HclAttribute {
  kind: "attribute";
  key: string;
  value: HclValue;
  /** Position of the key. */
  pos: HclPosition;
}

/** `type "label" … { body }`. */
export interface HclBlock {
  kind: "block";
  type: string;
  labels: string[];
  labelPositions: HclPosition[];
  body: HclBody;
  /** Position of the block type. */
  pos: HclPosition;
}

export type HclItem = HclAttribute | HclBlock;

/** The items between `{` and `}` (or of a whole file), in source order, duplicates kept. */
export interface HclBody {
  items: HclItem[];
  pos: HclPosition;
  filename: string;
}

export interface HclDocument {
  filename: string;
  format: "hcl" | "json";
  body: HclBody;
}

/** The body of a document, or the body itself. */
export function bodyOf(source: HclDocument | HclBody): HclBody {
  return "body" in source ? source.body : source;
}

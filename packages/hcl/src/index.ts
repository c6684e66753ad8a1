export { HCL_ERROR_CODES, type HclErrorCode, HclParseError } from "./errors.js";
export { formatHcl, quoteHcl } from "./format.js";
export { parseHclJson } from "./json.js";
export { parseHcl, parseHclOrJson } from "./parser.js";
export { attribute, attributes, blocks, type HclBlockEntry, toPlain } from "./query.js";
export { HCL_MAX_DEPTH } from "./token-stream.js";
export type {
  HclAttribute,
  HclBlock,
  HclBody,
  HclBoolValue,
  HclDocument,
  HclItem,
  HclListValue,
  HclNullValue,
  HclNumberValue,
  HclObjectValue,
  HclPosition,
  HclStringValue,
  HclValue,
} from "./tree.js";

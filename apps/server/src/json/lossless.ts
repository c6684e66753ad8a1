/**
 * Transitional: the lossless JSON reader moved to @bulwark/vault (KV's value semantics). This
 * re-export keeps the CLI's files that still import it here compiling while the CLI is being
 * split; delete it once no file imports `json/lossless.js`.
 */
export {
  goFloat,
  hasJsonNumber,
  JsonNumber,
  JsonRefusedError,
  type NumberScan,
  parseJson,
  parseLossless,
  scanNumbers,
  stringify,
} from "@bulwark/vault";

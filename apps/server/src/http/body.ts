/**
 * Request bodies: parsed as JSON whatever the Content-Type (Vault does the same; `curl -d` sends
 * form-encoded headers), with the refusals that keep a body from hurting later (`__proto__` keys,
 * nesting too deep to serialize again) and error texts that never quote the body.
 */
import { JsonRefusedError, parseJson } from "@bulwark/vault";

/** Paths the server itself answers (sys/, auth/): everything else is a secrets engine's. */
export function isSystemUrl(url: string): boolean {
  return /^\/v1\/(?:sys|auth)(?:[/?]|$)/.test(url);
}

/**
 * Parses a body. Syntax errors are reported without V8's message: that quotes the start of the
 * body, which may be an unseal key or a secret, and the error text is logged. Refusals of our own
 * (`__proto__` keys, nesting, numbers beyond float64) keep their message.
 *
 * `lossless`: numbers keep their exact text ({@link JsonNumber}s where `JSON.parse` would change
 * them) — for bodies that are stored as sent (secrets). The server's own routes get plain numbers.
 */
export function parseBody(buf: Buffer, lossless: boolean): unknown {
  checkDepth(buf);
  const text = buf.toString("utf8");
  try {
    if (lossless) return parseJson(text);
    // A key can also be spelled with JSON escapes ("\u005f_proto__"), so any escape needs the check.
    if (!buf.includes("__proto__") && !buf.includes("\\u")) return JSON.parse(text);
    return JSON.parse(text, (k, v) => {
      if (k === "__proto__") throw new JsonRefusedError('the key "__proto__" is not allowed');
      return v;
    });
  } catch (e) {
    if (e instanceof JsonRefusedError) throw e;
    throw new SyntaxError("the body is not valid JSON");
  }
}

/**
 * Deepest nesting of arrays/objects a body may have. Deeper values parse, but serializing them
 * again (when stored, when read back) overflows the stack: a 500 after the fact instead of a 400.
 */
export const MAX_JSON_DEPTH = 1000;

/** Refuses bodies nested deeper than {@link MAX_JSON_DEPTH} (brackets inside strings do not count). */
function checkDepth(buf: Buffer): void {
  if (buf.length <= MAX_JSON_DEPTH) return; // each level takes at least one byte
  let depth = 0;
  let inString = false;
  for (let i = 0; i < buf.length; i++) {
    const c = buf[i];
    if (inString) {
      if (c === 0x5c)
        i++; // backslash: skip the escaped byte
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) {
      if (++depth > MAX_JSON_DEPTH)
        throw new JsonRefusedError(`the body is nested more than ${MAX_JSON_DEPTH} levels deep`);
    } else if (c === 0x5d || c === 0x7d) depth--;
  }
}

/** Printing HCL that {@link parseHcl} reads back to the same structure. */

import { bodyOf, type HclBody, type HclDocument, type HclValue } from "./tree.js";

const BARE_KEY = /^[A-Za-z_][A-Za-z0-9_.-]*$/;

/** Quotes a string the way {@link parseHcl} reads it back. `${` is kept literally, as HCL1 does. */
export function quoteHcl(value: string): string {
  let out = '"';
  for (const ch of value) {
    const code = ch.codePointAt(0) as number;
    if (ch === '"') out += '\\"';
    else if (ch === "\\") out += "\\\\";
    else if (ch === "\n") out += "\\n";
    else if (ch === "\r") out += "\\r";
    else if (ch === "\t") out += "\\t";
    else if (code < 0x20 || code === 0x7f) out += `\\u${code.toString(16).padStart(4, "0")}`;
    else out += ch;
  }
  return `${out}"`;
}

function formatKey(key: string): string {
  return BARE_KEY.test(key) ? key : quoteHcl(key);
}

function formatValue(v: HclValue, indent: string): string {
  switch (v.kind) {
    case "string":
      return quoteHcl(v.value);
    case "number":
      return Number.isFinite(v.value) ? String(v.value) : v.raw;
    case "bool":
      return String(v.value);
    case "null":
      throw new TypeError("formatHcl: HCL has no null (it only comes from JSON documents)");
    case "list":
      return `[${v.items.map((i) => formatValue(i, indent)).join(", ")}]`;
    case "object":
      return v.body.items.length === 0 ? "{}" : `{\n${formatItems(v.body, `${indent}  `)}${indent}}`;
  }
}

function formatItems(body: HclBody, indent: string): string {
  let out = "";
  for (const item of body.items) {
    if (item.kind === "attribute") {
      out += `${indent}${formatKey(item.key)} = ${formatValue(item.value, indent)}\n`;
    } else {
      const head = [formatKey(item.type), ...item.labels.map(quoteHcl)].join(" ");
      out +=
        item.body.items.length === 0
          ? `${indent}${head} {}\n`
          : `${indent}${head} {\n${formatItems(item.body, `${indent}  `)}${indent}}\n`;
    }
  }
  return out;
}

/** Prints a document or body as HCL that {@link parseHcl} reads back to the same structure. */
export function formatHcl(source: HclDocument | HclBody): string {
  return formatItems(bodyOf(source), "");
}

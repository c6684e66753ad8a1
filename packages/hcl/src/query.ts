/** Reading a parsed document: its blocks (whichever way they were written), attributes, plain values. */

import { HclParseError } from "./errors.js";
import {
  bodyOf,
  type HclAttribute,
  type HclBody,
  type HclDocument,
  type HclPosition,
  type HclValue,
} from "./tree.js";

/** One block, whichever way it was written: `{ labels, body }` plus where it starts. */
export interface HclBlockEntry {
  type: string;
  labels: string[];
  labelPositions: HclPosition[];
  body: HclBody;
  pos: HclPosition;
  line: number;
  column: number;
  filename: string;
}

function structureError(body: HclBody, pos: HclPosition, detail: string): HclParseError {
  return new HclParseError("structure", body.filename, pos, detail);
}

function labelHint(type: string, want: number): string {
  return `${type}${' "<label>"'.repeat(want)} { … }`;
}

/**
 * Every `type` block of `source` with exactly `labelCount` labels, in source order. Applies HCL1's
 * equivalences: `path "a" { … }`, `path { a { … } }`, `path = { a = { … } }`, `path = [{ a = … }]`
 * and JSON `"path": {"a": {…}}` all yield `{ labels: ["a"], body }`. A block with the wrong shape
 * (missing or extra labels, a plain value where a block belongs) throws a structure
 * {@link HclParseError} naming the expected form.
 */
export function blocks(source: HclDocument | HclBody, type: string, labelCount = 1): HclBlockEntry[] {
  const body = bodyOf(source);
  const out: HclBlockEntry[] = [];
  const add = (labels: string[], labelPositions: HclPosition[], inner: HclBody, pos: HclPosition): void => {
    if (labels.length > labelCount) {
      throw structureError(
        body,
        labelPositions[labelCount] ?? pos,
        `\`${type}\` takes ${labelCount} label${labelCount === 1 ? "" : "s"}, found ${labels.length}: write ${labelHint(type, labelCount)}`,
      );
    }
    if (labels.length === labelCount) {
      out.push({
        type,
        labels,
        labelPositions,
        body: inner,
        pos,
        line: pos.line,
        column: pos.column,
        filename: body.filename,
      });
      return;
    }
    if (inner.items.length === 0) {
      throw structureError(
        body,
        pos,
        `\`${type}\` needs ${labelCount} label(s): write ${labelHint(type, labelCount)}`,
      );
    }
    // Fewer labels than wanted: each child is the next label (HCL1 / JSON nesting).
    for (const child of inner.items) {
      if (child.kind === "block") {
        add(
          [...labels, child.type, ...child.labels],
          [...labelPositions, child.pos, ...child.labelPositions],
          child.body,
          pos,
        );
      } else {
        for (const obj of objectsOf(child.value)) {
          if (obj === undefined) {
            throw structureError(
              body,
              child.pos,
              `\`${type}\` needs ${labelCount} label(s): write ${labelHint(type, labelCount)} (found \`${child.key} = …\`)`,
            );
          }
          add([...labels, child.key], [...labelPositions, child.pos], obj, pos);
        }
      }
    }
  };
  for (const item of body.items) {
    if (item.kind === "block") {
      if (item.type === type) add(item.labels, item.labelPositions, item.body, item.pos);
      continue;
    }
    if (item.key !== type) continue;
    for (const obj of objectsOf(item.value)) {
      if (obj === undefined) {
        throw structureError(
          body,
          item.pos,
          `\`${type}\` must be a block: write ${labelHint(type, labelCount)}`,
        );
      }
      add([], [], obj, item.pos);
    }
  }
  return out;
}

/** An object value is one body, a list of objects is several; anything else is `undefined`. */
function objectsOf(value: HclValue): Array<HclBody | undefined> {
  if (value.kind === "object") return [value.body];
  if (value.kind === "list") return value.items.map((v) => (v.kind === "object" ? v.body : undefined));
  return [undefined];
}

/** The attributes named `key` in `source` (usually zero or one; HCL allows repeats). */
export function attributes(source: HclDocument | HclBody, key: string): HclAttribute[] {
  return bodyOf(source).items.filter((i): i is HclAttribute => i.kind === "attribute" && i.key === key);
}

/** The last `key = value` of `source`, or `undefined`. */
export function attribute(source: HclDocument | HclBody, key: string): HclAttribute | undefined {
  return attributes(source, key).at(-1);
}

/**
 * A plain JavaScript value, Vault-JSON style: attributes become properties, a block
 * `type "a" "b" { … }` becomes `{ type: { a: { b: { … } } } }` (blocks of one type merge by label),
 * a key written twice becomes an array of its values. Numbers are numbers, except integers beyond
 * 2^53, which become their exact decimal string (an HSM slot id must not lose digits).
 */
export function toPlain(node: HclDocument | HclBody | HclValue): unknown {
  if ("items" in node && !("kind" in node)) return bodyToPlain(node);
  if ("format" in node) return bodyToPlain(node.body);
  return valueToPlain(node as HclValue);
}

function valueToPlain(v: HclValue): unknown {
  switch (v.kind) {
    case "string":
    case "bool":
      return v.value;
    case "null":
      return null;
    case "number":
      if (Number.isInteger(v.value) && !Number.isSafeInteger(v.value)) return exactInteger(v.raw);
      return v.value;
    case "list":
      return v.items.map(valueToPlain);
    case "object":
      return bodyToPlain(v.body);
  }
}

function exactInteger(raw: string): string {
  const neg = raw.startsWith("-");
  const body = neg ? raw.slice(1) : raw;
  let n: bigint;
  if (/^0[xX]/.test(body)) n = BigInt(body);
  else if (/^0[0-7]+$/.test(body)) n = BigInt(`0o${body.slice(1)}`);
  else if (/^[0-9]+$/.test(body)) n = BigInt(body);
  else return String(Number(raw));
  return (neg ? -n : n).toString();
}

const REPEATED = Symbol("repeated");
type Repeated = unknown[] & { [REPEATED]: true };

function isRepeated(v: unknown): v is Repeated {
  return Array.isArray(v) && (v as Partial<Repeated>)[REPEATED] === true;
}

/** Own data properties only: a key like `__proto__` must not reach a prototype. */
function define(target: Record<string, unknown>, key: string, value: unknown): void {
  Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
}

function setPlain(target: Record<string, unknown>, key: string, value: unknown): void {
  if (!Object.hasOwn(target, key)) {
    define(target, key, value);
    return;
  }
  const prev = target[key];
  if (isRepeated(prev)) {
    prev.push(value);
    return;
  }
  const list = [prev, value] as Repeated;
  Object.defineProperty(list, REPEATED, { value: true, enumerable: false });
  define(target, key, list);
}

function bodyToPlain(body: HclBody): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const item of body.items) {
    if (item.kind === "attribute") {
      setPlain(out, item.key, valueToPlain(item.value));
      continue;
    }
    let target = out;
    const path = [item.type, ...item.labels];
    const leaf = path.pop() as string;
    for (const segment of path) {
      const existing = Object.hasOwn(target, segment) ? target[segment] : undefined;
      if (typeof existing === "object" && existing !== null && !Array.isArray(existing)) {
        target = existing as Record<string, unknown>;
      } else {
        const next: Record<string, unknown> = {};
        setPlain(target, segment, next);
        target = next;
      }
    }
    setPlain(target, leaf, bodyToPlain(item.body));
  }
  return out;
}

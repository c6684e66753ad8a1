/**
 * Comparing two audit logs written for the same request sequence (audit-openbao.test.ts): the
 * records are aligned by (type, operation, path) — a longest common subsequence, so a record only
 * one server wrote is named as such instead of shifting every later pair — and each aligned pair
 * must have the same key set at every nesting level and the same JSON type at every common key.
 * Values are not compared (ids, times, HMACs, accessors, running versions differ by nature).
 */
import { readFileSync } from "node:fs";
import type { Json } from "./audit-servers.js";

export function readAuditLog(file: string): Json[] {
  const text = readFileSync(file, "utf8");
  return text
    .split("\n")
    .filter((l) => l !== "")
    .map((l, i) => {
      try {
        return JSON.parse(l);
      } catch {
        throw new Error(`${file}:${i + 1} is not one JSON record: ${l.slice(0, 200)}`);
      }
    });
}

/** `response sys/mounts/secret update` — what the alignment matches on. */
export function summary(r: Json): string {
  return `${r?.type} ${r?.request?.operation ?? "-"} ${r?.request?.path ?? "-"}`;
}

function jsonType(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "array";
  return typeof v;
}

/** Pairs of indexes (a, b) of a longest common subsequence of the two summary lists. */
function align(a: string[], b: string[]): Array<[number, number]> {
  const n = a.length;
  const m = b.length;
  const L: number[][] = Array.from({ length: n + 1 }, () => new Array<number>(m + 1).fill(0));
  for (let i = n - 1; i >= 0; i--)
    for (let j = m - 1; j >= 0; j--)
      (L[i] as number[])[j] =
        a[i] === b[j]
          ? ((L[i + 1] as number[])[j + 1] as number) + 1
          : Math.max((L[i + 1] as number[])[j] as number, (L[i] as number[])[j + 1] as number);
  const out: Array<[number, number]> = [];
  let i = 0;
  let j = 0;
  while (i < n && j < m) {
    if (a[i] === b[j]) {
      out.push([i, j]);
      i++;
      j++;
    } else if (((L[i + 1] as number[])[j] as number) >= ((L[i] as number[])[j + 1] as number)) i++;
    else j++;
  }
  return out;
}

export interface LogComparison {
  /** Record pairs compared key by key. */
  records: number;
  /** Key paths looked at (every key of either side, at every level, in every compared pair). */
  keyPaths: number;
  /** One line per difference. */
  diffs: string[];
}

/**
 * Compares OpenBao's records with Bulwark's. `skip(record)`: records left out on both sides (the
 * readiness poll). Differences read `#<bao index>/#<bulwark index> <summary>: <key path>: …`.
 */
export function compareAuditLogs(
  bao: Json[],
  bulwark: Json[],
  skip: (r: Json) => boolean = () => false,
): LogComparison {
  const A = bao.map((r, i) => ({ r, i })).filter((x) => !skip(x.r));
  const B = bulwark.map((r, i) => ({ r, i })).filter((x) => !skip(x.r));
  const sa = A.map((x) => summary(x.r));
  const sb = B.map((x) => summary(x.r));
  const pairs = align(sa, sb);
  const diffs: string[] = [];
  let keyPaths = 0;

  // Records only one side wrote, in log order.
  let pi = 0;
  let ai = 0;
  let bi = 0;
  while (ai < A.length || bi < B.length) {
    const [pa, pb] = pairs[pi] ?? [A.length, B.length];
    while (ai < pa) {
      diffs.push(`record only in OpenBao's log: #${A[ai]?.i} ${sa[ai]}`);
      ai++;
    }
    while (bi < pb) {
      diffs.push(`record only in Bulwark's log: #${B[bi]?.i} ${sb[bi]}`);
      bi++;
    }
    if (pi < pairs.length) {
      ai++;
      bi++;
      pi++;
    }
  }

  const walk = (at: string, x: unknown, y: unknown, where: string) => {
    const tx = jsonType(x);
    const ty = jsonType(y);
    if (tx !== ty) {
      diffs.push(`${where}: ${at}: OpenBao has a ${tx}, Bulwark a ${ty}`);
      return;
    }
    if (tx === "object") {
      const ox = x as Record<string, unknown>;
      const oy = y as Record<string, unknown>;
      const kx = Object.keys(ox);
      const ky = Object.keys(oy);
      keyPaths += new Set([...kx, ...ky]).size;
      const onlyX = kx.filter((k) => !(k in oy));
      const onlyY = ky.filter((k) => !(k in ox));
      if (onlyX.length > 0 || onlyY.length > 0)
        diffs.push(
          `${where}: ${at === "" ? "(top level)" : at}: keys only in OpenBao: [${onlyX.join(", ")}]; only in Bulwark: [${onlyY.join(", ")}]`,
        );
      for (const k of kx) if (k in oy) walk(at === "" ? k : `${at}.${k}`, ox[k], oy[k], where);
    } else if (tx === "array") {
      const ax = x as unknown[];
      const ay = y as unknown[];
      const structured = [...ax, ...ay].some((e) => jsonType(e) === "object" || jsonType(e) === "array");
      // A list of plain values (policies, keys) may differ in length with the values; a list of
      // objects is structure.
      if (structured && ax.length !== ay.length)
        diffs.push(`${where}: ${at}: OpenBao has ${ax.length} elements, Bulwark ${ay.length}`);
      for (let k = 0; k < Math.min(ax.length, ay.length); k++) walk(`${at}[${k}]`, ax[k], ay[k], where);
    }
  };
  for (const [pa, pb] of pairs) {
    const x = A[pa] as { r: Json; i: number };
    const y = B[pb] as { r: Json; i: number };
    walk("", x.r, y.r, `#${x.i}/#${y.i} ${sa[pa]}`);
  }
  return { records: pairs.length, keyPaths, diffs };
}

/** The value at a dotted key path (`response.data.data.password`), or undefined. */
export function at(r: Json, path: string): unknown {
  let cur: unknown = r;
  for (const k of path.split(".")) {
    if (cur === null || typeof cur !== "object") return undefined;
    cur = (cur as Record<string, unknown>)[k];
  }
  return cur;
}

/** Which of `values` (name → plaintext) occur in `text`, with the first line each occurs on. */
export function plaintextHits(text: string, values: Record<string, string>): string[] {
  const hits: string[] = [];
  for (const [what, v] of Object.entries(values)) {
    if (v === "") continue;
    const k = text.indexOf(v);
    if (k === -1) continue;
    const line = text.slice(0, k).split("\n").length;
    hits.push(`${what} in plaintext at line ${line}`);
  }
  return hits;
}

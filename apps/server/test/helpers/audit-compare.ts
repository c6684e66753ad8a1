/**
 * Comparing two audit logs written for the same request sequence (audit-openbao.test.ts): the
 * records are aligned by (type, operation, path) — a longest common subsequence, so a record only
 * one server wrote is named as such instead of shifting every later pair — and each aligned pair
 * must have the same key set at every nesting level, its common keys in the same order, and the
 * same JSON type at every common key. Values are compared only where the same sequence must give
 * the same value on both servers (not ids, times, HMACs, accessors, running versions: NATURAL).
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
  /** One line per difference of records, keys or JSON types. */
  diffs: string[];
  /** Values compared (those the same sequence must give the same on both servers, see below). */
  values: number;
  /** One line per such value that differs. */
  valueDiffs: string[];
}

/**
 * Values that differ between two servers by nature, by the last key of their path: times, ids,
 * ports, mount and token accessors (random; hashed anyway unless hmac_accessor is off), the running version (OpenBao's is "v2.0.0+builtin.bao", a
 * `go build` without a release stamp), TTLs counted down and creation times. Every HMAC
 * (a per-device random salt) and every RFC 3339 time (left unhashed) is skipped as well.
 */
const NATURAL = new Set([
  "time",
  "id",
  "token_issue_time",
  "remote_port",
  "mount_accessor",
  "accessor",
  "client_token_accessor",
  "mount_running_version",
  "mount_running_plugin_version",
  "creation_time",
  "ttl",
  "issue_time",
  "expire_time",
  "last_renewal_time",
  "last_renewal",
  "created_time",
  "updated_time",
  "deletion_time",
]);

function natural(path: string, v: unknown): boolean {
  const last =
    path
      .replace(/\[\d+\]$/, "")
      .split(".")
      .pop() ?? "";
  if (NATURAL.has(last)) return true;
  if (typeof v === "string" && (v.startsWith("hmac-sha256:") || /^\d{4}-\d\d-\d\dT\d\d:\d\d/.test(v)))
    return true;
  return false;
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
  const valueDiffs: string[] = [];
  let keyPaths = 0;
  let values = 0;
  const leaf = (at: string, x: unknown, y: unknown, where: string) => {
    if (natural(at, x) || natural(at, y)) return;
    values++;
    const jx = JSON.stringify(x);
    const jy = JSON.stringify(y);
    if (jx !== jy) valueDiffs.push(`${where}: ${at}: OpenBao ${jx}, Bulwark ${jy}`);
  };

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
      diffs.push(`${where}: ${at}: JSON type: OpenBao ${tx}, Bulwark ${ty}`);
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
      // OpenBao writes struct fields in declaration order and map keys sorted: the common keys
      // come in the same order.
      const cx = kx.filter((k) => k in oy);
      const cy = ky.filter((k) => k in ox);
      if (cx.join(",") !== cy.join(","))
        diffs.push(
          `${where}: ${at === "" ? "(top level)" : at}: key order: OpenBao [${cx.join(", ")}], Bulwark [${cy.join(", ")}]`,
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
      if (structured)
        for (let k = 0; k < Math.min(ax.length, ay.length); k++) walk(`${at}[${k}]`, ax[k], ay[k], where);
      else if (![...ax, ...ay].some((e) => natural(at, e))) leaf(at, x, y, where);
    } else leaf(at, x, y, where);
  };
  for (const [pa, pb] of pairs) {
    const x = A[pa] as { r: Json; i: number };
    const y = B[pb] as { r: Json; i: number };
    walk("", x.r, y.r, `#${x.i}/#${y.i} ${sa[pa]}`);
  }
  return { records: pairs.length, keyPaths, diffs, values, valueDiffs };
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

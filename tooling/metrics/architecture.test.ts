/**
 * The layering ARCHITECTURE.md documents, checked against the code: its layer table is the one the
 * metrics script enforces, no production import and no package dependency climbs a layer, and
 * every repository path the two contributor documents name exists.
 */
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { LAYERS, measure, SERVER_LAYERS } from "./architecture.mjs";

const root = resolve(import.meta.dirname, "../..");
const layers = LAYERS as Record<string, number>;
const serverLayers = SERVER_LAYERS as Record<string, number>;

interface Manifest {
  name: string;
  private?: boolean;
  dependencies?: Record<string, string>;
}

function manifests(): Manifest[] {
  const out: Manifest[] = [];
  for (const base of ["packages", "apps"]) {
    for (const d of readdirSync(join(root, base)).sort()) {
      const f = join(root, base, d, "package.json");
      if (existsSync(f)) out.push(JSON.parse(readFileSync(f, "utf8")) as Manifest);
    }
  }
  return out;
}

function doc(name: string): string {
  return readFileSync(join(root, name), "utf8");
}

describe("architecture", () => {
  it("no production import climbs a layer (packages, and the folders of apps/server/src)", () => {
    const report = measure(root) as { upwardImports: string[] };
    expect(report.upwardImports).toEqual([]);
  });

  it("every package has a layer, and its @bulwark dependencies are all in lower layers", () => {
    const problems: string[] = [];
    for (const m of manifests()) {
      const own = layers[m.name];
      if (own === undefined) {
        problems.push(`${m.name} has no layer in tooling/metrics/architecture.mjs LAYERS`);
        continue;
      }
      for (const dep of Object.keys(m.dependencies ?? {})) {
        if (!dep.startsWith("@bulwark/")) continue;
        const theirs = layers[dep];
        if (theirs === undefined) problems.push(`${m.name} depends on ${dep}, which has no layer`);
        else if (theirs >= own) problems.push(`${m.name} (layer ${own}) depends on ${dep} (layer ${theirs})`);
      }
    }
    expect(problems).toEqual([]);
  });

  it("ARCHITECTURE.md's layer table is the one the code is checked against", () => {
    const rows = [...doc("ARCHITECTURE.md").matchAll(/^\| (\d+) \| `(@bulwark\/[\w-]+)` \|/gm)].map((m) => [
      m[2],
      Number(m[1]),
    ]);
    expect(Object.fromEntries(rows)).toEqual(layers);
    const folders = [
      ...doc("ARCHITECTURE.md").matchAll(/^\| (\d+) \| `apps\/server\/src\/([\w-]+)(?:\.ts|\/)?` \|/gm),
    ].map((m) => [m[2], Number(m[1])]);
    expect(Object.fromEntries(folders)).toEqual(serverLayers);
  });

  it("every repository path ARCHITECTURE.md and CONTRIBUTING.md name exists", () => {
    const missing: string[] = [];
    for (const name of ["ARCHITECTURE.md", "CONTRIBUTING.md"]) {
      for (const m of doc(name).matchAll(/`((?:packages|apps|tooling|docs|examples|\.ci)\/[^`\s*<>{}]+)`/g)) {
        const path = (m[1] ?? "").replace(/[/:]$/, "").replace(/:\d+$/, "");
        if (!existsSync(join(root, path))) missing.push(`${name}: ${m[1]}`);
      }
    }
    expect(missing).toEqual([]);
  });
});

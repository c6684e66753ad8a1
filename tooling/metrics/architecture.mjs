#!/usr/bin/env node
// Structure figures for production code (every `src/**/*.ts` of packages/ and apps/, tests excluded):
// the largest files, the longest functions, the number of `as` casts, and upward imports.
//
// An upward import is one that climbs the layer order: a package importing a package of a higher
// layer (see LAYERS), or, inside apps/server/src, a folder importing a folder of a higher layer
// (see SERVER_LAYERS). Both orders are the ones ARCHITECTURE.md documents.
//
// usage: node tooling/metrics/architecture.mjs [--json]
import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import ts from "typescript";

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "../..");

/** Lower number = lower layer. A package may import only packages of a lower or equal layer. */
export const LAYERS = {
  "@bulwark/errors": 0,
  "@bulwark/settings": 1,
  "@bulwark/crypto": 1,
  "@bulwark/hcl": 1,
  "@bulwark/storage": 2,
  "@bulwark/storage-memory": 3,
  "@bulwark/storage-file": 3,
  "@bulwark/storage-consul": 3,
  "@bulwark/barrier": 3,
  "@bulwark/seal": 4,
  "@bulwark/seal-pkcs11": 5,
  "@bulwark/seal-awskms": 5,
  "@bulwark/unixgram": 5,
  "@bulwark/seal-cloudhsm": 6,
  "@bulwark/core": 7,
  "@bulwark/vault": 8,
  "@bulwark/server": 9,
};

/** Folders of apps/server/src, lowest first; a folder may import only lower or equal ones. */
export const SERVER_LAYERS = {
  // The logical layer (tokens, policies, mounts, KV, lossless JSON) is the @bulwark/vault
  // package, and the HCL reader @bulwark/hcl: no folder of theirs is left here.
  logging: 0,
  contracts: 0,
  registry: 3,
  config: 3,
  http: 4,
  cli: 5,
  main: 6,
  index: 7,
};

function* walk(dir) {
  for (const name of readdirSync(dir)) {
    if (name === "node_modules" || name === "dist") continue;
    const p = join(dir, name);
    if (statSync(p).isDirectory()) yield* walk(p);
    else if (p.endsWith(".ts") && !p.endsWith(".test.ts") && !p.endsWith(".d.ts")) yield p;
  }
}

function packageOf(root, file) {
  let d = dirname(file);
  while (d.startsWith(root) && d !== root) {
    try {
      return { dir: d, name: JSON.parse(readFileSync(join(d, "package.json"), "utf8")).name };
    } catch {
      d = dirname(d);
    }
  }
  return undefined;
}

function serverFolder(root, file) {
  const rel = relative(join(root, "apps/server/src"), file);
  if (rel.startsWith("..")) return undefined;
  const first = rel.split("/")[0];
  return first.replace(/\.(ts|js)$/, "");
}

/** The figures for the repository at `root`. */
export function measure(root = repoRoot) {
  const files = [];
  for (const top of ["packages", "apps"]) {
    for (const pkg of readdirSync(join(root, top))) {
      const src = join(root, top, pkg, "src");
      try {
        statSync(src);
      } catch {
        continue;
      }
      for (const f of walk(src)) files.push(f);
    }
  }

  let casts = 0;
  const functions = [];
  const sizes = [];
  const upward = [];
  for (const file of files) {
    const text = readFileSync(file, "utf8");
    const rel = relative(root, file);
    sizes.push({ file: rel, lines: text.split("\n").length - (text.endsWith("\n") ? 1 : 0) });
    const sf = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true);
    const pkg = packageOf(root, file);
    const visit = (node) => {
      if (
        ts.isAsExpression(node) &&
        !(ts.isTypeReferenceNode(node.type) && node.type.getText(sf) === "const")
      )
        casts++;
      if (
        ts.isFunctionDeclaration(node) ||
        ts.isMethodDeclaration(node) ||
        ts.isFunctionExpression(node) ||
        ts.isArrowFunction(node) ||
        ts.isConstructorDeclaration(node) ||
        ts.isGetAccessorDeclaration(node) ||
        ts.isSetAccessorDeclaration(node)
      ) {
        if (node.body !== undefined) {
          const start = sf.getLineAndCharacterOfPosition(node.getStart(sf)).line;
          const end = sf.getLineAndCharacterOfPosition(node.end).line;
          let name = node.name?.getText?.(sf);
          if (name === undefined && ts.isVariableDeclaration(node.parent))
            name = node.parent.name.getText(sf);
          if (name === undefined && ts.isConstructorDeclaration(node)) name = "constructor";
          functions.push({ file: rel, line: start + 1, name: name ?? "(anonymous)", lines: end - start + 1 });
        }
      }
      const spec =
        (ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) &&
        node.moduleSpecifier !== undefined &&
        ts.isStringLiteral(node.moduleSpecifier)
          ? node.moduleSpecifier.text
          : undefined;
      if (spec !== undefined) {
        if (spec.startsWith("@bulwark/") && pkg !== undefined) {
          const target = spec.split("/").slice(0, 2).join("/");
          const from = LAYERS[pkg.name];
          const to = LAYERS[target];
          if (from !== undefined && to !== undefined && to > from && target !== pkg.name)
            upward.push(`${rel}: ${pkg.name} (layer ${from}) imports ${target} (layer ${to})`);
        }
        if (spec.startsWith(".")) {
          const fromFolder = serverFolder(root, file);
          const toFolder =
            fromFolder === undefined ? undefined : serverFolder(root, resolve(dirname(file), spec));
          if (fromFolder !== undefined && toFolder !== undefined && fromFolder !== toFolder) {
            const a = SERVER_LAYERS[fromFolder];
            const b = SERVER_LAYERS[toFolder];
            if (a === undefined || b === undefined)
              upward.push(`${rel}: folder ${fromFolder} or ${toFolder} has no layer in SERVER_LAYERS`);
            else if (b > a)
              upward.push(
                `${rel}: apps/server/src/${fromFolder} (layer ${a}) imports ${toFolder} (layer ${b})`,
              );
          }
        }
      }
      ts.forEachChild(node, visit);
    };
    visit(sf);
  }

  sizes.sort((a, b) => b.lines - a.lines);
  functions.sort((a, b) => b.lines - a.lines);
  return {
    files: files.length,
    lines: sizes.reduce((n, s) => n + s.lines, 0),
    largestFiles: sizes.slice(0, 5),
    longestFunctions: functions.slice(0, 5),
    asCasts: casts,
    upwardImports: upward,
  };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const report = measure();
  if (process.argv.includes("--json")) {
    console.log(JSON.stringify(report, null, 2));
  } else {
    console.log(`production files: ${report.files}, lines: ${report.lines}`);
    console.log("largest files:");
    for (const s of report.largestFiles) console.log(`  ${s.lines}  ${s.file}`);
    console.log("longest functions:");
    for (const f of report.longestFunctions) console.log(`  ${f.lines}  ${f.file}:${f.line} ${f.name}`);
    console.log(`\`as\` casts (excluding \`as const\`): ${report.asCasts}`);
    console.log(`upward imports: ${report.upwardImports.length}`);
    for (const u of report.upwardImports) console.log(`  ${u}`);
  }
}

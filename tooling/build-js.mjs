#!/usr/bin/env node
// Builds the JavaScript of a workspace package and of the workspace packages it depends on at run
// time, for `pnpm start`: `node tooling/build-js.mjs @bulwark/server`.
//
// Why not `pnpm build`: most of a full build is type declarations (tsup's dts pass runs the
// TypeScript compiler once per package, ~40 s of ~45 s on 2 cores), which publishing, `pnpm
// typecheck` and library consumers need, but running the server does not. Here each package's
// tsup runs with --no-dts (esbuild only, well under a second each) and --no-clean (declarations a
// full build left in dist/ stay, so editors keep their types). Packages build in parallel: without
// declarations nothing in one package's build reads another's dist/.
//
// A package whose sources, build config and dist/ JavaScript are unchanged since its last build
// here is not rebuilt, so a second start costs a few file reads (a full `pnpm build` of the same
// sources writes the same JavaScript, so it does not force a rebuild either).
//
// Output: one progress line; the build's own output only for a package that failed to build.
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { availableParallelism } from "node:os";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const stampFile = join(root, "node_modules", ".cache", "bulwark-build-js.json");
const sharedInputs = ["tooling/tsconfig/tsup.base.ts", "tooling/tsconfig/base.json"];

function fail(message) {
  process.stderr.write(`build-js: ${message}\n`);
  process.exit(1);
}

/** The workspace's packages by name, from the package globs of pnpm-workspace.yaml (`dir/*` or `dir`). */
function workspacePackages() {
  const yaml = readFileSync(join(root, "pnpm-workspace.yaml"), "utf8");
  // The list under the top-level `packages:` key, up to the next top-level key.
  const section = yaml.split(/^packages:\s*$/m)[1]?.split(/^\S/m)[0] ?? "";
  const globs = [...section.matchAll(/^\s+-\s+["']?([^"'\s]+)["']?\s*$/gm)].map((m) => m[1]);
  const dirs = globs.flatMap((g) => {
    if (!g.endsWith("/*")) return [join(root, g)];
    const parent = join(root, g.slice(0, -2));
    return existsSync(parent) ? readdirSync(parent).map((d) => join(parent, d)) : [];
  });
  const byName = new Map();
  for (const dir of dirs) {
    const file = join(dir, "package.json");
    if (!existsSync(file)) continue;
    const pkg = JSON.parse(readFileSync(file, "utf8"));
    if (pkg.name) byName.set(pkg.name, { name: pkg.name, dir, pkg });
  }
  return byName;
}

/** The target and every workspace package it reaches through `dependencies` (what runs, not devDependencies). */
function runtimeClosure(byName, target) {
  const seen = new Map();
  const visit = (name) => {
    if (seen.has(name)) return;
    const entry = byName.get(name);
    if (!entry) fail(`no workspace package named ${name} (see pnpm-workspace.yaml)`);
    seen.set(name, entry);
    for (const [dep, spec] of Object.entries(entry.pkg.dependencies ?? {})) {
      if (String(spec).startsWith("workspace:")) visit(dep);
    }
  };
  visit(target);
  return [...seen.values()];
}

function filesUnder(dir, skip = () => false) {
  if (!existsSync(dir)) return [];
  const out = [];
  for (const ent of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, ent.name);
    if (skip(ent.name)) continue;
    if (ent.isDirectory()) out.push(...filesUnder(path, skip));
    else if (ent.isFile()) out.push(path);
  }
  return out.sort();
}

/** What the JavaScript is built from: the sources, the package's build config and the shared one. */
function sourceHash(entry) {
  const hash = createHash("sha256");
  const own = ["package.json", "tsup.config.ts", "tsconfig.json"].map((f) => join(entry.dir, f));
  const files = [
    ...own.filter((f) => existsSync(f)),
    ...sharedInputs.map((f) => join(root, f)),
    ...filesUnder(join(entry.dir, "src")),
  ];
  for (const f of files)
    hash
      .update(`${relative(root, f)}\0`)
      .update(readFileSync(f))
      .update("\0");
  return hash.digest("hex");
}

/**
 * The JavaScript in dist/ as it was left (declarations aside), by content: a deletion or a full
 * build of other sources changes it; a full build of the same sources writes the same bytes.
 */
function distState(entry) {
  const files = filesUnder(join(entry.dir, "dist")).filter((f) => !/\.d\.c?ts(\.map)?$/.test(f));
  if (files.length === 0) return "";
  const hash = createHash("sha256");
  for (const f of files)
    hash
      .update(`${relative(entry.dir, f)}\0`)
      .update(readFileSync(f))
      .update("\0");
  return hash.digest("hex");
}

function readStamps() {
  try {
    return JSON.parse(readFileSync(stampFile, "utf8"));
  } catch {
    return {};
  }
}

function runTsup(tsupBin, entry) {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [tsupBin, "--no-dts", "--no-clean", "--silent"], {
      cwd: entry.dir,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let output = "";
    child.stdout.on("data", (d) => {
      output += d;
    });
    child.stderr.on("data", (d) => {
      output += d;
    });
    child.on("error", (err) => resolve({ entry, ok: false, output: `${output}${err.message}\n` }));
    child.on("close", (code, signal) =>
      resolve({ entry, ok: code === 0, output: output || `tsup exited with ${signal ?? `code ${code}`}\n` }),
    );
  });
}

async function main() {
  const target = process.argv[2];
  if (!target) fail("usage: node tooling/build-js.mjs <workspace package name>, e.g. @bulwark/server");
  const started = Date.now();
  const closure = runtimeClosure(workspacePackages(), target).filter((e) =>
    existsSync(join(e.dir, "tsup.config.ts")),
  );
  const stamps = readStamps();
  // The hash is taken before the build: a source saved while it runs makes the next start rebuild.
  for (const e of closure) e.source = sourceHash(e);
  const stale = closure.filter((e) => {
    const s = stamps[e.name];
    return !s || s.source !== e.source || s.dist === "" || s.dist !== distState(e);
  });
  if (stale.length === 0) {
    process.stdout.write(`build: ${closure.length} packages up to date\n`);
    return;
  }
  process.stdout.write(
    `build: ${stale.length} of ${closure.length} packages (JavaScript only; \`pnpm build\` also writes type declarations)… `,
  );
  let tsupBin;
  try {
    const req = createRequire(join(root, "package.json"));
    const tsupPkg = req.resolve("tsup/package.json");
    const bin = JSON.parse(readFileSync(tsupPkg, "utf8")).bin;
    tsupBin = join(dirname(tsupPkg), typeof bin === "string" ? bin : bin.tsup);
  } catch {
    process.stdout.write("\n");
    fail("tsup is not installed: run `pnpm install` first");
  }
  const queue = [...stale];
  const results = [];
  const worker = async () => {
    for (let e = queue.shift(); e; e = queue.shift()) results.push(await runTsup(tsupBin, e));
  };
  await Promise.all(Array.from({ length: Math.min(availableParallelism(), queue.length) }, worker));
  const failed = results.filter((r) => !r.ok);
  for (const r of results) {
    if (r.ok) stamps[r.entry.name] = { source: r.entry.source, dist: distState(r.entry) };
    else delete stamps[r.entry.name];
  }
  mkdirSync(dirname(stampFile), { recursive: true });
  writeFileSync(stampFile, `${JSON.stringify(stamps, null, 2)}\n`);
  if (failed.length > 0) {
    process.stdout.write("failed\n");
    for (const r of failed)
      process.stderr.write(`\n${r.entry.name} (${relative(root, r.entry.dir)}):\n${r.output}`);
    fail(`${failed.map((r) => r.entry.name).join(", ")} failed to build (output above)`);
  }
  process.stdout.write(`done in ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
}

await main();

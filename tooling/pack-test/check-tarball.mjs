// Checks one packed tarball: node check-tarball.mjs <tgz> <package dir>. Prints a one-line summary
// on success; on failure every problem, and exits 1.
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";

const [tgz, dir] = process.argv.slice(2);
const problems = [];
const list = execFileSync("tar", ["-tzf", tgz], { encoding: "utf8" })
  .split("\n")
  .filter((f) => f !== "" && !f.endsWith("/"))
  .map((f) => f.replace(/^package\//, ""));
const files = new Set(list);
const read = (f) => execFileSync("tar", ["-xzOf", tgz, `package/${f}`]);
const pkg = JSON.parse(read("package.json").toString("utf8"));

// LICENSE: in every tarball, and the root's Apache-2.0 text unchanged.
if (!files.has("LICENSE"))
  problems.push("no LICENSE in the tarball (copy the root LICENSE into the package folder)");
else if (!read("LICENSE").equals(readFileSync("LICENSE")))
  problems.push(`${dir}/LICENSE differs from the root LICENSE: copy it again`);
if (!files.has("README.md")) problems.push("no README.md in the tarball");

// Metadata users and the registry page need.
if (pkg.license !== "Apache-2.0")
  problems.push(`license is ${JSON.stringify(pkg.license)}, expected "Apache-2.0"`);
if (pkg.repository?.directory !== dir || !/^git\+https:\/\//.test(pkg.repository?.url ?? ""))
  problems.push(`repository must be { type: "git", url: "git+https://…", directory: "${dir}" }`);
if (typeof pkg.homepage !== "string") problems.push("no homepage");
if (typeof pkg.bugs?.url !== "string") problems.push("no bugs.url");

// pnpm pack rewrites workspace: ranges; one left over cannot be installed from a registry.
for (const field of ["dependencies", "peerDependencies", "optionalDependencies"]) {
  for (const [name, range] of Object.entries(pkg[field] ?? {})) {
    if (String(range).startsWith("workspace:")) problems.push(`${field}.${name} is still ${range}`);
  }
}

// Every file the manifest points at is in the tarball (an unbuilt package fails here).
const targets = [];
const walk = (v) => {
  if (typeof v === "string") targets.push(v);
  else if (v && typeof v === "object") for (const x of Object.values(v)) walk(x);
};
walk(pkg.exports);
walk([pkg.main, pkg.module, pkg.types, pkg.bin]);
for (const t of new Set(targets)) {
  const f = join(t).replace(/^\.\//, "");
  if (!files.has(f))
    problems.push(`${t} (named in package.json) is not in the tarball: is the package built?`);
}

// Nothing but the build, the bin, the server's configs and the standard files.
const allowed = /^(dist\/|bin\/|config\/|LICENSE$|README\.md$|package\.json$|CHANGELOG\.md$)/;
for (const f of list) if (!allowed.test(f)) problems.push(`unexpected file in the tarball: ${f}`);

if (problems.length > 0) {
  for (const p of problems) console.log(p);
  process.exit(1);
}
const kib = Math.round(readFileSync(tgz).length / 1024);
console.log(`${list.length} files, ${kib} KiB, LICENSE, every exports/main/types/bin target present`);

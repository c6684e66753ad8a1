// `prepack` of every published package (run from the package's folder by npm and pnpm, for pack
// and publish): builds the package and the workspace packages it depends on, so a tarball never
// ships without its dist/. Refuses a real `npm pack`/`npm publish` of a package with workspace:
// dependencies: npm copies `workspace:*` into the tarball, which no registry install can resolve
// (pnpm replaces it with the version; `pnpm release` publishes through pnpm).
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";

const pkg = JSON.parse(readFileSync("package.json", "utf8"));
// biome-ignore lint/suspicious/noUndeclaredEnvVars: set by npm/pnpm for this lifecycle script, not a turbo task input
const agent = process.env.npm_config_user_agent ?? "";
// biome-ignore lint/suspicious/noUndeclaredEnvVars: set by npm/pnpm for this lifecycle script, not a turbo task input
const dryRun = process.env.npm_config_dry_run === "true";
const workspaceDeps = ["dependencies", "peerDependencies", "optionalDependencies"].flatMap((field) =>
  Object.entries(pkg[field] ?? {})
    .filter(([, range]) => String(range).startsWith("workspace:"))
    .map(([name]) => name),
);
if (agent.startsWith("npm/") && !dryRun && workspaceDeps.length > 0) {
  console.error(
    `${pkg.name}: npm would publish "workspace:" ranges for ${workspaceDeps.join(", ")}, which no install can resolve.\n` +
      "Pack with `pnpm pack` and publish with `pnpm release` (changeset publish through pnpm); " +
      "`npm pack --dry-run` still works for a look at the contents.",
  );
  process.exit(1);
}
// The build task depends on ^build, so turbo builds the dependencies first; cached builds are skipped.
const turbo = spawnSync("turbo", ["run", "build", `--filter=${pkg.name}`, "--output-logs=errors-only"], {
  stdio: "inherit",
  shell: process.platform === "win32",
});
if (turbo.error !== undefined) {
  console.error(
    `${pkg.name}: cannot run turbo (${turbo.error.message}): run \`pnpm install\` at the repository root`,
  );
  process.exit(1);
}
process.exit(turbo.status ?? 1);

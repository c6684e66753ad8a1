#!/usr/bin/env bash
# Self-test of tooling/build-js.mjs (what `pnpm start` builds, and what it skips), on a copy of it
# in a scratch workspace of three packages: app → lib (dependencies), app → dev (devDependencies
# only, so not built). Uses the repository's installed tsup. Run: bash tooling/build-js.selftest.sh
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(dirname "$here")"
fails=0
t="$(mktemp -d)"
trap 'rm -rf "$t"' EXIT

mkdir -p "$t/tooling" "$t/node_modules" "$t/packages"
cp "$here/build-js.mjs" "$t/tooling/"
mkdir -p "$t/tooling/tsconfig" && cp "$repo/tooling/tsconfig/tsup.base.ts" "$repo/tooling/tsconfig/base.json" "$t/tooling/tsconfig/"
ln -s "$repo/node_modules/tsup" "$t/node_modules/tsup"
printf '{ "name": "scratch", "private": true }\n' > "$t/package.json"
printf 'packages:\n  - "packages/*"\n' > "$t/pnpm-workspace.yaml"
pkg() { # pkg <name> <dependencies json> <devDependencies json>
  mkdir -p "$t/packages/$1/src"
  printf '{ "name": "%s", "type": "module", "dependencies": %s, "devDependencies": %s }\n' "$1" "$2" "$3" \
    > "$t/packages/$1/package.json"
  printf 'export default { entry: ["src/index.ts"], format: ["esm"], dts: true, clean: true };\n' \
    > "$t/packages/$1/tsup.config.ts"
  printf 'export const %s: string = "%s";\n' "$1" "$1" > "$t/packages/$1/src/index.ts"
}
pkg app '{ "lib": "workspace:*" }' '{ "dev": "workspace:*" }'
pkg lib '{}' '{}'
pkg dev '{}' '{}'

# run <name> <expected exit> <pattern the output must match>
run() {
  local out rc
  out="$(cd "$t" && node tooling/build-js.mjs app 2>&1)"
  rc=$?
  if [ "$rc" = "$2" ] && grep -q -- "$3" <<<"$out"; then
    echo "ok   $1"
  else
    echo "FAIL $1: exit $rc (want $2), output: $out"
    fails=$((fails + 1))
  fi
}
# expect <name> <test command...>
expect() {
  local name=$1; shift
  if "$@"; then echo "ok   $name"; else echo "FAIL $name"; fails=$((fails + 1)); fi
}

run "a first start builds the package and its runtime dependencies" 0 "^build: 2 of 2 packages .*done in"
expect "the JavaScript is there, no declarations" test -f "$t/packages/app/dist/index.js" -a ! -e "$t/packages/app/dist/index.d.ts"
expect "a devDependency is not built" test ! -e "$t/packages/dev/dist"
run "a second start builds nothing" 0 "^build: 2 packages up to date$"
echo 'export const more = 1;' >> "$t/packages/lib/src/index.ts"
run "a changed source rebuilds its package only" 0 "^build: 1 of 2 packages"
expect "the change is built" grep -q more "$t/packages/lib/dist/index.js"
printf 'export type Kept = 1;\n' > "$t/packages/app/dist/index.d.ts"
rm "$t/packages/app/dist/index.js"
run "a deleted dist file is rebuilt" 0 "^build: 1 of 2 packages"
expect "declarations a full build left stay (--no-clean)" test -f "$t/packages/app/dist/index.d.ts"
echo 'export const = ;' >> "$t/packages/lib/src/index.ts"
run "a syntax error fails the start and shows the error" 1 "Expected identifier"
run "a failed package is built again on the next start" 1 "^build: 1 of 2 packages"
sed -i '$d' "$t/packages/lib/src/index.ts"
run "once fixed it builds" 0 "^build: 1 of 2 packages .*done in"
(cd "$t" && node tooling/build-js.mjs nope >/dev/null 2>&1)
expect "an unknown package name fails" test $? = 1

echo "$fails self-test case(s) failed"
[ "$fails" = 0 ]

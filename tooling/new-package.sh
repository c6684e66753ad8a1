#!/usr/bin/env bash
# Scaffolds packages/<name>: package.json, tsconfig, tsup and vitest configs, src/index.ts, README.
# usage: tooling/new-package.sh <name> "<description>" [extra-entry ...]
set -euo pipefail
if [ "$#" -lt 2 ]; then
  echo "usage: tooling/new-package.sh <name> \"<description>\" [extra-entry ...]" >&2
  exit 2
fi
name=$1; desc=$2; shift 2
# Relative to the repository, wherever it is run from; never over an existing package (it rewrote
# package.json — dependencies, exports — and the configs of the package named).
cd "$(dirname "$0")/.."
dir="packages/$name"
if [ -e "$dir/package.json" ]; then
  echo "new-package.sh: $dir already exists (package.json); pick another name" >&2
  exit 1
fi
mkdir -p "$dir/src"
entries='"src/index.ts"'
exports='".": {
      "import": { "types": "./dist/index.d.ts", "default": "./dist/index.js" },
      "require": { "types": "./dist/index.d.cts", "default": "./dist/index.cjs" }
    }'
for e in "$@"; do
  entries="$entries, \"src/$e.ts\""
  exports="$exports,
    \"./$e\": {
      \"import\": { \"types\": \"./dist/$e.d.ts\", \"default\": \"./dist/$e.js\" },
      \"require\": { \"types\": \"./dist/$e.d.cts\", \"default\": \"./dist/$e.cjs\" }
    }"
done
cat > "$dir/package.json" <<JSON
{
  "name": "@bulwark/$name",
  "version": "0.1.0",
  "description": "$desc",
  "license": "Apache-2.0",
  "repository": {
    "type": "git",
    "url": "git+https://github.com/bulwark-dev/bulwark.git",
    "directory": "packages/$name"
  },
  "homepage": "https://github.com/bulwark-dev/bulwark/tree/main/packages/$name#readme",
  "bugs": { "url": "https://github.com/bulwark-dev/bulwark/issues" },
  "type": "module",
  "main": "./dist/index.cjs",
  "module": "./dist/index.js",
  "types": "./dist/index.d.ts",
  "exports": {
    $exports,
    "./package.json": "./package.json"
  },
  "files": ["dist"],
  "sideEffects": false,
  "engines": { "node": ">=22.12" },
  "scripts": {
    "build": "tsup",
    "prepack": "node ../../tooling/pack-test/prepack.mjs",
    "typecheck": "tsc -p tsconfig.json"
  },
  "dependencies": {},
  "devDependencies": {
    "@bulwark/tsconfig": "workspace:*"
  }
}
JSON
cat > "$dir/tsconfig.json" <<JSON
{
  "extends": "@bulwark/tsconfig/base.json",
  "include": ["src", "test", "*.config.ts"]
}
JSON
cat > "$dir/tsup.config.ts" <<TS
import { libraryConfig } from "../../tooling/tsconfig/tsup.base.js";

export default libraryConfig([$entries]);
TS
cat > "$dir/vitest.config.ts" <<TS
import { defineProject } from "vitest/config";

export default defineProject({
  test: {
    name: "$name",
    include: ["src/**/*.test.ts", "test/**/*.test.ts"],
    // Tests that start processes stop them after each test, timeouts included
    // (packages/core/test/support/processes.ts).
    setupFiles: ["../core/test/support/vitest-setup.ts"],
  },
});
TS
cp LICENSE "$dir/LICENSE"
[ -f "$dir/src/index.ts" ] || echo "export {};" > "$dir/src/index.ts"
for e in "$@"; do [ -f "$dir/src/$e.ts" ] || echo "export {};" > "$dir/src/$e.ts"; done

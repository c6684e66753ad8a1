#!/usr/bin/env bash
# Builds cloudhsm-sim (build/libcloudhsm-sim.so) and its C test program (build/sim-test).
# Idempotent: make rebuilds only what changed. `./build.sh test` also runs the C-level tests
# against a throw-away SoftHSM token (see test.sh).
#
# PKCS#11 headers: the OASIS v2.40 headers that pkcs11js ships (includes/pkcs11/), found through
# Node's module resolution from packages/seal-pkcs11 — present wherever `pnpm install` ran.
# PKCS11_INCLUDE=<dir> overrides.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"

if [ -z "${PKCS11_INCLUDE:-}" ]; then
  pkg="$(cd "$repo/packages/seal-pkcs11" && node -p "require('path').dirname(require.resolve('pkcs11js/package.json'))" 2>/dev/null || true)"
  if [ -n "$pkg" ] && [ -f "$pkg/includes/pkcs11/pkcs11.h" ]; then
    PKCS11_INCLUDE="$pkg/includes/pkcs11"
  else
    echo "cloudhsm-sim: PKCS#11 headers not found (pkcs11js is not installed: run pnpm install, or set PKCS11_INCLUDE)" >&2
    exit 1
  fi
fi
if ! command -v "${CC:-cc}" >/dev/null 2>&1; then
  echo "cloudhsm-sim: no C compiler (${CC:-cc}); install gcc and make" >&2
  exit 1
fi

make -s -C "$here" PKCS11_INCLUDE="$PKCS11_INCLUDE" all >&2

if [ "${1:-}" = "test" ]; then
  exec "$here/test.sh"
fi
echo "$here/build/libcloudhsm-sim.so"

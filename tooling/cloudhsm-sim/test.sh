#!/usr/bin/env bash
# Runs the C-level tests of cloudhsm-sim against a throw-away SoftHSM token directory.
# Exit status is the test program's (0 = all passed). Build first with ./build.sh.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
lib="$here/build/libcloudhsm-sim.so"
[ -x "$here/build/sim-test" ] && [ -f "$lib" ] || { echo "cloudhsm-sim: not built; run ./build.sh" >&2; exit 1; }
command -v softhsm2-util >/dev/null 2>&1 || { echo "cloudhsm-sim: softhsm2-util not found (run tooling/services/install.sh)" >&2; exit 1; }

dir="$(mktemp -d "${TMPDIR:-/tmp}/cloudhsm-sim-test-XXXXXX")"
trap 'rm -rf "$dir"' EXIT
mkdir -p "$dir/tokens"
printf 'directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n' \
  "$dir/tokens" > "$dir/softhsm2.conf"
export SOFTHSM2_CONF="$dir/softhsm2.conf"
password="Pw-$RANDOM$RANDOM"
softhsm2-util --init-token --free --label cavium --so-pin "so-$password" --pin "$password" >/dev/null
# A second token, so the slot map has more than one entry ("cavium" sorts first).
softhsm2-util --init-token --free --label zz-second --so-pin "so-$password" --pin "$password" >/dev/null
# The CU the emulated cluster knows: another user name with the right password is refused.
export CLOUDHSM_SIM_USER=crypto_user
"$here/build/sim-test" "$lib" cavium crypto_user "$password"

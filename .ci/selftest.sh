#!/usr/bin/env bash
# Self-test of .ci/run's exit status and closing `N passed, N failed` line, against a stub pnpm
# (nothing is installed, built or tested). Run: bash .ci/selftest.sh
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
real_node="$(command -v node)"
fails=0
unset FAIL_STEP REPORT UNIT_REPORT UNIT_FAIL_NODE REBUILD_FAIL_NODE NO_NODE SELFTEST PACKTEST

# check <name> <expected rc> <expected last line> [VAR=value ...]
check() {
  local name=$1 want_rc=$2 want_line=$3; shift 3
  local t; t="$(mktemp -d)"
  mkdir -p "$t/bin" "$t/repo/.ci"
  cp "$here/run" "$t/repo/.ci/run"
  # The stub pnpm logs each call with the node on PATH and the nodedir node-gyp gets. `pnpm test`
  # writes REPORT; `pnpm exec vitest` (the unit suites) writes UNIT_REPORT, or UNIT_FAIL_REPORT on
  # the line UNIT_FAIL_NODE; `pnpm rebuild` fails on the line REBUILD_FAIL_NODE.
  cat > "$t/bin/pnpm" <<STUB
#!/usr/bin/env bash
[ "\$1" = --version ] && { echo 12.4.2; exit 0; }
major="\$(node --version | sed 's/^v\([0-9]*\).*/\1/')"
echo "\$1 node=\$major nodedir=\${npm_config_nodedir##*/}" >> "$t/calls"
if [ "\$1" = "\${FAIL_STEP:-none}" ]; then echo "stub: pnpm \$1 failed" >&2; exit 1; fi
if [ "\$1" = rebuild ] && [ "\$major" = "\${REBUILD_FAIL_NODE:-none}" ]; then echo "stub: gyp ERR!" >&2; exit 1; fi
if [ "\$1" = test ]; then
  [ -n "\${REPORT:-}" ] && printf '%s' "\$REPORT" > "\$BULWARK_TEST_JSON"
  exit "\${TEST_RC:-0}"
fi
if [ "\$1" = exec ]; then
  if [ "\$major" = "\${UNIT_FAIL_NODE:-none}" ]; then
    printf '%s' "\$UNIT_FAIL_REPORT" > "\$BULWARK_TEST_JSON"; exit 1
  fi
  [ -n "\${UNIT_REPORT:-}" ] && printf '%s' "\$UNIT_REPORT" > "\$BULWARK_TEST_JSON"
  exit 0
fi
exit 0
STUB
  chmod +x "$t/bin/pnpm"
  mkdir -p "$t/repo/tooling/services"
  # Stand-ins for the Node lines install.sh leaves in .bin/node-<major>: the machine's node,
  # answering --version as that line.
  local major
  for major in 22 24 26; do
    [ "${NO_NODE:-none}" = "$major" ] && continue
    mkdir -p "$t/repo/tooling/services/.bin/node-$major/bin"
    printf '#!/bin/sh\n[ "$1" = --version ] && { echo v%s.1.0; exit 0; }\nexec %s "$@"\n' "$major" "$real_node" \
      > "$t/repo/tooling/services/.bin/node-$major/bin/node"
    chmod +x "$t/repo/tooling/services/.bin/node-$major/bin/node"
  done
  printf '#!/usr/bin/env bash\n[ "${FAIL_SERVICES:-0}" = 1 ] && { echo "stub: install.sh failed" >&2; exit 1; }\nexit 0\n' \
    > "$t/repo/tooling/services/install.sh"
  # A stand-in for one of the scripts' self-tests .ci/run runs at the end (the others are absent).
  if [ -n "${SELFTEST:-}" ]; then
    printf '#!/usr/bin/env bash\necho "stub self-test"\nexit %s\n' "$SELFTEST" > "$t/repo/tooling/build-js.selftest.sh"
  fi
  # A stand-in for the pack test: PACKTEST="<ok lines> <FAIL lines> <exit>".
  if [ -n "${PACKTEST:-}" ]; then
    mkdir -p "$t/repo/tooling/pack-test"
    read -r p_ok p_fail p_rc <<<"$PACKTEST"
    { echo '#!/usr/bin/env bash'
      for _ in $(seq 1 "$p_ok"); do echo 'echo "ok   a check"'; done
      for _ in $(seq 1 "$p_fail"); do echo 'echo "FAIL a check"'; done
      echo "exit $p_rc"; } > "$t/repo/tooling/pack-test/run.sh"
  fi
  env "$@" PATH="$t/bin:$PATH" bash "$t/repo/.ci/run" > "$t/out" 2>&1
  local rc=$? line; line="$(tail -n 1 "$t/out")"
  local calls=""; [ -f "$t/calls" ] && calls="$(tr '\n' ';' < "$t/calls")"
  if [ "$rc" != "$want_rc" ] || [ "$line" != "$want_line" ]; then
    echo "FAIL $name: rc=$rc (want $want_rc), last line '$line' (want '$want_line')"
    fails=$((fails + 1))
  elif [ -n "${want_calls:-}" ] && [ "$calls" != "${want_calls#none}" ]; then
    echo "FAIL $name: pnpm calls '$calls' (want '$want_calls')"
    fails=$((fails + 1))
  else
    echo "ok   $name"
  fi
  rm -rf "$t"
}

report() { # total passed failed pending todo testResults
  printf '{"numTotalTests":%s,"numPassedTests":%s,"numFailedTests":%s,"numPendingTests":%s,"numTodoTests":%s,"testResults":%s}' "$@"
}
ok_file='[{"status":"passed","assertionResults":[{"status":"passed"},{"status":"passed"}]}]'
# Two files whose tests passed but whose afterAll hook failed (vitest exits 1).
hook_failed='[{"status":"failed","assertionResults":[{"status":"passed"}]},{"status":"failed","assertionResults":[{"status":"passed"}]}]'
# One file that failed to import (no tests) next to a passing one.
import_failed='[{"status":"failed","assertionResults":[]},{"status":"passed","assertionResults":[{"status":"passed"}]}]'

# Each run: `pnpm test` on node 26 (REPORT), then the unit suites on 22 and 24 (UNIT_REPORT, 3
# passed each unless said otherwise); the closing line sums all three.
unit3="$(report 3 3 0 0 0 "$ok_file")"
export UNIT_REPORT="$unit3"
check "all passed" 0 "8 passed, 0 failed" REPORT="$(report 2 2 0 0 0 "$ok_file")"
check "a failed test" 1 "7 passed, 1 failed" REPORT="$(report 2 1 1 0 0 "$ok_file")" TEST_RC=1
check "a skipped test" 1 "7 passed, 1 failed" REPORT="$(report 2 1 0 1 0 "$ok_file")"
check "a todo test" 1 "7 passed, 1 failed" REPORT="$(report 2 1 0 0 1 "$ok_file")"
check "a file that failed to import" 1 "7 passed, 1 failed" REPORT="$(report 1 1 0 0 0 "$import_failed")" TEST_RC=1
check "two files whose hooks failed" 1 "8 passed, 2 failed" REPORT="$(report 2 2 0 0 0 "$hook_failed")" TEST_RC=1
check "an unhandled error outside tests" 1 "8 passed, 1 failed" REPORT="$(report 2 2 0 0 0 "$ok_file")" TEST_RC=1
check "no test ran" 1 "6 passed, 1 failed" REPORT="$(report 0 0 0 0 0 '[]')"
check "no report, exit 0" 1 "6 passed, 1 failed"
check "a truncated report" 1 "6 passed, 1 failed" REPORT='{"numTotalTests":2,"numPa' TEST_RC=1
# node-gyp builds pkcs11js during pnpm install: the toolchain install.sh provides must come first.
check "tooling/services/install.sh fails (before pnpm install)" 1 "0 passed, 1 failed" FAIL_SERVICES=1 REPORT="$(report 2 2 0 0 0 "$ok_file")"
check "pnpm install fails" 1 "0 passed, 1 failed" FAIL_STEP=install
check "build fails" 1 "0 passed, 1 failed" FAIL_STEP=build
check "lint fails" 1 "0 passed, 1 failed" FAIL_STEP=lint
check "typecheck fails" 1 "0 passed, 1 failed" FAIL_STEP=typecheck

# The Node lines: everything up to the full suite on 26 (node first on PATH, its headers for
# node-gyp), then per other line pkcs11js compiled by it and the unit suites, then pkcs11js for 26.
ok2="$(report 2 2 0 0 0 "$ok_file")"
want_calls="install node=26 nodedir=node-26;build node=26 nodedir=node-26;lint node=26 nodedir=node-26;typecheck node=26 nodedir=node-26;test node=26 nodedir=node-26;rebuild node=22 nodedir=node-22;exec node=22 nodedir=node-22;rebuild node=24 nodedir=node-24;exec node=24 nodedir=node-24;rebuild node=26 nodedir=node-26;" \
  check "each step runs on its node line, with that line's headers" 0 "8 passed, 0 failed" REPORT="$ok2"
check "a unit suite failing on node 22 fails the run, counted in the sum" 1 "7 passed, 1 failed" REPORT="$ok2" \
  UNIT_FAIL_NODE=22 UNIT_FAIL_REPORT="$(report 3 2 1 0 0 "$ok_file")"
check "unit suites that write no report on node 24 count as a failure" 1 "5 passed, 1 failed" REPORT="$ok2" \
  UNIT_FAIL_NODE=24 UNIT_FAIL_REPORT=""
check "pkcs11js failing to compile for node 24 fails the run" 1 "8 passed, 1 failed" REPORT="$ok2" REBUILD_FAIL_NODE=24
NO_NODE=22 check "a missing unit-suite node line fails the run, the others still run" 1 "5 passed, 1 failed" REPORT="$ok2"
NO_NODE=26 want_calls=none check "a missing active-LTS node line fails before pnpm install" 1 "0 passed, 1 failed" REPORT="$ok2"

# The pack test (on node 26, after the full suite): each ok/FAIL line is one test.
PACKTEST="4 0 0" check "the pack test's ok lines count as passed tests" 0 "12 passed, 0 failed" REPORT="$ok2"
PACKTEST="3 2 1" check "the pack test's FAIL lines count as failed tests" 1 "11 passed, 2 failed" REPORT="$ok2"
PACKTEST="2 0 1" check "a pack test that exits non-zero without a FAIL line fails the run" 1 "10 passed, 1 failed" REPORT="$ok2"
PACKTEST="0 0 0" check "a pack test that ran no check fails the run" 1 "8 passed, 1 failed" REPORT="$ok2"

# The scripts' self-tests run last, one test each.
SELFTEST=0 check "a passing script self-test counts as one passed test" 0 "9 passed, 0 failed" REPORT="$ok2"
SELFTEST=1 check "a failing script self-test fails the run" 1 "8 passed, 1 failed" REPORT="$ok2"

echo "$fails self-test case(s) failed"
[ "$fails" = 0 ]

#!/usr/bin/env bash
# Self-test of .ci/run's exit status and closing `N passed, N failed` line, against a stub pnpm
# (nothing is installed, built or tested). Run: bash .ci/selftest.sh
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
fails=0

# check <name> <expected rc> <expected last line> [VAR=value ...]
check() {
  local name=$1 want_rc=$2 want_line=$3; shift 3
  local t; t="$(mktemp -d)"
  mkdir -p "$t/bin" "$t/repo/.ci"
  cp "$here/run" "$t/repo/.ci/run"
  cat > "$t/bin/pnpm" <<'STUB'
#!/usr/bin/env bash
[ "$1" = --version ] && { echo 12.4.2; exit 0; }
if [ "$1" = "${FAIL_STEP:-none}" ]; then echo "stub: pnpm $1 failed" >&2; exit 1; fi
if [ "$1" = test ]; then
  [ -n "${REPORT:-}" ] && printf '%s' "$REPORT" > "$BULWARK_TEST_JSON"
  exit "${TEST_RC:-0}"
fi
exit 0
STUB
  chmod +x "$t/bin/pnpm"
  mkdir -p "$t/repo/tooling/services"
  printf '#!/usr/bin/env bash\n[ "${FAIL_SERVICES:-0}" = 1 ] && { echo "stub: install.sh failed" >&2; exit 1; }\nexit 0\n' \
    > "$t/repo/tooling/services/install.sh"
  env "$@" PATH="$t/bin:$PATH" bash "$t/repo/.ci/run" > "$t/out" 2>&1
  local rc=$? line; line="$(tail -n 1 "$t/out")"
  if [ "$rc" = "$want_rc" ] && [ "$line" = "$want_line" ]; then
    echo "ok   $name"
  else
    echo "FAIL $name: rc=$rc (want $want_rc), last line '$line' (want '$want_line')"
    fails=$((fails + 1))
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

check "all passed" 0 "2 passed, 0 failed" REPORT="$(report 2 2 0 0 0 "$ok_file")"
check "a failed test" 1 "1 passed, 1 failed" REPORT="$(report 2 1 1 0 0 "$ok_file")" TEST_RC=1
check "a skipped test" 1 "1 passed, 1 failed" REPORT="$(report 2 1 0 1 0 "$ok_file")"
check "a todo test" 1 "1 passed, 1 failed" REPORT="$(report 2 1 0 0 1 "$ok_file")"
check "a file that failed to import" 1 "1 passed, 1 failed" REPORT="$(report 1 1 0 0 0 "$import_failed")" TEST_RC=1
check "two files whose hooks failed" 1 "2 passed, 2 failed" REPORT="$(report 2 2 0 0 0 "$hook_failed")" TEST_RC=1
check "an unhandled error outside tests" 1 "2 passed, 1 failed" REPORT="$(report 2 2 0 0 0 "$ok_file")" TEST_RC=1
check "no test ran" 1 "0 passed, 1 failed" REPORT="$(report 0 0 0 0 0 '[]')"
check "no report, exit 0" 1 "0 passed, 1 failed"
check "a truncated report" 1 "0 passed, 1 failed" REPORT='{"numTotalTests":2,"numPa' TEST_RC=1
# node-gyp builds pkcs11js during pnpm install: the toolchain install.sh provides must come first.
check "tooling/services/install.sh fails (before pnpm install)" 1 "0 passed, 1 failed" FAIL_SERVICES=1 REPORT="$(report 2 2 0 0 0 "$ok_file")"
check "pnpm install fails" 1 "0 passed, 1 failed" FAIL_STEP=install
check "build fails" 1 "0 passed, 1 failed" FAIL_STEP=build
check "lint fails" 1 "0 passed, 1 failed" FAIL_STEP=lint
check "typecheck fails" 1 "0 passed, 1 failed" FAIL_STEP=typecheck

echo "$fails self-test case(s) failed"
[ "$fails" = 0 ]

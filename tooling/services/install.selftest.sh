#!/usr/bin/env bash
# Self-test of install.sh's decisions (what it reinstalls, how it copes with a flaky network),
# run on a copy of it with stub apt-get/dpkg/go: nothing is installed. Needs the real services
# installed (tooling/services/.bin, SoftHSM2) to copy from. Run: bash tooling/services/install.selftest.sh
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
real_go="$(command -v go || echo /usr/local/go/bin/go)"
fails=0
# Each case says whether it runs in CI: the caller's CI (or BULWARK_NODE_LINES) must not leak in.
unset CI BULWARK_NODE_LINES

# check <name> <setup: function name> <grep pattern the log must match, or "none"> [VAR=value ...]
check() {
  local name=$1 setup=$2 want=$3; shift 3
  local t; t="$(mktemp -d)"
  mkdir -p "$t/svc/.bin" "$t/stub"
  cp "$here/install.sh" "$t/svc/install.sh"
  # The hvac venv as installed (a real pip install per case would hit the network): every case
  # starts with it in place.
  ln -s "$here/.venv" "$t/svc/.venv"
  : > "$t/log"
  cat > "$t/stub/apt-get" <<STUB
#!/usr/bin/env bash
echo "apt-get \$*" >> "$t/log"
case " \$* " in
  *" update "*) if [ "\${APT_FLAKY:-0}" = 1 ] && [ ! -e "$t/flaked" ]; then touch "$t/flaked"; echo "E: network hiccup" >&2; exit 100; fi ;;
  *" download "*) touch consul_1.8.7+dfsg1-2_amd64.deb ;;
esac
exit 0
STUB
  cat > "$t/stub/dpkg" <<STUB
#!/usr/bin/env bash
[ "\$1" = -x ] || exec /usr/bin/dpkg "\$@"
mkdir -p "\$3/usr/bin" && printf '#!/bin/sh\necho "Consul v1.8.7"\n' > "\$3/usr/bin/consul"
STUB
  cat > "$t/stub/go" <<STUB
#!/usr/bin/env bash
if [ "\$1" = install ]; then echo "go \$*" >> "$t/log"; cp "$here/.bin/local-kms" "\$GOBIN/local-kms"; exit 0; fi
exec "$real_go" "\$@"
STUB
  # npm pack of node-linux-<arch>@<version>: a tarball whose bin/node prints that version.
  cat > "$t/stub/npm" <<STUB
#!/usr/bin/env bash
echo "npm \$*" >> "$t/log"
[ "\$1" = pack ] || exit 0
if [ "\${NPM_FLAKY:-0}" = 1 ] && [ ! -e "$t/npm-flaked" ]; then touch "$t/npm-flaked"; echo "npm error network" >&2; exit 1; fi
spec="\${*: -1}"; v="\${spec##*@}"
mkdir -p pkg/package/bin pkg/package/include/node
printf '#!/bin/sh\necho v%s\n' "\$v" > pkg/package/bin/node && chmod +x pkg/package/bin/node
: > pkg/package/include/node/node.h
tar -czf "\${spec%@*}-\$v.tgz" -C pkg package && rm -rf pkg
STUB
  # python3 -m venv <dir>: a venv whose python answers the version check from <dir>/hvac-version and
  # logs pip installs (writing that file). Fails until python3-venv was apt-installed when
  # VENV_NEEDS_APT=1 (Debian without python3-venv).
  cat > "$t/stub/python3" <<STUB
#!/usr/bin/env bash
[ "\$1 \$2" = "-m venv" ] || { echo "python3 stub: unexpected python3 \$*" >&2; exit 1; }
if [ "\${VENV_NEEDS_APT:-0}" = 1 ] && ! grep -q "install .*python3-venv" "$t/log"; then echo "ensurepip is not available" >&2; exit 1; fi
mkdir -p "\$3/bin"
cat > "\$3/bin/python" <<'PY'
#!/usr/bin/env bash
v="\$(dirname "\$0")/../hvac-version"
case "\$1" in
  -c) [ -f "\$v" ] && cat "\$v" || exit 1 ;;
  -m) echo "pip \$*" >> "$t/log"; echo "\${*: -1}" | sed 's/^hvac==//' > "\$v" ;;
esac
PY
chmod +x "\$3/bin/python"
STUB
  chmod +x "$t/stub/"*
  "$setup" "$t/svc/.bin"
  [ "${no_go_stub:-0}" = 1 ] && rm "$t/stub/go"
  if [ "${not_root:-0}" = 1 ]; then
    printf '#!/bin/sh\n[ "$1" = -u ] && { echo 1000; exit 0; }\nexec /usr/bin/id "$@"\n' > "$t/stub/id"
    printf '#!/bin/sh\necho "sudo: a password is required" >&2\nexit 1\n' > "$t/stub/sudo"
    chmod +x "$t/stub/id" "$t/stub/sudo"
  fi
  env "$@" BULWARK_RETRY_DELAY=0 PATH="$t/stub:${base_path:-$PATH}" bash "$t/svc/install.sh" > "$t/out" 2>&1
  local rc=$?
  if [ "$rc" != "${want_rc:-0}" ]; then
    echo "FAIL $name: exit $rc (want ${want_rc:-0}): $(tail -n 3 "$t/out")"; fails=$((fails + 1))
  elif [ "$want" = none ] && [ -s "$t/log" ]; then
    echo "FAIL $name: expected no install, ran: $(tr '\n' ';' < "$t/log")"; fails=$((fails + 1))
  elif [ "$want" != none ] && ! grep -q -- "$want" "$t/log"; then
    echo "FAIL $name: expected '$want', ran: $(tr '\n' ';' < "$t/log")"; fails=$((fails + 1))
  elif [ "${nodes_after:-0}" = 1 ] && ! all_node_lines_ok "$t/svc/.bin"; then
    echo "FAIL $name: afterwards: $(for v in $node_versions; do printf '%s ' "node-${v%%.*}=$("$t/svc/.bin/node-${v%%.*}/bin/node" --version 2>&1)"; done)"
    fails=$((fails + 1))
  else
    echo "ok   $name"
  fi
  rm -rf "$t"
}

# Consul prints its version, then more lines: a check that stops reading after the first line
# must not take the SIGPIPE that follows for a broken binary.
two_line_consul() {
  printf '#!/bin/sh\necho "Consul v1.8.7"\nsleep 0.2\necho "Protocol 2 spoken by default"\n' > "$1/consul"
  chmod +x "$1/consul"
  cp "$here/.bin/local-kms" "$1/local-kms"
}
installed() { ln -s "$here/.bin/consul" "$1/consul"; cp "$here/.bin/local-kms" "$1/local-kms"; ln -s "$here/.bin/bao" "$1/bao"; }
truncated_kms() { ln -s "$here/.bin/consul" "$1/consul"; head -c 4096 "$here/.bin/local-kms" > "$1/local-kms"; chmod +x "$1/local-kms"; }
other_kms() { ln -s "$here/.bin/consul" "$1/consul"; cp "$real_go" "$1/local-kms"; }
no_consul() { cp "$here/.bin/local-kms" "$1/local-kms"; }
# Stand-ins for the pinned Node lines (bin/node printing the version, the headers), as install.sh
# leaves them; node_line <bin> <version> [printed version].
node_versions="$(sed -n 's/^NODE_VERSIONS="\(.*\)"$/\1/p' "$here/install.sh")"
node_line() {
  mkdir -p "$1/node-${2%%.*}/bin" "$1/node-${2%%.*}/include/node"
  printf '#!/bin/sh\necho v%s\n' "${3:-$2}" > "$1/node-${2%%.*}/bin/node"
  chmod +x "$1/node-${2%%.*}/bin/node"
  : > "$1/node-${2%%.*}/include/node/node.h"
}
all_node_lines_ok() {
  local v
  for v in $node_versions; do
    [ "$("$1/node-${v%%.*}/bin/node" --version 2>/dev/null)" = "v$v" ] && [ -f "$1/node-${v%%.*}/include/node/node.h" ] || return 1
  done
}
with_node_lines() { installed "$1"; for v in $node_versions; do node_line "$1" "$v"; done; }
one_node_line_missing() { with_node_lines "$1"; rm -rf "$1/node-${node_versions%%.*}"; }
other_node_version() { with_node_lines "$1"; local v="${node_versions##* }"; node_line "$1" "$v" "${v%%.*}.0.0"; }
headerless_node_line() { with_node_lines "$1"; rm -rf "$1/node-${node_versions%%.*}/include"; }

check "a re-run with everything installed installs nothing" installed none
check "a consul that prints more than its version line is not reinstalled" two_line_consul none
check "a truncated local-kms binary is reinstalled" truncated_kms "go install"
check "a local-kms binary that is not the pinned module is reinstalled" other_kms "go install"
check "a failed apt-get update (network hiccup) is retried" no_consul "apt-get.* download" APT_FLAKY=1

# hvac's venv (tooling/services/.venv): rebuilt when missing or of another hvac; Debian's missing
# python3-venv is installed; a venv that cannot be made warns outside CI and fails in CI.
hvac_version="$(sed -n 's/^HVAC_VERSION="\(.*\)"$/\1/p' "$here/install.sh")"
no_venv() { installed "$1"; rm "$(dirname "$1")/.venv"; }
other_hvac() { no_venv "$1"; mkdir -p "$(dirname "$1")/.venv/bin"; printf '#!/bin/sh\necho 2.3.0\n' > "$(dirname "$1")/.venv/bin/python"; chmod +x "$(dirname "$1")/.venv/bin/python"; }
check "a missing hvac venv is made, hvac pinned" no_venv "pip -m pip install .*hvac==$hvac_version"
check "a venv with another hvac is rebuilt" other_hvac "pip -m pip install .*hvac==$hvac_version"
check "python3 -m venv failing (no python3-venv): the package is installed, then the venv" no_venv "pip -m pip install" VENV_NEEDS_APT=1
not_root=1 check "not root, outside CI: no venv possible warns, installs nothing" no_venv none VENV_NEEDS_APT=1 CI=
no_venv_with_node_lines() { with_node_lines "$1"; rm "$(dirname "$1")/.venv"; }
not_root=1 want_rc=1 check "not root, in CI: no venv possible fails the install" no_venv_with_node_lines none VENV_NEEDS_APT=1 CI=true

# A PATH of everything in the system's bin directories except the given commands.
bare_path() {
  local d; d="$(mktemp -d)"
  for f in /usr/local/sbin/* /usr/local/bin/* /usr/sbin/* /usr/bin/* /sbin/* /bin/*; do
    local n; n="$(basename "$f")"
    case " $* " in *" $n "*) continue ;; esac
    [ -e "$d/$n" ] || ln -s "$f" "$d/$n"
  done
  echo "$d"
}
nogo="$(bare_path go)"
base_path="$nogo" no_go_stub=1 check "a go installed in /usr/local/go but not on PATH is found" installed none
notools="$(bare_path go cc gcc c++ g++ make)"
base_path="$notools" check "a missing C toolchain (pkcs11js, cloudhsm-sim) is installed" installed "install -y -qq gcc g++ make"
rm -rf "$nogo" "$notools"

# pnpm test on a developer's machine (not root, no passwordless sudo): a missing service is left
# out with a warning (its suites skip with the reason) instead of failing every test; CI fails.
notools="$(bare_path go cc gcc c++ g++ make)"
base_path="$notools" not_root=1 check "not root, outside CI: a missing C toolchain is skipped with a warning" installed none CI=
base_path="$notools" not_root=1 want_rc=1 check "not root, in CI: a missing C toolchain fails the install" installed none CI=true
rm -rf "$notools"
# Debian 12 has no consul: bullseye's .deb is fetched through apt sources of its own (signed by the
# Debian archive keyring), never by adding bullseye to the machine's sources (on Ubuntu, without
# that keyring, the added source broke every later apt-get update on the machine).
check "consul is fetched through its own apt sources" no_consul "Dir::Etc::SourceList=.* download"
not_root=1 check "not root: consul is still fetched (it needs no root)" no_consul "download"

# The Node lines CI tests on (.ci/run): from the npm package node-linux-<arch>, pinned, only in CI
# or when asked; a developer's pnpm test does not fetch them.
[ -n "$node_versions" ] || { echo "FAIL no NODE_VERSIONS line in install.sh"; fails=$((fails + 1)); }
check "outside CI and unasked, no node line is fetched" installed none CI= BULWARK_NODE_LINES=
nodes_after=1 check "in CI, the node lines are fetched from npm (node-linux-<arch>)" installed "npm pack .*node-linux-.*@${node_versions%% *}" CI=true
nodes_after=1 check "asked for (BULWARK_NODE_LINES=1), the node lines are fetched" installed "npm pack .*node-linux-" CI= BULWARK_NODE_LINES=1
check "a re-run with the node lines installed fetches nothing" with_node_lines none CI=true
nodes_after=1 check "a missing node line is fetched" one_node_line_missing "npm pack .*@${node_versions%% *}" CI=true
nodes_after=1 check "a node line of another version is replaced" other_node_version "npm pack .*@${node_versions##* }" CI=true
nodes_after=1 check "a node line without its headers (node-gyp needs them) is replaced" headerless_node_line "npm pack .*@${node_versions%% *}" CI=true
nodes_after=1 check "a failed npm pack (network hiccup) is retried" one_node_line_missing "npm pack" CI=true NPM_FLAKY=1

echo "$fails self-test case(s) failed"
[ "$fails" = 0 ]

#!/usr/bin/env bash
# Installs the services the test suites talk to, when they are missing:
#   - SoftHSM2 2.6 (Debian package softhsm2)           → PKCS#11 seal tests
#   - Consul 1.8.7 (Debian bullseye's consul .deb, extracted into tooling/services/.bin)
#   - local-kms (Go module, pinned, built into tooling/services/.bin) → AWS KMS seal tests
#   - OpenBao 2.6.2 (bao, from ../shared/tools/openbao, into tooling/services/.bin) → the bao CLI e2e
#   - hvac 2.4.0 (Python's Vault client, pip, in the venv tooling/services/.venv) → the hvac suite
# Idempotent; used by .ci/run and by developers. Needs root (or passwordless sudo) for apt: without
# it, outside CI a missing package is left out with a warning (its suites skip with the reason), in CI
# (CI=true) the install fails.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
bin="$here/.bin"
mkdir -p "$bin"
LOCAL_KMS_VERSION="v0.0.0-20260228092603-2a5e92d09ab6"
CONSUL_VERSION="1.8.7"

# Network steps are retried (a mirror or proxy hiccup must not fail CI), and apt waits for a lock
# held by another apt/dpkg (unattended-upgrades on a fresh machine) instead of failing at once.
retry() {
  local n=1 delay="${BULWARK_RETRY_DELAY:-5}"
  until "$@"; do
    if [ "$n" -ge 4 ]; then
      echo "install.sh: failed $n times, giving up: $*" >&2
      return 1
    fi
    echo "install.sh: failed (attempt $n), retrying in $((delay * n))s: $*" >&2
    sleep $((delay * n))
    n=$((n + 1))
  done
}
sudo=()
if [ "$(id -u)" != 0 ] && command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then sudo=(sudo -n); fi
apt_get() { "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 "$@"; }
# want_apt <what>: succeeds when apt can install <what> here; otherwise fails the install in CI and
# elsewhere warns and returns 1 (pnpm test then runs, and the suites that need <what> skip).
want_apt() {
  if command -v apt-get >/dev/null 2>&1 && { [ "$(id -u)" = 0 ] || [ "${#sudo[@]}" -gt 0 ]; }; then return 0; fi
  local why="installing $1 needs apt-get run as root (or passwordless sudo)"
  if [ "${CI:-}" = true ]; then
    echo "install.sh: $why" >&2
    exit 1
  fi
  echo "install.sh: skipping $1: $why; the tests that need it skip" >&2
  return 1
}

apt_ready=0
apt_update() {
  if [ "$apt_ready" = 0 ]; then
    retry apt_get update -qq
    apt_ready=1
  fi
}

# A C/C++ toolchain and Python: node-gyp compiles pkcs11js in `pnpm install`, and the cloudhsm-sim
# suites build tooling/cloudhsm-sim with cc and make. A fresh machine may have neither.
missing=()
for tool in cc:gcc c++:g++ make:make python3:python3; do
  command -v "${tool%%:*}" >/dev/null 2>&1 || missing+=("${tool##*:}")
done
if [ "${#missing[@]}" -gt 0 ] && want_apt "${missing[*]}"; then
  echo "installing ${missing[*]}"
  apt_update
  DEBIAN_FRONTEND=noninteractive retry apt_get install -y -qq "${missing[@]}" >/dev/null
fi

if { ! command -v softhsm2-util >/dev/null 2>&1 || [ ! -e /usr/lib/softhsm/libsofthsm2.so ]; } && want_apt softhsm2; then
  echo "installing softhsm2"
  apt_update
  DEBIAN_FRONTEND=noninteractive retry apt_get install -y -qq softhsm2 >/dev/null
fi

# The version is read in full before it is matched: `consul version | grep -q` under pipefail fails
# now and then (grep exits at the first line, consul takes SIGPIPE writing the next) and reinstalled
# a working consul, which needs root and the network.
consul_version() { "$bin/consul" version 2>/dev/null | head -n 1 || true; }
if [ ! -x "$bin/consul" ] || [ "$(consul_version)" != "Consul v$CONSUL_VERSION" ]; then
  # Debian 12 ships no consul; bullseye does. Its .deb is fetched through apt sources and lists of
  # its own in a temp dir (signatures checked against the Debian archive keyring; no root needed):
  # the machine's apt sources are left alone (a bullseye line added there broke every later apt-get
  # update on a machine without that keyring, e.g. Ubuntu).
  keyring=/usr/share/keyrings/debian-archive-keyring.gpg
  if [ ! -f "$keyring" ] && want_apt debian-archive-keyring; then
    apt_update
    DEBIAN_FRONTEND=noninteractive retry apt_get install -y -qq debian-archive-keyring >/dev/null
  fi
  if [ -f "$keyring" ]; then
    echo "installing consul $CONSUL_VERSION (Debian bullseye package, extracted)"
    work="$(mktemp -d)"
    mkdir -p "$work/lists/partial" "$work/cache/archives/partial"
    echo "deb [signed-by=$keyring] http://deb.debian.org/debian bullseye main" > "$work/sources.list"
    own=(-o "Dir::Etc::SourceList=$work/sources.list" -o "Dir::Etc::SourceParts=$work/none"
      -o "Dir::State::Lists=$work/lists" -o "Dir::Cache=$work/cache")
    # As root apt fetches as _apt, which cannot enter the private temp dir.
    [ "$(id -u)" = 0 ] && own+=(-o APT::Sandbox::User=root)
    retry apt-get "${own[@]}" update -qq
    (cd "$work" && retry apt-get "${own[@]}" download -qq "consul=$CONSUL_VERSION*" >/dev/null && dpkg -x consul_*.deb root)
    install -m 0755 "$work/root/usr/bin/consul" "$bin/consul"
    rm -rf "$work"
  fi
fi

# Go builds local-kms (and reads the module version back from the binary). The official tarball
# puts it in /usr/local/go/bin, which a non-login shell often lacks on PATH; else Debian's golang-go
# (local-kms asks for go 1.20; 1.19's go line is advisory).
if ! command -v go >/dev/null 2>&1; then
  if [ -x /usr/local/go/bin/go ]; then
    PATH="/usr/local/go/bin:$PATH"
  elif want_apt golang-go; then
    echo "installing golang-go"
    apt_update
    DEBIAN_FRONTEND=noninteractive retry apt_get install -y -qq golang-go >/dev/null
  fi
fi

# The binary records the module it was built from: one of another version (the pin moved) or a
# broken one (a copy cut short) is rebuilt; a check by existence alone kept either for good.
kms_module() { go version -m "$bin/local-kms" 2>/dev/null | awk '$1 == "mod" { print $2 "@" $3 }' || true; }
if ! command -v go >/dev/null 2>&1; then
  [ -x "$bin/local-kms" ] || echo "install.sh: skipping local-kms: no go to build it; the tests that need it skip" >&2
elif [ ! -x "$bin/local-kms" ] || [ "$(kms_module)" != "github.com/nsmithuk/local-kms@$LOCAL_KMS_VERSION" ]; then
  echo "installing local-kms $LOCAL_KMS_VERSION (go install)"
  GOBIN="$bin" GOFLAGS=-mod=mod retry go install "github.com/nsmithuk/local-kms@$LOCAL_KMS_VERSION"
fi

# The Node lines CI tests on (.ci/run: the full suite on the active LTS, the unit suites on the
# others), each into .bin/node-<major>: the official binary and its headers from the npm package
# node-linux-<arch> (a registry package, so no download from outside the registry; node-gyp needs
# the headers to compile pkcs11js for that line: npm_config_nodedir=.bin/node-<major>). Pinned; a
# copy whose node is not the pinned version, or that lacks the headers, is replaced. In CI, or when
# asked (BULWARK_NODE_LINES=1): a developer's `pnpm test` runs on the node they have.
NODE_VERSIONS="26.12.1 24.22.3 22.23.5"
node_line_ok() { [ -f "$1/include/node/node.h" ] && [ "$("$1/bin/node" --version 2>/dev/null)" = "v$2" ]; }
if [ "${CI:-}" = true ] || [ "${BULWARK_NODE_LINES:-}" = 1 ]; then
  case "$(uname -m)" in
    x86_64 | amd64) node_arch=x64 ;;
    aarch64 | arm64) node_arch=arm64 ;;
    *) node_arch="$(uname -m)" ;;
  esac
  for v in $NODE_VERSIONS; do
    dir="$bin/node-${v%%.*}"
    node_line_ok "$dir" "$v" && continue
    if ! command -v npm >/dev/null 2>&1; then
      echo "install.sh: installing node $v needs npm (any node line) on PATH" >&2
      exit 1
    fi
    echo "installing node $v (npm package node-linux-$node_arch)"
    work="$(mktemp -d)"
    (cd "$work" && retry npm pack --silent "node-linux-$node_arch@$v" >/dev/null)
    mkdir "$work/node"
    tar -xzf "$work"/node-linux-*.tgz -C "$work/node" --strip-components=1
    if ! node_line_ok "$work/node" "$v"; then
      echo "install.sh: the package node-linux-$node_arch@$v has no working bin/node v$v with include/node/node.h" >&2
      exit 1
    fi
    rm -rf "$dir"
    mv "$work/node" "$dir"
    rm -rf "$work"
  done
fi

# OpenBao 2.6.2 (server and CLI in one binary), the reference implementation the differential
# suites drive (the bao CLI against bulwark server): shipped beside the project in
# ../shared/tools/openbao (see its README). A copy that is not that exact binary is replaced.
BAO_SHA256="95961fdc5cf6f0775794056ad4c292b7397082012c6c624ff570759e1c1d23e7"
bao_xz="$here/../../../shared/tools/openbao/bao-2.6.2-linux-amd64.xz"
bao_ok() { [ -x "$bin/bao" ] && [ "$(sha256sum "$bin/bao" | awk '{print $1}')" = "$BAO_SHA256" ]; }
if ! bao_ok; then
  if [ -f "$bao_xz" ] && ! command -v xz >/dev/null 2>&1 && want_apt xz-utils; then
    apt_update
    DEBIAN_FRONTEND=noninteractive retry apt_get install -y -qq xz-utils >/dev/null
  fi
  if [ -f "$bao_xz" ] && command -v xz >/dev/null 2>&1; then
    echo "installing bao (OpenBao 2.6.2) from $bao_xz"
    xz -dc "$bao_xz" > "$bin/bao.tmp" && chmod +x "$bin/bao.tmp" && mv "$bin/bao.tmp" "$bin/bao"
    bao_ok || { echo "install.sh: $bin/bao does not match OpenBao 2.6.2's sha256" >&2; exit 1; }
  elif [ "${CI:-}" = true ]; then
    echo "install.sh: OpenBao is needed in CI: $bao_xz (or xz) is missing" >&2
    exit 1
  else
    echo "install.sh: skipping bao: $bao_xz (or xz) is missing; the suites that drive it skip" >&2
  fi
fi

# hvac, the Python Vault client a Vault user reaches for, pinned, in a venv of its own (the
# machine's Python is left alone; Debian's refuses pip installs anyway). A venv with another hvac
# (the pin moved) or a broken one is rebuilt. Debian splits `python3 -m venv` out into python3-venv.
HVAC_VERSION="2.4.0"
venv="$here/.venv"
hvac_version() { "$venv/bin/python" -c 'import hvac, importlib.metadata as m; print(m.version("hvac"))' 2>/dev/null || true; }
hvac_fail() {
  if [ "${CI:-}" = true ]; then
    echo "install.sh: hvac is needed in CI: $1" >&2
    exit 1
  fi
  echo "install.sh: skipping hvac: $1; the hvac suite skips" >&2
}
if ! command -v python3 >/dev/null 2>&1; then
  [ "$(hvac_version)" = "$HVAC_VERSION" ] || hvac_fail "no python3"
elif [ "$(hvac_version)" != "$HVAC_VERSION" ]; then
  echo "installing hvac $HVAC_VERSION (pip, in $venv)"
  rm -rf "$venv"
  if ! python3 -m venv "$venv" >/dev/null 2>&1; then
    rm -rf "$venv"
    if want_apt python3-venv; then
      apt_update
      DEBIAN_FRONTEND=noninteractive retry apt_get install -y -qq python3-venv >/dev/null
    fi
    python3 -m venv "$venv" >/dev/null 2>&1 || { rm -rf "$venv"; true; }
  fi
  if [ ! -x "$venv/bin/python" ]; then
    hvac_fail "python3 -m venv fails (Debian: apt-get install python3-venv)"
  elif ! retry "$venv/bin/python" -m pip install -q --disable-pip-version-check "hvac==$HVAC_VERSION" \
    || [ "$(hvac_version)" != "$HVAC_VERSION" ]; then
    rm -rf "$venv"
    hvac_fail "pip install hvac==$HVAC_VERSION failed"
  fi
fi

echo "services: softhsm2 $(softhsm2-util --version 2>/dev/null || echo missing), consul $(consul_version | awk '{print $2}'), local-kms at $bin/local-kms, hvac $(hvac_version | grep . || echo missing)"
node_lines=""
for v in $NODE_VERSIONS; do
  node_line_ok "$bin/node-${v%%.*}" "$v" && node_lines="$node_lines ${v%%.*}"
done
[ -n "$node_lines" ] && echo "node lines in $bin/node-<major>:$node_lines"
exit 0

#!/usr/bin/env bash
# Installs everything the tests and the demo need on a fresh Debian 12 machine
# (run as root): Debian packages, the venvs of the Python tools (each from its
# lock file alone: tests/requirements*.lock, made by tests/lock.sh) and the
# test-host image in .cache/. Re-running it is cheap: each step is skipped when
# already done.
#   bash tests/setup.sh          everything the whole suite needs
#   bash tests/setup.sh --demo   only what tests/demo/run.sh uses (.venv, base image)
#   bash tests/setup.sh --venvs  only the three venvs (after bash tests/lock.sh)
set -euo pipefail
profile=suite
case "${1:-}" in
  --demo) profile=demo ;;
  --venvs) profile=venvs ;;
  "") ;;
  *) echo "usage: bash tests/setup.sh [--demo | --venvs]" >&2; exit 2 ;;
esac
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"

if [ "$profile" != venvs ]; then
  apt_packages=(mmdebstrap systemd-container iproute2 openssh-client util-linux)
  missing=()
  for pkg in "${apt_packages[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  if ((${#missing[@]})); then
    echo "setup: installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
fi

# python_for X.Y: an interpreter of that Python minor version: python3 when it is
# one, else pyenv's newest X.Y.*, else pythonX.Y on PATH (a pyenv shim for a
# version that is not selected fails, hence the check that it runs).
python_for() {
  local want=$1 candidate
  for candidate in python3 $(ls -d /root/.pyenv/versions/"$want".*/bin/python3 2>/dev/null | sort -V -r) "python$want"; do
    if [ "$("$candidate" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)" = "$want" ]; then
      command -v "$candidate"
      return 0
    fi
  done
  return 1
}

# pip_isolated ARGS...: pip without the machine's pip configuration. Config
# files and PIP_* variables can add find-links, extra indexes or constraints that
# a fresh CI machine does not have; only the lock decides what is installed.
# Kept: how to reach the index (a mirror, a CA bundle, a proxy, timeouts).
pip_isolated() {
  (
    for var in $(compgen -e | grep '^PIP_' || true); do
      case $var in
        PIP_INDEX_URL|PIP_CERT|PIP_CLIENT_CERT|PIP_TRUSTED_HOST|PIP_PROXY|PIP_DEFAULT_TIMEOUT|PIP_TIMEOUT|PIP_RETRIES) ;;
        *) unset "$var" ;;
      esac
    done
    # pip's own CA list does not know a TLS-inspecting proxy's CA; the system's may.
    if [ -z "${PIP_CERT:-}" ] && [ -f /etc/ssl/certs/ca-certificates.crt ]; then
      export PIP_CERT=/etc/ssl/certs/ca-certificates.crt
    fi
    export PIP_CONFIG_FILE=/dev/null PIP_DISABLE_PIP_VERSION_CHECK=1
    "$@"
  )
}

# Bumped when the way a venv is made changes, so every venv is made anew.
VENV_RECIPE=2

# make_venv DIR LOCK: DIR holds exactly what LOCK lists (plus the pip that comes
# with the Python), on the Python the lock was made for. When the lock, that
# Python or the recipe changed, DIR is removed and made from scratch, so nothing
# of an older install is left and a cached venv is the same as a fresh one.
make_venv() {
  local dir=$1 lock=$2 version python stamp want log
  version=$(sed -n 's/^# .* for Python \([0-9][0-9.]*\) on .*/\1/p' "$lock" | head -n 1)
  if [ -z "$version" ]; then
    echo "setup: $lock does not say which Python it is for: make it with bash tests/lock.sh" >&2
    return 1
  fi
  if ! python=$(python_for "$version"); then
    echo "setup: no Python $version for $dir ($lock): install it (pyenv) or put python$version on PATH" >&2
    return 1
  fi
  stamp=$dir/.lock.sha256
  want="$(sha256sum "$lock" | cut -d' ' -f1) $("$python" -c 'import sys; print(sys.version.split()[0])') recipe $VENV_RECIPE"
  if [ -x "$dir/bin/python" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
    return 0
  fi
  echo "setup: making $dir from scratch ($("$python" --version 2>&1), $lock)"
  rm -rf "$dir"
  "$python" -m venv "$dir"
  mkdir -p .cache/setup
  log=.cache/setup/$(basename "$dir").log
  if ! pip_isolated "$dir/bin/python" -m pip install --require-hashes --no-deps --only-binary :all: \
         -r "$lock" > "$log" 2>&1 \
     || ! pip_isolated "$dir/bin/python" -m pip check >> "$log" 2>&1; then
    cannot_install "$dir" "$lock" "$log"
    rm -rf "$dir"
    return 1
  fi
  # Python 3.11's venv brings setuptools along; when the lock has none, it goes.
  local extra
  extra=$(comm -23 <(pip_isolated "$dir/bin/python" -m pip list --format=freeze 2>>"$log" | package_names) \
                   <({ package_names < "$lock"; echo pip; } | sort -u))
  if [ -n "$extra" ]; then
    # shellcheck disable=SC2086  # one package name per word
    pip_isolated "$dir/bin/python" -m pip uninstall -q -y $extra >> "$log" 2>&1
  fi
  echo "$want" > "$stamp"
}

# package_names < REQUIREMENTS: the normalised names of the NAME==VERSION lines, sorted.
package_names() {
  sed -n -E 's/^([A-Za-z0-9][A-Za-z0-9._-]*)==.*/\1/p' | tr 'A-Z' 'a-z' | sed -E 's/[._-]+/-/g' | sort -u
}

# cannot_install DIR LOCK LOG: say which pins of LOCK failed, and why (pip's words).
cannot_install() {
  local dir=$1 lock=$2 log=$3 packages
  packages=$(sed -n -E \
    -e 's/.*(satisfies the requirement|distribution found for) ([^ ]+).*/\2/p' \
    -e 's/^    ([A-Za-z0-9._-]+(==[^ ]+)?) from .*/\1/p' \
    -e 's/^([A-Za-z0-9._-]+ [^ ]+) (requires|has requirement) .*/\1/p' "$log" | sort -u | paste -sd' ' -)
  {
    echo "setup: FAILED: $lock cannot be installed into $dir"
    echo "setup: the pins at fault: ${packages:-none named, see the output of pip below}"
    grep -E -A4 '^(ERROR|  ERROR)|requires |has requirement ' "$log" | grep -v '^ERROR: Ignored the following versions' \
      | cut -c1-300 | sed 's/^/setup:   /' | head -n 40
    echo "setup: pip's whole output: $log (the venv was removed; fix the lock with bash tests/lock.sh)"
  } >&2
}

make_venv .venv tests/requirements.lock
if [ "$profile" = demo ]; then
  .venv/bin/python tests/testhost/testhost.py image >/dev/null
  exit 0
fi
# The two ends of the supported ansible-core range (meta/runtime.yml), for
# tests/gates/test_core_range.py. The newest ansible-core needs Python 3.12+:
# pyenv's on these machines, or a python3.12 on PATH.
make_venv .venv-oldest tests/requirements-oldest.lock
if python_for 3.12 >/dev/null; then
  make_venv .venv-newest tests/requirements-newest.lock
else
  echo "setup: no Python 3.12 found: .venv-newest not made (its gate will fail)" >&2
fi
[ "$profile" = venvs ] && exit 0

.venv/bin/python tests/testhost/testhost.py image
# The real-Zulip images (tests/testhost/build_zulip_image.sh), from ../shared/zulip-src:
# cached in /var/cache/zulip-ops-testhost, built here when missing or stale (about
# 20 min for 9.2 and 10 for 5.6 on 2 cores, one after the other). ZULIP_REAL_IMAGES=0
# skips them, and the tests that need them.
if [ "${ZULIP_REAL_IMAGES:-1}" != 0 ]; then
  for image in zulip-9.2 zulip-5.6; do
    .venv/bin/python tests/testhost/testhost.py image "$image" >/dev/null
  done
fi

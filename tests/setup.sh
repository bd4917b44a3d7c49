#!/usr/bin/env bash
# Installs everything the tests and the demo need on a fresh Debian 12 machine
# (run as root): Debian packages, a venv in .venv with the pinned Python tools,
# and the test-host image in .cache/. Re-running it is cheap: each step is
# skipped when already done.
#   bash tests/setup.sh          everything the whole suite needs
#   bash tests/setup.sh --demo   only what tests/demo/run.sh uses (.venv, base image)
set -euo pipefail
profile=suite
[ "${1:-}" = --demo ] && profile=demo
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"

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

# make_venv DIR PYTHON REQUIREMENTS: (re)install when the requirements file changed.
make_venv() {
  local dir=$1 python=$2 requirements=$3 stamp want
  stamp=$dir/.requirements.sha256
  want=$(sha256sum "$requirements" | cut -d' ' -f1)
  if [ ! -x "$dir/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    echo "setup: creating $dir ($("$python" --version 2>&1), $requirements)"
    "$python" -m venv "$dir"
    "$dir/bin/pip" install -q --disable-pip-version-check -r "$requirements"
    echo "$want" > "$stamp"
  fi
}

make_venv .venv python3 tests/requirements.txt
if [ "$profile" = demo ]; then
  .venv/bin/python tests/testhost/testhost.py image >/dev/null
  exit 0
fi
# The two ends of the supported ansible-core range (meta/runtime.yml), for
# tests/gates/test_core_range.py. The newest ansible-core needs Python 3.12+:
# pyenv's on these machines, or a python3.12 on PATH.
make_venv .venv-oldest python3 tests/requirements-oldest.txt
python312=$(ls -d /root/.pyenv/versions/3.12.*/bin/python3 2>/dev/null | sort -V | tail -n 1 || true)
python312=${python312:-$(command -v python3.12 || true)}
if [ -n "$python312" ]; then
  make_venv .venv-newest "$python312" tests/requirements-newest.txt
else
  echo "setup: no Python 3.12 found: .venv-newest not made (its gate will fail)" >&2
fi

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

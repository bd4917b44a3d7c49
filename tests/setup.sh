#!/usr/bin/env bash
# Installs everything the tests and the demo need on a fresh Debian 12 machine
# (run as root): Debian packages, a venv in .venv with the pinned Python tools,
# and the test-host image in .cache/. Re-running it is cheap: each step is
# skipped when already done.
set -euo pipefail
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

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

stamp=.venv/.requirements.sha256
want=$(sha256sum tests/requirements.txt | cut -d' ' -f1)
if [ ! -x .venv/bin/python ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "setup: creating .venv"
  python3 -m venv .venv
  .venv/bin/pip install -q --disable-pip-version-check -r tests/requirements.txt
  echo "$want" > "$stamp"
fi

.venv/bin/python tests/testhost/testhost.py image

#!/usr/bin/env bash
# Writes the lock files of the three test venvs from their hand-written pins:
# the whole dependency tree, one exact version per package, with the sha256 of
# every file of that version. tests/setup.sh installs each venv from its lock
# alone (pip --require-hashes --no-deps); nothing else decides what is installed.
#
#   bash tests/lock.sh                       after editing a tests/requirements*.txt:
#                                            re-resolve, keeping every locked version
#                                            that still fits
#   bash tests/lock.sh --upgrade             every package not pinned by hand moves
#                                            to its newest release
#   bash tests/lock.sh --upgrade-package X   only X (and what it needs) moves
#
# Any other argument is handed to `uv pip compile`. Then: `bash tests/setup.sh
# --venvs` rebuilds each venv whose lock changed, run the suite, and commit the
# inputs and the locks together. This is the one place versions move.
#
# The resolver (uv, pinned below) lives in a throw-away venv under /tmp, never in
# the test venvs. It reads no uv or pip configuration file: what the machine's
# pip.conf adds (find-links, extra indexes, constraints) must not reach a lock.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"

UV_VERSION=0.13.8
# input                           lock                              Python   venv
LOCKS=(
  "tests/requirements.txt         tests/requirements.lock           3.11     .venv"
  "tests/requirements-oldest.txt  tests/requirements-oldest.lock    3.11     .venv-oldest"
  "tests/requirements-newest.txt  tests/requirements-newest.lock    3.12     .venv-newest"
)

tools=$(mktemp -d /tmp/zulip-lock.XXXXXX)
trap 'rm -rf "$tools"' EXIT
python3 -m venv "$tools/venv"
PIP_CONFIG_FILE=/dev/null "$tools/venv/bin/pip" install -q --disable-pip-version-check "uv==$UV_VERSION"
uv=$tools/venv/bin/uv
# uv trusts its own CA list; behind a TLS-inspecting proxy it needs the machine's.
if [ -z "${SSL_CERT_FILE:-}" ] && [ -f "${PIP_CERT:-}" ]; then
  export SSL_CERT_FILE=$PIP_CERT
fi

for entry in "${LOCKS[@]}"; do
  read -r input lock python venv <<<"$entry"
  header="# The whole dependency tree of $input for Python $python on Linux, with the
# sha256 of every file of each version. tests/setup.sh installs $venv from this
# file alone (pip --require-hashes --no-deps). Do not edit: change $input,
# then run bash tests/lock.sh (docs/development.md, \"Test tools and their locks\")."
  # uv keeps the versions of an existing output file unless told to upgrade: it
  # writes to a copy of the lock, which replaces the lock only when complete.
  work=$tools/$(basename "$lock")
  if [ -f "$lock" ]; then
    grep -v '^#' "$lock" > "$work" || true
  fi
  "$uv" pip compile --quiet --no-config --no-header --generate-hashes \
    --python-version "$python" --python-platform linux --only-binary :all: \
    --output-file "$work" "$@" "$input"
  { echo "$header"; cat "$work"; } > "$lock.new"
  mv "$lock.new" "$lock"
  echo "lock: $lock ($(grep -c '^[A-Za-z0-9]' "$lock") packages, Python $python)"
done

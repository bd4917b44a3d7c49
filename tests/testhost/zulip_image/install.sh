#!/bin/bash
# Stage 1 of build_zulip_image.sh, run inside the image by systemd-nspawn on
# the machine's network: install Zulip with the recipe from the sources folder
# (bound read-only at /srv/zulip-src), then stop every service it started.
#   install.sh VERSION
set -euo pipefail
# nspawn hands its payload a NOTIFY_SOCKET; RabbitMQ's Erlang systemd support
# then tries to notify it and crashes at start (case_clause in systemd_sup).
unset NOTIFY_SOCKET
VERSION="${1:?VERSION}"
# A stage killed mid-way may have left dpkg half done.
dpkg --configure -a
apt-get update -qq
# gettext: update-prod-static runs compilemessages (msgfmt), which Zulip's
# installer and puppet do not install; the recipe's machine had it already.
apt-get install -y -qq --no-install-recommends curl ca-certificates python3-yaml tar gzip xz-utils gettext >/dev/null
update-ca-certificates >/dev/null
export WORK=/root/zulip-build
bash /srv/zulip-src/build-real-zulip.sh "$VERSION" --from /srv/zulip-src
# Stage 2 starts them again on a private network.
su zulip -s /bin/sh -c "/home/zulip/deployments/current/scripts/stop-server" || true
for s in nginx supervisor rabbitmq-server memcached redis-server postgresql; do service "$s" stop || true; done
epmd -kill 2>/dev/null || true

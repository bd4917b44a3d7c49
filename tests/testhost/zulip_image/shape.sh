#!/bin/bash
# Phase "shape" of build_zulip_image.sh, run inside the image with a private
# network (loopback only): give the installed Zulip the front end this image
# tests, size it for a test host, prove it serves, then stop every service
# cleanly and enable them for boot under systemd.
#   BUILD_TLS_VARS="..." shape.sh https|http_only VERSION
# BUILD_TLS_VARS names the variables stage 1 put into /etc/environment.
set -euo pipefail
# nspawn hands its payload a NOTIFY_SOCKET; RabbitMQ's Erlang systemd support
# then tries to notify it and crashes at start (case_clause in systemd_sup).
unset NOTIFY_SOCKET
FRONT_END="${1:?https or http_only}"
VERSION="${2:?VERSION}"
DEPLOY=/home/zulip/deployments/current
CONF=/etc/zulip/zulip.conf
SETTINGS=/etc/zulip/settings.py
SERVICES="postgresql redis-server memcached rabbitmq-server supervisor nginx"
export LC_ALL=C.UTF-8 ERL_EPMD_ADDRESS=127.0.0.1

echo "shape: front end $FRONT_END"
conf_set() {  # SECTION KEY VALUE (crudini-free: Zulip's own tool)
    "$DEPLOY/scripts/setup/set-config" "$@" >/dev/null 2>&1 ||
        python3 - "$@" <<'PY'
import configparser, sys
section, key, value = sys.argv[1:4]
cp = configparser.RawConfigParser()
cp.read("/etc/zulip/zulip.conf")
if not cp.has_section(section):
    cp.add_section(section)
cp.set(section, key, value)
with open("/etc/zulip/zulip.conf", "w") as f:
    cp.write(f)
PY
}
conf_unset() {  # SECTION KEY
    python3 - "$@" <<'PY'
import configparser, sys
section, key = sys.argv[1:3]
cp = configparser.RawConfigParser()
cp.read("/etc/zulip/zulip.conf")
if cp.has_option(section, key):
    cp.remove_option(section, key)
with open("/etc/zulip/zulip.conf", "w") as f:
    cp.write(f)
PY
}

case "$FRONT_END" in
    https)
        # Zulip's default front end: nginx with TLS on 443 (the installer's
        # self-signed certificate), http on 80 redirecting to it.
        conf_unset application_server http_only
        conf_unset application_server nginx_listen_port
        external_host=zulip.example.test
        ;;
    http_only)
        # Behind a reverse proxy: plain HTTP on a port of its own.
        conf_set application_server http_only true
        conf_set application_server nginx_listen_port 9991
        external_host=localhost:9991
        ;;
    *) echo "shape: unknown front end $FRONT_END" >&2; exit 2 ;;
esac
# A test host is small: one process per queue worker type, two uWSGI workers.
conf_set application_server queue_workers_multiprocess false
conf_set application_server uwsgi_processes 2
sed -i "s/^EXTERNAL_HOST = .*/EXTERNAL_HOST = '$external_host'/" "$SETTINGS"
grep -n '^EXTERNAL_HOST' "$SETTINGS"
cat "$CONF"

for s in postgresql redis-server memcached rabbitmq-server; do service "$s" start; done
"$DEPLOY/scripts/zulip-puppet-apply" -f
service supervisor start || true
service nginx start || service nginx reload || true
su zulip -s /bin/sh -c "$DEPLOY/scripts/restart-server"

case "$FRONT_END" in
    https) base=https://127.0.0.1 ;;
    http_only) base=http://127.0.0.1:9991 ;;
esac
for host in "$external_host" "acme.$external_host"; do
    code=""
    for _ in $(seq 60); do
        code="$(curl -sk -o /dev/null -w '%{http_code}' -H "Host: $host" "$base/api/v1/server_settings" || true)"
        [ "$code" = 200 ] && break
        sleep 1
    done
    echo "shape: $host $base/api/v1/server_settings -> $code"
    [ "$code" = 200 ] || { echo "shape: $host does not answer" >&2; exit 1; }
done
su zulip -s /bin/sh -c "$DEPLOY/manage.py list_realms"
if grep -q '^SCIM_CONFIG' "$SETTINGS"; then echo "shape: settings.py has SCIM_CONFIG" >&2; exit 1; fi

su zulip -s /bin/sh -c "$DEPLOY/scripts/stop-server" || true
for s in nginx supervisor rabbitmq-server memcached redis-server postgresql; do service "$s" stop || true; done
epmd -kill 2>/dev/null || true
# Under systemd (a booted instance) every service starts by itself.
systemctl enable $SERVICES
ls /etc/systemd/system/multi-user.target.wants/
# Zulip's logs start empty in every instance: manage.log is what tests read.
find /var/log/zulip -type f -exec truncate -s 0 {} +
# What only the build needed: its CA trust, the TLS variables it gave su,
# the machine's apt settings, scratch and caches.
rm -rf /usr/local/share/ca-certificates/zulip-build /root/zulip-build /root/zulip-image-install.sh \
    /etc/apt/apt.conf.d/99artifact-registry /root/.cache /root/.npm
update-ca-certificates --fresh >/dev/null 2>&1 || true
for var in ${BUILD_TLS_VARS:-}; do sed -i "/^$var=/d" /etc/environment; done
rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/cache/apt/archives/*.deb
printf '{"version": "%s", "front_end": "%s"}\n' "$VERSION" "$FRONT_END" >/etc/zulip-testhost-image.json
rm -f /root/zulip-image-shape.sh
echo "shape: done"

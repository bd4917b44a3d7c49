#!/bin/bash
# Build a test-host image with a real Zulip Server installed in production mode.
#
#   bash tests/testhost/build_zulip_image.sh VERSION          (9.2 or 5.6)
#   bash tests/testhost/build_zulip_image.sh VERSION --hash   (print the image's key)
#
# The image starts from the golden test-host rootfs (build_image.sh), so it
# boots and takes SSH like every other test host. Two stages, each cached:
#
#   1. install (zulip_image/install.sh, 10-20 min): Zulip's own installer, run
#      by the recipe ../shared/zulip-src/build-real-zulip.sh with every file it
#      would fetch from GitHub or the Puppet Forge taken from that folder, in
#      systemd-nspawn (not booted) on the machine's network, which reaches only
#      the package registries; every socket the recipe opens is on loopback.
#   2. shape (zulip_image/shape.sh, 1-3 min): nspawn with a private network
#      (loopback only) gives the server the front end this version's image is
#      meant to test, sizes it for a test host, proves it serves, stops every
#      service cleanly and enables them for boot under systemd.
#
# Front ends: 9.2 has Zulip's default HTTPS front end (nginx on 443 with the
# installer's self-signed certificate, EXTERNAL_HOST zulip.example.test); 5.6
# is a Zulip behind a reverse proxy ([application_server] http_only = true,
# nginx_listen_port = 9991, EXTERNAL_HOST localhost:9991). Both have the realms
# acme and the root domain, and no SCIM configuration.
#
# One install stage at a time on this machine (install.lock), whatever the
# version: two installs on the shared network would fight over PostgreSQL's,
# RabbitMQ's, Redis's and memcached's loopback ports, and each takes both cores
# anyway. The shape stage has a network of its own, so it only waits for builds
# of its own version (VERSION.lock). An image that exists is used without a lock.
#
# Cache: $ZULIP_IMAGE_CACHE (default /var/cache/zulip-ops-testhost), outside
# the clone so that the next run on this machine finds it:
#   zulip-VERSION-installed-<h1>/rootfs   stage 1; h1 = the base image's recipe,
#       install.sh, the recipe script, SHA256SUMS of the sources, VERSION
#   zulip-VERSION-<h2>/rootfs             the image; h2 = h1 + shape.sh
# Each stage builds into a temp dir renamed into place when complete, so a
# killed build never looks finished; its log is build.log beside rootfs. Older
# entries of the same version are deleted unless a running instance uses them.
# The last line on stdout is the image's rootfs; progress goes to stderr.
# Environment: ZULIP_SRC_DIR overrides <repo>/../shared/zulip-src.
set -euo pipefail

SELF="$(readlink -f "${BASH_SOURCE[0]}")"
HERE="$(dirname "$SELF")"
REPO="$(cd "$HERE/../.." && pwd)"
VERSION="${1:?usage: build_zulip_image.sh VERSION [--hash]}"
case "$VERSION" in
    9.2 | 5.6) ;;
    *) echo "build_zulip_image: no sources for Zulip $VERSION (9.2 or 5.6)" >&2; exit 2 ;;
esac
SRC_DIR="$(readlink -f "${ZULIP_SRC_DIR:-$REPO/../shared/zulip-src}")"
CACHE="${ZULIP_IMAGE_CACHE:-/var/cache/zulip-ops-testhost}"
BASE_BUILD="$HERE/build_image.sh"
INSTALL="$HERE/zulip_image/install.sh"
SHAPE="$HERE/zulip_image/shape.sh"

log() { printf 'build_zulip_image %s: %s\n' "$VERSION" "$*" >&2; }

front_end() {
    case "$VERSION" in
        9.2) echo https ;;
        *) echo http_only ;;
    esac
}

install_hash() {
    { cat "$BASE_BUILD" "$INSTALL" "$SRC_DIR/build-real-zulip.sh" "$SRC_DIR/SHA256SUMS"; printf '%s\n' "$VERSION"; } |
        sha256sum | cut -c1-16
}

image_hash() {
    { install_hash; cat "$SHAPE"; } | sha256sum | cut -c1-16
}

in_use() {
    grep -qF "lowerdir=$1/rootfs" /proc/self/mountinfo
}

unmount_under() {
    local mnt
    awk -v p="$1/" 'index($5 "/", p) == 1 {print $5}' /proc/self/mountinfo | sort -r |
        while read -r mnt; do umount "$mnt" 2>/dev/null || umount -l "$mnt"; done
}

remove_old() {  # KEEP... : every other entry of this version
    local dir keep skip
    for dir in "$CACHE"/zulip-"$VERSION"-* "$CACHE"/tmp.zulip-"$VERSION"-*; do
        [ -d "$dir" ] || continue
        skip=""
        for keep in "$@"; do [ "$dir" = "$keep" ] && skip=1; done
        [ -n "$skip" ] && continue
        if in_use "$dir"; then
            log "keeping $dir: still used by a running instance"
            continue
        fi
        log "removing old $dir"
        unmount_under "$dir"
        rm -rf --one-file-system "$dir"
    done
}

# The CA bundle and TLS variables of this machine: its network may intercept
# TLS, and pip, npm and corepack inside the build must trust what it trusts.
TLS_VARS="SSL_CERT_FILE REQUESTS_CA_BUNDLE PIP_CERT CURL_CA_BUNDLE NODE_EXTRA_CA_CERTS GIT_SSL_CAINFO"
BUNDLE=/etc/ssl/certs/ca-certificates.crt

nspawn() {  # ROOTFS host|private COMMAND...
    local root="$1" net="$2" var
    shift 2
    local args=(--quiet --register=no --keep-unit --settings=no --timezone=off
        --link-journal=no --as-pid2 --directory="$root" --machine="zulip-build-${VERSION//./-}"
        --setenv=LC_ALL=C.UTF-8 --setenv=DEBIAN_FRONTEND=noninteractive)
    if [ "$net" = host ]; then
        args+=(--resolv-conf=copy-host --bind-ro="$SRC_DIR:/srv/zulip-src")
        for var in $TLS_VARS; do args+=("--setenv=$var=$BUNDLE"); done
    else
        args+=(--private-network --resolv-conf=off)
    fi
    systemd-nspawn "${args[@]}" "$@"
}

stage() {  # NAME FINAL FUNCTION: build FINAL/rootfs with FUNCTION TMP_ROOTFS, logged
    local name="$1" final="$2" fn="$3" tmp start
    tmp="$(mktemp -d "$CACHE/tmp.zulip-$VERSION-XXXXXXXX")"
    # shellcheck disable=SC2064
    trap "unmount_under '$tmp'; rm -rf --one-file-system '$tmp'" EXIT
    start=$SECONDS
    log "stage $name: log in $tmp/build.log"
    if ! "$fn" "$tmp" >>"$tmp/build.log" 2>&1; then
        # The temp dir goes; its log stays for whoever reads the failure later.
        cp "$tmp/build.log" "$CACHE/zulip-$VERSION-$name-failed.log"
        log "stage $name failed; log in $CACHE/zulip-$VERSION-$name-failed.log; its end:"
        tail -n 40 "$tmp/build.log" >&2
        exit 1
    fi
    printf 'stage %s: %d s\n' "$name" "$((SECONDS - start))" | tee -a "$tmp/build.log" >&2
    mv -T "$tmp" "$final"
    trap - EXIT
}

# ---------------------------------------------------------------- stage 1
build_installed() {
    local tmp="$1" base crt var
    base="$(bash "$BASE_BUILD" | tail -1)"
    cp -a "$base" "$tmp/rootfs"
    local root="$tmp/rootfs"
    # Trust this machine's own CAs inside the build (removed again in stage 2).
    mkdir -p "$root/usr/local/share/ca-certificates/zulip-build"
    for crt in /usr/local/share/ca-certificates/*.crt; do
        [ -e "$crt" ] && cp "$crt" "$root/usr/local/share/ca-certificates/zulip-build/"
    done
    # The machine's apt settings for its mirror (e.g. a snapshot's Valid-Until).
    cp /etc/apt/apt.conf.d/99artifact-registry "$root/etc/apt/apt.conf.d/" 2>/dev/null || true
    # su and runuser start clean environments: give them the TLS variables too.
    for var in $TLS_VARS; do printf '%s=%s\n' "$var" "$BUNDLE" >>"$root/etc/environment"; done
    cp "$INSTALL" "$root/root/zulip-image-install.sh"
    nspawn "$root" host /bin/bash /root/zulip-image-install.sh "$VERSION"
}

# ---------------------------------------------------------------- stage 2
build_shaped() {
    local tmp="$1" root="$1/rootfs"
    cp -a "$INSTALLED/rootfs" "$root"
    cp "$SHAPE" "$root/root/zulip-image-shape.sh"
    nspawn "$root" private --setenv=BUILD_TLS_VARS="$TLS_VARS" /bin/bash /root/zulip-image-shape.sh "$(front_end)" "$VERSION"
    # nspawn manages these two while it runs; every instance gets its own.
    : >"$root/etc/resolv.conf"
    : >"$root/etc/machine-id"
}

main() {
    [ -e "$SRC_DIR/SHA256SUMS" ] || { log "no sources: $SRC_DIR/SHA256SUMS missing (set ZULIP_SRC_DIR)"; exit 2; }
    if [ "${2:-}" = --hash ]; then image_hash; return; fi
    mkdir -p "$CACHE"
    INSTALLED="$CACHE/zulip-$VERSION-installed-$(install_hash)"
    local final="$CACHE/zulip-$VERSION-$(image_hash)"
    if [ -d "$final/rootfs" ]; then
        printf '%s\n' "$final/rootfs"
        return
    fi
    exec 8>"$CACHE/$VERSION.lock"
    flock 8
    if [ -d "$final/rootfs" ]; then
        log "image up to date ($final)"
    else
        if ! [ -d "$INSTALLED/rootfs" ]; then
            exec 9>"$CACHE/install.lock"
            flock 9
            [ -d "$INSTALLED/rootfs" ] || stage install "$INSTALLED" build_installed
            exec 9>&-
        fi
        stage shape "$final" build_shaped
    fi
    remove_old "$final" "$INSTALLED"
    printf '%s\n' "$final/rootfs"
}

main "$@"

#!/bin/bash
# Build the golden Debian bookworm rootfs that every test host boots from.
#
# Host (CI machine) apt packages this harness needs:
#   mmdebstrap systemd-container iproute2 openssh-client util-linux
#   (util-linux gives flock/mount/umount; it is Essential on Debian)
#
# Output: <repo>/.cache/testhost/image-<hash>/rootfs, <hash> = recipe hash
# (this script's content + the package list). The last line on stdout is the
# rootfs path; progress goes to stderr. An image that already exists is
# reused ("image up to date"); older image-* directories are deleted unless
# an overlay still uses them. The build goes into a temp dir that is renamed
# into place only when complete, so a killed build never looks finished.
# Environment: TESTHOST_CACHE_DIR overrides <repo>/.cache/testhost.
set -euo pipefail

SELF="$(readlink -f "${BASH_SOURCE[0]}")"
REPO="$(cd "$(dirname "$SELF")/../.." && pwd)"
CACHE="${TESTHOST_CACHE_DIR:-$REPO/.cache/testhost}"
SUITE=bookworm
PACKAGES="python3,sudo,openssh-server,systemd,systemd-sysv,dbus,libpam-systemd,openssl,procps,iproute2,ca-certificates"
# Units that slow the boot down, need hardware, or want a terminal.
MASK_UNITS="apt-daily.timer apt-daily-upgrade.timer apt-daily.service apt-daily-upgrade.service
dpkg-db-backup.timer dpkg-db-backup.service e2scrub_all.timer e2scrub_reap.service fstrim.timer
getty.target getty@.service serial-getty@.service console-getty.service container-getty@.service
systemd-firstboot.service systemd-hwdb-update.service systemd-journal-catalog-update.service
systemd-update-done.service systemd-update-utmp-runlevel.service ldconfig.service
systemd-pstore.service systemd-machine-id-commit.service"

log() { printf 'build_image: %s\n' "$*" >&2; }

recipe_hash() {
    { cat "$SELF"; printf '%s\n' "$PACKAGES"; } | sha256sum | cut -c1-16
}

debian_mirror() {
    # URIs of the first stanza of the deb822 sources file.
    local src=/etc/apt/sources.list.d/debian.sources uri
    uri="$(awk '/^URIs:/ {print $2; exit}' "$src" 2>/dev/null || true)"
    if [ -z "$uri" ]; then
        log "no URIs in $src, using http://deb.debian.org/debian"
        uri=http://deb.debian.org/debian
    fi
    printf '%s\n' "$uri"
}

image_in_use() {
    # True when an overlay mount uses this image as its lower dir.
    grep -qF "lowerdir=$1/rootfs" /proc/self/mountinfo
}

unmount_under() {
    # A killed mmdebstrap can leave /proc, /sys, /dev mounted in its chroot.
    local mnt
    awk -v p="$1/" 'index($5 "/", p) == 1 {print $5}' /proc/self/mountinfo | sort -r |
        while read -r mnt; do umount "$mnt" 2>/dev/null || umount -l "$mnt"; done
}

remove_old_images() {
    local keep="$1" dir
    for dir in "$CACHE"/image-* "$CACHE"/tmp.image-*; do
        [ -d "$dir" ] || continue
        [ "$dir" = "$keep" ] && continue
        if image_in_use "$dir"; then
            log "keeping $dir: still used by a running instance"
            continue
        fi
        log "removing old image $dir"
        unmount_under "$dir"
        rm -rf --one-file-system "$dir"
    done
}

customize() {
    local root="$1" unit
    # sshd: root with a key only, no DNS, fast start.
    mkdir -p "$root/etc/ssh/sshd_config.d"
    cat >"$root/etc/ssh/sshd_config.d/testhost.conf" <<'EOF'
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
GSSAPIAuthentication no
UseDNS no
PrintMotd no
MaxSessions 64
MaxStartups 64:30:128
EOF
    # root: no password at all; authorized_keys is written per instance.
    chroot "$root" passwd -l root >/dev/null
    install -d -m 0700 "$root/root/.ssh"
    rm -f "$root/root/.ssh/authorized_keys"
    for unit in $MASK_UNITS; do
        ln -sfn /dev/null "$root/etc/systemd/system/$unit"
    done
    # Empty machine-id: systemd makes a fresh one per boot (no first-boot logic).
    : >"$root/etc/machine-id"
    rm -f "$root/var/lib/dbus/machine-id"
    : >"$root/etc/resolv.conf"
    printf 'testhost\n' >"$root/etc/hostname"
    # Journal in memory only: less disk churn per instance.
    mkdir -p "$root/etc/systemd/journald.conf.d"
    printf '[Journal]\nStorage=volatile\n' >"$root/etc/systemd/journald.conf.d/testhost.conf"
    rm -rf "$root/var/lib/apt/lists/"* "$root/var/cache/apt/"*.bin
}

build() {
    local final="$1" tmp mirror start
    tmp="$(mktemp -d "$CACHE/tmp.image-XXXXXXXX")"
    # shellcheck disable=SC2064
    trap "unmount_under '$tmp'; rm -rf --one-file-system '$tmp'" EXIT
    mirror="$(debian_mirror)"
    start=$SECONDS
    log "building $SUITE from $mirror into $tmp"
    mmdebstrap --variant=minbase --mode=root \
        --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr \
        --include="$PACKAGES" \
        --dpkgopt='path-exclude=/usr/share/man/*' \
        --dpkgopt='path-exclude=/usr/share/locale/*' \
        --dpkgopt='path-exclude=/usr/share/doc/*' \
        --dpkgopt='path-include=/usr/share/doc/*/copyright' \
        "$SUITE" "$tmp/rootfs" "$mirror" >&2
    customize "$tmp/rootfs"
    mv -T "$tmp" "$final"
    trap - EXIT
    log "built in $((SECONDS - start)) s"
}

main() {
    local hash final
    mkdir -p "$CACHE"
    hash="$(recipe_hash)"
    final="$CACHE/image-$hash"
    exec 9>"$CACHE/image.lock"
    flock 9
    if [ -d "$final/rootfs" ]; then
        log "image up to date ($final)"
    else
        command -v mmdebstrap >/dev/null || { log "mmdebstrap missing: apt-get install mmdebstrap"; exit 2; }
        build "$final"
    fi
    remove_old_images "$final"
    printf '%s\n' "$final/rootfs"
}

main "$@"

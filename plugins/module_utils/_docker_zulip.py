# -*- coding: utf-8 -*-
# Copyright (c) zulip_ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# This module_utils is PRIVATE to the zulip_ops.zulip collection. It may change or go away
# in any release, without notice; do not use it from other collections.

"""Whether the host is a docker-zulip container, and whether this collection's edits would outlive its restart.

docker-zulip (the ``zulip/docker-zulip`` and ``ghcr.io/zulip/zulip-server`` images, 5.0-0 to 12.1-0
alike) starts every container with ``/sbin/entrypoint.sh``, which, unless ``MANUAL_CONFIGURATION``
is set, copies ``settings.py`` afresh from Zulip's template and appends the ``SETTING_*``
variables, and sets each ``SECRETS_*`` variable (from 11.5-0 on also each Docker secret
``/run/secrets/zulip__*``) as a key of a ``zulip-secrets.conf`` kept in the ``/data`` volume.
An edit of ``settings.py`` is gone at the next start, so such a host is refused
before anything is read further or changed, with the way that works instead
(docs/docker-zulip.md).

With ``MANUAL_CONFIGURATION`` the entrypoint leaves a non-empty ``settings.py`` alone.
It persists only where it is kept on the data volume (``LINK_SETTINGS_TO_DATA``:
``/etc/zulip`` is root's link to ``/data/etc-zulip``, ``/data/settings/etc-zulip``
with the legacy entrypoint); the container's own file system is lost when the container is made
again (an image upgrade), and a ``settings.py`` bind-mounted from the Docker host
cannot be replaced from inside (a rename onto a mount point fails). So the
collection works there only when both files it edits are on the data volume and no
``SECRETS_``/Docker secret of a bearer token would put an old value back at each start.

Every sign is something only root can make or change (the zulip user cannot write in
``/``, ``/sbin`` or ``/root``, nor change PID 1's environment or the mounts): a sign
that user could plant would at most make the collection refuse, never proceed.
Everything is read through :mod:`_safe_dir` (no link the zulip user made is followed)
and nothing is written. PID 1's environment holds secrets: only the names of its
variables and the value of ``MANUAL_CONFIGURATION`` are kept, and never shown.
"""

from __future__ import annotations

import dataclasses
import os
import stat

from ansible_collections.zulip_ops.zulip.plugins.module_utils import _safe_dir as safe_dir
from ansible_collections.zulip_ops.zulip.plugins.module_utils._zulip import SECRET_PREFIX, ZulipError

GUIDE = "docs/docker-zulip.md of the zulip_ops.zulip collection"
# What the entrypoint says of itself: both words are in every docker-zulip entrypoint since 2.x.
ENTRYPOINT_MARKERS = (b"prod_settings_template.py", b"MANUAL_CONFIGURATION")
# How the entrypoint reads MANUAL_CONFIGURATION: since 11.5-0 it takes these (any case) as true; the
# legacy one any value but "false"/"False". Only values both take as true count, so a doubt refuses.
TRUE_WORDS = frozenset(("true", "enable", "enabled", "yes", "y", "1", "on"))
# The entrypoint's prefix for zulip-secrets.conf keys, and the Docker secrets' (11.5-0 on).
SECRETS_VARIABLE_PREFIX = "SECRETS_"
DOCKER_SECRET_PREFIX = "zulip__"


@dataclasses.dataclass(frozen=True)
class ContainerLayout:
    """Where docker-zulip's image puts what tells it (paths from its Dockerfile and entrypoint)."""

    entrypoint: str = "/sbin/entrypoint.sh"
    # custom_zulip_files/ copied over the release tree the image installs from (Dockerfile).
    source_tree_marker: str = "/root/zulip/README.custom_zulip_files.md"
    # The environment the container was started with: PID 1 is the entrypoint's supervisord
    # (or Docker's init, started with the same environment).
    init_environment: str = "/proc/1/environ"
    docker_secrets: str = "/run/secrets"
    data_dir: str = "/data"


HOST = ContainerLayout()


@dataclasses.dataclass(frozen=True)
class StartEnvironment:
    """What the container's environment tells this collection; no value of a secret."""

    manual_configuration: bool
    # Names only: variables and Docker secrets that set a SCIM bearer token at each start.
    token_setters: tuple[str, ...]
    scim_config_variable: bool


@dataclasses.dataclass(frozen=True)
class Verdict:
    """A docker-zulip container where the collection may work (MANUAL_CONFIGURATION, files on the volume)."""

    signs: tuple[str, ...]
    settings_dir: str
    secrets_dir: str


def container_signs(layout: ContainerLayout = HOST) -> tuple[str, ...]:
    """The signs of docker-zulip found on the host, as words for a message; empty when there is none."""
    signs = []
    entrypoint = _entrypoint_sign(layout.entrypoint)
    if entrypoint:
        signs.append(entrypoint)
    if _present(layout.source_tree_marker):
        signs.append("%s (docker-zulip's custom_zulip_files in the image's Zulip tree)" % layout.source_tree_marker)
    return tuple(signs)


def _entrypoint_sign(path: str) -> str:
    try:
        found = safe_dir.read_file(path)
    except OSError as exc:
        # Something is there that cannot be read as a file: it cannot rule docker-zulip out.
        return "%s (present, not readable as a file: %s)" % (path, exc.strerror or exc)
    if found is None:
        return ""
    if found.uid != 0 or found.mode & (stat.S_IWGRP | stat.S_IWOTH):
        # Its words cannot be trusted to tell it is not docker-zulip's, so it counts.
        return "%s (present, writable by users other than root)" % path
    if all(marker in found.content for marker in ENTRYPOINT_MARKERS):
        return "%s (docker-zulip's entrypoint)" % path
    return ""


def _present(path: str) -> bool:
    directory, name = safe_dir.split_file_path(path)
    try:
        with safe_dir.open_directory(directory) as parent:
            return parent.exists(name)
    except (FileNotFoundError, PermissionError):
        # Missing, or a run without root, which cannot look into /root (nor could anyone but root put it there).
        return False
    except OSError:
        return True  # there, but not as root's plain directory: it cannot rule docker-zulip out


def start_environment(layout: ContainerLayout = HOST) -> StartEnvironment:
    """What the container was started with; ZulipError when it cannot be read (then nothing can be told)."""
    try:
        found = safe_dir.read_file(layout.init_environment)
    except OSError as exc:
        raise ZulipError(_cannot_tell(layout, exc.strerror or str(exc))) from None
    if found is None:
        raise ZulipError(_cannot_tell(layout, "it does not exist"))
    names, manual = [], False
    for entry in found.content.split(b"\0"):
        name, _sep, value = entry.partition(b"=")
        name_text = name.decode("ascii", "replace")
        names.append(name_text)
        if name_text == "MANUAL_CONFIGURATION":
            manual = value.decode("ascii", "replace").lower() in TRUE_WORDS
    token_variable = SECRETS_VARIABLE_PREFIX + SECRET_PREFIX
    setters = [name for name in names if name.startswith(token_variable)]
    setters += [os.path.join(layout.docker_secrets, name) for name in _docker_secret_names(layout.docker_secrets)]
    return StartEnvironment(manual, tuple(sorted(set(setters))), "SETTING_SCIM_CONFIG" in names)


def _docker_secret_names(directory: str) -> list[str]:
    try:
        with safe_dir.open_directory(directory) as secrets:
            names = secrets.names()
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise ZulipError("this is a docker-zulip container and %s cannot be listed (%s), so it cannot be told whether "
                         "a Docker secret sets a SCIM bearer token at each start; nothing was changed"
                         % (directory, exc.strerror or exc)) from None
    return [name for name in names if name.startswith(DOCKER_SECRET_PREFIX + SECRET_PREFIX)]


def _cannot_tell(layout: ContainerLayout, reason: str) -> str:
    return ("this host is a docker-zulip container, and %s (the environment it was started with) cannot be read: %s; "
            "so it cannot be told whether MANUAL_CONFIGURATION keeps settings.py as this collection writes it. "
            "Nothing was changed; see %s" % (layout.init_environment, reason, GUIDE))


def check_host(settings_path: str, secrets_path: str, layout: ContainerLayout | None = None) -> Verdict | None:
    """None on a host that is no docker-zulip container; a Verdict where the collection's edits persist.

    Raises ZulipError, saying why and pointing to the guide, where they would not.
    Reads only; called before anything on the host is read for the run or changed.
    """
    layout = layout or HOST
    signs = container_signs(layout)
    if not signs:
        return None
    found = "; ".join(signs)
    environment = start_environment(layout)
    if not environment.manual_configuration:
        raise ZulipError(_rewritten_message(found, environment))
    directories = [_persistent_directory(path, layout, found) for path in (settings_path, secrets_path)]
    if environment.token_setters:
        raise ZulipError(
            "this host is a docker-zulip container (%s) and %s set%s a SCIM bearer token in zulip-secrets.conf at "
            "every container start, over the token this collection writes, so the IdP would be refused after the "
            "next restart. Nothing was changed. Remove %s, or configure SCIM through the container's environment "
            "alone, as %s says" % (found, ", ".join(environment.token_setters),
                                   "s" if len(environment.token_setters) == 1 else "",
                                   "it" if len(environment.token_setters) == 1 else "them", GUIDE))
    return Verdict(signs, directories[0], directories[1])


def _rewritten_message(found: str, environment: StartEnvironment) -> str:
    hint = ""
    if environment.scim_config_variable:
        hint = (" SETTING_SCIM_CONFIG is set: SCIM is configured through the environment already, which is the way "
                "that lasts; keep it there, with the tokens as SECRETS_%s<subdomain> variables." % SECRET_PREFIX)
    return ("this host is a docker-zulip container (%s) without MANUAL_CONFIGURATION: its entrypoint copies "
            "settings.py afresh from Zulip's template and the SETTING_* variables at every container start, so what "
            "this collection wrote there would be gone after the next restart. Nothing was changed.%s Configure SCIM "
            "with SETTING_SCIM_CONFIG and one SECRETS_%s<subdomain> per realm (the tokens from this collection's "
            "token store), or set MANUAL_CONFIGURATION and LINK_SETTINGS_TO_DATA so that settings.py lives on the "
            "/data volume; %s says how" % (found, hint, SECRET_PREFIX, GUIDE))


def _persistent_directory(path: str, layout: ContainerLayout, found: str) -> str:
    """Where ``path``'s directory really is, when it is on the data volume and ``path`` is no mount point."""
    try:
        directory, name = safe_dir.open_parent(path)
    except OSError as exc:
        raise ZulipError(_not_kept_message(path, found, layout, "its directory cannot be opened: %s"
                                           % (exc.strerror or exc))) from None
    with directory:
        real = directory.real
        if not _inside(real, _real_directory(layout.data_dir)):
            raise ZulipError(_not_kept_message(path, found, layout, "its directory is %s, outside the volume; only the "
                                                                    "volume is known to outlive the container, whose "
                                                                    "own file system is lost when it is made again (an "
                                                                    "image upgrade)" % real))
        info = directory.lstat(name)
        if info is not None and info.st_dev != os.fstat(directory.fd).st_dev:
            raise ZulipError(_not_kept_message(path, found, layout, "it is mounted from elsewhere (a bind mount from "
                                                                    "the Docker host), which cannot be replaced from "
                                                                    "inside the container; edit it where it comes from"))
    return real


def _real_directory(path: str) -> str:
    """Where a directory is after root's links (the volume's mount point is /data itself in docker-zulip)."""
    try:
        with safe_dir.open_directory(path) as directory:
            return directory.real
    except OSError:
        return os.path.normpath(path)  # no volume there: nothing is inside it


def _inside(path: str, top: str) -> bool:
    top = os.path.normpath(top)
    return path == top or path.startswith(top.rstrip("/") + "/")


def _not_kept_message(path: str, found: str, layout: ContainerLayout, reason: str) -> str:
    return ("this host is a docker-zulip container (%s) with MANUAL_CONFIGURATION, but %s is not kept on its data "
            "volume %s: %s. Nothing was changed. Set LINK_SETTINGS_TO_DATA as well (then /etc/zulip is %s/etc-zulip "
            "on the volume), or configure SCIM through the container's environment; %s says how"
            % (found, path, layout.data_dir, reason, layout.data_dir, GUIDE))

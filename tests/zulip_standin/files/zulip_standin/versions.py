"""Zulip versions and the ONE table of version-dependent behaviour.

Every place in the stand-in that behaves differently per Zulip version asks
:class:`Rules`; nothing else compares version numbers. A flavour is any
"X.Y" string, optionally with a suffix ("12.0-dev+git"); only the numbers count.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

Version = tuple[int, int]

_VERSION_RE = re.compile(r"^\s*(\d+)\.(\d+)")


def parse_version(text: str) -> Version:
    """'5.6' -> (5, 6); '12.0-dev+git' -> (12, 0)."""
    match = _VERSION_RE.match(text)
    if match is None:
        raise ValueError(f"not a Zulip version: {text!r}")
    return int(match.group(1)), int(match.group(2))


# name -> (first version that has it, first version that no longer has it)
# None means "open end". Sources: /work/shared/zulip-scim-behaviour.md and
# Zulip's own code (zerver/middleware.py, scripts/restart-server, manage.py).
RULE_TABLE: dict[str, tuple[Version | None, Version | None]] = {
    # manage.py add_scim_client + the zerver_scimclient table (migration 0415 drops it).
    "scim_client_table": (None, (6, 0)),
    # The SCIM auth check is a global middleware for every path under /scim/v2/, so an unknown
    # SCIM URL without a token gets 401 (seen on 5.6). zulip/zulip#23451 (merged 2022-11-05, in
    # 6.0) moved it onto the SCIM views (django-scim2 0.18's AUTH_CHECK_MIDDLEWARE): the URL is
    # resolved first, an unknown one is 404 with or without a token (seen on 9.2).
    "scim_auth_in_middleware": (None, (6, 0)),
    # Token compared with plain != before 5.7 (CVE-2022-41914); not observable over HTTP.
    "constant_time_token_compare": ((5, 7), None),
    # restart-server runs `manage.py check --database default` before restarting.
    "restart_runs_check": ((6, 0), None),
    "restart_option_skip_checks": ((6, 0), None),
    # restart-server as root drops to the zulip user by itself (before: refuses).
    "restart_drops_root": ((9, 0), None),
    "restart_option_skip_client_reloads": ((9, 0), None),
    "scim_key_create_guests_without_streams": ((9, 0), None),
    # SCIM user resources carry "role" and the IdP may set it: from 8.0 (seen on 9.2 and 9.3).
    "scim_user_role": ((8, 0), None),
    # zerver/models became a package (zerver/models/__init__.py).
    "models_is_package": ((8, 0), None),
    # SCIM_CONFIG = {} is a default setting; before, a missing SCIM_CONFIG -> HTTP 500.
    "scim_config_default": ((11, 0), None),
    # SCIM Groups sync; before 11.0 /scim/v2/Groups answers 501.
    "scim_groups": ((11, 0), None),
    # manage.py checkconfig exists (replaced by `check` in 11.5).
    "checkconfig_command": (None, (11, 5)),
    # `manage.py check` also runs the settings.py configuration checks.
    "check_runs_config_checks": ((11, 5), None),
    "scim_key_custom_profile_field_map": ((12, 0), None),
}


def _in_range(version: Version, since: Version | None, until: Version | None) -> bool:
    return (since is None or version >= since) and (until is None or version < until)


@dataclass(frozen=True)
class Rules:
    """The behaviour switches of one Zulip version."""

    version_string: str

    @property
    def version(self) -> Version:
        return parse_version(self.version_string)

    def has(self, rule: str) -> bool:
        since, until = RULE_TABLE[rule]  # KeyError on a typo, on purpose
        return _in_range(self.version, since, until)

    def __getattr__(self, rule: str) -> bool:
        # Rules(...).restart_runs_check reads nicer than .has("restart_runs_check").
        if rule.startswith("__") or rule not in RULE_TABLE:
            raise AttributeError(rule)
        return self.has(rule)

    def summary(self) -> dict[str, bool]:
        return {rule: self.has(rule) for rule in RULE_TABLE}


def read_version_file(path: Path) -> str:
    """ZULIP_VERSION from a deployment's version.py, read without importing it."""
    namespace: dict[str, object] = {}
    exec(compile(path.read_text(), str(path), "exec"), namespace)  # noqa: S102 - our own file
    version = namespace.get("ZULIP_VERSION")
    if not isinstance(version, str):
        raise ValueError(f"{path} has no ZULIP_VERSION")
    return version

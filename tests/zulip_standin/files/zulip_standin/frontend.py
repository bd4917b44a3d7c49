"""Which ports the server listens on, from /etc/zulip/zulip.conf, as Zulip's puppet decides.

puppet/zulip/manifests/profile/app_frontend.pp:
    $nginx_http_only = zulipconf('application_server', 'http_only', false)
    nginx_listen_port: zulipconf('application_server', 'nginx_listen_port', 80 if http_only else 443)
and the nginx template then serves either plain HTTP on that port only, or
TLS on that port plus a port-80 server that answers every request with
``301 https://$host$request_uri``.

Real Zulip applies a zulip.conf change only on `zulip-puppet-apply`. The
stand-in has no puppet, so its server reads zulip.conf at every start.
This module is stdlib-only: the probe helper imports it as well.
"""

from __future__ import annotations

import configparser
from dataclasses import dataclass

# zulipconf.rb (and scripts/lib/zulip_tools.py): how a string becomes a boolean.
TRUE_WORDS = ("1", "y", "t", "true", "yes", "enable", "enabled")


@dataclass(frozen=True)
class FrontEnd:
    http_only: bool
    port: int  # where the app answers: TLS, or plain HTTP when http_only
    redirect_port: int  # plain HTTP that only redirects to https; 0 = none

    @property
    def scheme(self) -> str:
        return "http" if self.http_only else "https"


def read_zulip_conf(path: str) -> configparser.RawConfigParser:
    parser = configparser.RawConfigParser()
    parser.read(path)  # a missing file means "all defaults", like crudini failing
    return parser


def as_bool(value: str) -> bool:
    return value.strip().lower() in TRUE_WORDS


def front_end(path: str, https_default: int = 443, http_default: int = 80) -> FrontEnd:
    """The front end zulip.conf asks for.

    https_default / http_default are what "443" and "80" mean on this install:
    the real ports on a test host, free ports (or 0 = none) in local self-tests.
    """
    conf = read_zulip_conf(path)
    http_only = as_bool(conf.get("application_server", "http_only", fallback="false"))
    listen = conf.get("application_server", "nginx_listen_port", fallback="").strip()
    port = int(listen) if listen else (http_default if http_only else https_default)
    if port <= 0:
        raise ValueError(f"{path}: no port to listen on (http_only={http_only}, nginx_listen_port={listen!r})")
    return FrontEnd(http_only=http_only, port=port, redirect_port=0 if http_only else http_default)


def zulip_conf_text(http_only: bool, listen_port: int | None) -> str:
    """zulip.conf as the installer writes it: what the Zulip installer leaves, plus the front end."""
    lines = ["[machine]", "puppet_classes = zulip::profile::standalone", "deploy_type = production", "",
             "[postgresql]", "version = 15", ""]
    if http_only or listen_port:
        lines.append("[application_server]")
        if http_only:
            lines.append("http_only = true")
        if listen_port:
            lines.append(f"nginx_listen_port = {listen_port}")
        lines.append("")
    return "\n".join(lines)

"""Text of the files the installer lays down (settings.py, secrets, units, stubs)."""

from __future__ import annotations

import secrets as _random

from . import frontend


def settings_py(external_host: str) -> str:
    """A /etc/zulip/settings.py as an admin leaves it: Zulip's header, edits, no SCIM."""
    return f'''from .config import get_secret

################################################################
## Zulip Server settings.
##
## This file holds the settings of this Zulip server. Most of them are
## documented inline below; see the Zulip documentation for the rest.
##
## Restart the server after changing anything here:
##   su zulip -c /home/zulip/deployments/current/scripts/restart-server

################################
## Mandatory settings.

## The fully qualified domain name of this server.
EXTERNAL_HOST = "{external_host}"

## Who maintains this installation; shown in error pages and emails.
ZULIP_ADMINISTRATOR = "it-ops@{external_host}"

################
## Outgoing email (SMTP) settings.

## Password is in /etc/zulip/zulip-secrets.conf as email_password.
EMAIL_HOST = "smtp.{external_host}"
EMAIL_HOST_USER = "zulip@{external_host}"
# EMAIL_PORT = 587
EMAIL_USE_TLS = True

## Sender of the emails Zulip sends on behalf of nobody in particular.
# NOREPLY_EMAIL_ADDRESS = "noreply@example.com"

################
## Authentication settings.

## Which login methods are on. (2024-03: LDAP tried and dropped again -- ops)
AUTHENTICATION_BACKENDS = (
    "zproject.backends.EmailAuthBackend",  # Email and password
    # "zproject.backends.GoogleAuthBackend",
    # "zproject.backends.GitHubAuthBackend",
    # "zproject.backends.ZulipLDAPAuthBackend",
    # "zproject.backends.SAMLAuthBackend",
)

## Organizations on subdomains of EXTERNAL_HOST.
# ROOT_DOMAIN_LANDING_PAGE = False

################
## Miscellaneous settings.

## Where uploaded files go.
LOCAL_UPLOADS_DIR = "/home/zulip/uploads"
MAX_FILE_UPLOAD_SIZE = 25  # MiB

## Link previews for URLs in messages.
INLINE_URL_EMBED_PREVIEW = True

# Office hours bot stays off until the pilot is over.
# EMBEDDED_BOTS_ENABLED = True

## Theme: keep the default.
'''


def secrets_conf() -> str:
    values = {
        "avatar_salt": _random.token_hex(16),
        "rabbitmq_password": _random.token_hex(20),
        "shared_secret": _random.token_hex(32),
        "secret_key": _random.token_urlsafe(48),
        "camo_key": _random.token_hex(16),
        "memcached_password": _random.token_hex(24),
        "redis_password": _random.token_hex(24),
        "zulip_org_key": _random.token_hex(32),
        "zulip_org_id": "7ad3b4f2-3c1e-4f59-9d4e-8e6f1b2a5c90",
        "email_password": _random.token_urlsafe(18),
    }
    return "[secrets]\n" + "".join(f"{k} = {v}\n" for k, v in values.items())


def zulip_conf(http_only: bool = False, listen_port: int | None = None) -> str:
    return frontend.zulip_conf_text(http_only, listen_port)


def version_py(version: str) -> str:
    return (f'ZULIP_VERSION = "{version}"\n'
            "# Bump the minor PROVISION_VERSION on every dependency change.\n"
            'PROVISION_VERSION = (0, 0)\n')


def script(shebang: str, docstring: str, path_setup: str, call: str) -> str:
    return f'''#!{shebang}
"""{docstring}"""
import os
import sys

{path_setup}

if __name__ == "__main__":
    {call}
'''


def manage_py(shebang: str) -> str:
    return script(shebang, "Zulip's manage.py (stand-in: zulip_standin/commands.py).",
                  "BASE_DIR = os.path.dirname(os.path.abspath(__file__))\nsys.path.append(BASE_DIR)",
                  "from zulip_standin.commands import main\n\n    sys.exit(main())")


def deploy_script(shebang: str, docstring: str, module: str, function: str, depth: int) -> str:
    up = ", ".join(['".."'] * depth)
    return script(shebang, docstring,
                  f"sys.path.insert(0, os.path.realpath(os.path.join(os.path.dirname(__file__), {up})))",
                  f"from zulip_standin.{module} import {function}\n\n    sys.exit({function}())")


ZERVER_MODELS = '''"""zerver.models (stand-in): Realm, UserProfile, CustomProfileField, get_realm; SCIMClient only before 6.0."""
from zulip_standin.config import load_config
from zulip_standin.orm import CustomProfileField, Realm, UserProfile, get_realm, get_user_by_delivery_email

if load_config().rules().scim_client_table:
    from zulip_standin.orm import SCIMClient
'''

ZPROJECT_CONFIG = '''"""zproject.config (stand-in): get_secret() over /etc/zulip/zulip-secrets.conf, read once."""
from zulip_standin.config import load_config
from zulip_standin.settings_loader import SecretsFile

_secrets = SecretsFile(load_config().secrets_path)
get_secret = _secrets.get_secret
'''


def systemd_unit(deploy_link: str, unit_user: str) -> str:
    return f"""[Unit]
Description=Zulip stand-in server (SCIM test double)
After=network.target

[Service]
Type=simple
User={unit_user}
Group={unit_user}
WorkingDirectory={deploy_link}
ExecStart=/usr/bin/python3 {deploy_link}/scripts/lib/zulip-standin-server
# Port 443 as the zulip user.
AmbientCapabilities=CAP_NET_BIND_SERVICE
RuntimeDirectory=zulip-standin
RuntimeDirectoryPreserve=yes
Restart=on-failure
RestartSec=1

[Install]
WantedBy=multi-user.target
"""


def sudoers(user: str, unit: str) -> str:
    # Stand-in detail: real Zulip restarts through supervisorctl; here the zulip
    # user may restart exactly this one unit, nothing else.
    return f"{user} ALL=(root) NOPASSWD: /usr/bin/systemctl restart {unit}\n"

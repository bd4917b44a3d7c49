"""Where the stand-in keeps things, and who is running it.

The installer writes ``config.json`` next to this package. Every path the
stand-in touches comes from there, so the local self-tests can install a
whole stand-in under a temporary prefix and run it without root, users or
systemd. On a test host the paths are the real ones (/etc/zulip/...).
"""

from __future__ import annotations

import json
import os
import pwd
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .versions import Rules, read_version_file

PACKAGE_DIR = Path(__file__).resolve().parent
DEFAULT_CONFIG_PATH = PACKAGE_DIR / "config.json"
FAKE_USER_ENV = "ZULIP_STANDIN_FAKE_USER"


@dataclass
class StandinConfig:
    deploy_dir: str  # the timestamped deployment this package belongs to
    deployments_dir: str = "/home/zulip/deployments"
    settings_path: str = "/etc/zulip/settings.py"
    secrets_path: str = "/etc/zulip/zulip-secrets.conf"
    zulip_conf_path: str = "/etc/zulip/zulip.conf"
    db_path: str = "/var/lib/zulip-standin/db/zulip.db"
    ledger_path: str = "/var/lib/zulip-standin/ledger.jsonl"
    log_dir: str = "/var/log/zulip"
    pid_file: str = "/run/zulip-standin/server.pid"
    cert_path: str = "/etc/ssl/certs/zulip.combined-chain.crt"
    key_path: str = "/etc/zulip-standin/zulip.key"
    zulip_user: str = "zulip"
    manage_delay: float = 1.0  # the Django start-up every manage.py call pays
    restart_delay: float = 1.0  # what supervisorctl restarts cost, on top of the check
    # What "443" and "80" mean here (frontend.py): TLS port when zulip.conf sets no
    # nginx_listen_port; the https redirect (or http_only default) port, 0 = none.
    https_port: int = 443
    http_port: int = 80
    bind_address: str = "0.0.0.0"
    service_mode: str = "systemd"  # "systemd" on test hosts, "process" in local self-tests
    service_unit: str = "zulip-standin.service"
    server_argv: list[str] = field(default_factory=list)  # how "process" mode starts the server
    settings_watch_interval: float = 0.05  # the queue worker's autoreload poll
    fake_users: bool = False  # local self-tests only: identity from $ZULIP_STANDIN_FAKE_USER

    def rules(self) -> Rules:
        return Rules(self.version())

    def version(self) -> str:
        return read_version_file(Path(self.deploy_dir) / "version.py")

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self), indent=2, sort_keys=True) + "\n")


def load_config(path: Path | None = None) -> StandinConfig:
    data = json.loads((path or DEFAULT_CONFIG_PATH).read_text())
    if path is None:
        # The deployment is wherever this code is: a copied deployment (an
        # "upgrade" with another version.py) then acts as itself.
        data["deploy_dir"] = str(PACKAGE_DIR.parent)
    return StandinConfig(**data)


def current_username(config: StandinConfig) -> str:
    """The user this process runs as (or pretends to, in local self-tests)."""
    if config.fake_users:
        fake = os.environ.get(FAKE_USER_ENV)
        if fake:
            return fake
    return pwd.getpwuid(os.getuid()).pw_name


def can_read_secrets(config: StandinConfig, username: str) -> bool:
    if config.fake_users:
        return username in (config.zulip_user, "root")
    return os.access(config.secrets_path, os.R_OK)


def become_zulip(config: StandinConfig) -> None:
    """What Zulip's su_to_zulip() does: setgid/setuid in-process, HOME follows."""
    if config.fake_users:
        os.environ[FAKE_USER_ENV] = config.zulip_user
        return
    entry = pwd.getpwnam(config.zulip_user)
    os.setgid(entry.pw_gid)
    os.setuid(entry.pw_uid)
    os.environ["HOME"] = entry.pw_dir

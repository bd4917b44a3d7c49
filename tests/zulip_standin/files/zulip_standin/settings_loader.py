"""Load /etc/zulip/settings.py the way Zulip does.

Zulip imports the file as ``zproject.prod_settings`` (a symlink inside the
deployment), so its first line ``from .config import get_secret`` resolves to
``zproject.config``, whose get_secret() reads ``[secrets]`` of
/etc/zulip/zulip-secrets.conf once, at import. Names the file does not set
fall back to Zulip's defaults; which defaults exist depends on the version.
"""

from __future__ import annotations

import configparser
import sys
import types
from pathlib import Path
from typing import Any

from .config import StandinConfig
from .versions import Rules


class SecretsFile:
    """zproject/config.py's view of zulip-secrets.conf, read once."""

    def __init__(self, path: str) -> None:
        self.parser = configparser.RawConfigParser()
        # Like Zulip: an unreadable or missing file just means "no secrets".
        self.parser.read(path)

    def get_secret(self, key: str, default_value: str | None = None, development_only: bool = False) -> str | None:
        if development_only:
            return default_value  # production: development-only secrets are never read
        return self.parser.get("secrets", key, fallback=default_value)


def _config_module(secrets: SecretsFile) -> types.ModuleType:
    module = types.ModuleType("zproject.config")
    module.get_secret = secrets.get_secret  # type: ignore[attr-defined]
    module.get_config = lambda section, key, default_value=None: default_value  # type: ignore[attr-defined]
    return module


def _install_zproject(config: StandinConfig, secrets: SecretsFile) -> None:
    """Make ``zproject`` and ``zproject.config`` importable for the settings file."""
    package = sys.modules.get("zproject")
    if package is None:
        package = types.ModuleType("zproject")
        package.__path__ = [str(Path(config.deploy_dir) / "zproject")]  # type: ignore[attr-defined]
        sys.modules["zproject"] = package
    config_module = _config_module(secrets)
    sys.modules["zproject.config"] = config_module
    package.config = config_module  # type: ignore[attr-defined]


def settings_display_path(config: StandinConfig) -> str:
    # Zulip reaches /etc/zulip/settings.py through this symlink, so tracebacks name it.
    return str(Path(config.deploy_dir) / "zproject" / "prod_settings.py")


def exec_settings_file(config: StandinConfig) -> dict[str, Any]:
    """Compile and run settings.py; SyntaxError & co. propagate like in Zulip."""
    secrets = SecretsFile(config.secrets_path)
    _install_zproject(config, secrets)
    source = Path(config.settings_path).read_bytes()
    # Compile from source every time (no .pyc): a same-second edit must never be missed.
    code = compile(source, settings_display_path(config), "exec", dont_inherit=True)
    module = types.ModuleType("zproject.prod_settings")
    module.__package__ = "zproject"
    module.__file__ = settings_display_path(config)
    sys.modules["zproject.prod_settings"] = module
    exec(code, module.__dict__)  # noqa: S102 - that is what Django's import does
    values = {name: value for name, value in module.__dict__.items() if name.isupper()}
    values["SECRET_KEY"] = secrets.get_secret("secret_key")
    return values


class Settings:
    """django.conf.settings, as far as SCIM cares."""

    def __init__(self, values: dict[str, Any], rules: Rules) -> None:
        merged = dict(DEFAULTS)
        if rules.scim_config_default:
            merged["SCIM_CONFIG"] = {}
        merged.update(values)
        self.__dict__["_values"] = merged

    def __getattr__(self, name: str) -> Any:
        try:
            return self.__dict__["_values"][name]
        except KeyError:
            raise AttributeError(f"'Settings' object has no attribute '{name}'") from None

    def has(self, name: str) -> bool:
        return name in self.__dict__["_values"]


# Defaults that exist in every supported version (zproject/default_settings.py).
DEFAULTS: dict[str, Any] = {
    "EXTERNAL_HOST": "zulip.example.com",
    "ZULIP_ADMINISTRATOR": "zulip-admin@example.com",
    "AUTHENTICATION_BACKENDS": (),
    "EXTERNAL_URI_SCHEME": "https://",
    "USING_APACHE_SSO": False,
}

# zerver/lib/management.py check_config(): (name, value that means "not set").
REQUIRED_SETTINGS: list[tuple[str, Any]] = [
    ("EXTERNAL_HOST", "zulip.example.com"),
    ("ZULIP_ADMINISTRATOR", "zulip-admin@example.com"),
    ("SECRET_KEY", None),
    ("AUTHENTICATION_BACKENDS", ()),
]


def load_settings(config: StandinConfig, rules: Rules | None = None) -> Settings:
    return Settings(exec_settings_file(config), rules or config.rules())


def config_errors(settings: Settings) -> list[str]:
    """What `manage.py checkconfig` (and `check` from 11.5) complains about."""
    errors = []
    for name, unset in REQUIRED_SETTINGS:
        if not settings.has(name) or getattr(settings, name) in (unset, ""):
            errors.append(f"Error: You must set {name} in /etc/zulip/settings.py.")
    return errors


def compiles(path: str) -> str | None:
    """None when the file compiles, else the error (the settings watcher's test)."""
    try:
        compile(Path(path).read_bytes(), path, "exec", dont_inherit=True)
    except (SyntaxError, ValueError) as exc:
        return f"{type(exc).__name__}: {exc}"
    except OSError as exc:
        return f"{type(exc).__name__}: {exc}"
    return None

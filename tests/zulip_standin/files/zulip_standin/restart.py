"""scripts/restart-server (and scripts/get-django-setting).

Like Zulip's: refuses users other than zulip (root too before 9.0; 9.0+
drops root to zulip itself), runs `manage.py check --database default` first
from 6.0 (a broken settings.py stops it before anything restarts), restarts
the server, and finally asks Django for USING_APACHE_SSO, which loads
settings.py again, so a broken file still fails the run when no check ran.
"""

from __future__ import annotations

import argparse
import logging
import os
import subprocess
import sys
import time
import traceback
from pathlib import Path

from . import ledger, service
from .config import StandinConfig, become_zulip, current_username, load_config
from .settings_loader import load_settings
from .versions import Rules

OKGREEN = "\033[92m"
ENDC = "\033[0m"


def option_parser(rules: Rules) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="restart-server")
    parser.add_argument("--fill-cache", action="store_true", help="Fill the memcached caches")
    parser.add_argument("--less-graceful", action="store_true",
                        help="Restart with more concern for expediency than minimizing availability interruption")
    if rules.restart_option_skip_checks:
        parser.add_argument("--skip-checks", action="store_true", help="Skip syntax and database checks")
    if rules.restart_option_skip_client_reloads:
        parser.add_argument("--skip-client-reloads", action="store_true",
                            help="Do not send reload events to web clients")
    return parser


def repoint_symlinks(config: StandinConfig) -> None:
    """restart-server makes `current` the deployment it was started from."""
    deployments = Path(config.deployments_dir)
    current, last = deployments / "current", deployments / "last"
    deploy = os.path.realpath(config.deploy_dir)
    if os.path.realpath(current) == deploy:
        return
    for link, target in ((last, os.readlink(current)), (current, deploy)):
        tmp = link.with_name(f".{link.name}.tmp")
        if tmp.is_symlink():
            tmp.unlink()
        tmp.symlink_to(target)
        os.replace(tmp, link)


def run(config: StandinConfig, user: str, argv: list[str]) -> int:
    rules = config.rules()
    options = option_parser(rules).parse_args(argv[1:])
    os.chdir(config.deploy_dir)
    if user == "root" and rules.restart_drops_root:
        become_zulip(config)  # scripts/lib/zulip_tools.py su_to_zulip()
    elif user != config.zulip_user:
        logging.error("Must be run as user 'zulip'.")
        return 1
    if rules.restart_runs_check and not getattr(options, "skip_checks", False):
        logging.info("Running syntax and database checks")
        subprocess.check_call(["./manage.py", "check", "--database", "default"])
    if options.fill_cache:
        logging.info("Filling memcached caches")
        subprocess.check_call(["./manage.py", "fill_memcached_caches"])
    repoint_symlinks(config)
    old_pid = service.read_pid(config)
    logging.info("Restarting django server")
    time.sleep(config.restart_delay)  # what the supervisorctl round trips cost
    service.restart(config)
    service.wait_until_serving(config, old_pid)
    subprocess.check_output(["./scripts/get-django-setting", "USING_APACHE_SSO"])
    logging.info("Done!")
    print(OKGREEN + "Zulip restarted successfully!" + ENDC)
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv if argv is None else argv)
    logging.Formatter.converter = time.gmtime
    logging.basicConfig(format="%(asctime)s restart-server: %(message)s", level=logging.INFO)
    config = load_config()
    user = current_username(config)
    started = time.monotonic()
    old_pid = service.read_pid(config)
    rc = 1
    try:
        rc = run(config, user, argv)
    except SystemExit as exc:
        rc = exc.code if isinstance(exc.code, int) else 1
    except BaseException:  # noqa: BLE001 - an uncaught error is a traceback and rc 1, like Python
        traceback.print_exc()
        rc = 1
    finally:
        sys.stdout.flush()
        ledger.append(config.ledger_path, {
            "event": "restart", "user": user, "argv": argv[1:], "rc": rc, "old_pid": old_pid,
            "new_pid": service.read_pid(config), "seconds": round(time.monotonic() - started, 3),
        })
    return rc


def get_django_setting_main(argv: list[str] | None = None) -> int:
    """scripts/get-django-setting NAME: prints the setting; a broken settings.py is a traceback."""
    argv = list(sys.argv if argv is None else argv)
    settings = load_settings(load_config())
    print(getattr(settings, argv[1], ""))
    return 0

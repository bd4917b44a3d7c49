"""manage.py: Zulip's management commands, as far as SCIM automation sees them.

Each call pays the Django start-up delay first, refuses root and strangers
like Zulip's manage.py, loads settings.py (so a broken file breaks every
command), runs the command and leaves a ledger line.
"""

from __future__ import annotations

import argparse
import builtins
import difflib
import os
import shlex
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path

from . import ledger, orm
from .config import StandinConfig, can_read_secrets, current_username, load_config
from .db import realm_host
from .fakes import CommandError
from .settings_loader import Settings, config_errors, load_settings
from .versions import Rules

Handler = Callable[[StandinConfig, Settings, list[str]], int]


def root_refusal(program: str, zulip_user: str) -> str:
    # scripts/lib/zulip_tools.py assert_not_running_as_root(), word for word.
    name = os.path.abspath(program)
    return (
        f"{os.path.basename(name)} should not be run as root. Use `su {zulip_user}` to switch to the 'zulip'\n"
        f"user before rerunning this, or use \n  su {zulip_user} -c '{name} ...'\n"
        "to switch users and run this as a single command."
    )


STRANGER_REFUSAL = "Error accessing Zulip secrets; manage.py in production must be run as the zulip user."


def command_parser(name: str) -> argparse.ArgumentParser:
    """argparse with the options every Django command accepts."""
    parser = argparse.ArgumentParser(prog=f"manage.py {name}")
    parser.add_argument("-v", "--verbosity", type=int, default=1, choices=[0, 1, 2, 3])
    parser.add_argument("--settings")
    parser.add_argument("--pythonpath")
    parser.add_argument("--traceback", action="store_true")
    parser.add_argument("--no-traceback", action="store_true")
    parser.add_argument("--no-color", action="store_true")
    parser.add_argument("--force-color", action="store_true")
    parser.add_argument("--skip-checks", action="store_true")
    return parser


def realm_from_option(value: str | None) -> orm.Realm | None:
    """ZulipBaseCommand.get_realm(): id or string_id, "" is the root realm."""
    if value is None:
        return None
    try:
        if value.isdigit():
            return orm.Realm.objects.get(id=value)  # type: ignore[return-value]
        return orm.get_realm(value)
    except orm.Realm.DoesNotExist:
        raise CommandError(f"There is no realm with id '{value}'. Aborting.") from None


def cmd_add_scim_client(config: StandinConfig, settings: Settings, args: list[str]) -> int:
    parser = command_parser("add_scim_client")
    parser.add_argument("-r", "--realm", dest="realm_id")
    parser.add_argument("name")
    options = parser.parse_args(args)
    realm = realm_from_option(options.realm_id)
    assert realm  # zerver/management/commands/add_scim_client.py does exactly this
    orm.SCIMClient.objects.create(realm=realm, name=options.name)
    return 0


def realm_url(settings: Settings, string_id: str) -> str:
    return f"{settings.EXTERNAL_URI_SCHEME}{realm_host(string_id, str(settings.EXTERNAL_HOST))}"


def cmd_list_realms(config: StandinConfig, settings: Settings, args: list[str]) -> int:
    parser = command_parser("list_realms")
    parser.add_argument("--all", action="store_true")
    options = parser.parse_args(args)
    realms = list(orm.Realm.objects.all())
    if options.all:
        for realm in realms:
            for key in ("id", "name", "string_id", "deactivated"):
                print(f"{key:<40} {getattr(realm, key)}")
            print("-" * 80)
        return 0
    row = "%-5s %-20s %-30s %-50s"  # list_realms' own format, padding and all
    print(row % ("id", "string_id", "name", "domain"))
    print(row % ("--", "---------", "----", "------"))
    for realm in realms:
        shown_id = realm.string_id if realm.string_id != "" else "''"
        print(row % (realm.id, shown_id, realm.name, realm_url(settings, realm.string_id)))
    return 0


def cmd_checkconfig(config: StandinConfig, settings: Settings, args: list[str]) -> int:
    command_parser("checkconfig").parse_args(args)
    errors = config_errors(settings)
    if errors:
        raise CommandError(errors[0])  # check_config() stops at the first one
    return 0


def cmd_check(config: StandinConfig, settings: Settings, args: list[str]) -> int:
    parser = command_parser("check")
    parser.add_argument("app_label", nargs="*")
    parser.add_argument("--database", action="append")
    parser.add_argument("--deploy", action="store_true")
    parser.add_argument("--fail-level", default="ERROR")
    parser.add_argument("--tag", "-t", action="append")
    parser.add_argument("--list-tags", action="store_true")
    parser.parse_args(args)
    errors = config_errors(settings) if config.rules().check_runs_config_checks else []
    if errors:
        lines = "\n".join(f"?: (zulip.E001) {e.removeprefix('Error: ')}" for e in errors)
        raise CommandError(
            "SystemCheckError: System check identified some issues:\n\nERRORS:\n"
            f"{lines}\n\nSystem check identified {len(errors)} issue{'s' if len(errors) > 1 else ''} (0 silenced)."
        )
    print("System check identified no issues (0 silenced).")
    return 0


def cmd_shell(config: StandinConfig, settings: Settings, args: list[str]) -> int:
    parser = command_parser("shell")
    parser.add_argument("-c", "--command")
    parser.add_argument("-i", "--interface")
    parser.add_argument("--no-startup", action="store_true")
    parser.add_argument("--no-imports", action="store_true")
    options = parser.parse_args(args)
    code = options.command
    if code is None:
        if sys.stdin.isatty():
            print("zulip-standin: interactive shell is not simulated; use -c or stdin", file=sys.stderr)
            return 1
        code = sys.stdin.read()  # Django's shell runs piped stdin
    namespace = {"__name__": "__main__", "__builtins__": builtins}
    exec(compile(code, "<string>", "exec"), namespace)  # noqa: S102 - it is a shell
    return 0


def cmd_noop(config: StandinConfig, settings: Settings, args: list[str]) -> int:
    return 0  # send_stats, fill_memcached_caches: nothing to imitate


def available_commands(rules: Rules) -> dict[str, Handler]:
    commands: dict[str, Handler] = {
        "check": cmd_check,
        "list_realms": cmd_list_realms,
        "shell": cmd_shell,
        "send_stats": cmd_noop,
        "fill_memcached_caches": cmd_noop,
    }
    if rules.scim_client_table:
        commands["add_scim_client"] = cmd_add_scim_client
    if rules.checkconfig_command:
        commands["checkconfig"] = cmd_checkconfig
    return commands


def print_help(commands: dict[str, Handler]) -> int:
    print("\nType 'manage.py help <subcommand>' for help on a specific subcommand.\n")
    print("Available subcommands:\n\n[zerver]")
    for name in sorted(commands):
        print(f"    {name}")
    return 0


def unknown_command(name: str, commands: dict[str, Handler]) -> int:
    # django.core.management.ManagementUtility.fetch_command()
    message = f"Unknown command: {name!r}"
    matches = difflib.get_close_matches(name, list(commands))
    if matches:
        message += f". Did you mean {matches[0]}?"
    sys.stderr.write(message + "\nType 'manage.py help' for usage.\n")
    return 1


def log_management_command(config: StandinConfig, argv: list[str]) -> None:
    """scripts/lib/zulip_tools.py log_management_command(): logging's "%(asctime)s: Ran <argv>"."""
    now = time.time()
    stamp = f"{time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(now))},{int(now % 1 * 1000):03d}"
    try:
        with open(Path(config.log_dir) / "manage.log", "a") as handle:
            handle.write(f"{stamp}: Ran {shlex.join(argv)}\n")
    except OSError:
        pass  # like Zulip, logging trouble never stops a command


def run(config: StandinConfig, user: str, argv: list[str]) -> int:
    time.sleep(config.manage_delay)  # Django's start-up, paid by every call
    if user == "root":
        print(root_refusal(argv[0], config.zulip_user))
        return 1
    if not can_read_secrets(config, user):
        print(STRANGER_REFUSAL)
        return 1
    settings = load_settings(config)  # a broken settings.py breaks every command
    orm.configure(config.db_path)
    log_management_command(config, argv)
    commands = available_commands(config.rules())
    if len(argv) < 2 or argv[1] in ("help", "--help", "-h"):
        return print_help(commands)
    name, args = argv[1], argv[2:]
    if name not in commands:
        return unknown_command(name, commands)
    try:
        return commands[name](config, settings, args)
    except CommandError as exc:
        print(exc, file=sys.stderr)  # manage.py catches CommandError: one line, no traceback
        return 1


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv if argv is None else argv)
    config = load_config()
    user = current_username(config)
    started = time.monotonic()
    rc = 1
    try:
        rc = run(config, user, argv)
    except SystemExit as exc:
        rc = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        if exc.code is not None and not isinstance(exc.code, int):
            print(exc.code, file=sys.stderr)
    except BaseException:  # noqa: BLE001 - an uncaught error is a traceback and rc 1, like Python
        traceback.print_exc()
        rc = 1
    finally:
        sys.stdout.flush()
        ledger.append(config.ledger_path, {
            "event": "manage", "user": user, "program": argv[0], "argv": argv[1:], "rc": rc,
            "seconds": round(time.monotonic() - started, 3),
        })
    return rc

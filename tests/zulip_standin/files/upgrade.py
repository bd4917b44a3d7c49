#!/usr/bin/env python3
"""Upgrade the stand-in's Zulip to a newer version, the way Zulip's scripts/upgrade-zulip does.

On a test host (as root), after installer.py:
    upgrade.py --to 9.2
Local self-tests: the same --prefix and --local as installer.py.

What Zulip's upgrade does, read in Zulip 9.2's scripts/lib/upgrade-zulip, unpack-zulip,
upgrade-zulip-stage-2/-3, restart-server and zulip_tools.py, and what this script does for it:
  1. get_deployment_lock(): mkdir /home/zulip/deployments/lock. Zulip waits up to 300 s for a
     lock that exists; this script fails at once.
  2. unpack-zulip (as zulip): the release in a new /home/zulip/deployments/<YYYY-MM-DD-HH-MM-SS>,
     its zproject/prod_settings.py a link to /etc/zulip/settings.py, `next` pointed at it. Here:
     the stand-in's files for the new version (installer.py's write_deployment), owned by zulip.
  3. stage 3, as zulip from the new deployment: manage.py check --database default, then the
     migrations. Across 6.0, 0415_delete_scimclient (DeleteModel SCIMClient) drops the table
     zerver_scimclient and every SCIM client row with it; here the same DROP TABLE.
  4. restart-server --skip-checks (and --skip-client-reloads from 9.0) of the NEW deployment, as
     zulip: it points `last` at the old deployment and `current` at the new one, then restarts.
  5. release_deployment_lock(), in a finally.
/etc/zulip is never written: Zulip's upgrade keeps settings.py, zulip-secrets.conf and zulip.conf
(only its puppet re-asserts their owner and mode). Prints one JSON line: from, to, deploy_dir,
dropped (the tables the migrations dropped).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from installer import USER, Installer, parse_args as installer_args  # noqa: E402
from zulip_standin import db  # noqa: E402
from zulip_standin.config import FAKE_USER_ENV, StandinConfig  # noqa: E402
from zulip_standin.versions import Rules, parse_version, read_version_file  # noqa: E402

LOCK_NAME = "lock"  # scripts/lib/zulip_tools.py LOCK_DIR = DEPLOYMENTS_DIR/lock


class UpgradeError(Exception):
    pass


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--to", required=True, help='the newer Zulip version, e.g. "9.2", "11.5"')
    parser.add_argument("--prefix", default="", help="as installer.py --prefix")
    parser.add_argument("--local", action="store_true", help="as installer.py --local")
    args = parser.parse_args(argv)
    parse_version(args.to)
    return args


def new_deploy_path(deployments: Path) -> Path:
    """scripts/lib/zulip_tools.py make_deploy_path(): the time, to the second (a new second if taken)."""
    while True:
        path = deployments / time.strftime("%Y-%m-%d-%H-%M-%S")
        if not os.path.lexists(path):
            return path
        time.sleep(0.2)


def point(link: Path, target: Path) -> None:
    """overwrite_symlink(): a new link renamed over the old name."""
    tmp = link.with_name(".%s.upgrade-tmp" % link.name)
    if os.path.lexists(tmp):
        tmp.unlink()
    tmp.symlink_to(target)
    os.replace(tmp, link)


class Upgrade:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.system = not args.local
        self.deployments = Path(args.prefix.rstrip("/") + "/home/zulip/deployments")
        self.old_deploy = (self.deployments / "current").resolve()
        self.old_version = read_version_file(self.old_deploy / "version.py")
        if parse_version(args.to) <= parse_version(self.old_version):
            raise UpgradeError("%s is not newer than the installed %s" % (args.to, self.old_version))
        self.rules = Rules(args.to)

    def as_zulip(self, argv: list[str], cwd: Path) -> None:
        """A program run as the zulip user (Zulip's preexec_fn=su_to_zulip); local tests fake the identity."""
        if self.system:
            argv = ["runuser", "-u", USER, "--"] + argv
            env = dict(os.environ)
        else:
            env = dict(os.environ, **{FAKE_USER_ENV: USER})
        subprocess.run(argv, cwd=cwd, env=env, check=True, stdin=subprocess.DEVNULL)

    def unpack(self) -> Path:
        deploy = new_deploy_path(self.deployments)
        old_cfg = json.loads((self.old_deploy / "zulip_standin" / "config.json").read_text())
        cfg = StandinConfig(**dict(old_cfg, deploy_dir=str(deploy)))
        opts = installer_args(["--flavour", self.args.to, "--prefix", self.args.prefix]
                              + (["--local"] if self.args.local else []))
        Installer(opts).write_deployment(deploy, cfg)
        if self.system:
            subprocess.run(["chown", "-R", "--no-dereference", "%s:%s" % (USER, USER), str(deploy)], check=True)
        point(self.deployments / "next", deploy)
        if self.system:
            os.lchown(self.deployments / "next", *_ids(USER))
        return deploy

    def migrate(self, cfg_path: Path) -> list[str]:
        """The migrations between the two versions that touch the stand-in's tables."""
        cfg = json.loads(cfg_path.read_text())
        dropped = []
        conn = db.connect(cfg["db_path"])
        try:
            if not self.rules.scim_client_table and db.has_table(conn, "zerver_scimclient"):
                conn.execute("DROP TABLE zerver_scimclient")  # 0415_delete_scimclient
                dropped.append("zerver_scimclient")
        finally:
            conn.close()
        return dropped

    def restart_options(self) -> list[str]:
        options = []
        if self.rules.restart_option_skip_checks:
            options.append("--skip-checks")
        if self.rules.restart_option_skip_client_reloads:
            options.append("--skip-client-reloads")
        return options

    def run(self) -> dict:
        lock = self.deployments / LOCK_NAME
        try:
            os.mkdir(lock)
        except FileExistsError:
            raise UpgradeError("Deployment already in progress (%s exists)" % lock) from None
        try:
            deploy = self.unpack()
            self.as_zulip([str(deploy / "manage.py"), "check", "--database", "default"], deploy)
            dropped = self.migrate(deploy / "zulip_standin" / "config.json")
            self.as_zulip([str(deploy / "scripts" / "restart-server")] + self.restart_options(), deploy)
        finally:
            os.rmdir(lock)
        if (self.deployments / "current").resolve() != deploy:
            raise UpgradeError("restart-server did not point current at %s" % deploy)
        return {"from": self.old_version, "to": self.args.to, "deploy_dir": str(deploy), "dropped": dropped}


def _ids(user: str) -> tuple[int, int]:
    import pwd  # pylint: disable=import-outside-toplevel

    entry = pwd.getpwnam(user)
    return entry.pw_uid, entry.pw_gid


def main(argv: list[str] | None = None) -> int:
    try:
        print(json.dumps(Upgrade(parse_args(argv)).run()))
    except (UpgradeError, subprocess.CalledProcessError) as exc:
        print("upgrade failed: %s" % exc, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

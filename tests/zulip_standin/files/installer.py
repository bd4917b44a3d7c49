#!/usr/bin/env python3
"""Install (or reset) the Zulip stand-in on this machine.

On a test host (as root):
    installer.py --flavour 9.0 --realms '["acme", "beta", ""]'
builds the zulip user, /home/zulip/deployments/<timestamp>/ (+ current, last),
/etc/zulip/{settings.py,zulip-secrets.conf,zulip.conf}, the realm database,
an empty ledger, a self-signed certificate, and the systemd unit
zulip-standin.service, then waits until the server answers.

Front end (/etc/zulip/zulip.conf, read by the server at every start):
    default: HTTPS on 443, port 80 redirects to https;
    --http-only [--nginx-listen-port 9991]: plain HTTP on that port (default 80), nothing on 443.

Local self-tests:
    installer.py --prefix /tmp/x --local --https-port 8443 --http-port 0 ...
puts every path under the prefix, creates no users or units, and runs the
server as a plain process (identity faked through $ZULIP_STANDIN_FAKE_USER).

Re-running resets everything to a fresh state.
"""

from __future__ import annotations

import argparse
import json
import os
import pwd
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from zulip_standin import db, service, templates  # noqa: E402
from zulip_standin.config import StandinConfig  # noqa: E402
from zulip_standin.versions import Rules, parse_version  # noqa: E402

UNIT = "zulip-standin.service"
USER = "zulip"


@dataclass
class Options:
    flavour: str
    realms: list[str]
    manage_delay: float
    restart_delay: float
    external_host: str
    prefix: str
    local: bool
    https_port: int
    http_port: int
    http_only: bool
    nginx_listen_port: int | None
    start: bool
    profile_fields: dict[str, list[str]]


def parse_args(argv: list[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--flavour", required=True, help='Zulip version, e.g. "5.6", "12.0-dev+git"')
    parser.add_argument("--realms", default='["acme", "beta", ""]', help="JSON list of realm string_ids")
    parser.add_argument("--manage-delay", type=float, default=1.0)
    parser.add_argument("--restart-delay", type=float, default=1.0)
    parser.add_argument("--external-host", default="zulip.example.test")
    parser.add_argument("--prefix", default="", help="install every path under this directory")
    parser.add_argument("--local", action="store_true", help="no users/systemd: for local self-tests")
    parser.add_argument("--http-only", action=argparse.BooleanOptionalAction, default=False,
                        help="zulip.conf [application_server] http_only = true: plain HTTP, nothing on 443")
    parser.add_argument("--nginx-listen-port", type=int, default=None,
                        help="zulip.conf [application_server] nginx_listen_port (default 80 / 443)")
    parser.add_argument("--https-port", type=int, default=443, help='what "443" means here (local tests)')
    parser.add_argument("--http-port", type=int, default=80,
                        help='what "80" means here: the https redirect / http_only default; 0 = none')
    parser.add_argument("--no-start", dest="start", action="store_false")
    parser.add_argument("--profile-fields", default="{}",
                        help='JSON: custom profile field names by realm string_id, e.g. \'{"acme": ["Department"]}\'')
    args = parser.parse_args(argv)
    parse_version(args.flavour)  # fail early on a bad flavour
    realms = json.loads(args.realms)
    if not isinstance(realms, list) or not all(isinstance(r, str) for r in realms):
        parser.error("--realms must be a JSON list of strings")
    if "zulipinternal" in realms or len(set(realms)) != len(realms):
        parser.error("--realms must be unique and must not contain zulipinternal")
    fields = json.loads(args.profile_fields)
    if not isinstance(fields, dict) or not all(
            realm in realms and isinstance(names, list) and all(isinstance(n, str) and n for n in names)
            for realm, names in fields.items()):
        parser.error("--profile-fields must map realms of --realms to lists of field names")
    return Options(args.flavour, realms, args.manage_delay, args.restart_delay, args.external_host.lower(),
                   args.prefix.rstrip("/"), args.local, args.https_port, args.http_port, args.http_only,
                   args.nginx_listen_port or None, args.start, fields)


def run(argv: list[str]) -> None:
    subprocess.run(argv, check=True, stdin=subprocess.DEVNULL)


def systemctl(*args: str, attempts: int = 4) -> None:
    """systemctl, tried again after a failure: on a machine starved by other test hosts the
    host's systemd can miss D-Bus's call timeout ("Connection timed out") and answer later."""
    for attempt in range(1, attempts + 1):
        try:
            run(["systemctl", *args])
            return
        except subprocess.CalledProcessError:
            if attempt == attempts:
                raise
            time.sleep(5 * attempt)


def write(path: Path, text: str, mode: int, owner: str | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.standin-tmp")
    tmp.write_text(text)
    os.chmod(tmp, mode)
    if owner:
        shutil.chown(tmp, owner, owner)
    os.replace(tmp, path)


def ensure_dir(path: Path, mode: int, owner: str | None = None, group: str | None = None) -> None:
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, mode)
    if owner:
        shutil.chown(path, owner, group or owner)


class Installer:
    def __init__(self, opts: Options) -> None:
        self.opts = opts
        self.system = not opts.local
        self.owner = USER if self.system else None
        self.rules = Rules(opts.flavour)

    def path(self, absolute: str) -> Path:
        return Path(self.opts.prefix + absolute)

    # ------------------------------------------------------------ steps

    def stop_old_server(self) -> None:
        if self.system:
            subprocess.run(["systemctl", "stop", UNIT], stdin=subprocess.DEVNULL,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            return
        cfg = StandinConfig(deploy_dir="", pid_file=str(self.path("/run/zulip-standin/server.pid")))
        pid = service.read_pid(cfg)
        if pid is not None:
            service.stop_process(pid)

    def ensure_user(self) -> None:
        if not self.system:
            return
        try:
            pwd.getpwnam(USER)
        except KeyError:
            run(["useradd", "--create-home", "--home-dir", "/home/zulip", "--shell", "/bin/bash",
                 "--user-group", USER])
        ensure_dir(Path("/home/zulip"), 0o755, USER)

    def config(self, deploy: Path) -> StandinConfig:
        p = self.path
        # Through `current`, like the systemd unit: a restart runs whatever current points at.
        server_argv = [sys.executable, str(p("/home/zulip/deployments/current/scripts/lib/zulip-standin-server"))]
        return StandinConfig(
            deploy_dir=str(deploy), deployments_dir=str(p("/home/zulip/deployments")),
            settings_path=str(p("/etc/zulip/settings.py")), secrets_path=str(p("/etc/zulip/zulip-secrets.conf")),
            zulip_conf_path=str(p("/etc/zulip/zulip.conf")), db_path=str(p("/var/lib/zulip-standin/db/zulip.db")),
            ledger_path=str(p("/var/lib/zulip-standin/ledger.jsonl")), log_dir=str(p("/var/log/zulip")),
            pid_file=str(p("/run/zulip-standin/server.pid")),
            cert_path=str(p("/etc/ssl/certs/zulip.combined-chain.crt")),
            key_path=str(p("/etc/zulip-standin/zulip.key")),
            manage_delay=self.opts.manage_delay, restart_delay=self.opts.restart_delay,
            https_port=self.opts.https_port, http_port=self.opts.http_port,
            service_mode="systemd" if self.system else "process", service_unit=UNIT,
            server_argv=[] if self.system else server_argv, fake_users=not self.system,
        )

    def build_deployment(self) -> StandinConfig:
        deployments = self.path("/home/zulip/deployments")
        if deployments.exists():
            shutil.rmtree(deployments)  # a reset starts from one clean deployment
        deploy = deployments / time.strftime("%Y-%m-%d-%H-%M-%S")
        cfg = self.config(deploy)
        self.write_deployment(deploy, cfg)
        for link in ("current", "last"):
            (deployments / link).symlink_to(deploy)
        if self.system:
            run(["chown", "-R", "--no-dereference", f"{USER}:{USER}", str(deployments)])
        return cfg

    def write_deployment(self, deploy: Path, cfg: StandinConfig) -> None:
        """The files of one deployment of this flavour at ``deploy`` (upgrade.py makes a newer one with it)."""
        shutil.copytree(HERE / "zulip_standin", deploy / "zulip_standin",
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "config.json"))
        cfg.save(deploy / "zulip_standin" / "config.json")
        shebang = "/usr/bin/env python3" if self.system else sys.executable
        files = {
            "version.py": (templates.version_py(self.opts.flavour), 0o644),
            "manage.py": (templates.manage_py(shebang), 0o755),
            "scripts/restart-server": (templates.deploy_script(
                shebang, "Zulip's scripts/restart-server (stand-in: zulip_standin/restart.py).",
                "restart", "main", 1), 0o755),
            "scripts/get-django-setting": (templates.deploy_script(
                shebang, "Zulip's scripts/get-django-setting (stand-in).", "restart", "get_django_setting_main", 1),
                0o755),
            "scripts/lib/zulip-standin-server": (templates.deploy_script(
                shebang, "The stand-in's web server (zulip_standin/server.py).", "server", "main", 2), 0o755),
            "zerver/__init__.py": ("", 0o644),
            ("zerver/models/__init__.py" if self.rules.models_is_package else "zerver/models.py"):
                (templates.ZERVER_MODELS, 0o644),
            "zproject/__init__.py": ("", 0o644),
            "zproject/config.py": (templates.ZPROJECT_CONFIG, 0o644),
        }
        for name, (text, mode) in files.items():
            write(deploy / name, text, mode)
        # Zulip imports /etc/zulip/settings.py through this symlink.
        (deploy / "zproject/prod_settings.py").symlink_to(cfg.settings_path)

    def write_etc_zulip(self, cfg: StandinConfig) -> None:
        ensure_dir(self.path("/etc/zulip"), 0o755, self.owner)
        write(Path(cfg.settings_path), templates.settings_py(self.opts.external_host), 0o644, self.owner)
        write(Path(cfg.secrets_path), templates.secrets_conf(), 0o640, self.owner)
        write(Path(cfg.zulip_conf_path), templates.zulip_conf(self.opts.http_only, self.opts.nginx_listen_port), 0o644)

    def make_certificate(self, cfg: StandinConfig) -> None:
        host = db.host_name(self.opts.external_host)  # a certificate names hosts, not ports
        key, cert = Path(cfg.key_path), Path(cfg.cert_path)
        ensure_dir(key.parent, 0o750, "root" if self.system else None, self.owner)
        cert.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "3650",
                        "-keyout", str(key), "-out", str(cert), "-subj", f"/CN={host}",
                        "-addext", f"subjectAltName=DNS:{host},DNS:*.{host}"],
                       check=True, stdin=subprocess.DEVNULL, capture_output=True)
        os.chmod(key, 0o640)
        os.chmod(cert, 0o644)
        if self.system:
            shutil.chown(key, "root", USER)

    def reset_state(self, cfg: StandinConfig) -> None:
        ensure_dir(self.path("/var/lib/zulip-standin"), 0o755, "root" if self.system else None)
        ledger = Path(cfg.ledger_path)
        ledger.write_text("")
        os.chmod(ledger, 0o622)  # everyone appends, only root reads
        db_dir = Path(cfg.db_path).parent
        if db_dir.exists():
            shutil.rmtree(db_dir)
        ensure_dir(db_dir, 0o750, self.owner)
        conn = db.connect(cfg.db_path)
        db.init_db(conn, self.rules, self.opts.realms, self.opts.external_host, self.opts.profile_fields)
        conn.close()
        os.chmod(cfg.db_path, 0o640)
        if self.owner:
            shutil.chown(cfg.db_path, self.owner, self.owner)
        log_dir = Path(cfg.log_dir)
        ensure_dir(log_dir, 0o750, self.owner)
        for name in ("manage.log", "scim.log", "errors.log", "server.log", "server-stdio.log"):
            (log_dir / name).unlink(missing_ok=True)

    def install_psql(self) -> None:
        """/usr/bin/psql, as a real Zulip host has it (its local PostgreSQL's client), over the sqlite db."""
        if not self.system:
            return
        write(Path("/usr/bin/psql"), templates.script(
            "/usr/bin/env python3", "PostgreSQL's psql on a Zulip host (stand-in: zulip_standin/psql.py).",
            'sys.path.insert(0, "/home/zulip/deployments/current")',
            "from zulip_standin.psql import main\n\n    sys.exit(main())"), 0o755)

    def install_service(self) -> None:
        if not self.system:
            return
        write(Path("/etc/systemd/system") / UNIT,
              templates.systemd_unit("/home/zulip/deployments/current", USER), 0o644)
        sudoers = Path("/etc/sudoers.d/zulip-standin")
        write(sudoers, templates.sudoers(USER, UNIT), 0o440)
        run(["visudo", "-c", "-q", "-f", str(sudoers)])
        systemctl("daemon-reload")
        systemctl("enable", "--quiet", "--no-reload", UNIT)  # reloaded just above

    def start(self, cfg: StandinConfig) -> None:
        if not self.opts.start:
            return
        if self.system:
            systemctl("restart", UNIT)
        else:
            ensure_dir(Path(cfg.pid_file).parent, 0o755)
            service.start_process(cfg)
        pid = service.wait_until_serving(cfg, None, timeout=60)
        print(json.dumps({"installed": self.opts.flavour, "pid": pid, "deploy_dir": cfg.deploy_dir}))

    def install(self) -> StandinConfig:
        self.stop_old_server()
        self.ensure_user()
        cfg = self.build_deployment()
        self.write_etc_zulip(cfg)
        self.make_certificate(cfg)
        self.reset_state(cfg)
        self.install_psql()
        self.install_service()
        self.start(cfg)
        return cfg


def main(argv: list[str] | None = None) -> int:
    Installer(parse_args(argv)).install()
    return 0


if __name__ == "__main__":
    sys.exit(main())

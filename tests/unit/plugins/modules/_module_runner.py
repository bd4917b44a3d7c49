"""Run an Ansible module's ``main()`` in-process, the ansible-core 2.19 way.

Not a test file (no ``test_`` prefix). pytest runs with ``--import-mode=importlib``,
so test files load this helper by path (``importlib.util.spec_from_file_location``)
under one fixed name in ``sys.modules``.

The module arguments go through ``ansible.module_utils.testing.patch_module_args``
(the supported unit-test hook of ansible-core 2.19); ``exit_json``/``fail_json``
raise exceptions that carry the result (before any no_log masking, so a leak in
the module's own code cannot be hidden by the masking); ``warn`` is recorded;
``run_command`` and the runner of the zulip user's programs (``_programs.run``) are
replaced by a fake that records every argv.

Also here: ``FakeZulip`` (answers manage.py argv like a real Zulip 5.x/6.0+) and
``LoopbackScimServer`` (a Zulip-like SCIM endpoint on 127.0.0.1, random port).
"""

from __future__ import annotations

import contextlib as _contextlib
import io as _io
import sys as _sys
import threading as _threading
import traceback as _traceback
import types as _types
from http.server import BaseHTTPRequestHandler as _BaseHandler, ThreadingHTTPServer as _ThreadingServer
from unittest import mock

from ansible.module_utils import basic
from ansible_collections.zulip_ops.zulip.plugins.module_utils import _programs as programs

try:
    from ansible.module_utils.testing import patch_module_args
except ImportError:  # ansible-core < 2.19 has no such helper: do what it does
    import json as _json

    @_contextlib.contextmanager
    def patch_module_args(args=None):
        payload = _json.dumps({"ANSIBLE_MODULE_ARGS": args or {}}).encode()
        with mock.patch.object(basic, "_ANSIBLE_ARGS", payload):
            yield


class ModuleExit(Exception):
    """exit_json was called."""

    def __init__(self, result: dict):
        super().__init__(result)
        self.result = result


class ModuleFail(Exception):
    """fail_json was called."""

    def __init__(self, result: dict):
        super().__init__(result)
        self.result = result


def split_time_limit(argv: list[str]) -> tuple[list[str], list[str] | None]:
    """(the command, the coreutils ``timeout`` prefix it runs under or None).

    manage.py runs under ``timeout --kill-after=G SECONDS``; the tests see the command itself, and
    ``calls[i]["time_limit"]`` tells the limit.
    """
    if len(argv) >= 3 and argv[0] == "timeout" and argv[1].startswith("--kill-after="):
        return argv[3:], argv[:3]
    return argv, None


class FakeRunCommand:
    """Stands in for ``AnsibleModule.run_command``.

    ``responder(argv) -> (rc, stdout, stderr)`` decides each answer; every call
    is recorded with its keyword arguments.
    """

    def __init__(self, responder=None):
        self.responder = responder or (lambda argv: (0, "", ""))
        self.calls: list[dict] = []

    def __call__(self, args, **kwargs):  # a plain instance on the class: no self binding
        argv, limit = split_time_limit(list(args))
        self.calls.append({"argv": argv, "kwargs": kwargs, "time_limit": limit, "raw_argv": list(args)})
        return self.responder(argv)

    @property
    def argvs(self) -> list[list[str]]:
        return [c["argv"] for c in self.calls]


def as_program(fake: FakeRunCommand):
    """The collection's runner of the zulip user's programs (module_utils/_programs.run), answered by ``fake``."""
    def run(argv, timeout, cwd="/", environ_update=None):
        assert timeout > 0, timeout
        rc, out, err = fake(argv, cwd=cwd, environ_update=environ_update)
        return programs.Finished(rc, out, err)
    return run


class Outcome:
    def __init__(self, failed: bool, result: dict, warnings: list[str], run: FakeRunCommand):
        self.failed = failed
        self.result = result
        self.warnings = warnings
        self.run = run

    def __repr__(self):  # helps assertion messages
        return "Outcome(failed=%r, result=%r, warnings=%r, argvs=%r)" % (
            self.failed, self.result, self.warnings, self.run.argvs)


def run_module(main, args: dict, *, check_mode: bool = False, diff: bool = False,
               run_command: FakeRunCommand | None = None) -> Outcome:
    """Call ``main()`` with ``args``; return how it ended. Never lets it sys.exit."""
    run = run_command if run_command is not None else FakeRunCommand()
    warnings: list[str] = []
    module_args = dict(args)
    module_args["_ansible_check_mode"] = check_mode
    module_args["_ansible_diff"] = diff

    def exit_json(self, **kwargs):
        raise ModuleExit(kwargs)

    def fail_json(self, msg, **kwargs):
        kwargs.pop("exception", None)
        kwargs["failed"] = True
        kwargs["msg"] = msg
        raise ModuleFail(kwargs)

    def warn(self, warning, **kwargs):
        warnings.append(warning)

    with patch_module_args(module_args), \
            mock.patch.object(basic.AnsibleModule, "exit_json", exit_json), \
            mock.patch.object(basic.AnsibleModule, "fail_json", fail_json), \
            mock.patch.object(basic.AnsibleModule, "warn", warn), \
            mock.patch.object(basic.AnsibleModule, "run_command", run), \
            mock.patch.object(programs, "run", as_program(run)):
        try:
            main()
        except ModuleExit as exc:
            return Outcome(False, exc.result, warnings, run)
        except ModuleFail as exc:
            return Outcome(True, exc.result, warnings, run)
    raise AssertionError("main() returned without calling exit_json or fail_json")


def run_script(module, args: dict, **kwargs) -> Outcome:
    """Run a module's code as ``__main__`` (how Ansible starts it), with ``run_module``'s patches.

    By module name rather than by file path: under ``ansible-test units`` the
    collection loader's path hook claims every path below ``ansible_collections``,
    and ``runpy.run_path`` would then look for a ``__main__`` inside the file.
    """
    import runpy
    import warnings as _warnings

    def as_main():
        with _warnings.catch_warnings():
            # The module is imported already (the test holds it): running it again is the point.
            _warnings.filterwarnings("ignore", message=".* found in sys.modules", category=RuntimeWarning)
            runpy.run_module(module.__name__, run_name="__main__")

    return run_module(as_main, args, **kwargs)


# --------------------------------------------------------------------------- a fake Zulip behind manage.py

MANAGE_ROOT_REFUSAL = (
    "manage.py should not be run as root. Use `su zulip` to switch to the 'zulip' user before rerunning this, "
    "or use \n  su zulip -c '/home/zulip/deployments/current/manage.py ...'\nto switch users and run this as "
    "a single command.\n"
)


class _Realm:
    def __init__(self, realm_id: int, string_id: str, name: str):
        self.id = realm_id
        self.string_id = string_id
        self.name = name


class _Client:
    def __init__(self, realm: _Realm, name: str):
        self.realm = realm
        self.name = name


class _QuerySet(list):
    def __init__(self, items, store=None):
        super().__init__(items)
        self._store = store

    def exists(self):
        return bool(self)

    def delete(self):
        for item in list(self):
            self._store.remove(item)
        return len(self), {}


class _Manager:
    def __init__(self, store: list):
        self._store = store

    def all(self):
        return _QuerySet(self._store, self._store)

    def filter(self, **lookups):
        def matches(obj):
            for key, value in lookups.items():
                target = obj
                for part in key.split("__"):
                    target = getattr(target, part)
                if target != value and not (key == "realm" and target is value):
                    return False
            return True
        return _QuerySet([o for o in self._store if matches(o)], self._store)


class FakeZulip:
    """Answers ``manage.py`` argv the way a real Zulip of ``version`` does.

    ``shell -c CODE`` really executes CODE against a fake ``zerver.models``
    (Realm, SCIMClient before 6.0, get_realm), so the programs a module sends
    are proven to work, not just pattern-matched.
    """

    def __init__(self, version: str = "5.6", realms=("acme",), clients=(), *, root_style: str = "quotes",
                 shell_noise_before: str = "", shell_noise_after: str = "", overrides=None,
                 psql_error: str = ""):
        self.version = tuple(int(p) for p in version.split("-")[0].split(".")[:2])
        self.realms = [_Realm(1, "zulipinternal", "System bot realm")]
        for string_id in realms:
            self.realms.append(_Realm(len(self.realms) + 1, string_id, (string_id or "Root") + " Realm"))
        by_id = {r.string_id: r for r in self.realms}
        self.clients = [_Client(by_id[realm], name) for realm, name in clients]
        self.root_style = root_style  # "quotes": real Zulip prints '' ; "empty": blank column
        self.noise_before = shell_noise_before
        self.noise_after = shell_noise_after
        self.overrides = overrides or {}  # command -> (rc, out, err)
        self.commands: list[list[str]] = []  # manage.py argv after the manage.py path
        # psql as the zulip user on the local database; psql_error: what it prints when it cannot connect.
        self.psql_error = psql_error
        self.psql_calls: list[list[str]] = []

    @property
    def client_pairs(self) -> set:
        return {(c.realm.string_id, c.name) for c in self.clients}

    def __call__(self, argv):
        argv = list(argv)
        if argv[:2] == ["runuser", "-u"]:
            assert argv[3] == "--", argv
            argv = argv[4:]
        if argv[0].endswith("/psql"):
            return self._psql(argv[1:])
        assert argv[0].endswith("/manage.py"), argv
        args = argv[1:]
        self.commands.append(args)
        command = args[0] if args else ""
        if command in self.overrides:
            return self.overrides[command]
        handler = getattr(self, "_cmd_" + command, None)
        if handler is None:
            return 1, "", "Unknown command: %r\nType 'manage.py help' for usage.\n" % command
        return handler(args[1:])

    def _psql(self, args):
        """The module's one query, answered as psql -A -t -z -0 prints it (a zero byte ends the last record)."""
        self.psql_calls.append(args)
        if self.psql_error:
            return 2, "", self.psql_error
        if self.version >= (6, 0):
            return 1, "", 'ERROR:  relation "zerver_scimclient" does not exist\n'
        rows = [("realm", r.string_id, "") for r in self.realms]
        rows += [("client", c.realm.string_id, c.name) for c in self.clients]
        return 0, "".join("\0".join(row) + "\0" for row in rows), ""

    # list_realms: the format of zerver/management/commands/list_realms.py
    def _cmd_list_realms(self, args):
        row = "{:<5} {:<20} {!s:<30} {:<50}"
        lines = [row.format("id", "string_id", "name", "domain"), row.format("--", "---------", "----", "------")]
        for realm in self.realms:
            shown = realm.string_id if realm.string_id != "" else ("''" if self.root_style == "quotes" else "")
            host = "%s.zulip.example.com" % realm.string_id if realm.string_id else "zulip.example.com"
            lines.append(row.format(realm.id, shown, realm.name, "https://" + host))
        return 0, "\n".join(lines) + "\n", ""

    def _cmd_add_scim_client(self, args):
        if self.version >= (6, 0):
            return 1, "", "Unknown command: 'add_scim_client'\nType 'manage.py help' for usage.\n"
        name = args[0]
        if "-r" not in args:
            return 1, "", "Traceback (most recent call last):\n  ...\nAssertionError\n"
        string_id = args[args.index("-r") + 1]
        realm = next((r for r in self.realms if r.string_id == string_id), None)
        if realm is None:
            return 1, "", "There is no realm with id '%s'. Aborting.\n" % string_id
        if (string_id, name) in self.client_pairs:
            return 1, "", (
                "Traceback (most recent call last):\n  File \"/home/zulip/deployments/current/manage.py\", line 157\n"
                "django.db.utils.IntegrityError: duplicate key value violates unique constraint "
                "\"zerver_scimclient_realm_id_name_...\"\n")
        self.clients.append(_Client(realm, name))
        return 0, "", ""

    def _cmd_shell(self, args):
        assert args[0] == "-c", args
        code = args[1]
        models = _types.ModuleType("zerver.models")
        models.Realm = type("Realm", (), {"objects": _Manager(self.realms)})
        if self.version < (6, 0):
            models.SCIMClient = type("SCIMClient", (), {"objects": _Manager(self.clients)})

        def get_realm(string_id):
            for realm in self.realms:
                if realm.string_id == string_id:
                    return realm
            raise LookupError("Realm matching query does not exist.")
        models.get_realm = get_realm
        zerver = _types.ModuleType("zerver")
        zerver.models = models
        out, err = _io.StringIO(), _io.StringIO()
        rc = 0
        with mock.patch.dict(_sys.modules, {"zerver": zerver, "zerver.models": models}), \
                _contextlib.redirect_stdout(out):
            try:
                exec(compile(code, "<command>", "exec"), {"__name__": "__main__"})
            except Exception:  # what the real shell prints: a traceback, rc 1
                err.write(_traceback.format_exc())
                rc = 1
        return rc, self.noise_before + out.getvalue() + self.noise_after, err.getvalue()


# --------------------------------------------------------------------------- a Zulip-like SCIM endpoint on 127.0.0.1

class _ScimHandler(_BaseHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):  # noqa: N802
        server = self.server
        host = self.headers.get("Host", "")
        auth = self.headers.get("Authorization")
        with server.lock:
            server.requests.append({"path": self.path, "host": host, "authorization": auth,
                                    "www_authenticate": self.headers.get("WWW-Authenticate")})
        headers = {}
        if host not in server.tokens:
            status = 404
        elif server.tokens[host] is not None and auth == "Bearer " + server.tokens[host]:
            status = 200
            headers["Content-Type"] = "application/scim+json"
        else:
            status = 401
            headers["WWW-Authenticate"] = 'Basic realm="django-scim2"'
        body = b'{"totalResults": 0}' if status == 200 else b""
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class LoopbackScimServer:
    """``tokens``: host -> accepted bearer token (None: realm exists, no SCIM_CONFIG entry).

    Hosts not in ``tokens`` answer 404 like an unknown subdomain. Listens on 127.0.0.1 only.
    """

    def __init__(self, tokens: dict):
        self.httpd = _ThreadingServer(("127.0.0.1", 0), _ScimHandler)
        self.httpd.daemon_threads = True
        self.httpd.lock = _threading.Lock()
        self.httpd.requests = []
        self.httpd.tokens = dict(tokens)
        self.url = "http://127.0.0.1:%d" % self.httpd.server_address[1]
        self._thread = _threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    @property
    def requests(self):
        return self.httpd.requests

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()

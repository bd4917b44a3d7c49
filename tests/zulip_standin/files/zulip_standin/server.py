"""The stand-in's web server over http.server, with the front end zulip.conf asks for.

Default: TLS on 443 and, on 80, nginx's redirect to https. With
``[application_server] http_only = true``: plain HTTP on ``nginx_listen_port``
(default 80) and nothing on 443 (see frontend.py).

Settings are loaded once, at start, like a Django process: a changed
settings.py only matters after a restart. A failed load does not stop the
process (uWSGI keeps running with "no app loaded"): every request gets 500.
A watcher thread plays Zulip's queue worker, which reloads when settings.py
changes: whenever it sees a settings.py that does not compile, it writes a
ledger event, so tests catch half-written files.
"""

from __future__ import annotations

import grp
import os
import pwd
import signal
import socket
import ssl
import threading
import time
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from . import app, frontend, ledger, orm
from .config import StandinConfig, load_config
from .settings_loader import compiles, load_settings


class Logs:
    def __init__(self, log_dir: str) -> None:
        self.dir = Path(log_dir)

    def write(self, name: str, text: str) -> None:
        try:
            with open(self.dir / name, "a") as handle:
                handle.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {text.rstrip()}\n")
        except OSError:
            pass  # logging must never break serving


def build_state(config: StandinConfig, logs: Logs) -> app.AppState:
    rules = config.rules()
    try:
        settings = load_settings(config, rules)
        error = None
    except BaseException:  # noqa: BLE001 - any failure means "no app loaded"
        settings, error = None, traceback.format_exc()
        logs.write("errors.log", f"loading settings failed:\n{error}")
    return app.AppState(rules=rules, settings=settings, settings_error=error,
                        error_log=lambda text: logs.write("errors.log", text))


def make_handler(state: app.AppState, logs: Logs) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "nginx"
        sys_version = ""

        def _serve(self) -> None:
            started = time.monotonic()
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            headers = {name.lower(): value for name, value in self.headers.items()}
            response = app.handle(state, app.Request(self.command, self.path, headers, body))
            self.send_response(response.status)
            self.send_header("Content-Type", response.content_type)
            self.send_header("Content-Length", str(len(response.body)))
            for name, value in response.headers:
                self.send_header(name, value)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(response.body)
            # Never log the Authorization header: it carries the bearer token.
            logs.write("scim.log", f"{self.client_address[0]} {self.command} {headers.get('host', '-')} "
                       f"{self.path} {response.status} {int((time.monotonic() - started) * 1000)}ms {response.note}")

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _serve

        def log_message(self, format: str, *args: object) -> None:
            pass  # _serve writes its own token-free line

    return Handler


NGINX_301 = (b"<html>\r\n<head><title>301 Moved Permanently</title></head>\r\n<body>\r\n"
             b"<center><h1>301 Moved Permanently</h1></center>\r\n<hr><center>nginx</center>\r\n"
             b"</body>\r\n</html>\r\n")


def redirect_target(host_header: str | None, target: str) -> str:
    """nginx's ``https://$host$request_uri``: $host is the Host name without port, lower-cased."""
    host = app.split_host(host_header) or "localhost"
    return f"https://{host}{target}"


def make_redirect_handler(logs: Logs) -> type[BaseHTTPRequestHandler]:
    """Port 80 in the default front end: everything gets a 301 to https (zulip-enterprise.template.erb)."""

    class Redirect(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "nginx"
        sys_version = ""

        def _redirect(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(length)
            location = redirect_target(self.headers.get("Host"), self.path)
            self.send_response(301)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(NGINX_301)))
            self.send_header("Location", location)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(NGINX_301)
            logs.write("scim.log", f"{self.client_address[0]} {self.command} {self.headers.get('Host', '-')} "
                       f"{self.path} 301 redirect")

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _redirect

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Redirect


class TLSServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler],
                 context: ssl.SSLContext) -> None:
        self.context = context
        super().__init__(address, handler)

    def get_request(self) -> tuple[socket.socket, object]:
        sock, addr = super().get_request()
        # Handshake lazily in the request thread, so one slow client cannot block accept().
        return self.context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False), addr


class PlainServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def _stat(path: str) -> os.stat_result | None:
    try:
        return os.stat(path)
    except OSError:
        return None


def _fingerprint(st: os.stat_result | None) -> tuple[int, ...]:
    if st is None:
        return (0,)
    return (st.st_mtime_ns, st.st_size, st.st_ino, st.st_mode, st.st_uid, st.st_gid)


def _owner(uid: int, gid: int) -> tuple[str, str]:
    try:
        user = pwd.getpwuid(uid).pw_name
    except KeyError:
        user = str(uid)
    try:
        group = grp.getgrgid(gid).gr_name
    except KeyError:
        group = str(gid)
    return user, group


def settings_change_event(path: str, before: os.stat_result | None, after: os.stat_result | None,
                          error: str | None) -> dict[str, object]:
    """What a settings.py change looked like: tests use it to catch in-place or mode-changing writes."""
    event: dict[str, object] = {"event": "settings_changed", "path": path, "exists": after is not None,
                                "compiles": error is None}
    if after is not None:
        user, group = _owner(after.st_uid, after.st_gid)
        event.update(mode=f"{after.st_mode & 0o7777:04o}", owner=user, group=group,
                     in_place=before is not None and before.st_ino == after.st_ino)
    return event


def watch_settings(config: StandinConfig, logs: Logs, stop: threading.Event) -> None:
    """Zulip's queue worker autoreloads on a settings.py change; a broken file kills it.

    Every change seen goes to the ledger ("settings_changed": in place or renamed
    into place, mode, owner); one that does not compile also as "settings_broken_seen".
    """
    last = _stat(config.settings_path)
    while not stop.wait(config.settings_watch_interval):
        current = _stat(config.settings_path)
        if _fingerprint(current) == _fingerprint(last):
            continue
        error = compiles(config.settings_path) if current is not None else "FileNotFoundError: settings.py is gone"
        ledger.append(config.ledger_path, settings_change_event(config.settings_path, last, current, error))
        if error is not None:
            logs.write("errors.log", f"queue worker: settings.py changed and does not load: {error}")
            ledger.append(config.ledger_path, {"event": "settings_broken_seen", "path": config.settings_path,
                                               "error": error})
        last = current


def write_pid_file(path: str) -> None:
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}")
    tmp.write_text(f"{os.getpid()}\n")
    os.replace(tmp, target)  # readers never see a half-written pid


def config_front_end(config: StandinConfig) -> frontend.FrontEnd:
    return frontend.front_end(config.zulip_conf_path, config.https_port, config.http_port)


def make_servers(config: StandinConfig, handler: type[BaseHTTPRequestHandler],
                 logs: Logs) -> list[ThreadingHTTPServer]:
    """Listening sockets for the front end zulip.conf asks for (read at start, see frontend.py)."""
    front = config_front_end(config)
    address = config.bind_address
    if front.http_only:
        return [PlainServer((address, front.port), handler)]
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(config.cert_path, config.key_path)
    servers: list[ThreadingHTTPServer] = [TLSServer((address, front.port), handler, context)]
    if front.redirect_port:
        servers.append(PlainServer((address, front.redirect_port), make_redirect_handler(logs)))
    return servers


def serve(config: StandinConfig) -> None:
    logs = Logs(config.log_dir)
    orm.configure(config.db_path)
    state = build_state(config, logs)
    servers = make_servers(config, make_handler(state, logs), logs)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    # A short poll interval makes shutdown (and so every restart) quick.
    threads = [threading.Thread(target=s.serve_forever, args=(0.05,), daemon=True) for s in servers]
    threads.append(threading.Thread(target=watch_settings, args=(config, logs, stop), daemon=True))
    for thread in threads:
        thread.start()
    write_pid_file(config.pid_file)  # only now: a pid in the file means "listening"
    front = config_front_end(config)
    logs.write("server.log", f"pid {os.getpid()} serving Zulip {state.rules.version_string} "
               f"on {front.scheme} port {front.port} (settings {'loaded' if state.settings else 'FAILED'})")
    stop.wait()
    for server in servers:
        server.shutdown()
        server.server_close()
    logs.write("server.log", f"pid {os.getpid()} stopped")


def main() -> None:
    serve(load_config())

#!/usr/bin/env python3
"""One probe of a Zulip server's SCIM surface, run as root ON the host (stdlib only).

The same script runs on a real Zulip and on the stand-in; tests/fidelity
compares the two outputs. Reads {"token": "..."} as JSON on stdin (never from
arguments), prints one JSON object. The token never appears in the output:
every string is scrubbed of it before printing.

Steps, ordered so that the (expensive: 20-25 s on a real server) restarts
happen twice at most:
  front_end  which ports answer, as /etc/zulip/zulip.conf says
  before     /scim/v2/ with no SCIM_CONFIG yet
  cli        manage.py as root, add_scim_client (new, again, unknown realm,
             no -r), the 5.x existence query
  restart    SCIM_CONFIG for acme written, restart-server as root, then as zulip
  scim       the SCIM HTTP API with that configuration
  manage_log what those steps added to /var/log/zulip/manage.log, without the
             runs of the server's own programs: supervisor's (Tornado, queue
             workers, deliver_*: a real restart starts them) and cron's (a job
             may fall inside the probe), as real_ledger.py reads them from the host
Each step's duration goes to "timings" (not compared).
"""

from __future__ import annotations

import configparser
import http.client
import json
import os
import re
import shlex
import socket
import ssl
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Callable
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from real_ledger import server_commands  # noqa: E402  (the test copies it beside this probe)

DEPLOY = "/home/zulip/deployments/current"
SETTINGS = "/etc/zulip/settings.py"
SECRETS = "/etc/zulip/zulip-secrets.conf"
ZULIP_CONF = "/etc/zulip/zulip.conf"
MANAGE_LOG = "/var/log/zulip/manage.log"
SECRET_NAME = "scim_fidelity_acme"
TRUE_WORDS = ("1", "y", "t", "true", "yes", "enable", "enabled")  # zulipconf.rb's booleans
EXISTS_QUERY = ("from zerver.models import SCIMClient, get_realm; "
                "print(SCIMClient.objects.filter(realm=get_realm('acme'), name='okta').exists())")
NEW_USER = "fidelity.new@example.test"
FORMATTED_USER = "fidelity.formatted@example.test"
PATCH_USER = "fidelity.patch@example.test"
RENAMED_USER = "fidelity.renamed@example.test"

TIMINGS: dict[str, float] = {}


def timed(name: str, action: Callable[[], Any]) -> Any:
    started = time.monotonic()
    try:
        return action()
    finally:
        TIMINGS[name] = round(time.monotonic() - started, 2)


# ---------------------------------------------------------------- the server's configuration


def external_host() -> str:
    with open(SETTINGS, encoding="utf-8") as handle:
        found = re.findall(r"""^EXTERNAL_HOST\s*=\s*["']([^"']+)["']""", handle.read(), re.M)
    return found[-1]


def front_end() -> tuple[bool, int]:
    """(http_only, port) as Zulip's puppet reads zulip.conf."""
    conf = configparser.RawConfigParser()
    conf.read(ZULIP_CONF)
    http_only = conf.get("application_server", "http_only", fallback="false").strip().lower() in TRUE_WORDS
    listen = conf.get("application_server", "nginx_listen_port", fallback="").strip()
    return http_only, int(listen) if listen else (80 if http_only else 443)


# ---------------------------------------------------------------- HTTP


class Client:
    """Requests to 127.0.0.1 with a chosen Host header, over the server's front end."""

    def __init__(self, scheme: str, port: int) -> None:
        self.scheme, self.port = scheme, port

    def connection(self, host: str) -> http.client.HTTPConnection:
        if self.scheme == "http":
            return http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        context = ssl._create_unverified_context()  # noqa: S323 - self-signed test certificates
        conn = http.client.HTTPSConnection("127.0.0.1", self.port, timeout=60, context=context)
        name = host.rsplit(":", 1)[0]

        def connect() -> None:  # TLS with SNI for the Host's name, TCP to 127.0.0.1
            sock = socket.create_connection(("127.0.0.1", self.port), 60)
            conn.sock = context.wrap_socket(sock, server_hostname=name)

        conn.connect = connect  # type: ignore[method-assign]
        return conn

    def request(self, method: str, path: str, host: str, headers: dict[str, str] | None = None,
                body: Any = None) -> dict[str, Any]:
        conn = self.connection(host)
        sent = {"Host": host, **(headers or {})}
        data = None
        if body is not None:
            data = json.dumps(body)
            sent["Content-Type"] = "application/scim+json"
        try:
            conn.request(method, path, body=data, headers=sent)
            response = conn.getresponse()
            text = response.read().decode("utf-8", "replace")
            answer = {"status": response.status, "headers": {k.lower(): v for k, v in response.getheaders()},
                      "body": text}
        except (OSError, http.client.HTTPException) as exc:
            answer = {"status": None, "error": type(exc).__name__, "headers": {}, "body": ""}
        finally:
            conn.close()
        return answer


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def wait_until_serving(client: Client, host: str, timeout: float = 240.0) -> int | None:
    """A booted server needs a minute or two; right after a restart uWSGI may still be coming up."""
    deadline = time.monotonic() + timeout
    status = None
    while time.monotonic() < deadline:
        status = client.request("GET", "/api/v1/server_settings", host)["status"]
        if status == 200:
            return status
        time.sleep(1)
    return status


# ---------------------------------------------------------------- commands


def run(argv: list[str], as_zulip: bool) -> dict[str, Any]:
    command = ["su", "zulip", "-c", shlex.join(argv)] if as_zulip else argv
    started = time.monotonic()
    proc = subprocess.run(command, capture_output=True, text=True, cwd="/", stdin=subprocess.DEVNULL, timeout=300)
    return {"rc": proc.returncode, "stdout": proc.stdout, "stderr": proc.stderr,
            "seconds": round(time.monotonic() - started, 2)}


def manage(*args: str, as_zulip: bool = True) -> dict[str, Any]:
    return run([f"{DEPLOY}/manage.py", *args], as_zulip)


def restart(as_zulip: bool) -> dict[str, Any]:
    return run([f"{DEPLOY}/scripts/restart-server"], as_zulip)


def replace_file(path: str, text: str) -> None:
    """A complete file renamed into place, mode and owner kept (Zulip's watcher must never see half a file)."""
    st = os.stat(path)
    tmp = os.path.join(os.path.dirname(path), f".{os.path.basename(path)}.fidelity-tmp")
    with open(tmp, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.chmod(tmp, st.st_mode & 0o7777)
    os.chown(tmp, st.st_uid, st.st_gid)
    os.replace(tmp, path)


def configure_scim(token: str) -> None:
    """The token in zulip-secrets.conf, a SCIM_CONFIG entry for acme reading it with get_secret()."""
    with open(SECRETS, encoding="utf-8") as handle:
        secrets = handle.read()
    secrets = re.sub(r"^\[secrets\]\n", f"[secrets]\n{SECRET_NAME} = {token}\n", secrets, count=1, flags=re.M)
    replace_file(SECRETS, secrets)
    with open(SETTINGS, encoding="utf-8") as handle:
        settings = handle.read()
    block = (f'\n# SCIM, written by the fidelity probe.\nSCIM_CONFIG = {{\n    "acme": {{\n'
             f'        "bearer_token": get_secret("{SECRET_NAME}"),\n        "scim_client_name": "okta",\n'
             f'        "name_formatted_included": False,\n    }},\n}}\n')
    replace_file(SETTINGS, settings.rstrip("\n") + "\n" + block)


# ---------------------------------------------------------------- the steps


def step_front_end(host: str) -> dict[str, Any]:
    http_only, port = front_end()
    result: dict[str, Any] = {"http_only": http_only, "listen_port": port}
    for probe_port, scheme in ((80, "http"), (443, "https"), (port, "http" if http_only else "https")):
        key = f"{scheme}:{probe_port}"
        if key in result:
            continue
        if not port_open(probe_port):
            result[key] = "closed"
            continue
        answer = Client(scheme, probe_port).request("GET", "/api/v1/server_settings", host)
        result[key] = {"status": answer["status"], "location": answer["headers"].get("location"),
                       "zulip_version": version_of(answer)}
    return result


def version_of(answer: dict[str, Any]) -> str | None:
    try:
        return json.loads(answer["body"]).get("zulip_version")
    except (ValueError, AttributeError):
        return None


def step_cli() -> dict[str, Any]:
    steps = [
        ("manage_as_root", lambda: manage("list_realms", as_zulip=False)),
        ("add_scim_client_new", lambda: manage("add_scim_client", "okta", "-r", "acme")),
        ("add_scim_client_again", lambda: manage("add_scim_client", "okta", "-r", "acme")),
        ("add_scim_client_unknown_realm", lambda: manage("add_scim_client", "okta", "-r", "nosuch")),
        ("add_scim_client_without_realm", lambda: manage("add_scim_client", "okta")),
        ("existence_query", lambda: manage("shell", "-c", EXISTS_QUERY)),
    ]
    return {name: timed(f"cli.{name}", action) for name, action in steps}


def step_restart(token: str) -> dict[str, Any]:
    timed("restart.configure", lambda: configure_scim(token))
    # As root first: where root is refused (before 9.0) nothing restarts, and the
    # zulip run after it applies the configuration either way.
    return {"as_root": timed("restart.as_root", lambda: restart(as_zulip=False)),
            "as_zulip": timed("restart.as_zulip", lambda: restart(as_zulip=True))}


def step_scim(client: Client, host: str, token: str, unknown_host: str) -> dict[str, Any]:
    auth = {"Authorization": f"Bearer {token}"}
    users = "/scim/v2/Users"
    new_user = {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": NEW_USER,
                "name": {"givenName": "Fidelity", "familyName": "Probe"}, "active": True}
    formatted_only = {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": FORMATTED_USER,
                      "name": {"formatted": "Formatted Only"}, "active": True}
    out: dict[str, Any] = {
        "list_token": client.request("GET", f"{users}?count=1", host, auth),
        "list_wrong_token": client.request("GET", f"{users}?count=1", host, {"Authorization": "Bearer wrong-token"}),
        "list_no_token": client.request("GET", f"{users}?count=1", host),
        "list_token_in_www_authenticate": client.request("GET", f"{users}?count=1", host,
                                                         {"WWW-Authenticate": f"Bearer {token}"}),
        "unknown_realm": client.request("GET", f"{users}?count=1", unknown_host, auth),
        "create": client.request("POST", users, host, auth, new_user),
        "create_again": client.request("POST", users, host, auth, new_user),
        "create_formatted_only": client.request("POST", users, host, auth, formatted_only),
        "service_provider_config": client.request("GET", "/scim/v2/ServiceProviderConfig", host, auth),
        "groups": client.request("GET", "/scim/v2/Groups", host, auth),
    }
    created_id = created_user_id(out["create"])
    if created_id is not None:
        out["get_created"] = client.request("GET", f"{users}/{created_id}", host, auth)
        out["delete_created"] = client.request("DELETE", f"{users}/{created_id}", host, auth)
    out.update(idp_requests(client, host, auth))
    out.update(unknown_urls(client, host, auth))
    return out


def patch(*operations: dict[str, Any]) -> dict[str, Any]:
    return {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": list(operations)}


def idp_requests(client: Client, host: str, auth: dict[str, str]) -> dict[str, Any]:
    """What IdPs send beyond the basics (issue 24): PATCH add/remove, a whole name object,
    PUT and PATCH answers (their Location), itemsPerPage, and a group PATCH."""
    users = "/scim/v2/Users"
    user = {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": PATCH_USER,
            "name": {"givenName": "Patch", "familyName": "Target"}, "active": True}
    out: dict[str, Any] = {"create_patch_target": client.request("POST", users, host, auth, user)}
    user_id = created_user_id(out["create_patch_target"])
    if user_id is None:
        return out
    one = f"{users}/{user_id}"
    requests: list[tuple[str, str, Any]] = [
        ("patch_add", "PATCH", patch({"op": "add", "path": "name.formatted", "value": "Added Name"})),
        ("patch_add_without_path", "PATCH", patch({"op": "add", "value": {"nickName": "pt"}})),
        ("patch_remove", "PATCH", patch({"op": "remove", "path": "name.formatted"})),
        ("patch_remove_active", "PATCH", patch({"op": "remove", "path": "active"})),
        ("patch_remove_without_path", "PATCH", patch({"op": "remove"})),
        ("patch_replace_active_string", "PATCH", patch({"op": "replace", "path": "active", "value": "False"})),
        ("patch_replace_name_object", "PATCH",
         patch({"op": "replace", "path": "name", "value": {"givenName": "Whole", "familyName": "Name"}})),
        ("patch_replace_name_object_without_path", "PATCH",
         patch({"op": "replace", "value": {"name": {"givenName": "Whole", "familyName": "Name"}}})),
        # Microsoft Entra ID's shapes: "Replace" of name parts and of a filtered e-mail.
        ("patch_replace_name_given_name", "PATCH",
         patch({"op": "Replace", "path": "name.givenName", "value": "Given"})),
        ("patch_replace_work_email", "PATCH",
         patch({"op": "Replace", "path": 'emails[type eq "work"].value', "value": PATCH_USER})),
        ("get_after_refused_patches", "GET", None),
        ("patch_replace_name_formatted", "PATCH",
         patch({"op": "Replace", "path": "name.formatted", "value": "Patched Name"})),
        ("patch_replace_without_path", "PATCH", patch({"op": "replace", "value": {"userName": RENAMED_USER}})),
        ("put_active_string", "PUT", {**user, "active": "true"}),
        ("put", "PUT", {**user, "userName": PATCH_USER, "name": {"givenName": "Put", "familyName": "Name"}}),
        ("patch_deactivate", "PATCH", patch({"op": "replace", "path": "active", "value": False})),
    ]
    for name, method, body in requests:
        out[name] = client.request(method, one, host, auth, body)
    found = urllib.parse.quote(f'userName eq "{PATCH_USER}"')
    nobody = urllib.parse.quote('userName eq "nobody@example.test"')
    out["list_filtered_count_10"] = client.request("GET", f"{users}?filter={found}&count=10", host, auth)
    out["list_filtered_no_count"] = client.request("GET", f"{users}?filter={nobody}", host, auth)
    out["group_patch"] = client.request("PATCH", "/scim/v2/Groups/1", host, auth,
                                        patch({"op": "replace", "path": "displayName", "value": "x"}))
    return out


def unknown_urls(client: Client, host: str, auth: dict[str, str]) -> dict[str, Any]:
    """URLs under /scim/v2/ that no SCIM view serves, and the SCIM root itself."""
    return {
        "unknown_url": client.request("GET", "/scim/v2/NoSuchResource", host, auth),
        "unknown_url_no_token": client.request("GET", "/scim/v2/NoSuchResource", host),
        "unknown_url_post": client.request("POST", "/scim/v2/NoSuchResource", host, auth, {"a": 1}),
        "users_trailing_slash": client.request("GET", "/scim/v2/Users/", host, auth),
        "scim_root": client.request("GET", "/scim/v2/", host, auth),
        "scim_root_no_token": client.request("GET", "/scim/v2/", host),
    }


def created_user_id(answer: dict[str, Any]) -> Any:
    try:
        return json.loads(answer["body"]).get("id")
    except (ValueError, AttributeError):
        return None


def log_size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def log_since(path: str, offset: int) -> list[str]:
    """What the probe's own calls added to a log (Zulip writes one line per manage.py run)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            handle.seek(offset)
            return handle.read().splitlines()
    except OSError:
        return []


RAN = re.compile(r": Ran \S*manage\.py (\S+)")


def run_by_hand(lines: list[str], not_by_hand: set[str]) -> list[str]:
    """manage.log lines without the runs of commands that the server's own programs start."""
    kept = []
    for line in lines:
        match = RAN.search(line)
        if not (match and match.group(1) in not_by_hand):
            kept.append(line)
    return kept


def scrub(value: Any, secret: str) -> Any:
    """The token out of every string, however deep (tracebacks, bodies, headers)."""
    if isinstance(value, str):
        return value.replace(secret, "<token>")
    if isinstance(value, dict):
        return {scrub(k, secret): scrub(v, secret) for k, v in value.items()}
    if isinstance(value, list):
        return [scrub(v, secret) for v in value]
    return value


def main() -> int:
    token = str(json.load(sys.stdin)["token"])
    host = external_host()
    realm = f"acme.{host}"
    http_only, port = front_end()
    client = Client("http" if http_only else "https", port)
    result: dict[str, Any] = {"version": open(f"{DEPLOY}/version.py", encoding="utf-8").read().split('"')[1],
                              "external_host": host}
    result["ready"] = timed("ready", lambda: wait_until_serving(client, host))
    manage_log_offset = log_size(MANAGE_LOG)
    result["front_end"] = timed("front_end", lambda: step_front_end(host))
    result["before"] = timed("before", lambda: {"users": client.request("GET", "/scim/v2/Users?count=1", realm,
                                                                       {"Authorization": f"Bearer {token}"})})
    result["cli"] = step_cli()
    result["restart"] = step_restart(token)
    result["ready_after_restart"] = timed("ready_after_restart", lambda: wait_until_serving(client, realm, 60))
    result["scim"] = timed("scim", lambda: step_scim(client, realm, token, f"nosuch.{host}"))
    result["manage_log"] = run_by_hand(log_since(MANAGE_LOG, manage_log_offset), server_commands())
    result["timings"] = TIMINGS
    print(json.dumps(scrub(result, token)))
    return 0


if __name__ == "__main__":
    sys.exit(main())

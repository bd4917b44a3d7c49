#!/usr/bin/env python3
"""Send HTTP(S) requests to the local stand-in with chosen Host headers.

Runs on the test host itself (no curl there) or locally. Reads JSON on stdin:
  {"cafile": "/etc/ssl/certs/zulip.combined-chain.crt",
   "requests": [{"method": "GET", "path": "/scim/v2/Users?count=1",
                 "host": "acme.zulip.example.test", "headers": {...}, "json": {...}}]}
and prints one JSON list of {"status", "headers" (lower-case), "body", "json"}.
Port and scheme follow /etc/zulip/zulip.conf like the server does (HTTPS on
443, or with http_only plain HTTP on nginx_listen_port, default 80); the job
may name another "zulip_conf", the "https_port"/"http_port" that 443/80 stand
for, or pin "port" and "scheme" outright.
With "cafile", TLS is verified against it for the Host name (SAN check);
without it, certificates are not checked. Connects to 127.0.0.1 only.
"""

from __future__ import annotations

import http.client
import json
import socket
import ssl
import sys
from pathlib import Path
from typing import Any

# The front-end rules live in the stand-in's package, next to this file.
sys.path.insert(0, str(Path(__file__).resolve().parent))
from zulip_standin.frontend import front_end  # noqa: E402

ZULIP_CONF = "/etc/zulip/zulip.conf"


class LocalHTTPSConnection(http.client.HTTPSConnection):
    """Connect to 127.0.0.1 but do TLS (SNI, hostname check) for self.host."""

    def __init__(self, host: str, port: int, context: ssl.SSLContext) -> None:
        super().__init__(host, port, timeout=30, context=context)
        self._ctx = context

    def connect(self) -> None:
        sock = socket.create_connection(("127.0.0.1", self.port), self.timeout)
        self.sock = self._ctx.wrap_socket(sock, server_hostname=self.host)


def tls_context(cafile: str | None) -> ssl.SSLContext:
    if cafile:
        return ssl.create_default_context(cafile=cafile)
    return ssl._create_unverified_context()  # noqa: S323 - self-signed test server


def one_request(spec: dict[str, Any], port: int, scheme: str, cafile: str | None) -> dict[str, Any]:
    host = spec.get("host", "localhost")
    name = host.split(":")[0]
    if scheme == "https":
        conn: http.client.HTTPConnection = LocalHTTPSConnection(name, port, tls_context(cafile))
    else:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Host": host, **spec.get("headers", {})}
    body = spec.get("body")
    if "json" in spec:
        body = json.dumps(spec["json"])
        headers.setdefault("Content-Type", "application/scim+json")
    try:
        conn.request(spec.get("method", "GET"), spec["path"], body=body, headers=headers)
        response = conn.getresponse()
        text = response.read().decode("utf-8", "replace")
        result: dict[str, Any] = {"status": response.status,
                                  "headers": {k.lower(): v for k, v in response.getheaders()}, "body": text}
    except (OSError, http.client.HTTPException) as exc:
        return {"status": None, "headers": {}, "body": "", "json": None, "error": f"{type(exc).__name__}: {exc}"}
    finally:
        conn.close()
    try:
        result["json"] = json.loads(text) if text else None
    except ValueError:
        result["json"] = None
    return result


def port_and_scheme(job: dict[str, Any]) -> tuple[int, str]:
    """The job's own port/scheme if it pins them, else what zulip.conf makes the server listen on."""
    front = front_end(job.get("zulip_conf", ZULIP_CONF), job.get("https_port", 443), job.get("http_port", 80))
    return int(job.get("port", front.port)), str(job.get("scheme", front.scheme))


def main() -> int:
    job = json.load(sys.stdin)
    (port, scheme), cafile = port_and_scheme(job), job.get("cafile")
    print(json.dumps([one_request(spec, port, scheme, cafile) for spec in job["requests"]]))
    return 0


if __name__ == "__main__":
    sys.exit(main())

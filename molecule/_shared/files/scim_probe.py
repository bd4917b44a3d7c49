#!/usr/bin/env python3
"""Test helper run on a test host: what does the SCIM server answer?

Reads {"accept": {"realm": "token", ...}, "reject": [["realm", "token"], ...]}
as JSON from standard input (never from arguments) and asks
GET /scim/v2/Users?count=1 on the host's own front end with the realm's host
name: for each "accept" realm with its token, a wrong token and none; for each
"reject" pair with that token. Prints
{"accept": {"realm": {"token": 200, "wrong": 401, "none": 401}}, "reject": [401, ...]}.

With --wait-serving SECONDS it reads a JSON list of realms instead and waits
until each answers GET /api/v1/server_settings with 200 (a freshly booted real
Zulip takes a while), exit 1 if one does not in time.

The front end is found the way Zulip's puppet sets it up: /etc/zulip/zulip.conf
[application_server] http_only = true serves plain HTTP on nginx_listen_port
(default 80), otherwise HTTPS on 443 (or nginx_listen_port).
"""

import configparser
import json
import re
import ssl
import sys
import time
import urllib.error
import urllib.request

SETTINGS = "/etc/zulip/settings.py"
ZULIP_CONF = "/etc/zulip/zulip.conf"


def external_host():
    with open(SETTINGS, encoding="utf-8") as handle:
        return re.findall(r'^EXTERNAL_HOST\s*=\s*["\']([^"\']+)', handle.read(), re.M)[-1]


def front_end():
    conf = configparser.RawConfigParser()
    conf.read(ZULIP_CONF)
    http_only = conf.get("application_server", "http_only", fallback="false").lower() in ("true", "1", "yes", "on")
    port = conf.get("application_server", "nginx_listen_port", fallback="") or ("80" if http_only else "443")
    return ("http://127.0.0.1:%s" if http_only else "https://127.0.0.1:%s") % port


BASE = front_end()


def status(host, token, path="/scim/v2/Users?count=1"):
    request = urllib.request.Request(BASE + path, headers={"Host": host})
    if token is not None:
        request.add_header("Authorization", "Bearer " + token)
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        with urllib.request.urlopen(request, context=context, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def host_of(realm, base):
    return "%s.%s" % (realm, base) if realm else base


def wait_serving(timeout):
    realms = json.load(sys.stdin)
    base = external_host()
    deadline = time.monotonic() + timeout
    for realm in realms:
        while True:
            try:
                code = status(host_of(realm, base), None, "/api/v1/server_settings")
            except OSError as exc:
                code = str(exc)
            if code == 200:
                break
            if time.monotonic() > deadline:
                sys.exit("%r does not serve at %s after %ss: %s" % (realm, BASE, timeout, code))
            time.sleep(2)
    print(json.dumps({"serving": realms, "front_end": BASE}))


def main():
    if sys.argv[1:2] == ["--wait-serving"]:
        wait_serving(float(sys.argv[2]))
        return
    asked = json.load(sys.stdin)
    base = external_host()
    result = {"accept": {}, "reject": []}
    for realm, token in asked.get("accept", {}).items():
        result["accept"][realm] = {
            "token": status(host_of(realm, base), token),
            "wrong": status(host_of(realm, base), "wrong-" + token[::-1]),
            "none": status(host_of(realm, base), None),
        }
    for realm, token in asked.get("reject", []):
        result["reject"].append(status(host_of(realm, base), token))
    print(json.dumps(result))


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Test helper run on a test host: what does the SCIM server answer?

Reads {"accept": {"realm": "token", ...}, "reject": [["realm", "token"], ...]}
as JSON from standard input (never from arguments) and asks
GET /scim/v2/Users?count=1 on https://127.0.0.1 with the realm's host name:
for each "accept" realm with its token, a wrong token and none; for each
"reject" pair with that token. Prints
{"accept": {"realm": {"token": 200, "wrong": 401, "none": 401}}, "reject": [401, ...]}.
"""

import json
import re
import ssl
import sys
import urllib.error
import urllib.request

SETTINGS = "/etc/zulip/settings.py"


def external_host():
    with open(SETTINGS, encoding="utf-8") as handle:
        return re.findall(r'^EXTERNAL_HOST\s*=\s*["\']([^"\']+)', handle.read(), re.M)[-1]


def status(host, token):
    request = urllib.request.Request("https://127.0.0.1/scim/v2/Users?count=1", headers={"Host": host})
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


def main():
    asked = json.load(sys.stdin)
    base = external_host()

    def host(realm):
        return "%s.%s" % (realm, base) if realm else base

    result = {"accept": {}, "reject": []}
    for realm, token in asked.get("accept", {}).items():
        result["accept"][realm] = {
            "token": status(host(realm), token),
            "wrong": status(host(realm), "wrong-" + token[::-1]),
            "none": status(host(realm), None),
        }
    for realm, token in asked.get("reject", []):
        result["reject"].append(status(host(realm), token))
    print(json.dumps(result))


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Test helper run on a test host: what does the SCIM server answer?

Reads {"realm": "token", ...} as JSON from standard input and asks
GET /scim/v2/Users?count=1 for each realm on https://127.0.0.1 with the realm's
host name, three times: with the token, with a wrong token, with none. Prints
{"realm": {"token": 200, "wrong": 401, "none": 401}, ...}.
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
    tokens = json.load(sys.stdin)
    base = external_host()
    result = {}
    for realm, token in tokens.items():
        host = "%s.%s" % (realm, base) if realm else base
        result[realm] = {
            "token": status(host, token),
            "wrong": status(host, "wrong-" + token[::-1]),
            "none": status(host, None),
        }
    print(json.dumps(result))


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Demo helper, run on the Zulip test host: one SCIM request as an IdP makes it.

Reads the realm's bearer token from /etc/zulip/zulip-secrets.conf (it is never
printed) and sends GET /scim/v2/Users?count=1 to the server's own front end,
naming the realm in the Host header, like Okta or Entra ID would.
"""

import configparser
import json
import re
import ssl
import sys
import urllib.error
import urllib.request

realm = sys.argv[1] if len(sys.argv) > 1 else "acme"
with open("/etc/zulip/settings.py", encoding="utf-8") as handle:
    external_host = re.findall(r'^EXTERNAL_HOST\s*=\s*["\']([^"\']+)', handle.read(), re.M)[-1]
secrets = configparser.RawConfigParser()
secrets.read("/etc/zulip/zulip-secrets.conf")
token = secrets.get("secrets", "scim_bearer_token_" + (realm or "_root"))
host = "%s.%s" % (realm, external_host) if realm else external_host

context = ssl.create_default_context()
context.check_hostname = False
context.verify_mode = ssl.CERT_NONE
for label, auth in (("with the vaulted token", "Bearer " + token), ("with a wrong token", "Bearer wrong")):
    request = urllib.request.Request("https://127.0.0.1/scim/v2/Users?count=1", headers={"Host": host, "Authorization": auth})
    try:
        with urllib.request.urlopen(request, context=context, timeout=10) as response:
            status, body = response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        status, body = exc.code, exc.read().decode()
    print("GET https://%s/scim/v2/Users?count=1 %s -> HTTP %d" % (host, label, status))
    if body:
        print(json.dumps(json.loads(body), indent=2))

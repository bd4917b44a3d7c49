#!/usr/bin/env python3
"""Run on a test host (stdin: JSON): what is left after an interrupted or concurrent run?

Input: {"tokens": {"realm": "token"}, "old": [["realm", "token"], ...]} - the vault
file's active tokens and its older ones. They come on standard input, never as
arguments, and nothing printed holds a token. Prints JSON:

  secrets:   {"realm": "vault" | "other"} for every scim_bearer_token_* in
             zulip-secrets.conf ("other": a token the vault file does not hold)
  missing:   realms of "tokens" without a secret
  probe:     the stand-in's answers, scim_probe.py's format (200 / 401)
  temps:     leftover temporary files in /etc/zulip (names only)
  kept:      copies of the previous files still kept (an unproven configuration)
  settings_compiles: settings.py parses as Python
  token_files: files under /tmp, /root and /etc/zulip (other than zulip-secrets.conf)
             holding a vault token (names only)
"""

import ast
import configparser
import json
import os
import subprocess
import sys

ETC = "/etc/zulip"
SECRETS = ETC + "/zulip-secrets.conf"
PREFIX = "scim_bearer_token_"
SCAN = ("/tmp", "/root", "/var/tmp", ETC)


def secret_tokens():
    parser = configparser.RawConfigParser()
    parser.read(SECRETS)
    return {key[len(PREFIX):]: value for key, value in parser.items("secrets") if key.startswith(PREFIX)}


def realm_of(key):
    return "" if key == "_root" else key


def files_holding(tokens):
    found = []
    needles = [t.encode() for t in tokens if t]
    for top in SCAN:
        for folder, _dirs, names in os.walk(top):
            for name in names:
                path = os.path.join(folder, name)
                if path == SECRETS or not os.path.isfile(path) or os.path.islink(path):
                    continue
                try:
                    with open(path, "rb") as handle:
                        data = handle.read(4 * 1024 * 1024)
                except OSError:
                    continue
                if any(n in data for n in needles):
                    found.append(path)
    return sorted(found)


def main():
    job = json.load(sys.stdin)
    tokens, old = job["tokens"], job["old"]
    held = set(tokens.values()) | {token for _realm, token in old}
    on_host = {realm_of(k): v for k, v in secret_tokens().items()}
    probe = subprocess.run([sys.executable, "/root/scim_probe.py"], input=json.dumps({"accept": tokens, "reject": []}),
                           capture_output=True, text=True, timeout=120, check=False)
    with open(ETC + "/settings.py", encoding="utf-8") as handle:
        source = handle.read()
    try:
        ast.parse(source)
        compiles = True
    except SyntaxError:
        compiles = False
    print(json.dumps({
        "secrets": {realm: ("vault" if value == tokens.get(realm) else "held" if value in held else "other")
                    for realm, value in on_host.items()},
        "missing": sorted(set(tokens) - set(on_host)),
        "probe": json.loads(probe.stdout)["accept"] if probe.returncode == 0 else {"error": probe.stderr[-500:]},
        "temps": sorted(n for n in os.listdir(ETC) if n.endswith(".tmp") or n.endswith("-tmp")),
        "kept": sorted(n for n in os.listdir(ETC) if n.endswith((".zulip-scim-previous", ".zulip-scim-absent"))),
        "settings_compiles": compiles,
        "token_files": files_holding(list(tokens.values()) + [t for _r, t in old]),
    }))


if __name__ == "__main__":
    main()

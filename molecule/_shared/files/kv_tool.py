#!/usr/bin/env python3
"""What the KV v2 scenarios read or change in OpenBao by hand, on the controller (tests only).

Talks to VAULT_ADDR with VAULT_TOKEN (the test wrapper starts the server on
127.0.0.1 and sets both), directly with hvac, never through the collection.
  kv_tool.py dump MOUNT PATH            -> {"zulip_scim_tokens": {host: {realm: entry}}, "versions": {...}}
  kv_tool.py destroy MOUNT PATH HOST REALM   (the secret and all its versions: a lost entry)
"""

from __future__ import annotations

import json
import os
import sys

import hvac


def client() -> hvac.Client:
    return hvac.Client(url=os.environ["VAULT_ADDR"], token=os.environ["VAULT_TOKEN"])


def keys(kv, mount: str, path: str) -> list[str]:
    try:
        return kv.list_secrets(path=path, mount_point=mount)["data"]["keys"]
    except hvac.exceptions.InvalidPath:
        return []


def dump(mount: str, path: str) -> dict:
    kv = client().secrets.kv.v2
    hosts: dict = {}
    versions: dict = {}
    for host in (k.rstrip("/") for k in keys(kv, mount, path) if k.endswith("/")):
        for key in (k for k in keys(kv, mount, "%s/%s" % (path, host)) if not k.endswith("/")):
            secret = kv.read_secret_version(path="%s/%s/%s" % (path, host, key), mount_point=mount,
                                            raise_on_deleted_version=True)["data"]
            realm = "" if key == "_root" else key
            hosts.setdefault(host, {})[realm] = secret["data"]
            versions.setdefault(host, {})[realm] = secret["metadata"]["version"]
    return {"zulip_scim_tokens": hosts, "versions": versions}


def main(argv: list[str]) -> int:
    if argv[:1] == ["dump"] and len(argv) == 3:
        print(json.dumps(dump(argv[1], argv[2])))
        return 0
    if argv[:1] == ["destroy"] and len(argv) == 5:
        mount, path, host, realm = argv[1:]
        client().secrets.kv.v2.delete_metadata_and_all_versions(
            path="%s/%s/%s" % (path, host, realm or "_root"), mount_point=mount)
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

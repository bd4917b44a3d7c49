#!/usr/bin/env python3
"""Test helper run on a test host: where do the given tokens appear on disk?

Reads a JSON list of tokens from standard input (never from arguments, which
any user could read in the process list) and prints a JSON list of the files
that contain any of them, under the directories that Zulip, Ansible and the
stand-in write to.
"""

import json
import os
import sys

ROOTS = ["/etc", "/home", "/var", "/tmp", "/root", "/opt", "/run", "/srv", "/usr/local"]
MAX_SIZE = 64 * 1024 * 1024


def files_under(root):
    for directory, _subdirs, names in os.walk(root):
        for name in names:
            path = os.path.join(directory, name)
            if os.path.isfile(path) and not os.path.islink(path):
                yield path


def contains_any(path, needles):
    try:
        if os.path.getsize(path) > MAX_SIZE:
            return False
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError:
        return False
    return any(needle in data for needle in needles)


def main():
    needles = [token.encode() for token in json.load(sys.stdin)]
    # 8, not 16: the adopt scenario has a short hand-made token (11 characters) that the
    # collection adopts with a warning; shorter needles would match by chance.
    if not needles or any(len(n) < 8 for n in needles):
        sys.exit("need the tokens (at least 8 characters each) on stdin")
    found = sorted(p for root in ROOTS for p in files_under(root) if contains_any(p, needles))
    print(json.dumps(found))


if __name__ == "__main__":
    main()

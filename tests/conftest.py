"""Make the checkout importable as ``ansible_collections.zulip_ops.zulip``.

Ansible loads collection code only from an ``ansible_collections/<ns>/<name>``
tree. The checkout is the collection root, and ``playbooks/collections`` (the
collections folder Ansible searches next to a playbook) holds a link back to
it, so the same tree serves the playbooks, molecule and these tests.
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
COLLECTIONS = REPO / "playbooks" / "collections"

if str(COLLECTIONS) not in sys.path:
    sys.path.insert(0, str(COLLECTIONS))


def pytest_collection_finish(session) -> None:
    """With ZULIP_OPS_RELIABILITY_DUMP=FILE, write every `reliability` mark collected (tests/reliability/page.py)."""
    import json
    import os

    target = os.environ.get("ZULIP_OPS_RELIABILITY_DUMP")
    if not target:
        return
    found = []
    for item in session.items:
        for mark in item.iter_markers("reliability"):
            found.append({"test": item.nodeid, **mark.kwargs})
    Path(target).write_text(json.dumps(found), encoding="utf-8")

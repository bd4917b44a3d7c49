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

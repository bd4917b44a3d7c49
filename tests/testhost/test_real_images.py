"""The real-Zulip test-host images (build_zulip_image.sh): the image's key
changes with its recipe and its sources, so a stale image is rebuilt (and an
unchanged one is not).

What a booted instance must be (every service up by itself, both realms
serving on its front end, no SCIM configuration yet, nothing listening on the
machine's own network) is asserted on every boot, by the prepare playbook of
the real scenarios (molecule/_shared/prepare_real.yml), before anything else.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]

SRC = Path(os.environ.get("ZULIP_SRC_DIR", REPO.parent / "shared" / "zulip-src"))
BUILD = HERE / "build_zulip_image.sh"

pytestmark = [
    # Only a developer's explicit choice skips them; missing sources fail.
    pytest.mark.skipif(os.environ.get("ZULIP_REAL_IMAGES") == "0", reason="ZULIP_REAL_IMAGES=0"),
]


def image_hash(version: str, src: Path) -> str:
    res = subprocess.run(
        ["bash", str(BUILD), version, "--hash"],
        env={**os.environ, "ZULIP_SRC_DIR": str(src)},
        capture_output=True,
        text=True,
        check=True,
    )
    return res.stdout.strip()


def test_image_key_follows_recipe_and_sources(tmp_path: Path) -> None:
    copy = tmp_path / "zulip-src"
    copy.mkdir()
    for name in ("SHA256SUMS", "build-real-zulip.sh"):
        shutil.copy(SRC / name, copy / name)
    same = image_hash("9.2", copy)
    assert same == image_hash("9.2", SRC), "the key depends on where the sources are, not what they are"
    assert image_hash("5.6", copy) != same, "both versions share a key"
    with (copy / "SHA256SUMS").open("a") as sums:
        sums.write("0" * 64 + "  zulip-server-9.2.tar.gz.extra\n")
    assert image_hash("9.2", copy) != same, "changed sources keep the old image"
    (copy / "SHA256SUMS").write_text((SRC / "SHA256SUMS").read_text())
    with (copy / "build-real-zulip.sh").open("a") as recipe:
        recipe.write("\n# a change to the recipe\n")
    assert image_hash("9.2", copy) != same, "a changed recipe keeps the old image"

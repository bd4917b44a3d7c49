# -*- coding: utf-8 -*-
# Copyright (c) zulip_ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Unit tests for plugins/module_utils/_argspec.py and its agreement with the doc fragment."""

from __future__ import annotations

import yaml
import pytest

from ansible_collections.zulip_ops.zulip.plugins.doc_fragments._shared import ModuleDocFragment
from ansible_collections.zulip_ops.zulip.plugins.module_utils import _argspec as argspec
from ansible_collections.zulip_ops.zulip.plugins.module_utils import _zulip as zulip
from ansible_collections.zulip_ops.zulip.plugins.module_utils import _zulip_conf as zulip_conf


def test_path_defaults_are_the_module_utils_constants():
    spec = argspec.shared_options(*argspec.LAYOUT)
    assert spec["deploy_path"]["default"] == zulip.DEFAULT_DEPLOY_PATH
    assert spec["settings_path"]["default"] == zulip.SETTINGS_PATH
    assert spec["secrets_path"]["default"] == zulip.SECRETS_PATH
    assert spec["zulip_conf_path"]["default"] == zulip_conf.ZULIP_CONF_PATH == "/etc/zulip/zulip.conf"


def test_every_spec_starts_with_the_layout_and_adds_its_own():
    spec = argspec.argument_spec(("version",), extra={"type": "bool"})
    assert list(spec) == list(argspec.LAYOUT) + ["version", "extra"]


def test_copies_are_fresh():
    first = argspec.argument_spec(("realms",))
    first["realms"]["options"]["subdomain"]["required"] = False
    assert argspec.argument_spec(("realms",))["realms"]["options"]["subdomain"]["required"] is True


def test_an_option_defined_twice_or_unknown_fails():
    with pytest.raises(KeyError, match="options defined twice: settings_path"):
        argspec.argument_spec(settings_path={"type": "path"})
    with pytest.raises(KeyError, match="no shared option nope"):
        argspec.shared_options("nope")


@pytest.mark.parametrize("fragment, names", [
    ("LAYOUT", argspec.LAYOUT),
    ("API", argspec.API_OPTIONS),
    ("REALMS", ("realms",)),
    ("VERSION", ("version",)),
    ("USER", ("user",)),
    ("DEPLOY_LOCK", ("deploy_lock_timeout",)),
])
def test_the_doc_fragment_documents_the_specs(fragment, names):
    """Type, default and sub-options in the fragment are those of the spec (sanity checks modules too)."""
    documented = yaml.safe_load(getattr(ModuleDocFragment, fragment))["options"]
    spec = argspec.shared_options(*names)
    assert set(documented) == set(spec)
    for name, option in spec.items():
        assert documented[name]["type"] == option["type"]
        assert documented[name].get("default") == option.get("default")
        if "options" in option:
            assert set(documented[name]["suboptions"]) == set(option["options"])

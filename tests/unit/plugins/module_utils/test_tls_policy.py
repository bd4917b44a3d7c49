# -*- coding: utf-8 -*-
# Copyright (c) zulip_ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Unit tests for plugins/module_utils/_tls.py: what counts as loopback, and what follows from it (issue 23).

Nothing here opens a connection.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from ansible_collections.zulip_ops.zulip.plugins.module_utils import _tls as tls
from ansible_collections.zulip_ops.zulip.plugins.module_utils._zulip import ZulipError


@pytest.mark.parametrize("url", [
    "http://127.0.0.1", "https://127.0.0.1:8443/prefix", "http://127.255.255.254:80", "http://[::1]:8080",
    "http://localhost", "http://LocalHost:8080",
])
def test_loopback_urls(url):
    assert tls.is_loopback_url(url)
    assert tls.cleartext_problem(url, "x") is None
    assert tls.should_validate(None, url) is False


@pytest.mark.parametrize("url", [
    "http://169.254.120.2", "http://10.0.0.1:80", "http://zulip.example.com", "http://[fe80::1]:80",
    # Other spellings of a loopback address are not trusted to be one.
    "http://127.1", "http://[::ffff:127.0.0.1]", "http://2130706433", "http://localhost.", "http://localhost.example.com",
    # Malformed: no host that could be checked.
    "http:///path", "http://[::1",
])
def test_other_urls_are_another_machine(url):
    assert not tls.is_loopback_url(url)
    assert "is plain HTTP to another machine" in tls.cleartext_problem(url, "x")
    assert tls.cleartext_problem(url.replace("http://", "https://", 1), "x") is None
    assert tls.should_validate(None, url) is True


def test_an_explicit_choice_always_wins():
    assert tls.should_validate(False, "https://10.0.0.1") is False
    assert tls.should_validate(True, "https://127.0.0.1") is True
    assert tls.should_validate(True, None) is True


def test_no_url_is_the_derived_one_on_loopback_and_a_ca_path_turns_validation_on():
    assert tls.should_validate(None, None) is False
    assert tls.should_validate(None, "") is False
    assert tls.should_validate(None, None, "/etc/ssl/private-ca.pem") is True


@pytest.mark.parametrize("host_header, name", [
    ("acme.zulip.example.com", "acme.zulip.example.com"),
    ("acme.zulip.example.com:8443", "acme.zulip.example.com"),
    ("[2001:db8::1]:443", "2001:db8::1"),
    ("[2001:db8::1]", "2001:db8::1"),
])
def test_server_name(host_header, name):
    assert tls.server_name(host_header) == name


def test_check_api_options_settles_validate_certs():
    params = {"api_url": "https://169.254.120.2", "validate_certs": None, "ca_path": None, "allow_insecure_http": False}
    tls.check_api_options(params)
    assert params["validate_certs"] is True
    params = {"api_url": None, "validate_certs": None, "ca_path": None, "allow_insecure_http": False}
    tls.check_api_options(params)
    assert params["validate_certs"] is False


def test_check_api_options_refuses_cleartext_unless_allowed():
    params = {"api_url": "http://zulip.example.com", "validate_certs": None, "ca_path": None, "allow_insecure_http": False}
    with pytest.raises(ZulipError, match=r"^api_url http://zulip.example.com is plain HTTP .*zulip_scim_api_allow_insecure_http"):
        tls.check_api_options(params)
    params["allow_insecure_http"] = True
    tls.check_api_options(params)


def test_check_api_options_refuses_a_ca_path_that_is_no_file(tmp_path):
    params = {"api_url": None, "validate_certs": None, "ca_path": str(tmp_path), "allow_insecure_http": False}
    with pytest.raises(ZulipError, match="zulip_scim_api_ca_path.*no such file"):
        tls.check_api_options(params)


def test_the_role_documents_its_tls_variables_with_their_defaults():
    """roles/scim/meta/argument_specs.yml and defaults/main.yml agree on every TLS variable."""
    role = Path(__file__).resolve().parents[4] / "roles" / "scim"
    spec = yaml.safe_load((role / "meta" / "argument_specs.yml").read_text())["argument_specs"]["main"]["options"]
    defaults = yaml.safe_load((role / "defaults" / "main.yml").read_text())
    expected = {
        "zulip_scim_api_validate_certs": ("bool", None),
        "zulip_scim_api_ca_path": ("path", ""),
        "zulip_scim_api_allow_insecure_http": ("bool", False),
        "zulip_scim_vault_validate_certs": ("bool", True),
        "zulip_scim_vault_allow_insecure_http": ("bool", False),
    }
    for name, (kind, default) in expected.items():
        assert (spec[name]["type"], spec[name].get("default")) == (kind, default), name
        assert defaults[name] == default, name

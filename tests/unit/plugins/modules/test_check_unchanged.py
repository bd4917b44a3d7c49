# -*- coding: utf-8 -*-
# Copyright (c) zulip_ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""zulip_scim_config's check_unchanged: a run with nothing to change proves the running
configuration itself (module_utils/_scim_check, as zulip_scim_check does), against a
Zulip-like SCIM endpoint on 127.0.0.1; a run that changes something checks nothing."""

from __future__ import annotations

import pytest

import _module_runner as runner  # noqa: E402 - found through conftest.py
import test_zulip_scim_config as cfg  # noqa: E402 - found through conftest.py

from ansible_collections.zulip_ops.zulip.plugins.module_utils import _files as files
from ansible_collections.zulip_ops.zulip.plugins.module_utils import _previous as previous

ACME_HOST = "acme.zulip.example.com"
ROOT_HOST = "zulip.example.com"
OLD_TOKEN = "old-rotated-out-token-5555555555555555"


@pytest.fixture
def host(tmp_path):
    return cfg.Host(tmp_path)


@pytest.fixture
def endpoint():
    server = runner.LoopbackScimServer({ACME_HOST: cfg.TOKEN_ACME, ROOT_HOST: cfg.TOKEN_ROOT})
    yield server
    server.close()


def realms():
    return [cfg.acme(), dict(subdomain="", token=cfg.TOKEN_ROOT)]


def checking(endpoint, **extra):
    return dict(check_unchanged=True, api_url=endpoint.url, zulip_conf_path="/nonexistent/zulip.conf", **extra)


def configured(host, endpoint):
    """The host after a first run (which changes, so checks nothing)."""
    result = cfg.ok(host, realms(), **checking(endpoint))
    assert result["changed"] and result["checked"] is False and "checks" not in result
    assert endpoint.requests == [], "a run that changes the files must not check the old configuration"
    return host.state()


def test_an_unchanged_host_is_proven_in_the_same_module_run(host, endpoint):
    before = configured(host, endpoint)
    result = cfg.ok(host, realms(), **checking(endpoint))
    assert result["changed"] is False and result["checked"] is True
    expected = {"with_token": 200, "without_token": 401, "with_wrong_token": 401}
    assert result["checks"] == {"acme": expected, "": expected}
    sent = [(r["host"], r["authorization"]) for r in endpoint.requests]
    assert sent[0] == (ACME_HOST, "Bearer " + cfg.TOKEN_ACME) and sent[1] == (ACME_HOST, None)
    assert sent[3] == (ROOT_HOST, "Bearer " + cfg.TOKEN_ROOT)
    assert all(r["path"] == "/scim/v2/Users?count=1" for r in endpoint.requests)
    assert host.state() == before


def test_a_token_the_server_refuses_fails_the_unchanged_run_without_showing_it(host, endpoint):
    before = configured(host, endpoint)
    endpoint.httpd.tokens[ACME_HOST] = "a-token-the-server-has-loaded-instead-000"
    outcome = cfg.run(host, realms(), **checking(endpoint))
    assert outcome.failed
    assert outcome.result["msg"] == (
        "SCIM check failed: realm acme: the stored token got HTTP 401, expected HTTP 200. Nothing was to change in "
        "%s or %s: the running Zulip does not serve what they say (edited without a restart since?); nothing was "
        "restarted" % (host.settings, host.secrets))
    assert outcome.result["checks"]["acme"]["with_token"] == 401
    assert host.state() == before


def test_rejected_tokens_must_get_401(host, endpoint):
    configured(host, endpoint)
    result = cfg.ok(host, realms(), **checking(endpoint, rejected_tokens={"acme": OLD_TOKEN}))
    assert result["checks"]["acme"]["rejected_tokens"] == [401]
    # The old token still works (the server runs an older configuration): that is a failure.
    endpoint.httpd.tokens[ACME_HOST] = OLD_TOKEN
    outcome = cfg.run(host, realms(), **checking(endpoint, rejected_tokens={"acme": [OLD_TOKEN]}))
    assert outcome.failed and "a token that must no longer work got HTTP 200" in outcome.result["msg"]
    assert OLD_TOKEN not in str(outcome.result)


def test_absent_realms_are_not_asked_for(host, endpoint):
    configured(host, endpoint)
    cfg.ok(host, [cfg.acme(), dict(subdomain="", state="absent")], **checking(endpoint))  # removes the root realm
    endpoint.requests.clear()
    result = cfg.ok(host, [cfg.acme(), dict(subdomain="", state="absent")], **checking(endpoint))
    assert result["checked"] and list(result["checks"]) == ["acme"]
    assert {r["host"] for r in endpoint.requests} == {ACME_HOST}


@pytest.mark.parametrize("how", ["check_mode", "option_off"])
def test_no_request_in_check_mode_or_without_the_option(host, endpoint, how):
    configured(host, endpoint)
    extra = checking(endpoint)
    if how == "option_off":
        extra["check_unchanged"] = False
    result = cfg.ok(host, realms(), check_mode=how == "check_mode", **extra)
    assert result["changed"] is False and result["checked"] is False
    assert endpoint.requests == []


def test_an_unproven_earlier_run_is_restarted_and_checked_later_not_here(host, endpoint):
    configured(host, endpoint)
    # What an interrupted run leaves: the previous files kept beside the new ones.
    previous.keep([files.read_snapshot(str(host.settings)), files.read_snapshot(str(host.secrets))])
    result = cfg.ok(host, realms(), keep_previous=True, **checking(endpoint))
    assert result["changed"] and result["unproven"] and result["checked"] is False
    assert endpoint.requests == []


def test_nothing_answering_fails_naming_the_url(host, endpoint):
    configured(host, endpoint)
    url = endpoint.url
    endpoint.close()
    outcome = cfg.run(host, realms(), **checking(endpoint))
    assert outcome.failed and outcome.result["msg"].startswith("nothing answers at %s" % url)

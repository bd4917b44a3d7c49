# -*- coding: utf-8 -*-
# Copyright (c) zulip_ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""zulip_scim_preflight's check_unchanged: the one module run of a run with nothing to change.

It plans what zulip_scim_config would do (module_utils/_config_plan, the same code) and,
when nothing, proves the running configuration against a Zulip-like SCIM endpoint on
127.0.0.1. Whatever keeps it from saying "unchanged" fails nothing: the modules that run
next say it. Real files in a temporary /etc/zulip (test_zulip_scim_config.Host).
"""

from __future__ import annotations

import json

import pytest

import _module_runner as runner  # noqa: E402 - found through conftest.py
import test_zulip_scim_config as cfg  # noqa: E402 - found through conftest.py
# The same host, endpoint (pytest fixtures, hence "unused") and tokens as the check of zulip_scim_config.
from test_check_unchanged import (  # noqa: E402,F401 pylint: disable=unused-import
    ACME_HOST,
    OLD_TOKEN,
    ROOT_HOST,
    endpoint,
    host,
)

from ansible_collections.zulip_ops.zulip.plugins.module_utils import _files as files
from ansible_collections.zulip_ops.zulip.plugins.module_utils import _previous as previous
from ansible_collections.zulip_ops.zulip.plugins.modules import zulip_scim_preflight

WEAK_TOKEN = "weak-token-0123"  # shorter than MIN_STRONG_LENGTH
PROVEN = {"with_token": 200, "without_token": 401, "with_wrong_token": 401}


def realm_items():
    return [cfg.acme(), dict(subdomain="", token=cfg.TOKEN_ROOT)]


def configure(host, endpoint, items=None):
    """What the role's first run leaves: the files written by zulip_scim_config."""
    cfg.ok(host, items or realm_items(), api_url=endpoint.url, zulip_conf_path="/nonexistent/zulip.conf")
    endpoint.requests.clear()


def info(host, endpoint, items=None, check_mode=False, zulip=None, **extra):
    """zulip_scim_preflight as preflight.yml runs it; manage.py answers as ``zulip`` would (none expected)."""
    args = host.args(items or realm_items())
    present = [i["subdomain"] for i in args["realms"] if i.get("state", "present") == "present"]
    args.update(check_config=args.pop("realms"), realms=present, check_settings=True, check_unchanged=True,
                api_url=endpoint.url, zulip_conf_path="/nonexistent/zulip.conf", require_front_end=True)
    args.update(extra)
    outcome = runner.run_module(zulip_scim_preflight.main, args, check_mode=check_mode,
                                run_command=runner.FakeRunCommand(zulip or runner.FakeZulip()))
    dumped = json.dumps(outcome.result) + json.dumps(outcome.warnings)
    for secret in cfg.ALL_SECRETS + (OLD_TOKEN, WEAK_TOKEN):
        assert secret not in dumped
    assert not outcome.failed, outcome
    return outcome


def sent(endpoint):
    return [(r["host"], r["authorization"]) for r in endpoint.requests]


@pytest.mark.parametrize("check_mode", [False, True])
def test_an_unchanged_host_is_proven_and_its_realms_known_in_the_one_run(host, endpoint, check_mode):
    configure(host, endpoint)
    before = host.state()
    outcome = info(host, endpoint, check_mode=check_mode)
    assert outcome.result["unchanged"] is True and "pending" not in outcome.result
    assert outcome.result["checks"] == {"acme": PROVEN, "": PROVEN}
    # The proof's requests tell that both realms exist: no probe of its own, no manage.py.
    assert outcome.result["realms"] == {"acme": True, "": True}
    assert len(endpoint.requests) == 6 and sent(endpoint)[0] == (ACME_HOST, "Bearer " + cfg.TOKEN_ACME)
    assert outcome.run.calls == [] and outcome.result["manage_calls"] == []
    assert host.state() == before


def test_without_the_option_nothing_is_planned_and_realms_are_probed_as_before(host, endpoint):
    configure(host, endpoint)
    outcome = info(host, endpoint, check_unchanged=False)
    assert outcome.result["unchanged"] is False and "pending" not in outcome.result and "checks" not in outcome.result
    # One probe per realm, without a token.
    assert sent(endpoint) == [(ACME_HOST, None), (ROOT_HOST, None)]


def test_a_new_realm_is_pending_and_nothing_is_asked_with_a_token(host, endpoint):
    configure(host, endpoint, [cfg.acme()])
    outcome = info(host, endpoint)
    assert outcome.result["unchanged"] is False
    assert outcome.result["pending"] == "%s or %s would change" % (host.settings, host.secrets)
    assert all(auth is None for dummy, auth in sent(endpoint))


def test_a_token_the_store_replaced_is_pending(host, endpoint):
    configure(host, endpoint)
    items = [dict(cfg.acme(), token="a-newer-token-from-the-store-0123456789"), dict(subdomain="", token=cfg.TOKEN_ROOT)]
    outcome = info(host, endpoint, items)
    assert outcome.result["unchanged"] is False and "would change" in outcome.result["pending"]
    assert "a-newer-token-from-the-store-0123456789" not in json.dumps(outcome.result)


def test_a_key_that_changed_is_pending(host, endpoint):
    configure(host, endpoint)
    items = [dict(cfg.acme(), name_formatted_included=True), dict(subdomain="", token=cfg.TOKEN_ROOT)]
    assert info(host, endpoint, items).result["unchanged"] is False


def test_a_token_the_server_refuses_is_pending_not_a_failure(host, endpoint):
    """zulip_scim_config, which runs next, proves it again and fails with the whole story."""
    configure(host, endpoint)
    endpoint.httpd.tokens[ACME_HOST] = "a-token-the-server-has-loaded-instead-000"
    outcome = info(host, endpoint)
    assert outcome.result["unchanged"] is False and "checks" not in outcome.result
    assert outcome.result["pending"].startswith(
        "the check of the unchanged configuration failed: SCIM check failed: realm acme: the stored token got HTTP 401")
    # The realms were then probed as without the option.
    assert outcome.result["realms"] == {"acme": True, "": True}


def test_rejected_tokens_must_get_401(host, endpoint):
    configure(host, endpoint)
    outcome = info(host, endpoint, rejected_tokens={"acme": OLD_TOKEN})
    assert outcome.result["unchanged"] is True and outcome.result["checks"]["acme"]["rejected_tokens"] == [401]
    endpoint.httpd.tokens[ACME_HOST] = OLD_TOKEN  # the server still runs the configuration before a rotation
    outcome = info(host, endpoint, rejected_tokens={"acme": [OLD_TOKEN]})
    assert outcome.result["unchanged"] is False
    assert "a token that must no longer work got HTTP 200" in outcome.result["pending"]


def test_an_unproven_earlier_run_is_pending_and_not_checked(host, endpoint):
    configure(host, endpoint)
    previous.keep([files.read_snapshot(str(host.settings)), files.read_snapshot(str(host.secrets))])
    outcome = info(host, endpoint)
    assert outcome.result["unchanged"] is False and "not proven" in outcome.result["pending"]
    assert all(auth is None for dummy, auth in sent(endpoint))


def test_a_plan_that_would_fail_is_pending_with_the_reason(host, endpoint):
    configure(host, endpoint)
    items = [cfg.acme(), dict(subdomain="")]  # no token for the root domain
    outcome = info(host, endpoint, items)
    assert outcome.result["unchanged"] is False
    assert outcome.result["pending"] == 'zulip_scim_config would fail: realms[1] ("" (root domain)): no token for the realm in tokens'


def test_exclusive_drops_an_unlisted_entry_so_the_run_is_pending(host, endpoint):
    configure(host, endpoint)
    assert info(host, endpoint, [cfg.acme()]).result["unchanged"] is True
    assert info(host, endpoint, [cfg.acme()], exclusive=True).result["unchanged"] is False


def test_an_absent_realm_already_gone_is_unchanged_and_not_asked_for(host, endpoint):
    configure(host, endpoint, [cfg.acme(), dict(subdomain="", state="absent")])
    outcome = info(host, endpoint, [cfg.acme(), dict(subdomain="", state="absent")])
    assert outcome.result["unchanged"] is True and list(outcome.result["checks"]) == ["acme"]
    assert {h for h, dummy in sent(endpoint)} == {ACME_HOST}


def test_a_weak_token_is_warned_about_when_zulip_scim_config_does_not_run(host, endpoint):
    endpoint.httpd.tokens[ACME_HOST] = WEAK_TOKEN
    items = [dict(cfg.acme(), token=WEAK_TOKEN)]
    configure(host, endpoint, items)
    outcome = info(host, endpoint, items)
    assert outcome.result["unchanged"] is True
    assert any(w.startswith("realm acme: ") and "replace it with a longer one" in w for w in outcome.warnings)


@pytest.mark.parametrize("clients, unchanged", [
    ([["acme", "okta"], ["", "okta"]], True),
    ([["acme", "okta"]], False),  # a present realm's row is missing
    (None, False),  # psql could not tell
])
def test_on_5x_the_client_rows_decide_too(host, endpoint, monkeypatch, clients, unchanged):
    configure(host, endpoint)
    host.set_version("5.6")
    listing = None if clients is None else (["zulipinternal", "acme", ""], {tuple(c) for c in clients})
    call = {"tool": "psql", "rc": 0 if listing else 2, "seconds": 0.1, "error": None if listing else "no"}
    monkeypatch.setattr(zulip_scim_preflight, "read_with_psql", lambda module: (listing, call))
    outcome = info(host, endpoint, scim_clients=True)
    assert outcome.result["unchanged"] is unchanged
    if not unchanged:
        assert outcome.result["pending"] == "SCIM client rows to add or remove, or not listed"
